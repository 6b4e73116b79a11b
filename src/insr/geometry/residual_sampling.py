r"""Residual-weighted importance sampling with a uniform share, and unbiased weights.

A time step fits θ by minimising a volume mean (1/V)∫_Ω |r(θ; x)|² dx estimated by N points.
Drawn uniformly, the points spread evenly although the work is local: on an advected pulse the
residual lives where the pulse is, a few per cent of the domain.  This module puts a ``share``
of the N points where an *indicator density* ρ(x) ≥ 0 is large — for a time step, ρ = |r|^p of
the step's own residual at its warm start θⁿ, i.e. the size of the change Δt·L(uⁿ) the step has
to make — and keeps the estimate unbiased by weighting every point with the balance heuristic of
multiple importance sampling (Veach & Guibas 1995).  With n_u = N − n_a uniform points and n_a
points drawn with density ∝ ρ, the mixture's density relative to uniform is

    q(x) = [n_u + n_a·ρ(x)/ρ̄] / N,   ρ̄ = (1/V)∫ρ,   w(x) = 1/q(x) = N / (n_u + n_a·ρ(x)/ρ̄),

and E[(1/N) Σ_j w(x_j) f(x_j)] = (1/V)∫ f for every f.  The weights are bounded by N/n_u (the
uniform share keeps regions where ρ ≈ 0 sampled, so the estimate cannot miss them).

The n_a points are drawn by sampling–importance–resampling: a pool of M uniform candidates,
from which n_a are drawn with replacement with probabilities ρ_i/Σρ; ρ̄ is the pool's mean.
As M → ∞ this samples ∝ ρ exactly; for finite M (``pool`` × N candidates) the resampled points
follow ρ only approximately and ρ̄ is itself estimated, so the estimate is consistent (bias
O(1/M)) rather than exactly unbiased.  Measured in ``tests/test_residual_sampling.py`` on a
narrow bump (4,000 draws of 200 points): no bias within the Monte-Carlo noise (≈ 0.2 %) from
M = N to 32 N, and a spread 2.8× below uniform sampling's at the default M = 8 N (4.6× at 32 N).
Where ρ vanishes on the whole pool (nothing to adapt to) every weight is 1: uniform sampling.

Least squares: a residual r_j enters the loss as w_j|r_j|², i.e. the solver sees √w_j·r_j.
"""

from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp

from insr.geometry.band_sampling import split_budget


@dataclass(frozen=True)
class ResidualSampling:
    """Draw a ``share`` of each step's points with density ∝ |r|^``power`` (r the step's residual
    at its warm start), found among ``pool`` × N uniform candidates; the rest uniformly.

    ``share`` in (0, 1): the uniform share 1 − share bounds every weight by 1/(1 − share).
    """

    share: float = 0.5
    pool: int = 8
    power: float = 1.0

    def __post_init__(self):
        if not 0.0 < float(self.share) < 1.0:
            raise ValueError(f"adaptive sampling: share must be in (0, 1), got {self.share!r}")
        if isinstance(self.pool, bool) or int(self.pool) != self.pool or self.pool < 2:
            raise ValueError(f"adaptive sampling: pool must be an integer ≥ 2 (candidates per point), "
                             f"got {self.pool!r}")
        if not float(self.power) > 0.0:
            raise ValueError(f"adaptive sampling: power must be > 0, got {self.power!r}")

    def split(self, n: int) -> tuple[int, int]:
        """(uniform points, adaptive points) of a budget of ``n``; each at least 1."""
        return split_budget(n, self.share)


def mixture_weights(rho, rho_mean, n_uniform: int, n_adaptive: int):
    """w(x) = N / (n_u + n_a·ρ(x)/ρ̄) of the module docstring (1 where ρ̄ = 0)."""
    n = n_uniform + n_adaptive
    safe = jnp.where(rho_mean > 0, rho_mean, 1.0)
    rel = jnp.where(rho_mean > 0, rho / safe, 1.0)
    return n / (n_uniform + n_adaptive * rel)


def _finite(rho, m: int):
    """ρ made safe to sum over ``m`` candidates: NaN and negative → 0, and values (+inf
    included) capped at finfo.max / (10 m), so the largest residuals stay the most likely and
    the pool's sum cannot overflow (a density |r|^p of a diverging step can reach inf)."""
    rho = jnp.asarray(rho)
    cap = jnp.finfo(rho.dtype).max / (10.0 * m)
    return jnp.clip(jnp.where(jnp.isnan(rho), 0.0, rho), 0.0, cap)


def residual_mixture(key, uniform_sampler, pool_sampler, density, n_adaptive: int):
    """Draw N = n_uniform + ``n_adaptive`` points: ``uniform_sampler(key) -> (n_uniform, d)``
    uniformly by volume, and ``n_adaptive`` resampled from ``pool_sampler(key) -> (M, d)`` (uniform
    candidates) with probabilities ∝ ``density(points) -> (len,) ≥ 0``.

    Returns ``(points (N, d), weights (N,))``: the weights make the mean of w·f an unbiased
    estimate of the volume mean of f (module docstring); they average to ≈ 1.
    """
    k_uniform, k_pool, k_pick = jax.random.split(key, 3)
    x_uniform = uniform_sampler(k_uniform)
    pool = pool_sampler(k_pool)
    m, n_uniform = pool.shape[0], x_uniform.shape[0]
    rho_all = _finite(density(jnp.concatenate([x_uniform, pool], axis=0)), m)  # one evaluation
    rho_uniform, rho_pool = rho_all[:n_uniform], rho_all[n_uniform:]
    rho_mean = jnp.mean(rho_pool)
    # Inverse-CDF draws with replacement: O(M + n log M) memory and work (jax.random.categorical
    # would build an n × M Gumbel array: 1.6 GB for 5,000 picks from 80,000 candidates).
    # All-zero ρ (nothing to adapt to): pick uniformly from the pool.
    probs = jnp.where(rho_mean > 0, rho_pool, 1.0)
    cdf = jnp.cumsum(probs)
    u = jax.random.uniform(k_pick, (n_adaptive,), dtype=cdf.dtype) * cdf[-1]
    # the first index with cdf > u: candidates of zero density (flat cdf) are never picked
    picked = jnp.minimum(jnp.searchsorted(cdf, u, side="right"), pool.shape[0] - 1)
    points = jnp.concatenate([x_uniform, pool[picked]], axis=0)
    rho = jnp.concatenate([rho_uniform, rho_pool[picked]])
    weights = mixture_weights(rho, rho_mean, n_uniform, n_adaptive)
    return points, weights
