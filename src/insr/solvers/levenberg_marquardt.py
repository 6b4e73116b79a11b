"""Levenberg–Marquardt with geodesic acceleration for the per-step least-squares problems.

Minimises |r(θ)|² with steps  (JᵀJ + λ·I) δ = −Jᵀr,  where J = ∂r/∂θ (N × P), plus the
geodesic-acceleration correction of Transtrum & Sethna ("Improvements to the
Levenberg–Marquardt algorithm for nonlinear least-squares minimization", 2012):

    (JᵀJ + λ·I) a = −Jᵀ r_vv,   r_vv = d²/dh² r(θ + h·δ) at h = 0,   step = δ + a/2,

accepted only while 2|a|/|δ| ≤ ``geodesic`` (0.75 is the recommended bound for fits
from a random initialisation, which the initial-fit solvers of every scenario and of
:func:`insr.solve` use; the class default is 0 = plain LM, because on a stiff energy with
few iterations — the quasi-static elastic stretch, μ = 1000, 5 iterations — the bound
rejected every step, where plain LM lowered the loss from 125 to 14.6).

Why this form:
- J is built one sample point at a time (``vmap`` over points of ``jacrev`` with
  respect to θ): the point residuals are independent, so this costs about as much
  as N gradient evaluations, while ``jacfwd``/``jacrev`` of the whole residual
  vector are 40–600× slower on these networks.  r_vv is one forward-over-forward
  pass of the residual (a few residual evaluations); the correction reuses the
  Cholesky factor of the step (measured: 20–40 % more per iteration on the advection
  fit, ``benchmarks/lm_variants.py``).
- **Why geodesic acceleration** (measured, advection initial fit at the scenario's
  sizes, seeds 0–19, ``benchmarks/lm_variants.py``, README "The per-step solver"):
  plain LM with τ = 1e-6 fails 2 seeds in 20 here (loss ~1e-3 after 200 iterations,
  held-out relative L2 0.2–0.3); which seeds fail flips with rounding differences
  between CPUs, because the path through this landscape is chaotic.  The trace of
  such a stall (``lm_variants.py --trace 4 --variants plain``): the nearly undamped
  first steps overflow or fail, λ doubles up to 20–55 × max diag(JᵀJ) (gradient
  descent with a tiny step), and from then on every step is accepted with a gain ratio
  ρ = 0.3–0.7 — the loss is strongly curved even at that step length — so Nielsen's
  rule multiplies λ by 0.94–1.06 per step and the loss creeps down 1–4 % per
  iteration.  It is not a round-off floor: no Cholesky factorisation failed, and float64
  normal equations (4.4× the cost per iteration) fit no more seeds than float32 with the
  same τ.  A first damping of τ = 1e-3 or the geodesic correction, which follows the
  curved valley, each fitted every seed.
- Damping is λ·I (Levenberg), not Marquardt's λ·diag(JᵀJ): with cond(JᵀJ) of
  order 1e19 the diagonal scaling lets nearly-null directions take huge steps
  and stalls.  λ follows Nielsen's gain-ratio rule (Nielsen 1999; Madsen,
  Nielsen & Tingleff, "Methods for non-linear least squares problems", 2004,
  Sec. 3.2): on acceptance λ ← λ·max(1/3, 1 − (2ρ − 1)³), otherwise λ ← λ·ν, ν ← 2ν.
- The normal equations are solved by Cholesky in ``linear_dtype``.  In float32 a
  failed factorisation (NaN) is a rejected step that raises λ; it is decided before the
  residual is evaluated at the (NaN) trial point, so it costs one factorisation.
  ``linear_dtype = "float64"`` (with ``jax_enable_x64``; θ is then iterated in
  float64 too) costs 4.4× per iteration (901 parameters, 5,000 points) and is not
  more robust (above).

Jacobian reuse (``jacobian_every = k > 1``): after an accepted step the
Jacobian, λ and the Cholesky factor are kept for up to k − 1 further "chord"
steps that only re-evaluate the residual (δ = −(JᵀJ + λI)⁻¹ J_oldᵀ r(θ)); a
rejected chord step refreshes J at the current point.

Stopping (first that holds), with the reason reported in :class:`SolveStats`:
|r| ≤ ``rtol``·|r₀| (the residual reduced by the asked factor); loss ≤ ``atol``;
an accepted step whose actual and predicted relative decrease of the loss are
both below ``ftol`` (stationary); ‖Jᵀr‖_∞ ≤ ``gtol``; λ beyond ``1e10 ×`` the
largest diagonal entry of JᵀJ (stalled: no progress possible); ``max_iters``
iterations (the cap).  ``converged`` holds for the first four, not for a stall or
the cap.  Rejected steps count as iterations.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, NamedTuple

import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree

from insr.solvers.objective import residual_vector, sample_blocks

# Why a solve stopped (SolveStats.reason); converged ⇔ reason in CONVERGED_REASONS.
STOP_REASONS = ("max_iters", "rtol", "atol", "ftol", "gtol", "stalled")
CONVERGED_REASONS = ("rtol", "atol", "ftol", "gtol")


class SolveStats(NamedTuple):
    """What a solve reached: iterations (rejected steps included), the loss before and
    after, whether it met its tolerance, why it stopped (an index into
    :data:`STOP_REASONS`; −1 where a solver does not say), and the iterations of an
    iterative inner linear solver (CG products of :class:`~insr.solvers.MatrixFreeLM`;
    −1 for a direct solve)."""

    iterations: jax.Array
    loss_initial: jax.Array
    loss: jax.Array
    converged: jax.Array
    rejected: jax.Array | int = 0
    reason: jax.Array | int = -1
    inner: jax.Array | int = -1
    # The same objective at the solution on fresh points (NaN: not measured; see
    # insr.engine.stage.StageLog): a fit of its sample that misses the points between shows here.
    heldout: jax.Array | float = float("nan")


def sequence_stats(stats: list[SolveStats]) -> SolveStats:
    """One step made of several solves in sequence (e.g. Runge–Kutta stage fits): iterations
    and rejections add up, the loss before is the first solve's and after the last's, it
    converged when every solve did, and its reason is that of the first solve that did not
    (the last solve's when all did)."""
    ok = stats[0].converged
    reason = stats[0].reason
    for st in stats[1:]:
        reason = jnp.where(ok, st.reason, reason)
        ok = ok & st.converged
    direct = isinstance(stats[0].inner, int) and stats[0].inner < 0
    return SolveStats(sum(st.iterations for st in stats), stats[0].loss_initial, stats[-1].loss, ok,
                      sum(st.rejected for st in stats), reason, -1 if direct else sum(st.inner for st in stats),
                      stats[-1].heldout)


def stop_reason_name(code) -> str:
    code = int(code)
    return STOP_REASONS[code] if 0 <= code < len(STOP_REASONS) else "unknown"


def sounder_lm(solver):
    """The sounder setting of a Levenberg–Marquardt solver (dense or matrix-free) that an initial
    fit which missed its tolerance is retried with: a 1,000× larger first damping (τ ≥ 1e-3:
    the first steps stay near the initialisation instead of jumping into a curved valley),
    geodesic acceleration on, and twice the iterations."""
    import dataclasses

    return dataclasses.replace(solver, tau=max(solver.tau, 1e-3), geodesic=solver.geodesic or 0.75,
                               max_iters=2 * solver.max_iters)


def check_lm_settings(solver) -> None:
    """Validate the settings every Levenberg–Marquardt variant shares (ValueError naming
    the ``lm.`` key)."""
    if int(solver.max_iters) < 1:
        raise ValueError(f"lm.max_iters must be ≥ 1, got {solver.max_iters!r}")
    for field in ("ftol", "gtol", "atol", "rtol", "geodesic"):
        if not getattr(solver, field) >= 0:
            raise ValueError(f"lm.{field} must be ≥ 0, got {getattr(solver, field)!r}")
    if not solver.rtol < 1:
        raise ValueError(f"lm.rtol must be < 1, got {solver.rtol!r}")
    if not solver.tau > 0:
        raise ValueError(f"lm.tau must be > 0, got {solver.tau!r}")
    if solver.linear_dtype not in ("float32", "float64"):
        raise ValueError(f"lm.linear_dtype must be 'float32' or 'float64', got {solver.linear_dtype!r}")
    if solver.linear_dtype == "float64" and not jax.config.jax_enable_x64:
        # Without x64, JAX silently computes float64 requests in float32.
        raise ValueError("lm.linear_dtype='float64' needs 64-bit JAX: call "
                         "jax.config.update('jax_enable_x64', True) first (the CLI does this for you)")


def convergence_reason(solver, loss0, loss_prev, loss_new, actual, pred, g, check_g):
    """The convergence reason (an index into :data:`STOP_REASONS`) after an accepted step
    from ``loss_prev`` to ``loss_new`` (actual and model-predicted decrease ``actual``,
    ``pred``; gradient Jᵀr = ``g``, judged only when ``check_g``), or −1 (go on)."""
    code = {name: i for i, name in enumerate(STOP_REASONS)}
    reason = jnp.asarray(-1)
    if solver.gtol > 0:
        reason = jnp.where(check_g & (jnp.max(jnp.abs(g)) <= solver.gtol), code["gtol"], reason)
    small = (actual <= solver.ftol * loss_prev) & (pred <= solver.ftol * loss_prev)
    reason = jnp.where(small, code["ftol"], reason)
    reason = jnp.where(loss_new <= solver.atol, code["atol"], reason)
    reason = jnp.where((solver.rtol > 0) & (loss_new <= solver.rtol**2 * loss0), code["rtol"], reason)
    return reason


def accelerated_step(delta, acc, bound: float):
    """The geodesic-accelerated step δ + a/2 and whether it is admissible, 2|a| ≤ bound·|δ|.
    A residual without a finite second derivative (e.g. singular values at a repeated σ,
    as in the elastic energies at F = I) gets the plain step δ (admissible)."""
    has_acc = jnp.all(jnp.isfinite(acc))
    acc = jnp.where(has_acc, acc, 0.0)
    ok = ~has_acc | (2.0 * jnp.linalg.norm(acc) <= bound * jnp.linalg.norm(delta))
    return delta + 0.5 * acc, ok


def _print_trace(it, loss, loss_new, lam_rel, ok, geo_ok, rho):
    verdict = "accepted" if ok else ("rejected (geodesic bound)" if not geo_ok else "rejected")
    print(f"lm it {int(it):4d}  loss {float(loss):.4e} -> {float(loss_new):.4e}  "
          f"lambda/max diag(JtJ) {float(lam_rel):.3e}  rho {float(rho):+.3f}  {verdict}", flush=True)


# The two settings of the built-in field scenarios, one source for the config tables
# (insr.solvers.config.SOLVER_DEFAULTS) and the Python API (LevenbergMarquardt.per_step /
# .initial_fit, insr.solve's default initial fit).  Only the fields that differ from the
# class defaults are named.
#
# Per step: stop when the residual is 1e-3 × its warm-start value (for the midpoint rule that
# is |L(uⁿ)|, the size of ∂u/∂t), at most 30 iterations.  Measured on the paper's advection,
# seed 0, 240 steps, one machine: rtol 1e-3 → 2.7 iterations/step, every step meets it, MAE
# 3.70e-3 (the midpoint rule's floor is 3.66e-3) in 106 s; rtol 3e-4 → 20 iterations/step,
# 34 steps at the cap, MAE 3.67e-3 in 430 s; rtol 1e-3 without geodesic acceleration → 5.6
# iterations/step, 6 misses, MAE 3.96e-3.  The class defaults instead (no relative rule, 50
# iterations) ran the README's advection example at 50 iterations and a missed tolerance in
# every step, 2.8× the time for the same error (2026-12-07).
PER_STEP = {"max_iters": 30, "ftol": 1e-5, "rtol": 1e-3, "geodesic": 0.75}
# The initial fit starts from a random initialisation: geodesic acceleration on (see the
# module docstring), a residual reduced 1e5-fold or stationary, at most 200 iterations.
INITIAL_FIT = {"max_iters": 200, "ftol": 1e-9, "rtol": 1e-5, "geodesic": 0.75}


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
    rejected: jax.Array
    done: jax.Array
    reason: jax.Array
    stale: jax.Array  # J, A, g and chol are to be rebuilt at θ before the next trial step
    check_g: jax.Array  # … and then judged by gtol (after an accepted step)
    scale: jax.Array  # max diag(JᵀJ) at θ₀ (λ's reference), −1 until the first refresh


@dataclass(frozen=True)
class LevenbergMarquardt:
    """Levenberg–Marquardt with geodesic acceleration (see the module docstring).

    ``max_iters`` caps the iterations; ``rtol``/``atol``/``ftol``/``gtol`` are the
    tolerances that count as convergence; ``tau`` sets the first λ = τ·max diag(JᵀJ);
    ``geodesic`` is the acceleration's acceptance bound (0 = plain LM).  The defaults are
    plain LM without a relative stopping rule; for a time step start from
    :meth:`per_step`, for a fit from a random initialisation from :meth:`initial_fit`.
    """

    objective: ClassVar[str] = "least_squares"  # residual blocks on points drawn once per solve
    fresh_points: ClassVar[bool] = False

    def sounder(self):
        """The retry setting of a missed initial fit (:func:`sounder_lm`)."""
        return sounder_lm(self)

    @classmethod
    def per_step(cls, **overrides) -> LevenbergMarquardt:
        """The per-step setting of the built-in field scenarios (their ``lm`` table):
        ``max_iters=30, ftol=1e-5, rtol=1e-3, geodesic=0.75`` (:data:`PER_STEP`), with
        ``overrides`` (e.g. ``rtol=3e-3`` for second derivatives at the float32 floor)."""
        return cls(**{**PER_STEP, **overrides})

    @classmethod
    def initial_fit(cls, **overrides) -> LevenbergMarquardt:
        """The initial-fit setting of the built-in scenarios and of :func:`insr.solve`
        (their ``init`` table): ``max_iters=200, ftol=1e-9, rtol=1e-5, geodesic=0.75``
        (:data:`INITIAL_FIT`), with ``overrides``."""
        return cls(**{**INITIAL_FIT, **overrides})

    max_iters: int = 50
    ftol: float = 1e-6
    gtol: float = 0.0
    atol: float = 0.0
    rtol: float = 0.0
    tau: float = 1e-6  # initial λ = tau · max diag(JᵀJ)
    geodesic: float = 0.0
    linear_dtype: str = "float32"
    jacobian_every: int = 1
    trace: bool = False  # print one line per iteration (loss, λ, accepted, gain ratio): for diagnosis
    name: str = "lm"

    def __post_init__(self):
        check_lm_settings(self)
        if int(self.jacobian_every) < 1:
            raise ValueError(f"lm.jacobian_every must be ≥ 1, got {self.jacobian_every!r}")

    def solve(self, blocks, params0, args, key):
        """Minimise the blocks' loss starting at ``params0``; points are drawn once from ``key``."""
        points = sample_blocks(blocks, key)
        theta0, unravel = ravel_pytree(params0)
        ldt = jnp.float64 if self.linear_dtype == "float64" else theta0.dtype
        # In float64 mode the weights are iterated in float64 too: float32 rounding of θ
        # would undo the small steps that the float64 solve is there to resolve.
        theta0 = theta0.astype(ldt)
        geodesic = float(self.geodesic)

        def r_of(theta):
            return residual_vector(blocks, points, unravel(theta), args)

        def r_vv(theta, v):
            # Second directional derivative of the residual along v (forward over forward).
            return jax.jvp(lambda th: jax.jvp(r_of, (th,), (v,))[1], (theta,), (v,))[1]

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
        loss0 = jnp.sum(r0 * r0).astype(ldt)
        target = jnp.maximum(self.atol, self.rtol**2 * loss0)
        code = {name: i for i, name in enumerate(STOP_REASONS)}

        def reason_after(loss_prev, loss_new, actual, pred, g, check_g):
            return convergence_reason(self, loss0, loss_prev, loss_new, actual, pred, g, check_g)

        def cond(s):
            return (~s.done) & (s.it < self.max_iters)

        # The Jacobian is built in one place only, at the top of an iteration whose state is
        # stale (the start, after an accepted step with a fresh model, after a rejected chord
        # step): XLA compiles each call site of the per-point Jacobian separately, and going from
        # three sites (start, accept, reject) to one cut a step program's compile by a quarter
        # (elastic_collide_2d 5.4 → 4.2 s, advection1d 5.0 → 3.7 s).  A solve that stops on an
        # accepted step no longer builds the Jacobian it would never use (advection1d steps,
        # about 3 iterations each: 0.40 → 0.21–0.29 s).
        def refresh(s: _LMState):
            J, A, g = jacobian(s.theta, s.r)
            first = s.scale < 0
            scale = jnp.where(first, jnp.max(jnp.diag(A)), s.scale)
            lam = jnp.where(first, self.tau * scale, s.lam).astype(ldt)
            # gtol is the last stopping rule (every other one overrides it): judged here, once
            # the gradient at the accepted point exists.
            stop_g = s.check_g & (jnp.max(jnp.abs(g)) <= self.gtol) if self.gtol > 0 else jnp.asarray(False)
            return s._replace(J=J, A=A, g=g, chol=factor(A, lam), lam=lam, scale=scale, stale=jnp.asarray(False),
                              check_g=jnp.asarray(False), done=s.done | stop_g,
                              reason=jnp.where(stop_g, code["gtol"], s.reason))

        def body(s: _LMState):
            s = jax.lax.cond(s.stale, refresh, lambda s: s, s)
            if self.gtol > 0:  # only gtol can end a solve in the refresh
                return jax.lax.cond(s.done, lambda s: s, iterate, s)
            return iterate(s)

        def iterate(s: _LMState):
            # A failed factorisation (float32 Cholesky of a nearly singular JᵀJ + λI: NaN) is a
            # rejected step decided before any residual is evaluated: the trial point would be
            # NaN anyway, and the residual, its second derivative and the acceleration cost far
            # more than the factorisation.
            return jax.lax.cond(jnp.all(jnp.isfinite(s.chol)), trial_step, reject_unfactored, s)

        def reject_unfactored(s: _LMState):
            if self.trace:
                jax.debug.callback(_print_trace, s.it, s.loss, jnp.nan, s.lam / s.scale, False, True, -1.0)
            return raise_damping(s)

        def raise_damping(s: _LMState):
            lam = s.lam * s.nu
            stalled = lam > 1e10 * s.scale
            return s._replace(chol=factor(s.A, lam), lam=lam, nu=s.nu * 2.0, it=s.it + 1,
                              rejected=s.rejected + 1, done=stalled,
                              reason=jnp.where(stalled, code["stalled"], s.reason))

        def trial_step(s: _LMState):
            delta = -jax.scipy.linalg.cho_solve((s.chol, True), s.g)
            pred = -(2.0 * delta @ s.g + delta @ (s.A @ delta))  # decrease of |r|² predicted by the model
            if geodesic > 0:
                rvv = r_vv(s.theta, delta.astype(s.theta.dtype)).astype(ldt)
                acc = -jax.scipy.linalg.cho_solve((s.chol, True), s.J.T @ rvv)
                step, geo_ok = accelerated_step(delta, acc, geodesic)
            else:
                geo_ok, step = jnp.asarray(True), delta
            theta_new = s.theta + step.astype(s.theta.dtype)
            r_new = r_of(theta_new)
            loss_new = jnp.sum(r_new * r_new).astype(ldt)
            actual = s.loss - loss_new
            ok = geo_ok & jnp.isfinite(loss_new) & jnp.all(jnp.isfinite(step)) & (actual > 0) & (pred > 0)
            rho = jnp.where(ok, actual / jnp.where(pred > 0, pred, 1.0), -1.0)
            if self.trace:
                jax.debug.callback(_print_trace, s.it, s.loss, loss_new, s.lam / s.scale, ok, geo_ok, rho)

            def accept_fresh(_):
                # The new model (J, A, g and the factor with the new λ) is built by the next
                # iteration's refresh, and only if no rule but gtol stops the solve here.
                lam = (s.lam * jnp.maximum(1.0 / 3.0, 1.0 - (2.0 * rho - 1.0) ** 3)).astype(ldt)
                reason = reason_after(s.loss, loss_new, actual, pred, s.g, False)
                return s._replace(theta=theta_new, r=r_new, loss=loss_new, lam=lam, nu=jnp.asarray(2.0, ldt),
                                  age=jnp.asarray(0), it=s.it + 1, done=reason >= 0,
                                  reason=jnp.where(reason >= 0, reason, s.reason), stale=reason < 0,
                                  check_g=reason < 0)

            def accept_chord(_):
                # Keep J, λ and the factorisation; only the residual is new.
                g = s.J.T @ r_new.astype(ldt)
                reason = reason_after(s.loss, loss_new, actual, pred, g, False)
                return s._replace(theta=theta_new, r=r_new, g=g, loss=loss_new, age=s.age + 1, it=s.it + 1,
                                  done=reason >= 0, reason=jnp.where(reason >= 0, reason, s.reason))

            def reject_stale(_):
                # The failure may be the stale model's: refresh J at the current point (the next
                # iteration's refresh), keep λ.
                return s._replace(age=jnp.asarray(0), it=s.it + 1, rejected=s.rejected + 1, stale=jnp.asarray(True))

            def reject_fresh(_):
                return raise_damping(s)

            def accept_last(_):
                # The iteration cap is reached: a new Jacobian (the most expensive part
                # of an iteration) would never be used.
                reason = reason_after(s.loss, loss_new, actual, pred, s.g, False)
                return s._replace(theta=theta_new, r=r_new, loss=loss_new, it=s.it + 1, done=True,
                                  reason=jnp.where(reason >= 0, reason, code["max_iters"]))

            last = s.it + 1 >= self.max_iters
            branch = jnp.where(ok, jnp.where(last, 4, jnp.where(s.age + 1 >= self.jacobian_every, 0, 1)),
                               jnp.where(s.age > 0, 2, 3))
            return jax.lax.switch(branch, (accept_fresh, accept_chord, reject_stale, reject_fresh, accept_last), None)

        start_reason = jnp.where(loss0 <= target, code["atol"] if self.rtol == 0 else code["rtol"], code["max_iters"])
        n_params = theta0.shape[0]
        square = jnp.zeros((n_params, n_params), ldt)
        init = _LMState(theta0, r0, jnp.zeros((r0.shape[0], n_params), ldt), square, jnp.zeros(n_params, ldt), square,
                        loss0, jnp.asarray(0.0, ldt), jnp.asarray(2.0, ldt), jnp.asarray(0), jnp.asarray(0),
                        jnp.asarray(0), loss0 <= target, start_reason, jnp.asarray(True), jnp.asarray(False),
                        jnp.asarray(-1.0, ldt))
        s = jax.lax.while_loop(cond, body, init)
        converged = (s.reason == code["rtol"]) | (s.reason == code["atol"]) | (s.reason == code["ftol"]) | (
            s.reason == code["gtol"])
        return unravel(s.theta), SolveStats(s.it, loss0, s.loss, converged, s.rejected, s.reason)
