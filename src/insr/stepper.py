"""Steppers: what advances the state of a simulation by one time step.

A stepper owns the fields, the residual blocks and the per-step solver; the time
loop in :mod:`insr.simulate` owns time, checkpoints, metrics and progress.  Any
object with the methods of :class:`Stepper` can be simulated; the neural ones are
:class:`insr.engine.Engine` s — :class:`FieldStepper` here (∂u/∂t = L(u), one network,
:class:`EvolutionScheme`), :class:`insr.fluids.FluidStepper` and
:class:`insr.elasticity.ElasticStepper` — and the classical reference solvers have theirs
in :mod:`insr.reference.steppers`.

The state is a dict of parameter pytrees (arrays only), so that it can be
checkpointed leaf by leaf.
"""

from __future__ import annotations

from typing import Protocol

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from insr.engine import Engine, FieldSet, relative_l2, retry_solver
from insr.geometry import Sampler
from insr.geometry.residual_sampling import ResidualSampling, residual_mixture
from insr.integrators.runge_kutta import ExplicitRungeKutta, ImplicitRungeKutta
from insr.observers import error_metrics
from insr.solvers.levenberg_marquardt import LevenbergMarquardt, sequence_stats
from insr.solvers.objective import Block

__all__ = ["EvolutionScheme", "FieldStepper", "Stepper", "relative_l2", "retry_solver"]


class Stepper(Protocol):
    """What :func:`insr.simulate.simulate` advances.  Optional: ``needs_key = False`` for a
    deterministic stepper (it is then given ``None`` instead of a PRNG key per step), and
    ``flag_metrics(metrics) -> str``, a flag for the step's row judged from its new state's
    metrics ('' for none; e.g. the elastic stepper's ``penetration``)."""

    channel_names: tuple[str, ...]
    dim: int

    def state_template(self) -> dict: ...
    def initial_state(self, key) -> tuple[dict, dict]: ...
    def step(self, state: dict, t: float, dt: float, key) -> tuple[dict, dict]: ...
    def evaluate(self, state: dict, points, t: float) -> np.ndarray: ...
    def metrics(self, state: dict, t: float) -> dict: ...
    def state_bytes(self) -> int: ...


