r"""Importance sampling of a band (a sub-region picked by an indicator) with unbiased weights.

A step's objective is a volume integral (1/V)∫_Ω f(X) dX, estimated by N points.  Drawn
uniformly, a thin region B — the layer of a body within reach of an obstacle — holds few of
them, N·|B|/V, and a solve can fit those few while the field between them penetrates.  This
module draws ``n_band`` of the N points uniformly inside B and the other ``n_uniform`` uniformly
over Ω, and weights every point so the estimate stays unbiased (the balance heuristic of
multiple importance sampling; Veach & Guibas 1995):

    q(X) = [n_uniform/V + k·1_B(X)/|B| + (n_band − k)·1_{Ω∖B}(X)/|Ω∖B|] / N,
    w(X) = (1/V) / q(X) = N / (n_uniform + k·1_B(X)/f + (n_band − k)·1_{Ω∖B}(X)/(1 − f)),

so that E[(1/N)Σ w(X_j) f(X_j)] = (1/V)∫ f.  Here f = |B|/V and B's points are found in a
uniform pool of M candidates (f ≈ M_B/M, the pool's share in B); k = min(n_band, M_B) band
slots are filled with distinct pool points of B (a random order), and the slots B cannot fill
(a band thinner than n_band/M of the body, or empty) with distinct pool points outside B, which
the third term accounts for.  With an empty band every weight is 1: uniform sampling.

Least squares: a residual r_j enters the loss as w_j|r_j|², i.e. the solver sees √w_j·r_j.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


def split_budget(n: int, share: float) -> tuple[int, int]:
    """(uniform points, targeted points) of a budget of ``n`` with a targeted ``share``; each at
    least 1 — without uniform points the rest of the domain would go unsampled (and the
    weights, bounded by N / n_uniform, unbounded)."""
    if n < 2:
        raise ValueError(f"a sampling mixture needs at least 2 points, got {n}")
    targeted = min(n - 1, max(1, int(round(share * n))))
    return n - targeted, targeted


def band_weights(in_band, n_uniform: int, k, n_rest, fraction):
    """The weight w(X) of the module docstring for points whose membership is ``in_band``."""
    n = n_uniform + k + n_rest
    f = jnp.clip(fraction, 1e-12, 1.0)
    g = jnp.clip(1.0 - fraction, 1e-12, 1.0)
    density = n_uniform + jnp.where(in_band, k / f, n_rest / g)
    return n / density


def band_mixture(key, uniform_sampler, pool_sampler, indicator, n_band: int):
    """Draw the N = n_uniform + n_band points of the module docstring.

    ``uniform_sampler(key) -> (n_uniform, d)`` and ``pool_sampler(key) -> (M, d)`` draw uniformly
    by volume; ``indicator(points) -> bool (len,)`` says which points lie in the band (it may
    depend on the current state, e.g. the predicted deformed position near an obstacle).
    Returns ``(points (N, d), weights (N,), band_fraction)``: weights average to ≈ 1 and make the
    mean of w·f an unbiased estimate of the volume mean of f.
    """
    k_uniform, k_pool, k_order = jax.random.split(key, 3)
    x_uniform = uniform_sampler(k_uniform)
    pool = pool_sampler(k_pool)
    m = pool.shape[0]
    if n_band > m:
        raise ValueError(f"the band needs {n_band} points but the pool holds {m}")
    pool_in = indicator(pool)
    m_band = jnp.sum(pool_in)
    fraction = m_band / m
    # a random order with the band's points first: the first n_band entries are distinct pool
    # points, of B as far as B has them, then of Ω∖B
    priority = jax.random.uniform(k_order, (m,)) + jnp.where(pool_in, 0.0, 2.0)
    chosen = jnp.argsort(priority)[:n_band]
    x_band = pool[chosen]
    k = jnp.minimum(m_band, n_band).astype(jnp.float32)
    n_rest = n_band - k
    points = jnp.concatenate([x_uniform, x_band], axis=0)
    member = jnp.concatenate([indicator(x_uniform), pool_in[chosen]])
    weights = band_weights(member, x_uniform.shape[0], k, n_rest, fraction)
    return points, weights, fraction
