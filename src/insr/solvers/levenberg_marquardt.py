"""Levenberg–Marquardt for the per-step least-squares problems (the default solver).

Minimises |r(θ)|² with steps  (JᵀJ + λ·I) δ = −Jᵀr,  where J = ∂r/∂θ (N × P).

Why this form:
- J is built one sample point at a time (``vmap`` over points of ``jacrev`` with
  respect to θ): the point residuals are independent, so this costs about as much
  as N gradient evaluations, while ``jacfwd``/``jacrev`` of the whole residual
  vector are 40–600× slower on these networks.
- Damping is λ·I (Levenberg), not Marquardt's λ·diag(JᵀJ): with cond(JᵀJ) of
  order 1e19 the diagonal scaling lets nearly-null directions take huge steps
  and stalls.  λ follows Nielsen's gain-ratio rule (Nielsen 1999; Madsen,
  Nielsen & Tingleff, "Methods for non-linear least squares problems", 2004,
  Sec. 3.2): on acceptance λ ← λ·max(1/3, 1 − (2ρ − 1)³), otherwise λ ← λ·ν, ν ← 2ν.
- The normal equations are solved by Cholesky in ``linear_dtype``.  In float32
  the damping keeps cond(JᵀJ + λI) ≤ (σ_max² + λ)/λ, and a failed factorisation
  (NaN) is treated as a rejected step that raises λ — in float32 this
  failure is what keeps λ from falling into the ill-conditioned range.
  ``linear_dtype = "float64"`` (with ``jax_enable_x64``; θ is then iterated in
  float64 too) has no such guard: use a larger ``tau`` there.  Measured on the
  heat initial fit (SIREN 16×2, 1,000 points, 100 iterations): float32 τ=1e-6
  → loss 2.3e-9, float32 τ=1e-9 → 9.8e-12, float64 τ=1e-3 → 2.3e-12, float64
  τ=1e-9 → 1.4e-3 (stalls with tiny λ).

Jacobian reuse (``jacobian_every = k > 1``): after an accepted step the
Jacobian, λ and the Cholesky factor are kept for up to k − 1 further "chord"
steps that only re-evaluate the residual (δ = −(JᵀJ + λI)⁻¹ J_oldᵀ r(θ)); a
rejected chord step refreshes J at the current point.  The per-step problems
are nearly linear in θ after a warm start, so chord steps make almost the
progress of full ones at ~1/20 of the cost (forming JᵀJ dominates).

Stopping (first that holds): an accepted step whose actual and predicted
relative decrease of the loss are both below ``ftol``; ‖Jᵀr‖_∞ ≤ ``gtol``; loss
≤ ``atol``; λ beyond ``1e10 ×`` the largest diagonal entry of JᵀJ (no progress
possible at this precision); ``max_iters`` iterations.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree

from insr.solvers.objective import residual_vector, sample_blocks


class SolveStats(NamedTuple):
    iterations: jax.Array
    loss_initial: jax.Array
    loss: jax.Array
    converged: jax.Array


class _LMState(NamedTuple):
    theta: jax.Array
    r: jax.Array
    J: jax.Array  # Jacobian at the last refresh point
    A: jax.Array  # JᵀJ
    g: jax.Array  # Jᵀr (with the stored J)
    chol: jax.Array  # Cholesky factor of A + λI
    loss: jax.Array
    lam: jax.Array
    nu: jax.Array
    age: jax.Array  # accepted steps since J was refreshed
    it: jax.Array
    done: jax.Array
    converged: jax.Array


@dataclass(frozen=True)
class LevenbergMarquardt:
    max_iters: int = 50
    ftol: float = 1e-6
    gtol: float = 0.0
    atol: float = 0.0
    tau: float = 1e-6  # initial λ = tau · max diag(JᵀJ)
    linear_dtype: str = "float32"
    jacobian_every: int = 1
    name: str = "lm"

    def __post_init__(self):
        if int(self.max_iters) < 1:
            raise ValueError(f"lm.max_iters must be ≥ 1, got {self.max_iters!r}")
        for field in ("ftol", "gtol", "atol"):
            if not getattr(self, field) >= 0:
                raise ValueError(f"lm.{field} must be ≥ 0, got {getattr(self, field)!r}")
        if int(self.jacobian_every) < 1:
            raise ValueError(f"lm.jacobian_every must be ≥ 1, got {self.jacobian_every!r}")
        if not self.tau > 0:
            raise ValueError(f"lm.tau must be > 0, got {self.tau!r}")
        if self.linear_dtype not in ("float32", "float64"):
            raise ValueError(f"lm.linear_dtype must be 'float32' or 'float64', got {self.linear_dtype!r}")
        if self.linear_dtype == "float64" and not jax.config.jax_enable_x64:
            # Without x64, JAX silently computes float64 requests in float32.
            raise ValueError("lm.linear_dtype='float64' needs 64-bit JAX: call "
                             "jax.config.update('jax_enable_x64', True) first (the CLI does this for you)")

    def solve(self, blocks, params0, args, key):
        """Minimise the blocks' loss starting at ``params0``; points are drawn once from ``key``."""
        points = sample_blocks(blocks, key)
        theta0, unravel = ravel_pytree(params0)
        ldt = jnp.float64 if self.linear_dtype == "float64" else theta0.dtype
        # In float64 mode the weights are iterated in float64 too: float32 rounding of θ
        # would undo the small steps that the float64 solve is there to resolve.
        theta0 = theta0.astype(ldt)

        def r_of(theta):
            return residual_vector(blocks, points, unravel(theta), args)

        def jac_of(theta):
            # Per-point Jacobians: vmap over points of jacrev w.r.t. θ.
            parts = []
            for block, pts in zip(blocks, points):
                fn = lambda th, x, b=block: b.residual(unravel(th), x, args)
                Jb = jax.vmap(jax.jacrev(fn), in_axes=(None, 0))(theta, pts)  # (N, m, P)
                parts.append(jnp.sqrt(block.weight / pts.shape[0]) * Jb.reshape(-1, theta.shape[0]))
            return jnp.concatenate(parts, axis=0)

        def jacobian(theta, r):
            J = jac_of(theta).astype(ldt)
            return J, J.T @ J, J.T @ r.astype(ldt)

        def factor(A, lam):
            return jnp.linalg.cholesky(A + lam * eye)

        r0 = r_of(theta0)
        eye = jnp.eye(theta0.shape[0], dtype=ldt)
        J0, A0, g0 = jacobian(theta0, r0)
        loss0 = jnp.sum(r0 * r0).astype(ldt)
        max_diag0 = jnp.max(jnp.diag(A0))
        lam0 = (self.tau * max_diag0).astype(ldt)

        def cond(s):
            return (~s.done) & (s.it < self.max_iters)

        def body(s: _LMState):
            delta = -jax.scipy.linalg.cho_solve((s.chol, True), s.g)
            pred = -(2.0 * delta @ s.g + delta @ (s.A @ delta))  # decrease of |r|² predicted by the model
            theta_new = s.theta + delta.astype(s.theta.dtype)
            r_new = r_of(theta_new)
            loss_new = jnp.sum(r_new * r_new).astype(ldt)
            actual = s.loss - loss_new
            ok = jnp.isfinite(loss_new) & jnp.all(jnp.isfinite(delta)) & (actual > 0) & (pred > 0)
            rho = jnp.where(ok, actual / jnp.where(pred > 0, pred, 1.0), -1.0)
            small = (actual <= self.ftol * s.loss) & (pred <= self.ftol * s.loss)

            def accept_fresh(_):
                J, A, g = jacobian(theta_new, r_new)
                lam = (s.lam * jnp.maximum(1.0 / 3.0, 1.0 - (2.0 * rho - 1.0) ** 3)).astype(ldt)
                stop = small | (loss_new <= self.atol) | (jnp.max(jnp.abs(g)) <= self.gtol)
                return _LMState(theta_new, r_new, J, A, g, factor(A, lam), loss_new, lam,
                                jnp.asarray(2.0, ldt), jnp.asarray(0), s.it + 1, stop, stop)

            def accept_chord(_):
                # Keep J, λ and the factorisation; only the residual is new.
                g = s.J.T @ r_new.astype(ldt)
                stop = small | (loss_new <= self.atol)
                return s._replace(theta=theta_new, r=r_new, g=g, loss=loss_new, age=s.age + 1, it=s.it + 1,
                                  done=stop, converged=stop)

            def reject_stale(_):
                # The failure may be the stale model's: refresh J at the current point, keep λ.
                J, A, g = jacobian(s.theta, s.r)
                return s._replace(J=J, A=A, g=g, chol=factor(A, s.lam), age=jnp.asarray(0), it=s.it + 1)

            def reject_fresh(_):
                lam = s.lam * s.nu
                stalled = lam > 1e10 * max_diag0
                return s._replace(chol=factor(s.A, lam), lam=lam, nu=s.nu * 2.0, it=s.it + 1, done=stalled)

            def accept_last(_):
                # The iteration cap is reached: a new Jacobian (the most expensive part
                # of an iteration) would never be used.  With max_iters = 2 this saves a
                # third of the Jacobian builds of every solve.
                stop = small | (loss_new <= self.atol)
                return s._replace(theta=theta_new, r=r_new, loss=loss_new, it=s.it + 1, done=True, converged=stop)

            last = s.it + 1 >= self.max_iters
            branch = jnp.where(ok, jnp.where(last, 4, jnp.where(s.age + 1 >= self.jacobian_every, 0, 1)),
                               jnp.where(s.age > 0, 2, 3))
            return jax.lax.switch(branch, (accept_fresh, accept_chord, reject_stale, reject_fresh, accept_last), None)

        init = _LMState(theta0, r0, J0, A0, g0, factor(A0, lam0), loss0, lam0, jnp.asarray(2.0, ldt),
                        jnp.asarray(0), jnp.asarray(0), jnp.asarray(False), jnp.asarray(False))
        s = jax.lax.while_loop(cond, body, init)
        return unravel(s.theta), SolveStats(s.it, loss0, s.loss, s.converged)