class EvolutionScheme:
    """The steps of ∂u/∂t = L(u) for the one network ``u`` of a field set (see :class:`FieldStepper`).

    A one-step residual integrator (:mod:`insr.integrators.schemes`) is one stage per step;
    an explicit Runge–Kutta tableau one projection per row; an implicit one a joint solve of
    its stages and a projection.  Either way the step reports one solve (``step``: the
    stages' stats in sequence, :func:`~insr.solvers.levenberg_marquardt.sequence_stats`).
    The state is ``{"u": θⁿ, "u_prev": θⁿ⁻¹}`` (θⁿ⁻¹ for BDF2 and the extrapolated warm start).

    With ``adaptive`` (a :class:`~insr.geometry.residual_sampling.ResidualSampling`) every solve
    of a step draws part of its interior points where its own residual at the warm start is
    large, and weights all of them so that the objective stays an unbiased estimate of the volume
    integral (:mod:`insr.geometry.residual_sampling`); the budget (``sampler.n``) is unchanged.
    """

    main = None

    def __init__(self, fields: FieldSet, problem, integrator, solver, sampler: Sampler, *,
                 boundary_sampler: Sampler | None = None, boundary_samples: int | None = None,
                 boundary_weight: float = 1.0, extrapolate: bool = False,
                 adaptive: ResidualSampling | None = None):
        self.fields, self.problem, self.integrator, self.solver = fields, problem, integrator, solver
        self.order = getattr(integrator, "order", None)
        self.boundary_samples = None  # set below when the problem has a boundary
        static = fields.static["u"]
        combine = lambda p: eqx.combine(p, static)
        history = getattr(integrator, "history", 1) == 2

        def pde_residual(params, x, args):
            if history:  # BDF2: uⁿ and uⁿ⁻¹; the first step (t = 0) has no uⁿ⁻¹
                prev, t, dt, older = args
                return integrator.residual(problem, combine(params), combine(prev), x, t, dt,
                                           u_older=combine(older), first=t == 0.0)
            prev, t, dt = args[:3]
            return integrator.residual(problem, combine(params), combine(prev), x, t, dt)

        blocks = [Block(pde_residual, sampler, 1.0, "pde")]
        if problem.has_boundary:
            if boundary_samples is None:
                nb = problem.domain.matching_boundary_samples(getattr(sampler, "n", 1000))
            elif int(boundary_samples) < 1:
                raise ValueError(f"boundary_samples must be ≥ 1, got {boundary_samples!r}")
            else:
                nb = int(boundary_samples)
            self.boundary_samples = int(getattr(boundary_sampler, "n", nb))
            nb = self.boundary_samples
            bsampler = boundary_sampler or (lambda key: problem.domain.boundary_points(key, nb))

            def bc_residual(params, x, args):
                return problem.boundary_residual(combine(params), x, args[1] + args[2])

            blocks.append(Block(bc_residual, bsampler, float(boundary_weight), "boundary"))
        self.blocks = tuple(blocks)

        def ic_residual(params, x, args):
            return combine(params)(x) - problem.initial_condition(x)

        self.ic_blocks = (Block(ic_residual, sampler, 1.0, "initial"),)

        bc_block = blocks[1] if len(blocks) > 1 else None
        rk = isinstance(integrator, ExplicitRungeKutta)

        if adaptive is not None:
            if getattr(solver, "fresh_points", False):
                raise ValueError("adaptive sampling needs a solver that keeps its points through a solve "
                                 "(Levenberg–Marquardt, L-BFGS), not one that draws fresh points every iteration")
            if not isinstance(sampler, Sampler):
                raise ValueError("adaptive sampling needs the interior sampler to be an insr.geometry.Sampler "
                                 "(its domain gives the uniform candidates)")
            n_uniform, n_adaptive = adaptive.split(sampler.n)
            uniform_part = Sampler(sampler.domain, n_uniform, sampler.method)
            candidates = Sampler(sampler.domain, int(adaptive.pool) * sampler.n, "uniform")

        def adapt(blocks, guess, args, key):
            """``blocks`` with the interior block's points drawn by its residual at ``guess``
            (the solve's warm start) and its residual scaled by √weight; and the solver's key."""
            if adaptive is None:
                return blocks, key
            k_points, k_solve = jax.random.split(key)
            pde = blocks[0]

            def density(x):
                r = jax.vmap(pde.residual, in_axes=(None, 0, None))(guess, x, args).reshape(x.shape[0], -1)
                return jnp.sum(r * r, axis=1) ** (0.5 * adaptive.power)

            x, w = residual_mixture(k_points, uniform_part, candidates, density, n_adaptive)
            xw = jax.lax.stop_gradient(jnp.concatenate([x, jnp.sqrt(w)[:, None].astype(x.dtype)], axis=1))

            def weighted(params, z, args_, residual=pde.residual):
                return z[-1] * residual(params, z[:-1], args_)

            return (Block(weighted, lambda k: xw, pde.weight, pde.name),) + tuple(blocks[1:]), k_solve

        def rk_blocks(coeffs, c_stage):
            """The fit of one Runge–Kutta row: w = uⁿ + Δt Σ_j coeffs_j L(v_j, tₙ + c_j Δt)."""

            def residual(params, x, args):
                un, stages, t, dt = args
                incr = sum(a * problem.rhs(combine(v), x, t + c_j * dt)
                           for a, v, c_j in zip(coeffs, stages, integrator.c) if a != 0.0)
                return (combine(params)(x) - combine(un)(x)) / dt - incr

            out = [Block(residual, sampler, 1.0, "pde")]
            if bc_block is not None:
                def bc(params, x, args):
                    return problem.boundary_residual(combine(params), x, args[2] + c_stage * args[3])

                out.append(Block(bc, bc_block.sampler, bc_block.weight, "boundary"))
            return tuple(out)

        def rk_step(params, t, dt, key):
            # One fit per row, every one warm-started from uⁿ (its residual then starts at the
            # size of the increment Σ a_ij L(v_j), as a one-stage scheme's does, so lm.rtol
            # means the same thing; warm-starting from the previous stage made the last fit
            # start near its target and ask for far more absolute accuracy: ~20 iterations
            # per fit instead of a few), each on its own points.  Iterations and rejections
            # add up; the step has converged when every fit has, and its loss is the last fit's.
            stages, stats = (params,), []
            for i, (coeffs, c_stage) in enumerate(integrator.rows()):
                row_args = (params, stages, t, dt)
                row_blocks, k = adapt(rk_blocks(coeffs[: len(stages)], c_stage), params, row_args,
                                      jax.random.fold_in(key, i))
                p, st = solver.solve(row_blocks, params, row_args, k)
                stages += (p,)
                stats.append(st)
            return stages[-1], sequence_stats(stats)

        irk = isinstance(integrator, ImplicitRungeKutta)

        def irk_stage_blocks():
            """All stage equations U_i = uⁿ + Δt Σ_j a_ij L(U_j) at once (divided by Δt)."""

            def residual(us, x, args):
                un, t, dt = args
                ls = [problem.rhs(combine(u), x, t + c_j * dt) for u, c_j in zip(us, integrator.c)]
                u0 = combine(un)(x)
                return jnp.concatenate([(combine(u)(x) - u0) / dt - sum(a * l for a, l in zip(row, ls))
                                        for u, row in zip(us, integrator.a)])

            out = [Block(residual, sampler, 1.0, "pde")]
            if bc_block is not None:
                def bc(us, x, args):
                    return jnp.concatenate([problem.boundary_residual(combine(u), x, args[1] + c_j * args[2])
                                            for u, c_j in zip(us, integrator.c)])

                out.append(Block(bc, bc_block.sampler, bc_block.weight, "boundary"))
            return tuple(out)

        def irk_step(params, t, dt, key):
            # The stage fields, jointly (each warm-started from uⁿ), then the projection of
            # uⁿ + Δt Σ b_j L(U_j) (a row over the stages: rk_blocks with the tableau's c).
            guess = (params,) * integrator.stages
            stage_blocks, k0 = adapt(irk_stage_blocks(), guess, (params, t, dt), jax.random.fold_in(key, 0))
            us, st1 = solver.solve(stage_blocks, guess, (params, t, dt), k0)
            proj_blocks, k1 = adapt(rk_blocks(integrator.b, 1.0), params, (params, us, t, dt),
                                    jax.random.fold_in(key, 1))
            p, st2 = solver.solve(proj_blocks, params, (params, us, t, dt), k1)
            return p, sequence_stats([st1, st2])

        def step(params, prev, t, dt, key):
            if irk:
                return irk_step(params, t, dt, key)
            if rk:
                return rk_step(params, t, dt, key)
            guess = jax.tree.map(lambda a, b: 2 * a - b, params, prev) if extrapolate else params
            args = (params, t, dt, prev) if history else (params, t, dt)
            blocks, k = adapt(self.blocks, guess, args, key)
            return solver.solve(blocks, guess, args, k)

        self._advance = step

    def state_template(self) -> dict:
        u = self.fields.template["u"]
        return {"u": u, "u_prev": u}

    def initial(self, template, key, solver):
        params, stats = solver.solve(self.ic_blocks, template["u"], None, key)
        return {"u": params, "u_prev": params}, {"initial": stats}

    def step(self, state, t, dt, key):
        new, stats = self._advance(state["u"], state["u_prev"], t, dt, key)
        return {"u": new, "u_prev": state["u"]}, {"step": stats}


