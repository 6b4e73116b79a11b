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
   ``advection="compose"``).  With ``divergence_weight`` w > 0 the fit also has the block
   √w·∇·u_θ on points of its own: the 3×32 velocity network has 3,330 weights and 1,000
   points give 2,000 rows, so the fit alone is free between its samples, and its divergence
   there is what the next Poisson solve must remove (Taylor–Green, advection–reflection: RMS
   ∇·u 1–3e-3 per step without the block, 1–2e-4 with w = 0.1).
5. **Density** (if present):  r = ρ_ψ(x) − ρⁿ(X(x)), the same departure points as the
   velocity (traced through uⁿ).

``scheme="reflection"`` (ν = 0 and ``advection="compose"``) replaces steps 1–4 by
advection–reflection (Zehnder, Narain & Thomaszewski, SIGGRAPH 2018), second order in Δt:
ũ = uⁿ∘X(uⁿ; Δt/2); u^{n+½} = P ũ = ũ − (Δt/2)∇p½ (a Poisson solve over Δt/2); the
reflection û = 2u^{n+½} − ũ = ũ − Δt∇p½; uⁿ⁺¹ = P(û∘X(u^{n+½}; Δt/2)) — two Poisson
solves and one velocity fit per step, every intermediate field an exact composition of
networks (none is fitted).  The density moves along u^{n+½} for the whole Δt.  The first-order Chorin splitting error
(the floor of the paper's Taylor–Green run) becomes O(Δt²): on the MAC grid at 48², Δt =
0.05, t = 5 the velocity MSE drops from 8.9e-5 to 9.0e-9 (read bicubically)
(:class:`insr.reference.fluid_grid.GridEuler2D` has the same ``scheme`` option).  Only with
``backtrace="rk2"``: Euler's trace is first order, and with it the scheme's error is the
trace's (Taylor–Green at t = 5: 9.5e-6 for ours, 9.4e-6 for the 48² grid).  The stepper
allows the pair for such comparisons; the scenarios' configs refuse it.

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

from insr.engine import Engine, FieldSet, Stage, StageLog, relative_l2, retry_solver  # noqa: F401  (re-exported)
from insr.geometry import Box, Sampler
from insr.observers import flow_metrics
from insr.operators import laplacian
from insr.solvers.levenberg_marquardt import LevenbergMarquardt
from insr.solvers.objective import Block

#: The fluid sub-steps' solver (the built-in fluid scenarios' ``lm`` table, Taylor–Green's;
#: two_vortices raises ``max_iters`` to 4): plain LM (geodesic = 0: with 2–4 iterations a step
#: the geodesic bound rejects is an iteration lost) with ``tau = 1e-4`` (the first λ relative
#: to max diag JᵀJ; 1e-6 made the warm-started Poisson solve reject its first several steps).
FLUID_SUBSTEP = {"max_iters": 2, "ftol": 1e-5, "tau": 1e-4, "geodesic": 0.0}
#: The fluid initial fits' solver (the scenarios' ``init`` table over their ``lm`` one,
#: Taylor–Green's; two_vortices raises ``max_iters`` to 40): they start from a random
#: initialisation, so geodesic acceleration is on.  Taylor–Green's velocity and pressure
#: fits reach MSE ≈ 8e-10 against the exact fields with it.
FLUID_INITIAL_FIT = {"max_iters": 20, "ftol": 1e-9, "tau": 1e-4, "geodesic": 0.75}

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
    mean_pts = jnp.asarray(domain.cell_centres(mean_resolution))

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


# --------------------------------------------------------------------------------------
# The stepper
# --------------------------------------------------------------------------------------


# How far outside the box (a fraction of its smallest extent) a back-traced point may lie
# before it is clamped (ChorinScheme's trace).
TRACE_MARGIN = 0.01


class ChorinScheme:
    """One step of the fluid equations as a sequence of sub-solves (module docstring).

    ``name="chorin"`` (order 1): [advection fit] → pressure Poisson → projection [→ density];
    ``name="reflection"`` (order 2): advection–reflection, two Poisson solves and one velocity
    fit.  The stages solve for the fields ``u`` (velocity, hard walls as the field set's
    transform), ``p`` and ``rho`` of ``fields``; ``solver`` does the velocity and density
    sub-solves, ``pressure_solver`` the Poisson ones.  A sub-solve has converged when its solver
    says so or it cut its residual norm to ≤ ``substep_rtol`` × its warm-start value
    (:meth:`converged`; the sub-steps run a small fixed budget of iterations).
    """

    main = "u"

    def __init__(self, fields, *, domain: Box, solver, pressure_solver, sampler: Sampler, boundary_sampler,
                 boundary_weight: float, mean_weight: float, init_sampler: Sampler, velocity0: Callable,
                 density0: Callable | None, nu: float, walls: str, backtrace: str, advection: str,
                 name: str, substep_rtol: float, divergence_weight: float = 0.0,
                 pressure_sampler: Sampler | None = None, init_divergence_weight: float = 0.0):
        self.fields, self.domain, self.name = fields, domain, name
        self.order = 2 if name == "reflection" else 1
        self.solver, self.pressure_solver = solver, pressure_solver
        self.substep_rtol = float(substep_rtol)
        self.fit_advection = advection == "fit" or nu > 0
        self.has_density = "rho" in fields
        bw, hard, nu_ = float(boundary_weight), walls == "hard", float(nu)

        # ---- field evaluation (one point) -------------------------------------------
        vel = fields.fn("u")  # the hard-wall factor is the field set's transform of u
        p_fn = fields.fn("p")

        def pres(params, x):
            return p_fn(params, x)[0]

        if self.has_density:
            r_fn = fields.fn("rho")

            def dens(params, x):
                return r_fn(params, x)[0]
        else:
            dens = None

        # A departure point may leave the box by a hair: u^{n+½} = ũ − (Δt/2)∇p½ has the normal
        # component of the Poisson solve's Neumann error at the walls, so a point within ~1e-5 of
        # a wall traces across it.  Clamping it to the wall zeroes the normal row of ∂X/∂x (the
        # clamp is flat outside) and ∇·(û∘X) jumps: measured at 8e-7 from the wall, a Poisson
        # residual of 38.9 against ≈ 0.1 elsewhere, and that solve failed (loss 1.5 → 0.93).  So
        # the points are only clamped to the box grown by TRACE_MARGIN of its smallest extent:
        # the networks are smooth functions of all of R², and a healthy step's excursions are
        # 1e-5, far inside the margin.
        margin = TRACE_MARGIN * float(min(h - lo for lo, h in zip(domain.lo, domain.hi)))

        def trace(v, x, dt):
            """X(x): the point back-traced from x for a time dt through the velocity function v."""
            if backtrace == "euler":
                return domain.clamp(x - dt * v(x), margin)
            mid = domain.clamp(x - 0.5 * dt * v(x), margin)
            return domain.clamp(x - dt * v(mid), margin)

        def departure(up, x, dt):
            """X(x): the back-traced departure point through the velocity uⁿ (params ``up``)."""
            return trace(lambda y: vel(up, y), x, dt)

        def advected(up, x, dt):
            return vel(up, departure(up, x, dt))

        self._trace, self._departure = trace, departure
        self._vel, self._pres, self._dens = vel, pres, dens

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

        self.pressure_blocks = pressure_blocks(pres, poisson_rhs, pressure_sampler or sampler, boundary_sampler,
                                               neumann_weight=bw, mean_weight=mean_weight)

        def proj_residual(params, x, args):
            a, pp, dt = args
            return vel(params, x) - ustar(a, x) + dt * jax.grad(lambda y: pres(pp, y))(x)

        def divergence_residual(params, x, args):  # ∇·u_θ (a block of the velocity fits)
            return div(lambda y: vel(params, y))(x)[None]

        proj_blocks = [Block(proj_residual, sampler, 1.0, "projection")]
        if divergence_weight > 0:
            # ∇·u_θ = 0 at points of its own: the target u* − Δt∇p is divergence-free only up to
            # the Poisson solve's error, and a fit of it is free between its samples.
            proj_blocks.append(Block(divergence_residual, sampler, float(divergence_weight), "divergence"))
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

        ic_u_blocks = [Block(ic_u_residual, init_sampler, 1.0, "initial_velocity")]
        if init_divergence_weight > 0:
            # The first Poisson solve must remove whatever divergence the fit leaves, divided by Δt.
            ic_u_blocks.append(Block(divergence_residual, init_sampler, float(init_divergence_weight), "divergence"))
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

    # ---- the scheme protocol (insr.engine.Scheme) -----------------------------------

    def state_template(self) -> dict:
        return self.fields.template

    def converged(self, info: dict) -> bool:
        """A sub-solve met its tolerance: its solver's own, or ``substep_rtol`` (see the class)."""
        return bool(info["converged"]) or float(info["loss"]) <= self.substep_rtol**2 * float(info["loss_initial"])

    def initial(self, template, key, solver):
        """Fit the velocity (and density) networks to the initial fields, then solve the initial
        pressure ∇²p = −Σᵢⱼ ∂ⱼuᵢ ∂ᵢuⱼ (that of a divergence-free u), Neumann walls, zero mean."""
        ku, kp, kr = jax.random.split(key, 3)
        log = StageLog()
        u = log.run(Stage("u", self._ic_u_blocks, solver), template["u"], None, ku)
        p = log.run(Stage("p", self._ic_p_blocks, solver), template["p"], u, kp)
        state = {"u": u, "p": p}
        if self.has_density:
            state["rho"] = log.run(Stage("rho", self._ic_rho_blocks, solver), template["rho"], None, kr)
        return state, log.stats

    def step(self, state, t, dt, key):
        return (self._reflection_step if self.name == "reflection" else self._chorin_step)(state, dt, key)

    # ---- the sub-steps ----------------------------------------------------------------

    def _chorin_step(self, state, dt, key):
        ka, kp, ku, kr = jax.random.split(key, 4)
        up, log = state["u"], StageLog(heldout=True)
        if self.fit_advection:
            a = log.run(Stage("adv", self.advection_blocks, self.solver), up, (up, dt), ka)
            guess = a
        else:
            a, guess = (up, dt), up
        p = log.run(Stage("p", self.pressure_blocks, self.pressure_solver), state["p"], (a, dt), kp)
        u = log.run(Stage("u", self.projection_blocks, self.solver), guess, (a, p, dt), ku)
        new = {"u": u, "p": p}
        if self.has_density:
            new["rho"] = log.run(Stage("rho", self.density_blocks, self.solver), state["rho"],
                                 (up, state["rho"], dt), kr)
        return new, log.stats

    def _reflection_step(self, state, dt, key):
        """Advection–reflection (module docstring), every intermediate field composed, not fitted:
        ũ = uⁿ∘X(uⁿ; Δt/2), u^{n+½} = ũ − (Δt/2)∇p½ (the projection, exact given p½), the
        reflection û = 2u^{n+½} − ũ = ũ − Δt∇p½; then uⁿ⁺¹ = P(û∘X(u^{n+½}; Δt/2)).  Two
        Poisson solves and one velocity fit per step; a fitted u^{n+½} would only add its fitting
        error, doubled by the reflection."""
        k1, k2, ku, kr = jax.random.split(key, 4)
        vel, pres, trace, half = self._vel, self._pres, self._trace, dt / 2
        up, log = state["u"], StageLog(heldout=True)

        def u_tilde(x):  # uⁿ advected along itself for Δt/2
            return vel(up, self._departure(up, x, half))

        p_half = log.run(self.pressure_stage("p_half", u_tilde, half), state["p"], None, k1)
        grad_half = lambda x: jax.grad(lambda y: pres(p_half, y))(x)
        u_half = lambda x: u_tilde(x) - half * grad_half(x)

        def u_next(x):  # û = ũ − Δt∇p½, advected along u^{n+½} for Δt/2
            y = trace(u_half, x, half)
            return u_tilde(y) - dt * grad_half(y)

        p = log.run(self.pressure_stage("p", u_next, half, offset=p_half), p_half, None, k2)
        u = log.run(self.projection_stage(u_next, half, offset=p_half), up, p, ku)
        new = {**state, "u": u, "p": p}
        if self.has_density:  # along u^{n+½} for the whole step
            dens, rho_n = self._dens, state["rho"]
            block = Block(lambda params, x, args: (dens(params, x) - dens(rho_n, trace(u_half, x, dt)))[None],
                          self.density_blocks[0].sampler, 1.0, "density")
            new["rho"] = log.run(Stage("rho", (block,), self.solver), rho_n, None, kr)
        return new, log.stats

    def pressure_stage(self, name: str, u_star: Callable, dt, offset=None) -> Stage:
        """Step 3 for a given u* (a function of one point): ∇²p = ∇·u*/Δt, Neumann walls, zero mean.

        With ``offset`` (pressure weights p₀) the equation is shifted to ∇²p = ∇·u*/Δt + ∇²p₀ and
        the projection (:meth:`projection_stage`, same offset) removes Δt∇(p − p₀): the solve
        looks for a small correction of p₀, which a warm start from p₀ reaches in the few
        iterations a sub-step has (advection–reflection: the second projection's own pressure
        is O(Δt) while the physical one is O(1))."""
        if offset is None:
            rhs = lambda args, x: jnp.trace(jax.jacfwd(u_star)(x))[None] / dt
        else:
            lap_offset = laplacian(lambda y: self._pres(offset, y)[None])
            rhs = lambda args, x: jnp.trace(jax.jacfwd(u_star)(x))[None] / dt + lap_offset(x)
        blocks = pressure_blocks(self._pres, rhs, self.pressure_blocks[0].sampler, self.pressure_blocks[1].sampler,
                                 neumann_weight=self.pressure_blocks[1].weight,
                                 mean_weight=self.pressure_blocks[2].weight)
        return Stage(name, blocks, self.pressure_solver)

    def projection_stage(self, u_star: Callable, dt, offset=None) -> Stage:
        """Step 4: fit u_θ ≈ u* − Δt∇(p − p₀) (p₀ = ``offset``, or 0); the solve's ``args`` is p."""
        vel, pres = self._vel, self._pres
        if offset is None:
            grad_p = lambda pp, x: jax.grad(lambda y: pres(pp, y))(x)
        else:
            grad_p = lambda pp, x: jax.grad(lambda y: pres(pp, y) - pres(offset, y))(x)
        blocks = (Block(lambda th, x, pp: vel(th, x) - u_star(x) + dt * grad_p(pp, x),
                        self.projection_blocks[0].sampler, 1.0, "projection"),) + self.projection_blocks[1:]
        return Stage("u", blocks, self.solver)

    def project(self, state, u_star, dt, key):
        """Steps 3–4 for a given u* (a function of one point): Poisson, then projection."""
        kp, ku = jax.random.split(key)
        log = StageLog()
        p = log.run(self.pressure_stage("p", u_star, dt), state["p"], None, kp)
        u = log.run(self.projection_stage(u_star, dt), state["u"], p, ku)
        return {**state, "u": u, "p": p}, log.stats


class FluidStepper(Engine):
    """Advance velocity, pressure (and density) networks by Chorin splitting (module docstring):
    :class:`ChorinScheme` run by the :class:`insr.engine.Engine`.

    Parameters
    ----------
    velocity, pressure, density:
        Networks R² → R², R² → R, R² → R (equinox modules evaluating one point, e.g.
        :class:`insr.fields.Siren`); their array leaves are the state.  ``density`` is optional.
    solver:
        Per-sub-step solver with ``solve(blocks, params0, args, key)``
        (:class:`insr.solvers.LevenbergMarquardt`, the scenarios' setting:
        ``LevenbergMarquardt(**FLUID_SUBSTEP)``).  ``pressure_solver`` (default: ``solver``)
        for the Poisson solve, ``init_solver`` (default: ``LevenbergMarquardt(**FLUID_INITIAL_FIT)``,
        the scenarios' setting; not ``solver``, whose 2–4 sub-step iterations cannot fit a
        random initialisation) for the initial fits.
    sampler:
        Interior points of each sub-step; its ``domain`` (a 2D :class:`~insr.geometry.Box`) is Ω.
        ``pressure_sampler`` (default: ``sampler``) draws those of the Poisson sub-solves alone.
    velocity0, density0:
        Initial fields, functions of points ``(..., 2)`` (e.g.
        :func:`insr.reference.flows.taylor_green_velocity`).  The networks are fitted to them
        by ``init_solver``; the initial pressure solves ∇²p = −Σᵢⱼ ∂ⱼuᵢ ∂ᵢuⱼ (the pressure
        Poisson equation of a divergence-free u) with ∂p/∂n = 0 and zero mean.  The fits are
        judged on held-out points (:meth:`initial_fit_error` ≤ ``init_tolerance``); a miss is
        retried once with the sounder setting of :func:`insr.engine.retry_solver` on fresh
        points, and reported as ``fit_ok``.
    nu, walls, backtrace, advection, scheme:
        See the module docstring.
    init_sampler:
        Interior points of the initial fits (default: ``sampler``).
    boundary_sampler, boundary_weight, mean_weight:
        Wall points (default: 2·√N uniform on the walls) and the weights of the wall
        blocks and of the pressure-mean penalty.
    exact_velocity, exact_pressure:
        Optional ``f(points (n, 2), t) -> (n, 2) / (n,)`` for the error metrics.
    divergence_weight:
        Weight of the ∇·u = 0 block in the projection fit (step 4 of the module docstring);
        0 (default, the paper's fit): none.
    init_divergence_weight:
        Weight of the same block in the initial velocity fit (on ``init_sampler`` points); 0
        (default): none.  For a divergence-free initial velocity it changes no minimiser.
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
                 substep_rtol: float = 0.5, scheme: str = "chorin", divergence_weight: float = 0.0,
                 pressure_sampler: Sampler | None = None, init_divergence_weight: float = 0.0):
        domain = sampler.domain
        if pressure_sampler is not None and pressure_sampler.domain != domain:
            raise ValueError(f"pressure_sampler draws in {pressure_sampler.domain}, not in the sampler's {domain}")
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
        for name, w in (("boundary_weight", boundary_weight), ("mean_weight", mean_weight),
                        ("divergence_weight", divergence_weight), ("init_divergence_weight", init_divergence_weight)):
            if not w >= 0:
                raise ValueError(f"{name} must be ≥ 0, got {w!r}")
        if not 0 < substep_rtol <= 1:
            raise ValueError(f"substep_rtol must be in (0, 1], got {substep_rtol!r}")

        self.domain, self.nu, self.walls, self.backtrace = domain, float(nu), walls, backtrace
        # (``self.scheme`` is the engine's scheme object, a ChorinScheme; its name is scheme_name)
        self.advection, self.scheme_name = advection, scheme
        self.solver = solver
        self.pressure_solver = pressure_solver or solver
        self.has_density = density is not None
        self.dim = 2
        self.exact_velocity, self.exact_pressure, self.reference = exact_velocity, exact_pressure, reference
        self.velocity0, self.density0 = velocity0, density0
        if boundary_sampler is None:
            nb = max(8, int(2 * np.sqrt(sampler.n)))
            boundary_sampler = lambda key: domain.boundary_points(key, nb)

        hard = {"u": lambda out, x: out * hard_wall_mask(domain, x)} if walls == "hard" else {}
        fields = FieldSet({"u": velocity, "p": pressure, "rho": density}, transforms=hard)
        chorin = ChorinScheme(fields, domain=domain, solver=solver, pressure_solver=self.pressure_solver,
                              sampler=sampler, boundary_sampler=boundary_sampler,
                              boundary_weight=boundary_weight, mean_weight=mean_weight,
                              init_sampler=init_sampler or sampler, velocity0=velocity0, density0=density0,
                              nu=self.nu, walls=walls, backtrace=backtrace, advection=advection, name=scheme,
                              substep_rtol=substep_rtol, divergence_weight=divergence_weight,
                              pressure_sampler=pressure_sampler, init_divergence_weight=init_divergence_weight)
        channels = [("u", 2), ("p", 1)] + ([("rho", 1)] if self.has_density else [])
        if init_solver is None:
            init_solver = LevenbergMarquardt(**FLUID_INITIAL_FIT)
        super().__init__(fields, chorin, init_solver=init_solver, init_error=self.initial_fit_error,
                         init_tolerance=init_tolerance, channels=channels,
                         channel_names=("u", "v", "p", "rho") if self.has_density else ("u", "v", "p"),
                         observers=(self.flow_metrics,), time_dtype=jnp.float32)
        self._vel = chorin._vel
        # the sub-steps' residual blocks, as before the engine (read-only: the scheme owns them)
        self.advection_blocks, self.pressure_blocks = chorin.advection_blocks, chorin.pressure_blocks
        self.projection_blocks = chorin.projection_blocks
        if self.has_density:
            self.density_blocks = chorin.density_blocks
        self._project = jax.jit(chorin.project, static_argnums=(1,))
        self._diagnostics = jax.jit(self._diagnostics_impl)
        self.eval_resolution = int(eval_resolution)
        # The r×r cell centres of this stepper's domain ([-1, 1]² in the scenarios, where
        # they equal insr.reference.fluid_grid.evaluation_points(r)).
        self._eval_points = self.domain.cell_centres(self.eval_resolution)
        self._eval_points_j = jnp.asarray(self._eval_points)

    @property
    def substep_rtol(self) -> float:
        """The sub-solves' tolerance (held by the scheme, which judges them)."""
        return self.scheme.substep_rtol

    @property
    def fit_advection(self) -> bool:
        """Whether the advected velocity is fitted (``advection="fit"`` or ν > 0) or composed."""
        return self.scheme.fit_advection

    def initial_fit_error(self, state) -> float:
        """Largest relative L2 error of the velocity (and density) fit against the initial
        fields on held-out points (the 64² cell centres, not the fitted samples)."""
        x = jnp.asarray(self.domain.cell_centres(64))
        vals = np.asarray(self._eval(state, x, self.time(0.0)), np.float64)
        errs = [relative_l2(vals[:, :2], np.asarray(jax.vmap(self.velocity0)(x), np.float64))]
        if self.has_density:
            target = np.asarray(jax.vmap(self.density0)(x), np.float64).reshape(-1)
            errs.append(relative_l2(vals[:, 3], target))
        return max(errs)

    def project(self, state, u_star: Callable, dt: float, key):
        """Project a given field ``u_star`` (a hashable function of one point (2,) → (2,))
        onto divergence-free fields: the Poisson and projection sub-steps alone, starting
        from ``state``'s weights.  Returns ``(state, info)``; for tests and experiments."""
        new, stats = self._project(state, u_star, jnp.float32(dt), key)
        return new, self.info(stats)

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

    def flow_metrics(self, state, t) -> dict:
        """See the module docstring (names, norms, evaluation points)."""
        u, d, w = self._diagnostics(state["u"], self._eval_points_j)
        ref_u = ref_rho = None
        if self.exact_velocity is not None:
            ref_u = np.asarray(self.exact_velocity(self._eval_points.astype(np.float64), float(t)), np.float64)
        elif self.reference is not None:
            ref = self.reference(float(t))
            if ref is not None:
                ref_u = np.asarray(ref["u"], np.float64).reshape(-1, 2)
                if "rho" in ref and self.has_density:
                    ref_rho = np.asarray(ref["rho"], np.float64).reshape(-1)
        out = flow_metrics(u, d, w, self.domain.volume, ref_u)
        if self.exact_pressure is not None or ref_rho is not None:
            vals = np.asarray(self._eval(state, self._eval_points_j, self.time(t)), np.float64)  # points on device
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
        from insr.viz.fluids import write_fluid_outputs

        return write_fluid_outputs(self, traj, Path(run_dir), (cfg or {}).get("plot_times") or None)


# The figures moved to insr.viz.fluids; importable from here as before.
def __getattr__(name):
    if name in ("field_images", "write_fluid_outputs", "write_fluid_paraview"):
        import insr.viz.fluids

        return getattr(insr.viz.fluids, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
