r"""Neural 2D incompressible flow: Chorin splitting, one least-squares solve per sub-step.

Equations (ρ = 1, kinematic viscosity ν ≥ 0; ν = 0 is Euler)::

    ∂u/∂t + (u·∇)u = −∇p + ν∇²u,   ∇·u = 0          in Ω (a box, [−1, 1]² by default)
    u·n = 0                                          on ∂Ω (no penetration)
    ∂(u·t)/∂n = 0                                    on ∂Ω when ν > 0 (free slip)
    ∂ρ/∂t + u·∇ρ = 0                                 (optional passive density)

Fields: velocity u_θ: R² → R², pressure p_φ: R² → R, density ρ_ψ: R² → R — three
separate networks (SIRENs in the built-in scenarios).  The state is
``{"u": θ, "p": φ[, "rho": ψ]}`` (array leaves of the networks).

One step of Δt from (θⁿ, φⁿ, ψⁿ) (Chorin 1968; semi-Lagrangian advection as in
Stam 1999, "Stable fluids"; neural version: Chen et al., ICML 2023, Sec. 5.2).  Each
sub-step minimises Σ_k w_k·mean_{x∈M_k}|r_k|² with the step's solver (Levenberg–
Marquardt by default), warm-started from the previous weights, on freshly drawn
points M_k:

1. **Advection** (semi-Lagrangian).  Departure point
   ``X(x) = clamp(x − Δt·uⁿ(x))`` (``backtrace="euler"``, the paper's) or the
   midpoint trace ``X = clamp(x − Δt·uⁿ(clamp(x − ½Δt·uⁿ(x))))`` (``"rk2"``);
   the advected field is ``u_adv(x) = uⁿ(X(x))`` — the previous network evaluated at
   the departure point, no interpolation.  ``advection="fit"`` (the paper's) fits a
   velocity network u* to it:  r = u_θ(x) − u_adv(x).  ``advection="compose"`` (the
   default; ν = 0 only) skips this solve and uses u* = uⁿ∘X itself, exactly, in steps 3–4 (its
   divergence by automatic differentiation through the composition): one fewer
   solve and one fewer fitting error.
2. **Viscosity** (ν > 0, implicit Euler):  (I − νΔt∇²) u* = u_adv, free-slip walls.
   It is merged with step 1 into one solve, r = u_θ − νΔt∇²u_θ − u_adv(x), plus the
   wall block ∂(u_θ·t)/∂n = 0; the fitted u_adv of a separate step 1 would only add
   a fitting error.  With ν > 0 this solve is always done (``advection`` is ignored).
3. **Pressure Poisson**:  ∇²p = ∇·u*/Δt in Ω, ∂p/∂n = 0 on ∂Ω (weight
   ``boundary_weight``), and the free constant fixed by the penalty
   ``mean_weight·(mean_G p)²`` with G the 16×16 cell centres of the box (one
   residual row), so p has zero mean like the Taylor–Green pressure.
   p is the physical pressure (the classical φ = Δt·p).
4. **Projection**:  r = u_θ(x) − (u*(x) − Δt∇p(x)), warm-started from u* (from uⁿ with
   ``advection="compose"``).
5. **Density** (if present):  r = ρ_ψ(x) − ρⁿ(X(x)), the same departure points as the
   velocity (traced through uⁿ).

``scheme="reflection"`` (ν = 0 and ``advection="compose"``) replaces steps 1–4 by
advection–reflection (Zehnder, Narain & Thomaszewski, SIGGRAPH 2018), second order in Δt:
ũ = uⁿ∘X(uⁿ; Δt/2); u^{n+½} = P ũ = ũ − (Δt/2)∇p½ (a Poisson solve over Δt/2); the
reflection û = 2u^{n+½} − ũ = ũ − Δt∇p½; uⁿ⁺¹ = P(û∘X(u^{n+½}; Δt/2)) — two Poisson
solves and one velocity fit per step, every intermediate field an exact composition of
networks (none is fitted).  The density moves along u^{n+½} for the whole Δt.  The first-order Chorin splitting error
(the floor of the paper's Taylor–Green run) becomes O(Δt²): on the MAC grid at 48², Δt =
0.05, t = 5 the velocity MSE drops from 8.9e-5 to 9.0e-9
(:class:`insr.reference.fluid_grid.GridEuler2D` has the same ``scheme`` option).

Walls.  ``walls="hard"`` (default) builds no-penetration into the velocity field:
``u(x) = m(x) ⊙ N_θ(x)`` with ``m = ((x−lo₀)(hi₀−x)/h₀², (y−lo₁)(hi₁−y)/h₁²)``
(h the half-widths; ``(1−x², 1−y²)`` on [−1, 1]²), so u·n = 0 exactly on every wall,
the back-traced points of wall points stay on the wall, and u*·n = 0 there too
(compatible with the Neumann pressure condition).  The factor has no parameters: the
state bytes are those of N_θ.  ``walls="penalty"`` uses a plain network and adds the
boundary block u·n = 0 (weight ``boundary_weight``) to the velocity solves.

Channels of :meth:`FluidStepper.evaluate`, in order: ``u`` (x-velocity), ``v``
(y-velocity), ``p`` (pressure), and ``rho`` (density) when a density field is given.

Metrics (every step, on the r×r cell centres of the domain — on [-1, 1]² those of
:func:`insr.reference.fluid_grid.evaluation_points` — r = ``eval_resolution``, 256 by default):
``kinetic_energy`` ½∫|u|² ≈ ½|Ω|·mean|u|²,
``enstrophy`` ½∫ω² (ω = ∂ₓv − ∂ᵧu by autodiff), ``div_max`` max|∇·u| and ``div_rms``
(∇·u by autodiff).  With ``exact_velocity``: ``velocity_mse`` = mean over the points and
both components of (u − u_exact)² (the convention of
:func:`insr.reference.fluid_grid.velocity_mse`) and ``rel_l2`` = ‖u − u_exact‖₂/‖u_exact‖₂
over the points; with ``exact_pressure`` also ``pressure_mse``.  With a ``reference``
callable (e.g. a fine grid run for two vortices) the same ``velocity_mse``/``rel_l2``
against it, and ``density_mse`` when it supplies a density.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from insr.geometry import Box, Sampler
from insr.operators import laplacian
from insr.solvers.objective import Block
from insr.stepper import relative_l2, retry_solver

WALLS = ("hard", "penalty")
BACKTRACES = ("euler", "rk2")
ADVECTIONS = ("fit", "compose")
SCHEMES = ("chorin", "reflection")


# --------------------------------------------------------------------------------------
# Geometry helpers
# --------------------------------------------------------------------------------------


def hard_wall_mask(domain: Box, x):
    """m(x) with m_i = (x_i − lo_i)(hi_i − x_i)/h_i² (h_i the half-width): zero on the two
    walls normal to axis i, 1 at the centre.  u = m ⊙ N has u·n = 0 on every wall."""
    lo = jnp.asarray(domain.lo, x.dtype)
    hi = jnp.asarray(domain.hi, x.dtype)
    half = 0.5 * (hi - lo)
    return (x - lo) * (hi - x) / (half * half)


def outward_normal(domain: Box, x):
    """Outward unit normal of the box face nearest to ``x`` (for points on the boundary)."""
    lo = jnp.asarray(domain.lo, x.dtype)
    hi = jnp.asarray(domain.hi, x.dtype)
    d = x.shape[-1]
    dist = jnp.concatenate([x - lo, hi - x])
    k = jnp.argmin(dist)
    sign = jnp.where(k < d, -1.0, 1.0).astype(x.dtype)
    return sign * jax.nn.one_hot(k % d, d, dtype=x.dtype)


def _cell_centres(domain: Box, n: int) -> np.ndarray:
    axes = [lo + (np.arange(n) + 0.5) * (hi - lo) / n for lo, hi in zip(domain.lo, domain.hi)]
    mesh = np.meshgrid(*axes, indexing="ij")
    return np.stack([m.ravel() for m in mesh], axis=-1).astype(np.float32)


def pressure_blocks(pressure_fn, rhs, sampler: Sampler, boundary_sampler, *, neumann_weight: float = 1.0,
                    mean_weight: float = 1.0, mean_resolution: int = 16) -> tuple[Block, ...]:
    """Residual blocks of the Neumann Poisson problem for a scalar network.

        ∇²p = f(x)  in the box,    ∂p/∂n = 0  on its walls,    mean_G p = 0

    ``pressure_fn(params, x) -> ()`` evaluates p at one point; ``rhs(args, x) -> ()``
    gives f (``args`` is the solver's per-solve argument).  G is the
    ``mean_resolution``² cell-centre grid of the box; the mean block is a single
    residual row (its sampler returns one dummy point).  The Neumann problem needs
    ∫f = 0 for a solution to exist; otherwise the least-squares solution balances the
    interior and wall residuals.
    """
    domain = sampler.domain
    mean_pts = jnp.asarray(_cell_centres(domain, mean_resolution))

    def interior(params, x, args):
        p = lambda y: pressure_fn(params, y)[None]
        return laplacian(p)(x) - rhs(args, x)

    def neumann(params, x, args):
        g = jax.grad(lambda y: pressure_fn(params, y))(x)
        return (g @ outward_normal(domain, x))[None]

    def mean(params, x, args):
        return jnp.mean(jax.vmap(lambda y: pressure_fn(params, y))(mean_pts))[None]

    dummy = lambda key: jnp.zeros((1, domain.dim), jnp.float32)
    return (Block(interior, sampler, 1.0, "poisson"),
            Block(neumann, boundary_sampler, float(neumann_weight), "neumann"),
            Block(mean, dummy, float(mean_weight), "pressure_mean"))


def _stats(stats) -> dict:
    return {"iterations": stats.iterations, "loss_initial": stats.loss_initial, "loss": stats.loss,
            "converged": stats.converged}


# --------------------------------------------------------------------------------------
# The stepper
# --------------------------------------------------------------------------------------


class FluidStepper:
    """Advance velocity, pressure (and density) networks by Chorin splitting (module docstring).

    Parameters
    ----------
    velocity, pressure, density:
        Networks R² → R², R² → R, R² → R (equinox modules evaluating one point, e.g.
        :class:`insr.fields.Siren`); their array leaves are the state.  ``density`` is optional.
    solver:
        Per-sub-step solver with ``solve(blocks, params0, args, key)``
        (:class:`insr.solvers.LevenbergMarquardt`).  ``pressure_solver`` (default: ``solver``)
        for the Poisson solve, ``init_solver`` (default: ``solver``) for the initial fits.
    sampler:
        Interior points of each sub-step; its ``domain`` (a 2D :class:`~insr.geometry.Box`) is Ω.
    velocity0, density0:
        Initial fields, functions of points ``(..., 2)`` (e.g.
        :func:`insr.reference.flows.taylor_green_velocity`).  The networks are fitted to them
        by ``init_solver``; the initial pressure solves ∇²p = −Σᵢⱼ ∂ⱼuᵢ ∂ᵢuⱼ (the pressure
        Poisson equation of a divergence-free u) with ∂p/∂n = 0 and zero mean.
    nu, walls, backtrace, advection:
        See the module docstring.
    init_sampler:
        Interior points of the initial fits (default: ``sampler``).
    boundary_sampler, boundary_weight, mean_weight:
        Wall points (default: 2·√N uniform on the walls) and the weights of the wall
        blocks and of the pressure-mean penalty.
    exact_velocity, exact_pressure:
        Optional ``f(points (n, 2), t) -> (n, 2) / (n,)`` for the error metrics.
    substep_rtol:
        The tolerance a step's sub-solves are judged by (``converged`` in the metrics): the
        sub-steps run a small fixed budget of solver iterations (2–4), so a sub-solve counts
        as converged when its solver met its own tolerance or it cut its residual norm to
        ≤ ``substep_rtol`` × the warm-start value.  A pressure solve whose iterations were
        all rejected (residual unchanged) is then reported, not hidden among steps that
        could never meet a tolerance.
    reference:
        Optional ``ref(t) -> dict | None`` with ``"u"`` (r², 2) and optionally ``"rho"`` (r²)
        at the r×r cell centres of the domain in row-major [ix, iy] order (on [-1, 1]²:
        ``evaluation_points(r).reshape(-1, 2)``), r = ``eval_resolution`` (e.g. a fine
        grid solution), for the error metrics of flows without a closed form.
    """

    def __init__(self, velocity: eqx.Module, pressure: eqx.Module, solver, sampler: Sampler, *,
                 velocity0: Callable, density: eqx.Module | None = None, density0: Callable | None = None,
                 nu: float = 0.0, walls: str = "hard", backtrace: str = "euler", advection: str = "compose",
                 boundary_sampler=None, boundary_weight: float = 1.0, mean_weight: float = 1.0,
                 init_solver=None, init_sampler: Sampler | None = None, pressure_solver=None,
                 exact_velocity: Callable | None = None, exact_pressure: Callable | None = None,
                 reference: Callable | None = None, eval_resolution: int = 256, init_tolerance: float = 1e-2,
                 substep_rtol: float = 0.5, scheme: str = "chorin"):
        domain = sampler.domain
        if domain.dim != 2:
            raise ValueError(f"FluidStepper needs a 2D box, got a {domain.dim}D domain")
        for name, net, out in (("velocity", velocity, 2), ("pressure", pressure, 1), ("density", density, 1)):
            if net is not None and (getattr(net, "in_dim", 2) != 2 or getattr(net, "out_dim", out) != out):
                raise ValueError(f"the {name} network must map R^2 → R^{out}, got R^{net.in_dim} → R^{net.out_dim}")
        if (density is None) != (density0 is None):
            raise ValueError("give both density (the network) and density0 (its initial field), or neither")
        if not (isinstance(nu, (int, float)) and np.isfinite(nu) and nu >= 0):
            raise ValueError(f"nu (viscosity) must be a finite number ≥ 0, got {nu!r}")
        for name, value, allowed in (("walls", walls, WALLS), ("backtrace", backtrace, BACKTRACES),
                                     ("advection", advection, ADVECTIONS), ("scheme", scheme, SCHEMES)):
            if value not in allowed:
                raise ValueError(f"{name} must be one of {', '.join(map(repr, allowed))}, got {value!r}")
        if scheme == "reflection" and (nu > 0 or advection != "compose"):
            raise ValueError("scheme 'reflection' needs nu = 0 and advection 'compose' (it composes the advected "
                             f"fields exactly), got nu = {nu!r}, advection = {advection!r}")
        self.scheme = scheme
        for name, w in (("boundary_weight", boundary_weight), ("mean_weight", mean_weight)):
            if not w >= 0:
                raise ValueError(f"{name} must be ≥ 0, got {w!r}")

        self.domain, self.nu, self.walls, self.backtrace = domain, float(nu), walls, backtrace
        self.advection = advection
        self.fit_advection = advection == "fit" or self.nu > 0
        self.solver = solver
        self.pressure_solver = pressure_solver or solver
        self.init_solver = init_solver or solver
        self.has_density = density is not None
        self.channel_names = ("u", "v", "p", "rho") if self.has_density else ("u", "v", "p")
        self.dim = 2
        self.exact_velocity, self.exact_pressure, self.reference = exact_velocity, exact_pressure, reference
        self.velocity0, self.density0 = velocity0, density0
        if not init_tolerance > 0:
            raise ValueError(f"init_tolerance must be > 0, got {init_tolerance!r}")
        self.init_tolerance = float(init_tolerance)
        if not 0 < substep_rtol <= 1:
            raise ValueError(f"substep_rtol must be in (0, 1], got {substep_rtol!r}")
        self.substep_rtol = float(substep_rtol)

        u0, self._static_u = eqx.partition(velocity, eqx.is_array)
        p0, self._static_p = eqx.partition(pressure, eqx.is_array)
        self._template = {"u": u0, "p": p0}
        self._num_params = velocity.num_params + pressure.num_params
        if self.has_density:
            r0, self._static_r = eqx.partition(density, eqx.is_array)
            self._template["rho"] = r0
            self._num_params += density.num_params

        if boundary_sampler is None:
            nb = max(8, int(2 * np.sqrt(sampler.n)))
            boundary_sampler = lambda key: domain.boundary_points(key, nb)
        bw = float(boundary_weight)
        hard = walls == "hard"
        nu_ = self.nu

        # ---- field evaluation (one point) -------------------------------------------
        static_u, static_p = self._static_u, self._static_p

        def vel(params, x):
            out = eqx.combine(params, static_u)(x)
            return out * hard_wall_mask(domain, x) if hard else out

        def pres(params, x):
            return eqx.combine(params, static_p)(x)[0]

        if self.has_density:
            static_r = self._static_r

            def dens(params, x):
                return eqx.combine(params, static_r)(x)[0]
        else:
            dens = None

        def trace(v, x, dt):
            """X(x): the point back-traced from x for a time dt through the velocity function v."""
            if backtrace == "euler":
                return domain.clamp(x - dt * v(x))
            mid = domain.clamp(x - 0.5 * dt * v(x))
            return domain.clamp(x - dt * v(mid))

        def departure(up, x, dt):
            """X(x): the back-traced departure point through the velocity uⁿ (params ``up``)."""
            return trace(lambda y: vel(up, y), x, dt)

        def advected(up, x, dt):
            return vel(up, departure(up, x, dt))

        self._trace, self._departure = trace, departure

        # u*: the velocity before projection, as a function of (its arguments, x).
        if self.fit_advection:
            def ustar(a, x):  # a = fitted u* weights
                return vel(a, x)
        else:
            def ustar(a, x):  # a = (uⁿ weights, Δt): u* = uⁿ∘X exactly
                up, dt = a
                return advected(up, x, dt)

        def div(f):
            return lambda x: jnp.trace(jax.jacfwd(f)(x))

        def wall_residual(params, x, free_slip):
            """[u·n] (penalty walls) and [∂(u·t)/∂n] (free slip), on a wall point."""
            n = outward_normal(domain, x)
            parts = []
            if not hard:
                parts.append((vel(params, x) @ n)[None])
            if free_slip:
                t = jnp.stack([-n[1], n[0]])
                J = jax.jacfwd(lambda y: vel(params, y))(x)
                parts.append((t @ (J @ n))[None])
            return jnp.concatenate(parts)

        self._vel, self._pres, self._dens = vel, pres, dens

        # ---- sub-step blocks -----------------------------------------------------------
        def adv_residual(params, x, args):
            up, dt = args
            r = vel(params, x) - advected(up, x, dt)
            if nu_ > 0:
                r = r - nu_ * dt * laplacian(lambda y: vel(params, y))(x)
            return r

        adv_blocks = [Block(adv_residual, sampler, 1.0, "advection")]
        if not hard or nu_ > 0:
            adv_blocks.append(Block(lambda p, x, a: wall_residual(p, x, nu_ > 0), boundary_sampler, bw, "walls"))
        self.advection_blocks = tuple(adv_blocks)

        def poisson_rhs(args, x):
            a, dt = args
            return div(lambda y: ustar(a, y))(x)[None] / dt

        self.pressure_blocks = pressure_blocks(pres, poisson_rhs, sampler, boundary_sampler,
                                               neumann_weight=bw, mean_weight=mean_weight)

        def proj_residual(params, x, args):
            a, pp, dt = args
            return vel(params, x) - ustar(a, x) + dt * jax.grad(lambda y: pres(pp, y))(x)

        proj_blocks = [Block(proj_residual, sampler, 1.0, "projection")]
        if not hard:
            proj_blocks.append(Block(lambda p, x, a: wall_residual(p, x, False), boundary_sampler, bw, "walls"))
        self.projection_blocks = tuple(proj_blocks)

        if self.has_density:
            def rho_residual(params, x, args):
                up, rp, dt = args
                return (dens(params, x) - dens(rp, departure(up, x, dt)))[None]

            self.density_blocks = (Block(rho_residual, sampler, 1.0, "density"),)

        # ---- initial fits ----------------------------------------------------------
        def ic_u_residual(params, x, args):
            return vel(params, x) - jnp.asarray(velocity0(x), x.dtype)

        init_sampler = init_sampler or sampler
        ic_u_blocks = [Block(ic_u_residual, init_sampler, 1.0, "initial_velocity")]
        if not hard:
            ic_u_blocks.append(Block(lambda p, x, a: wall_residual(p, x, False), boundary_sampler, bw, "walls"))
        self._ic_u_blocks = tuple(ic_u_blocks)

        def pressure0_rhs(up, x):
            J = jax.jacfwd(lambda y: vel(up, y))(x)
            return -jnp.sum(J * J.T)[None]  # −Σᵢⱼ ∂ⱼuᵢ ∂ᵢuⱼ

        self._ic_p_blocks = pressure_blocks(pres, pressure0_rhs, init_sampler, boundary_sampler,
                                            neumann_weight=bw, mean_weight=mean_weight)
        if self.has_density:
            def ic_rho_residual(params, x, args):
                return (dens(params, x) - jnp.asarray(density0(x), x.dtype))[None]

            self._ic_rho_blocks = (Block(ic_rho_residual, init_sampler, 1.0, "initial_density"),)

        # ---- compiled functions ----------------------------------------------------
        self._step = jax.jit(self._reflection_step_impl if scheme == "reflection" else self._step_impl)
        self._init = jax.jit(self._init_impl)
        self._retry_init = None  # compiled on first need
        self._project = jax.jit(self._project_impl, static_argnums=(1,))
        self._eval = jax.jit(self._eval_impl)
        self._diagnostics = jax.jit(self._diagnostics_impl)
        self.eval_resolution = int(eval_resolution)
        # The r×r cell centres of this stepper's domain ([-1, 1]² in the scenarios, where
        # they equal insr.reference.fluid_grid.evaluation_points(r)).
        self._eval_points = _cell_centres(self.domain, self.eval_resolution)
        self._eval_points_j = jnp.asarray(self._eval_points)

    # ---- protocol ------------------------------------------------------------------

    def state_template(self) -> dict:
        return self._template

    def state_bytes(self) -> int:
        """Parameters × 4 bytes (float32), velocity + pressure (+ density) networks."""
        return 4 * self._num_params

    @property
    def num_params(self) -> int:
        """Trainable parameters of all networks (velocity, pressure, density)."""
        return self._num_params

    def _init_impl(self, template, key, solver=None):
        solver = solver or self.init_solver
        ku, kp, kr = jax.random.split(key, 3)
        u, su = solver.solve(self._ic_u_blocks, template["u"], None, ku)
        p, sp = solver.solve(self._ic_p_blocks, template["p"], u, kp)
        state, info = {"u": u, "p": p}, {"u": _stats(su), "p": _stats(sp)}
        if self.has_density:
            r, sr = solver.solve(self._ic_rho_blocks, template["rho"], None, kr)
            state["rho"], info["rho"] = r, _stats(sr)
        return state, info

    def initial_fit_error(self, state) -> float:
        """Largest relative L2 error of the velocity (and density) fit against the initial
        fields on held-out points (the 64² cell centres, not the fitted samples)."""
        x = jnp.asarray(_cell_centres(self.domain, 64))
        vals = np.asarray(self._eval(state, x), np.float64)
        errs = [relative_l2(vals[:, :2], np.asarray(jax.vmap(self.velocity0)(x), np.float64))]
        if self.has_density:
            target = np.asarray(jax.vmap(self.density0)(x), np.float64).reshape(-1)
            errs.append(relative_l2(vals[:, 3], target))
        return max(errs)

    def initial_state(self, key):
        """Fit the velocity (and density) networks to the initial fields, then solve the
        initial pressure; info reports the velocity fit (``loss``) and each fit's details.

        The fits are judged on held-out points (:meth:`initial_fit_error` ≤
        ``init_tolerance``); a miss is retried once with the sounder setting of
        :func:`insr.stepper.retry_solver` on fresh points, and reported as ``fit_ok``."""
        state, info = self._init(self._template, key)
        out = self._info(info, "u")
        err, attempts = self.initial_fit_error(state), 1
        if not err <= self.init_tolerance:
            if self._retry_init is None:
                retry = retry_solver(self.init_solver)
                self._retry_init = jax.jit(lambda tpl, k: self._init_impl(tpl, k, retry))
            state2, info2 = self._retry_init(self._template, jax.random.fold_in(key, 1))
            err2, attempts = self.initial_fit_error(state2), 2
            out2 = self._info(info2, "u")
            out2["iterations"] += out["iterations"]
            if err2 < err or not np.isfinite(err):
                state, out, err = state2, out2, err2
            else:
                out["iterations"] = out2["iterations"]
        out.update(fit_error=err, fit_tolerance=self.init_tolerance, fit_attempts=attempts,
                   fit_ok=bool(err <= self.init_tolerance))
        return state, out

    def _step_impl(self, state, dt, key):
        ka, kp, ku, kr = jax.random.split(key, 4)
        up = state["u"]
        info = {}
        if self.fit_advection:
            a, s = self.solver.solve(self.advection_blocks, up, (up, dt), ka)
            info["adv"] = _stats(s)
            guess = a
        else:
            a, guess = (up, dt), up
        p, s = self.pressure_solver.solve(self.pressure_blocks, state["p"], (a, dt), kp)
        info["p"] = _stats(s)
        u, s = self.solver.solve(self.projection_blocks, guess, (a, p, dt), ku)
        info["u"] = _stats(s)
        new = {"u": u, "p": p}
        if self.has_density:
            r, s = self.solver.solve(self.density_blocks, state["rho"], (up, state["rho"], dt), kr)
            new["rho"], info["rho"] = r, _stats(s)
        return new, info

    def _reflection_step_impl(self, state, dt, key):
        """Advection–reflection (module docstring), every intermediate field composed, not fitted:
        ũ = uⁿ∘X(uⁿ; Δt/2), u^{n+½} = ũ − (Δt/2)∇p½ (the projection, exact given p½), the
        reflection û = 2u^{n+½} − ũ = ũ − Δt∇p½; then uⁿ⁺¹ = P(û∘X(u^{n+½}; Δt/2)).  Two
        Poisson solves and one velocity fit per step; a fitted u^{n+½} would only add its fitting
        error, doubled by the reflection."""
        k1, k2, ku, kr = jax.random.split(key, 4)
        vel, pres, trace, half = self._vel, self._pres, self._trace, dt / 2
        up = state["u"]

        def u_tilde(x):  # uⁿ advected along itself for Δt/2
            return vel(up, self._departure(up, x, half))

        p_half, sp1 = self._pressure_impl(state["p"], u_tilde, half, k1)
        grad_half = lambda x: jax.grad(lambda y: pres(p_half, y))(x)
        u_half = lambda x: u_tilde(x) - half * grad_half(x)

        def u_next(x):  # û = ũ − Δt∇p½, advected along u^{n+½} for Δt/2
            y = trace(u_half, x, half)
            return u_tilde(y) - dt * grad_half(y)

        p, sp2 = self._pressure_impl(p_half, u_next, half, k2, offset=p_half)
        u, su = self._projection_fit_impl(up, u_next, p, half, ku, offset=p_half)
        new, info = {**state, "u": u, "p": p}, {"p_half": _stats(sp1), "p": _stats(sp2), "u": _stats(su)}
        if self.has_density:  # along u^{n+½} for the whole step
            dens, rho_n = self._dens, state["rho"]
            block = Block(lambda params, x, args: (dens(params, x) - dens(rho_n, trace(u_half, x, dt)))[None],
                          self.density_blocks[0].sampler, 1.0, "density")
            new["rho"], s = self.solver.solve((block,), rho_n, None, kr)
            info["rho"] = _stats(s)
        return new, info

    def _sub_converged(self, s) -> bool:
        """A sub-solve met its tolerance: its solver's own, or ``substep_rtol`` (see the class)."""
        reduced = float(s["loss"]) <= self.substep_rtol**2 * float(s["loss_initial"])
        return bool(s["converged"]) or reduced

    def _info(self, info, main: str) -> dict:
        """Flatten per-sub-step stats: totals plus ``<sub>_iterations`` and ``<sub>_loss``.

        ``loss_initial``/``loss`` are those of the final velocity solve (the projection
        in a step, the velocity fit at t = 0); ``converged`` holds if every sub-solve
        met its tolerance (:meth:`_sub_converged`); ``iterations`` is the sum over the sub-solves."""
        out = {"iterations": int(sum(int(s["iterations"]) for s in info.values())),
               "loss_initial": float(info[main]["loss_initial"]), "loss": float(info[main]["loss"]),
               "converged": all(self._sub_converged(s) for s in info.values())}
        for name, s in info.items():
            out[f"{name}_iterations"] = int(s["iterations"])
            out[f"{name}_loss"] = float(s["loss"])
        return out

    def step(self, state, t, dt, key):
        new, info = self._step(state, jnp.float32(dt), key)
        return new, self._info(info, "u")

    def _pressure_impl(self, p0, u_star, dt, key, offset=None):
        """Step 3 for a given u* (a function of one point): ∇²p = ∇·u*/Δt, Neumann walls, zero
        mean, warm-started from ``p0``.

        With ``offset`` (pressure weights p₀) the equation is shifted to ∇²p = ∇·u*/Δt + ∇²p₀ and
        the projection (:meth:`_projection_fit_impl`, same offset) removes Δt∇(p − p₀): the solve
        looks for a small correction of p₀, which a warm start from p₀ reaches in the few
        iterations a sub-step has (advection–reflection: the second projection's own pressure
        is O(Δt) while the physical one is O(1))."""
        if offset is None:
            rhs = lambda args, x: jnp.trace(jax.jacfwd(u_star)(x))[None] / dt
        else:
            lap_offset = laplacian(lambda y: self._pres(offset, y)[None])
            rhs = lambda args, x: jnp.trace(jax.jacfwd(u_star)(x))[None] / dt + lap_offset(x)
        pblocks = pressure_blocks(self._pres, rhs,
                                  self.pressure_blocks[0].sampler, self.pressure_blocks[1].sampler,
                                  neumann_weight=self.pressure_blocks[1].weight,
                                  mean_weight=self.pressure_blocks[2].weight)
        return self.pressure_solver.solve(pblocks, p0, None, key)

    def _projection_fit_impl(self, u0, u_star, p, dt, key, offset=None):
        """Step 4: fit u_θ ≈ u* − Δt∇(p − p₀) (p₀ = ``offset``, or 0), warm-started from ``u0``."""
        vel, pres = self._vel, self._pres
        if offset is None:
            grad_p = lambda pp, x: jax.grad(lambda y: pres(pp, y))(x)
        else:
            grad_p = lambda pp, x: jax.grad(lambda y: pres(pp, y) - pres(offset, y))(x)
        blocks = (Block(lambda th, x, pp: vel(th, x) - u_star(x) + dt * grad_p(pp, x),
                        self.projection_blocks[0].sampler, 1.0, "projection"),) + self.projection_blocks[1:]
        return self.solver.solve(blocks, u0, p, key)

    def _project_impl(self, state, u_star, dt, key):
        """Steps 3–4 for a given u* (a function of one point): Poisson, then projection."""
        kp, ku = jax.random.split(key)
        p, sp = self._pressure_impl(state["p"], u_star, dt, kp)
        u, su = self._projection_fit_impl(state["u"], u_star, p, dt, ku)
        return {**state, "u": u, "p": p}, {"p": _stats(sp), "u": _stats(su)}

    def project(self, state, u_star: Callable, dt: float, key):
        """Project a given field ``u_star`` (a hashable function of one point (2,) → (2,))
        onto divergence-free fields: the Poisson and projection sub-steps alone, starting
        from ``state``'s weights.  Returns ``(state, info)``; for tests and experiments."""
        new, info = self._project(state, u_star, jnp.float32(dt), key)
        return new, self._info(info, "u")

    def _eval_impl(self, state, x):
        cols = [jax.vmap(self._vel, in_axes=(None, 0))(state["u"], x),
                jax.vmap(self._pres, in_axes=(None, 0))(state["p"], x)[:, None]]
        if self.has_density:
            cols.append(jax.vmap(self._dens, in_axes=(None, 0))(state["rho"], x)[:, None])
        return jnp.concatenate(cols, axis=1)

    def evaluate(self, state, points, t=None) -> np.ndarray:
        """Fields at ``points`` (n, 2): columns ``channel_names`` = u, v, p[, rho]."""
        return np.asarray(self._eval(state, jnp.asarray(points, jnp.float32)))

    def _diagnostics_impl(self, up, x):
        """Velocity, divergence and vorticity at points x (autodiff w.r.t. x)."""
        def one(y):
            u, J = jax.jvp(lambda z: self._vel(up, z), (y,), (jnp.array([1.0, 0.0], y.dtype),))
            _, Jy = jax.jvp(lambda z: self._vel(up, z), (y,), (jnp.array([0.0, 1.0], y.dtype),))
            return u, J[0] + Jy[1], J[1] - Jy[0]

        return jax.vmap(one)(x)

    def diagnostics(self, state, points):
        """(velocity (n, 2), divergence (n,), vorticity (n,)) at ``points`` as NumPy arrays."""
        u, d, w = self._diagnostics(state["u"], jnp.asarray(points, jnp.float32))
        return np.asarray(u), np.asarray(d), np.asarray(w)

    def metrics(self, state, t) -> dict:
        """See the module docstring (names, norms, evaluation points)."""
        u, d, w = (np.asarray(a, np.float64) for a in self._diagnostics(state["u"], self._eval_points_j))
        area = self.domain.volume
        out = {"kinetic_energy": 0.5 * area * float(np.mean(np.sum(u * u, axis=1))),
               "enstrophy": 0.5 * area * float(np.mean(w * w)),
               "div_max": float(np.max(np.abs(d))),
               "div_rms": float(np.sqrt(np.mean(d * d)))}
        ref_u = ref_rho = None
        if self.exact_velocity is not None:
            ref_u = np.asarray(self.exact_velocity(self._eval_points.astype(np.float64), float(t)), np.float64)
        elif self.reference is not None:
            ref = self.reference(float(t))
            if ref is not None:
                ref_u = np.asarray(ref["u"], np.float64).reshape(-1, 2)
                if "rho" in ref and self.has_density:
                    ref_rho = np.asarray(ref["rho"], np.float64).reshape(-1)
        if ref_u is not None:
            err = u - ref_u
            out["velocity_mse"] = float(np.mean(err * err))
            out["rel_l2"] = float(np.sqrt(np.sum(err * err) / max(np.sum(ref_u * ref_u), 1e-300)))
        if self.exact_pressure is not None or ref_rho is not None:
            vals = np.asarray(self._eval(state, self._eval_points_j), np.float64)  # points already on device
            if self.exact_pressure is not None:
                pe = np.asarray(self.exact_pressure(self._eval_points.astype(np.float64), float(t)), np.float64)
                out["pressure_mse"] = float(np.mean((vals[:, 2] - pe) ** 2))
            if ref_rho is not None:
                out["density_mse"] = float(np.mean((vals[:, 3] - ref_rho) ** 2))
        return out

    # ---- figures -------------------------------------------------------------------

    def write_outputs(self, traj, run_dir, cfg=None) -> list[Path]:
        """Vorticity, speed (and density) images at the saved steps nearest ``cfg['plot_times']``
        (first and last saved steps if none), and an animation over all saved steps."""
        return write_fluid_outputs(self, traj, Path(run_dir), (cfg or {}).get("plot_times") or None)


# --------------------------------------------------------------------------------------
# Figures and animation
# --------------------------------------------------------------------------------------


def field_images(stepper: FluidStepper, state, resolution: int = 128) -> dict:
    """Vorticity ω = ∂ₓv − ∂ᵧu, speed |u| (and density) on the ``resolution``² cell
    centres of the domain, as arrays indexed ``[ix, iy]``."""
    pts = _cell_centres(stepper.domain, resolution)
    u, _, w = stepper.diagnostics(state, pts)
    shape = (resolution, resolution)
    out = {"vorticity": w.reshape(shape), "speed": np.linalg.norm(u, axis=1).reshape(shape)}
    if stepper.has_density:
        out["density"] = stepper.evaluate(state, pts)[:, 3].reshape(shape)
    return out


_PANELS = {"vorticity": ("RdBu_r", "vorticity ω"), "speed": ("viridis", "speed |u|"),
           "density": ("magma", "density ρ")}


def _limits(images: list[dict]) -> dict:
    lim = {}
    for name in images[0]:
        hi = max(float(np.max(np.abs(im[name]))) for im in images) or 1.0
        lim[name] = (-hi, hi) if name == "vorticity" else (min(0.0, min(float(im[name].min()) for im in images)), hi)
    return lim


def _draw(axes, images: dict, limits: dict, extent, title_suffix: str = "", colorbars: bool = True):
    """One panel per field, axes in the domain's (nondimensional) units, a colour bar each
    (drawn once: the panels of an animation keep theirs and only their images change)."""
    for ax, (name, img) in zip(axes, images.items()):
        cmap, label = _PANELS[name]
        for im in ax.images:
            im.remove()
        artist = ax.imshow(img.T, origin="lower", extent=extent, cmap=cmap, vmin=limits[name][0],
                           vmax=limits[name][1], interpolation="nearest")
        ax.set_title(label + title_suffix, fontsize=9)
        ax.set_xlabel("x", fontsize=8)
        ax.set_ylabel("y", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.locator_params(nbins=4)  # labels that do not run into each other
        if colorbars:
            ax.figure.colorbar(artist, ax=ax, fraction=0.046, pad=0.04).ax.tick_params(labelsize=7)


def write_fluid_paraview(stepper: FluidStepper, traj, run_dir: Path, *, resolution: int = 128) -> Path:
    """``paraview/fluid.pvd``: one ``.vti`` image per saved step on ``resolution``² nodes
    spanning the domain, with ``velocity`` (u, v, 0), ``pressure``, ``vorticity``,
    ``divergence`` (and ``density``)."""
    from insr.io.paraview import write_image_data, write_pvd

    d = stepper.domain
    axes = [np.linspace(d.lo[i], d.hi[i], resolution) for i in range(2)]
    gx, gy = np.meshgrid(*axes, indexing="ij")
    pts = np.stack([gx.ravel(), gy.ravel()], axis=1).astype(np.float32)
    shape = (resolution, resolution)
    pv = Path(run_dir) / "paraview"
    pv.mkdir(parents=True, exist_ok=True)
    entries = []
    for step, t, state in zip(traj.steps, traj.ts, traj.states):
        u, div, vort = stepper.diagnostics(state, pts)
        vals = stepper.evaluate(state, pts)
        data = {"velocity": u.reshape(shape + (2,)), "pressure": vals[:, 2].reshape(shape),
                "vorticity": vort.reshape(shape), "divergence": div.reshape(shape)}
        if stepper.has_density:
            data["density"] = vals[:, 3].reshape(shape)
        name = f"step_{step:06d}.vti"
        write_image_data(pv / name, d.lo, d.hi, shape, data)
        entries.append((float(t), name))
    return write_pvd(pv / "fluid.pvd", entries)


def write_fluid_outputs(stepper: FluidStepper, traj, run_dir: Path, plot_times=None, *, resolution: int = 128,
                        fps: int = 10) -> list[Path]:
    """``snapshots.png`` (one row per time in ``plot_times``, nearest saved step; first and
    last saved steps by default; columns vorticity, speed[, density]),
    ``animation.mp4`` (GIF without ffmpeg) over all saved steps, same colour limits, and
    the ParaView series ``paraview/fluid.pvd`` (:func:`write_fluid_paraview`)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from insr.viz.animate import write_animation
    from insr.viz.plots1d import distinct_steps

    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    if not traj.states:
        return []
    images = [field_images(stepper, s, resolution) for s in traj.states]
    limits = _limits(images)
    d = stepper.domain
    extent = (d.lo[0], d.hi[0], d.lo[1], d.hi[1])
    ncol = len(images[0])

    rows = distinct_steps(traj, plot_times)
    fig, axes = plt.subplots(len(rows), ncol, figsize=(3.6 * ncol, 3.2 * len(rows)), squeeze=False)
    for r, i in enumerate(rows):
        _draw(axes[r], images[i], limits, extent, f", t = {traj.ts[i]:.3g}")
    fig.tight_layout()
    snap = run_dir / "snapshots.png"
    fig.savefig(snap, dpi=100)
    plt.close(fig)

    fig, axes = plt.subplots(1, ncol, figsize=(3.6 * ncol, 3.4), dpi=80, squeeze=False)
    frames = []
    for i, img in enumerate(images):
        _draw(axes[0], img, limits, extent, f", t = {traj.ts[i]:.3g}", colorbars=i == 0)
        if i == 0:
            fig.tight_layout()
        fig.canvas.draw()
        frames.append(np.asarray(fig.canvas.buffer_rgba())[..., :3].copy())
    plt.close(fig)
    return [snap, write_animation(frames, run_dir / "animation", fps=fps),
            write_fluid_paraview(stepper, traj, run_dir, resolution=resolution)]