class FieldStepper(Engine):
    """Advance a neural field u_θ of an :class:`~insr.problems.EvolutionProblem`.

    Each step solves  θ^{n+1} = argmin_θ mean_x |r(θ; x)|² + w_b·mean_{x_b} |bc(θ; x_b)|²
    with ``r`` the integrator's residual on the ``sampler``'s points and ``bc`` the problem's
    boundary residual on ``boundary_samples`` boundary points (default: the interior
    sample's spacing, :meth:`~insr.geometry.Box.matching_boundary_samples`; the two ends in
    1D) or a given ``boundary_sampler``, warm-started from θ^n (or from the
    extrapolation 2θ^n − θ^{n−1} when ``extrapolate``).  That is one solve for the
    one-step residual schemes (:mod:`insr.integrators.schemes`); a Runge–Kutta scheme
    (:mod:`insr.integrators.runge_kutta`) takes one projection per explicit stage, or
    one joint solve of its implicit stages and a projection, each warm-started from θ^n
    (``extrapolate`` is refused there).  The initial condition is
    fitted by ``init_solver`` (default: ``LevenbergMarquardt.initial_fit()``, the built-in
    scenarios' ``init`` setting, not the per-step ``solver``) from the field's random
    initialisation, on ``sampler`` points, and judged on points it was not fitted on
    (``problem.error_points()``): its relative L2 error there must be ≤
    ``init_tolerance``.  A fit that misses it is retried once with
    :func:`retry_solver` on fresh points (the better of the two is kept); the result
    is reported as ``fit_error``/``fit_tolerance``/``fit_ok`` in the step-0 info, and
    :func:`insr.simulate.simulate` stops the run when ``fit_ok`` is false.

    ``adaptive`` (a :class:`~insr.geometry.residual_sampling.ResidualSampling`, default none:
    uniform points) draws a share of every step's interior points where the step's residual at
    its warm start is large, with unbiased weights and the same number of points.

    Errors (``metrics``) are measured on ``problem.error_points()`` against the problem's
    exact solution or, for a problem without one, against ``reference(points, t)`` — a
    callable returning the reference values (n, out_dim) as a NumPy array, e.g. a spectral
    solution's :meth:`~insr.reference.spectral.SpectralSolution.interpolate`.  Each row
    also carries the sums ``sq_error`` = Σ|u − u_ref|² and ``sq_ref`` = Σ|u_ref|², from
    which :func:`insr.simulate.summarize` forms the space–time relative L2 error.
    """

    def __init__(self, problem, field: eqx.Module, integrator, solver, sampler: Sampler, *,
                 boundary_sampler: Sampler | None = None, boundary_samples: int | None = None,
                 boundary_weight: float = 1.0,
                 init_solver=None, extrapolate: bool = False, init_tolerance: float = 1e-3,
                 reference=None, adaptive: ResidualSampling | None = None):
        if field.in_dim != problem.domain.dim or field.out_dim != problem.out_dim:
            raise ValueError(
                f"field maps R^{field.in_dim} → R^{field.out_dim} but the problem needs "
                f"R^{problem.domain.dim} → R^{problem.out_dim}")
        if extrapolate and isinstance(integrator, (ExplicitRungeKutta, ImplicitRungeKutta)):
            raise ValueError(f"extrapolate applies to one-step residual schemes, not to {integrator.name!r} "
                             "(its stage fits start from uⁿ)")
        if reference is not None and problem.has_exact:
            raise ValueError("reference: the problem has an exact solution; errors are measured against it")
        fields = FieldSet({"u": field})
        scheme = EvolutionScheme(fields, problem, integrator, solver, sampler, boundary_sampler=boundary_sampler,
                                 boundary_samples=boundary_samples, boundary_weight=boundary_weight,
                                 extrapolate=extrapolate, adaptive=adaptive)
        self.problem, self.integrator, self.solver = problem, integrator, solver
        self.extrapolate, self.reference = extrapolate, reference
        self.params0, self.static = fields.template["u"], fields.static["u"]
        self.blocks, self.ic_blocks = scheme.blocks, scheme.ic_blocks
        if problem.has_boundary:
            self.boundary_samples = scheme.boundary_samples
        self.dim = problem.domain.dim
        self._dtype = fields.dtype
        names = tuple(f"u{i}" for i in range(problem.out_dim)) if problem.out_dim > 1 else ("u",)
        if init_solver is None:
            init_solver = LevenbergMarquardt.initial_fit()
        super().__init__(fields, scheme, init_solver=init_solver,
                         init_error=lambda state: self.initial_fit_error(state["u"]),
                         init_tolerance=init_tolerance, channels=[("u", problem.out_dim)], channel_names=names,
                         observers=(self.error_metrics,))
        self._error_points = jnp.asarray(problem.error_points(), self._dtype)
        if problem.has_exact:
            self._exact = jax.jit(lambda x, t: jax.vmap(problem.exact_solution, in_axes=(0, None))(x, t))

    def initial_fit_error(self, params) -> float:
        """Relative L2 error of the field (weights ``params``) against the initial condition on held-out points."""
        x = self._error_points
        target = jax.vmap(self.problem.initial_condition)(x).reshape(x.shape[0], -1)
        state = {"u": params, "u_prev": params}  # the state's structure: the compiled evaluation is reused
        return relative_l2(self.evaluate(state, x), target)

    def field_of(self, state) -> eqx.Module:
        """The field (network module) held by ``state``: call it, differentiate it."""
        return self.fields.module("u", state["u"])

    def error_metrics(self, state, t) -> dict:
        """MAE, max error, relative L2 and the sums behind it against the exact solution or reference."""
        target = self.target(self._error_points, t)
        if target is None:
            return {}
        return error_metrics(self.evaluate(state, self._error_points), target)

    def target(self, points, t) -> np.ndarray | None:
        """The exact solution, else the reference, at ``points`` (n, d) and time ``t``: (n, out_dim),
        or None when the problem has neither."""
        if self.problem.has_exact:
            return self.exact(points, t)
        if self.reference is not None:
            pts = np.asarray(points, np.float64)
            return np.asarray(self.reference(pts, float(t)), np.float64).reshape(pts.shape[0], -1)
        return None

    def exact(self, points, t):
        return np.asarray(self._exact(jnp.asarray(points, self._dtype), self.time(t)))
