"""Matrix-free Levenberg–Marquardt: the damped Gauss–Newton step by preconditioned CG.

Same iteration as :class:`~insr.solvers.LevenbergMarquardt` — minimise |r(θ)|² with steps

    (JᵀJ + λ·I) δ = −Jᵀr,     λ by Nielsen's gain-ratio rule,

optionally with geodesic acceleration (Transtrum & Sethna 2012), and the same stopping
rules and :class:`~insr.solvers.levenberg_marquardt.SolveStats` — but J is never formed.
The linear system is solved by conjugate gradients on the normal equations (CGLS in
operator form), each product (JᵀJ + λI)v being one Jacobian–vector product (forward mode,
``jax.linearize`` once per iteration) and one vector–Jacobian product (its transpose),
i.e. about three residual evaluations.  Memory is O(N·m + P) plus the network's
activations, instead of the dense solver's N·m·P Jacobian and P² normal matrix; the work
per CG iteration is O(N·m·P) instead of the dense O(N·m·P² + P³).

Preconditioner: Jacobi, M = diag(JᵀJ) + λ.  The diagonal is accumulated exactly over
chunks of ``chunk`` points (per-point reverse-mode Jacobians, summed squares; the
chunk's Jacobian is the only P-wide array) at the start of the solve and again after
every ``precondition_every`` accepted steps (0: never again).  The network's layers
differ in scale by orders of magnitude (SIREN's first layer sees ω₀), so without it CG
spends its iterations on the stiffest layer.  It is not cheap: on the paper's 3×68
elasticity network at 10⁴ points it costs as much as ~25 CG products (it writes every
per-point Jacobian row once), so a warm-started time step computes it once.

Inexact Newton: CG stops when ‖(JᵀJ + λI)δ + Jᵀr‖ ≤ ``cg_rtol``·‖Jᵀr‖ or after
``cg_max_iters`` products.  A truncated CG step from δ = 0 is a descent direction, and the
gain ratio uses the decrease the model predicts for the δ actually taken,
pred = −(2δᵀJᵀr + |Jδ|²), so the damping rule stays honest about the truncation
(Martens, "Deep learning via Hessian-free optimization", ICML 2010; Nocedal & Wright,
"Numerical Optimization", 2nd ed., Sec. 7.1).

Why our own CG and not lineax.CG: the CG iteration count is part of what a solve reports
(``SolveStats.inner``), truncation is the normal case rather than a failure, and it is
twenty lines inside the solver's ``while_loop``.

Subsampled curvature (``curvature_fraction`` < 1): the CG products use J_S, the rows of a
subset S of the points, while the gradient Jᵀr, the loss and the gain ratio use all of them
— the step is a Newton–CG step with a sampled Hessian (Byrd, Chin, Neveitt & Nocedal,
"On the use of stochastic Hessian information in optimization methods for machine
learning", SIAM J. Optim. 2011).  Each product then costs |S|/N of a full one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree

from insr.solvers.levenberg_marquardt import (
    STOP_REASONS,
    SolveStats,
    accelerated_step,
    check_lm_settings,
    convergence_reason,
    sounder_lm,
)
from insr.solvers.objective import residual_vector, sample_blocks

__all__ = ["MatrixFreeLM", "pcg", "gauss_newton_diagonal"]


def pcg(matvec, b, inv_precond, max_iters: int, rtol: float):
    """Solve A x = b for a symmetric positive definite A given as ``matvec`` by conjugate
    gradients preconditioned with the diagonal ``1/inv_precond`` (i.e. z = inv_precond·r),
    from x = 0; stops when ‖b − Ax‖ ≤ rtol·‖b‖ or after ``max_iters`` products.
    Returns (x, iterations)."""
    bnorm = jnp.linalg.norm(b)
    r0 = b
    z0 = inv_precond * r0
    init = (jnp.zeros_like(b), r0, z0, z0, jnp.vdot(r0, z0), jnp.asarray(0))

    def cond(c):
        _, r, _, _, _, k = c
        return (k < max_iters) & (jnp.linalg.norm(r) > rtol * bnorm)

    def body(c):
        x, r, z, p, rz, k = c
        Ap = matvec(p)
        pAp = jnp.vdot(p, Ap)
        # pAp ≤ 0 only by round-off on a (numerically) singular A: stop where we are.
        alpha = jnp.where(pAp > 0, rz / jnp.where(pAp > 0, pAp, 1.0), 0.0)
        x = x + alpha * p
        r = r - alpha * Ap
        z = inv_precond * r
        rz_new = jnp.vdot(r, z)
        p = z + (rz_new / jnp.where(rz > 0, rz, 1.0)) * p
        return x, jnp.where(pAp > 0, r, 0.0 * r), z, p, rz_new, k + 1

    x, _, _, _, _, k = jax.lax.while_loop(cond, body, init)
    return x, k


def gauss_newton_diagonal(blocks, points, unravel, theta, args, chunk: int):
    """diag(JᵀJ) of the stacked residual (:func:`~insr.solvers.objective.residual_vector`)
    at θ, exactly: per-point Jacobians (reverse mode) over chunks of ``chunk`` points,
    squared and summed, so that no more than ``chunk × m × P`` numbers exist at once."""
    total = jnp.zeros_like(theta)
    for block, pts in zip(blocks, points):
        n = pts.shape[0]
        c = max(1, min(int(chunk), n))
        count = -(-n // c)
        pad = count * c - n
        xs = jnp.concatenate([pts, jnp.repeat(pts[:1], pad, axis=0)]) if pad else pts
        xs = xs.reshape((count, c) + pts.shape[1:])
        mask = (jnp.arange(count * c) < n).astype(theta.dtype).reshape(count, c)
        fn = lambda th, x, b=block: b.residual(unravel(th), x, args).reshape(-1)

        def body(acc, xm, fn=fn):
            x, m = xm
            Jc = jax.vmap(jax.jacrev(fn), in_axes=(None, 0))(theta, x)  # (c, m_k, P)
            return acc + jnp.einsum("c,cmp->p", m, (Jc * Jc).astype(theta.dtype)), None

        acc, _ = jax.lax.scan(body, jnp.zeros_like(theta), (xs, mask))
        total = total + (block.weight / n) * acc
    return total


@dataclass(frozen=True)
class MatrixFreeLM:
    """Levenberg–Marquardt whose damped Gauss–Newton systems are solved matrix-free by
    Jacobi-preconditioned CG (see the module docstring).

    The tolerances ``max_iters``/``rtol``/``atol``/``ftol``/``gtol``, ``tau`` (first
    λ = τ·max diag(JᵀJ)) and ``geodesic`` mean what they mean for
    :class:`~insr.solvers.LevenbergMarquardt`; ``cg_max_iters`` and ``cg_rtol`` bound each
    inner solve, ``chunk`` the points whose Jacobians exist at once for the preconditioner,
    ``precondition_every`` how many accepted steps its diagonal is kept (0: the whole solve),
    ``curvature_fraction`` the share of each block's points that the CG products and the
    preconditioner use (subsampled Gauss–Newton; the gradient, the loss and the predicted
    decrease always use every point).
    ``linear_dtype = "float64"`` (with ``jax_enable_x64``) iterates θ and CG in float64.
    """

    objective: ClassVar[str] = "least_squares"
    fresh_points: ClassVar[bool] = False

    def sounder(self):
        """The retry setting of a missed initial fit (:func:`~insr.solvers.levenberg_marquardt.sounder_lm`)."""
        return sounder_lm(self)

    max_iters: int = 50
    ftol: float = 1e-6
    gtol: float = 0.0
    atol: float = 0.0
    rtol: float = 0.0
    tau: float = 1e-6
    geodesic: float = 0.0
    linear_dtype: str = "float32"
    cg_max_iters: int = 100
    cg_rtol: float = 1e-2
    chunk: int = 256
    precondition_every: int = 0
    curvature_fraction: float = 1.0
    name: str = "lm_cg"

    def __post_init__(self):
        check_lm_settings(self)
        if int(self.cg_max_iters) < 1:
            raise ValueError(f"lm.cg_max_iters must be ≥ 1, got {self.cg_max_iters!r}")
        if not 0 < self.cg_rtol < 1:
            raise ValueError(f"lm.cg_rtol must be in (0, 1), got {self.cg_rtol!r}")
        if int(self.chunk) < 1:
            raise ValueError(f"lm.cg_chunk must be ≥ 1, got {self.chunk!r}")
        if int(self.precondition_every) < 0:
            raise ValueError(f"lm.cg_precondition_every must be ≥ 0, got {self.precondition_every!r}")
        if not 0 < self.curvature_fraction <= 1:
            raise ValueError(f"lm.cg_curvature_fraction must be in (0, 1], got {self.curvature_fraction!r}")

    def solve(self, blocks, params0, args, key):
        """Minimise the blocks' loss starting at ``params0``; points are drawn once from ``key``.
        ``SolveStats.inner`` is the total number of CG products."""
        points = sample_blocks(blocks, key)
        theta0, unravel = ravel_pytree(params0)
        ldt = jnp.float64 if self.linear_dtype == "float64" else theta0.dtype
        theta0 = theta0.astype(ldt)
        geodesic = float(self.geodesic)
        every = int(self.precondition_every)
        code = {name: i for i, name in enumerate(STOP_REASONS)}

        # The curvature products (and the preconditioner) may use a random subset of each
        # block's points (drawn once per solve; random, not a prefix or a stride, because a
        # block's points may be an ordered grid or a low-discrepancy sequence).  Each block's
        # residual is a mean over its points, so J_SᵀJ_S estimates JᵀJ without rescaling.
        full = self.curvature_fraction >= 1.0
        curv_points = points if full else tuple(
            p[jax.random.permutation(k, p.shape[0])[: max(1, int(round(self.curvature_fraction * p.shape[0])))]]
            for p, k in zip(points, jax.random.split(jax.random.fold_in(key, 1), len(points))))

        def r_of(theta, pts=points):
            return residual_vector(blocks, pts, unravel(theta), args).astype(ldt)

        def linear_maps(theta, pts=points):
            """v ↦ Jv and u ↦ Jᵀu at θ for the residual on the points ``pts``."""
            _, jvp = jax.linearize(lambda th: r_of(th, pts), theta)
            transpose = jax.linear_transpose(jvp, theta)
            return jvp, lambda u: transpose(u)[0]

        def diag_of(theta):
            return gauss_newton_diagonal(blocks, curv_points, unravel, theta, args, self.chunk).astype(ldt)

        def solve_damped(curv, rhs, diag, lam):
            jvp, vjp = curv
            return pcg(lambda v: vjp(jvp(v)) + lam * v, rhs, 1.0 / (diag + lam), int(self.cg_max_iters),
                       float(self.cg_rtol))

        r0 = r_of(theta0)
        loss0 = jnp.sum(r0 * r0)
        target = jnp.maximum(self.atol, self.rtol**2 * loss0)
        # A solve that starts at its tolerance (a free-flight elastic step) skips the
        # preconditioner: it costs as much as tens of CG products.
        diag0 = jax.lax.cond(loss0 <= target, lambda: jnp.ones_like(theta0), lambda: diag_of(theta0))
        max_diag0 = jnp.max(diag0)
        lam0 = (self.tau * max_diag0).astype(ldt)

        # state: θ, r, loss, diag, λ, ν, it, rejected, inner, done, reason
        def cond(s):
            return (~s[9]) & (s[6] < self.max_iters)

        def body(s):
            # After a rejected step θ is unchanged and this linearisation repeats the last
            # one (one residual evaluation; carrying it through the loop would store the
            # network's activations in the loop state).
            maps = linear_maps(s[0])
            curv = maps if full else linear_maps(s[0], curv_points)
            g = maps[1](s[1])
            if self.gtol > 0:
                # Stationary at the current point (judged before a step, since Jᵀr at a new
                # point costs a linearisation that the next iteration makes anyway).
                stationary = jnp.max(jnp.abs(g)) <= self.gtol
                return jax.lax.cond(stationary, lambda: (*s[:9], jnp.asarray(True), jnp.asarray(code["gtol"])),
                                    lambda: iterate(s, maps, curv, g))
            return iterate(s, maps, curv, g)

        def iterate(s, maps, curv, g):
            theta, r, loss, diag, lam, nu, it, rejected, inner, done, reason = s
            jvp, vjp = maps
            delta, k = solve_damped(curv, -g, diag, lam)
            Jd = jvp(delta)  # on every point: the predicted decrease is the full model's
            pred = -(2.0 * jnp.vdot(delta, g) + jnp.vdot(Jd, Jd))
            k_acc = jnp.asarray(0)
            if geodesic > 0:
                rvv = jax.jvp(lambda th: jax.jvp(r_of, (th,), (delta,))[1], (theta,), (delta,))[1]
                acc, k_acc = solve_damped(curv, -vjp(rvv), diag, lam)
                step, geo_ok = accelerated_step(delta, acc, geodesic)
            else:
                geo_ok, step = jnp.asarray(True), delta
            theta_new = theta + step
            r_new = r_of(theta_new)
            loss_new = jnp.sum(r_new * r_new)
            actual = loss - loss_new
            ok = geo_ok & jnp.isfinite(loss_new) & jnp.all(jnp.isfinite(step)) & (actual > 0) & (pred > 0)
            rho = jnp.where(ok, actual / jnp.where(pred > 0, pred, 1.0), -1.0)
            inner = inner + k + k_acc

            def accept(_):
                last = it + 1 >= self.max_iters
                accepted = it + 1 - rejected
                # No new preconditioner after the last iteration: it would never be used.
                if every > 0:
                    refresh = ~last & (accepted % every == 0)
                    diag_new = jax.lax.cond(refresh, lambda: diag_of(theta_new), lambda: diag)
                else:
                    diag_new = diag
                lam_new = (lam * jnp.maximum(1.0 / 3.0, 1.0 - (2.0 * rho - 1.0) ** 3)).astype(ldt)
                why = convergence_reason(self, loss0, loss, loss_new, actual, pred, g, False)
                why = jnp.where((why < 0) & last, code["max_iters"], why)
                return (theta_new, r_new, loss_new, diag_new, lam_new, jnp.asarray(2.0, ldt), it + 1, rejected,
                        inner, why >= 0, jnp.where(why >= 0, why, reason))

            def reject(_):
                lam_new = lam * nu
                stalled = lam_new > 1e10 * max_diag0
                return (theta, r, loss, diag, lam_new, nu * 2.0, it + 1, rejected + 1, inner, stalled,
                        jnp.where(stalled, code["stalled"], reason))

            return jax.lax.cond(ok, accept, reject, None)

        start_reason = jnp.where(loss0 <= target, code["atol"] if self.rtol == 0 else code["rtol"], code["max_iters"])
        init = (theta0, r0, loss0, diag0, lam0, jnp.asarray(2.0, ldt), jnp.asarray(0), jnp.asarray(0),
                jnp.asarray(0), loss0 <= target, start_reason)
        s = jax.lax.while_loop(cond, body, init)
        theta, _, loss, _, _, _, it, rejected, inner, _, reason = s
        converged = jnp.isin(reason, jnp.asarray([code[c] for c in ("rtol", "atol", "ftol", "gtol")]))
        return unravel(theta.astype(theta0.dtype)), SolveStats(it, loss0, loss, converged, rejected, reason, inner)
