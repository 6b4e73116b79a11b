"""Built-in 2D fluid scenarios: ``taylor_green`` and ``two_vortices`` (Chen et al., ICML 2023, Sec. 5.2).

:mod:`insr.registry` lists them from ``SCENARIOS`` below; this module imports no other
scenario module.

Defaults (both scenarios)
-------------------------
- Networks: the paper's, SIRENs with 3 hidden layers of width 32 for velocity (3,330
  parameters) and pressure (3,297), 25.9 KiB together; the density net of two_vortices
  has the same shape.  ``omega0 = 5`` instead of SIREN's usual 30: on [−1, 1]² with ω0 = 30
  and a few thousand fixed points per solve, Levenberg–Marquardt fits high-frequency
  modes between the points (measured, Taylor–Green initial fit with 2,000 points:
  velocity MSE 1.4e-5 and max |∇·u| 3.4 at ω0 = 30, against 4.8e-10 and 0.008 at ω0 = 5;
  the Neumann Poisson solve returned a wrong pressure at ω0 = 30).  Set
  ``velocity.omega0=30`` to use the paper's value.
  ``velocity.kind`` (and ``pressure.kind``, ``density.kind``) = "fourier" or "grid" picks
  another family, with the keys of :mod:`insr.field_tables` (a grid spans the domain).
- Samples: ``samples = 1000`` uniform points per sub-step (new points every solve),
  ``boundary_samples = 64`` wall points, ``init_samples = 2000`` for the initial fits.
  Measured on Taylor–Green, 6 steps: 1,000, 2,000 and 4,000 points give the same
  error (rel. L2 3.9e-3, the Chorin splitting error at Δt = 0.05, which a 256² grid
  also shows), at 3.4, 6.1 and 15 s per step on 2 shared cores; the cost of each
  LM iteration is dominated by JᵀJ (rows × P², P ≈ 3,300).  The paper does not
  state a per-step count comparable to ours (it resamples every Adam iteration);
  raise ``samples`` freely.
- Solver: LM with at most ``lm.max_iters = 2`` iterations per sub-step (4 for two_vortices) and
  ``lm.tau = 1e-4`` (initial damping relative to max diag JᵀJ; the library default
  1e-6 made the warm-started Poisson solve reject its first several steps); the
  initial fits use ``init.max_iters = 20`` (Taylor–Green: velocity and pressure MSE
  8e-10 against the exact fields; one step adds 1e-8).  These are
  :data:`insr.fluids.FLUID_SUBSTEP` and :data:`insr.fluids.FLUID_INITIAL_FIT`, the settings a
  :class:`FluidStepper` built in Python gets by default.  ``solver = "adam"`` selects
  the paper's Adam loop instead.
- Splitting: ``problem.advection = "compose"`` (u* = uⁿ∘X used exactly; ``"fit"`` is
  the paper's extra least-squares fit of u*), ``problem.backtrace = "euler"`` (the
  paper's; with Chorin's splitting ``"rk2"`` barely changes the error at Δt = 0.05, 8.95e-5
  against 9.2e-5 on Taylor–Green, but ``problem.scheme = "reflection"`` needs it: it is
  refused with Euler's first-order trace, which set that scheme's error), ``problem.walls = "hard"``
  (u·n = 0 by construction; ``"penalty"`` adds a wall block).

Run time (2 shared cores, measured): taylor_green ~5.5 s per step after a ~65 s initial
fit and ~40 s of compilation, so the 100 steps take ~11 min; after 20 steps the velocity
MSE is 4.3e-6 against 4.2e-6 for the 48² grid of the same memory (read bicubically; 6.2e-6
read bilinearly) and 4.2e-6 for a 512² grid (``benchmarks/taylor_green.py``).  two_vortices
~16 s per step (4,000 points, LM ≤ 4 iterations, see below; loaded cores) after a ~110 s
initial fit, ~15 min for 50 steps.

two_vortices
------------
Finer features than Taylor–Green (a 4×4 pattern of cells of size 1/4, a density blob of
width 0.08, vorticity jumps on the quadrant edges), so its defaults raise ``omega0`` to 8
for all three networks, ``samples`` to 4000 and ``init.max_iters`` to 40 (initial
velocity rel. L2 error 1.0 % against the analytic field; 23 % with ω0 = 5 and 20
iterations; ω0 = 15 with 1,000 points fitted better at t = 0 but its error grew 5× in
5 steps).  A smooth network cannot follow the vorticity jumps: the autodiff divergence
stays at RMS ~0.02 (Taylor–Green: 1e-3) and the projection cannot lower it.  Errors are
measured against a :class:`GridReference` run of ``problem.reference_grid`` = 256 cells
per side (the paper's reference is 1024²; 0 turns it off): after 20 steps rel. L2 4.3 %
for the velocity, density MSE 3.2e-5 (mean ρ² is 5.0e-3).
"""

from __future__ import annotations

import dataclasses
import math

import jax

from insr.config import ConfigError, merge
from insr.field_tables import FIELD_KIND_DEFAULTS, network_from_table
from insr.fluids.stepper import ADVECTIONS, BACKTRACES, FLUID_INITIAL_FIT, FLUID_SUBSTEP, SCHEMES, WALLS, FluidStepper
from insr.geometry import Box, Sampler
from insr.reference import flows
from insr.reference.fluid_grid import GridEuler2D, evaluation_points, sample_density, sample_velocity
from insr.registry import Scenario
from insr.solvers import AdamPlateau, LevenbergMarquardt
from insr.solvers.config import LM_LINEAR_DEFAULTS, make_init_solver, make_solver

DOMAIN = Box((-1.0, -1.0), (1.0, 1.0))


def _solver_defaults(cls, **overrides) -> dict:
    """A solver dataclass's fields and defaults as a config table (``name`` excluded)."""
    return {**{f.name: f.default for f in dataclasses.fields(cls) if f.name != "name"}, **overrides}


# The sub-step and initial-fit settings are FLUID_SUBSTEP and FLUID_INITIAL_FIT (why: there),
# the ones a FluidStepper built in Python gets by default.  The ``init`` table holds what the
# initial fits change over the ``lm`` one (``tau`` is shared), and ``tolerance``: the relative
# L2 error on held-out grid points they must reach.
_LM = _solver_defaults(LevenbergMarquardt, **FLUID_SUBSTEP, **LM_LINEAR_DEFAULTS)
_INIT = {**{k: v for k, v in FLUID_INITIAL_FIT.items() if _LM.get(k) != v}, "tolerance": 1e-2}
_ADAM = _solver_defaults(AdamPlateau)  # the paper's Adam + ReduceLROnPlateau settings


def _net(width=32, depth=3, omega0=5.0):
    """A network table: a SIREN by default; ``kind`` and the other families' keys as in :mod:`insr.field_tables`."""
    return {"width": width, "depth": depth, "omega0": omega0, "fast_sine": True, **FIELD_KIND_DEFAULTS}


def _common(dt: float, steps: int) -> dict:
    return {
        "velocity": _net(),
        "pressure": _net(),
        "solver": "lm",
        "lm": dict(_LM),
        "adam": dict(_ADAM),
        "init": dict(_INIT),
        "dt": dt,
        "steps": steps,
        "samples": 1000,
        "boundary_samples": 64,
        "init_samples": 2000,
        "sampling": "uniform",
        "boundary_weight": 1.0,
        "mean_weight": 1.0,
        "eval_resolution": 256,
        # A sub-solve meets its tolerance when it cut its residual to ≤ this × the warm
        # start (they run a fixed budget of lm.max_iters iterations).  Measured on
        # Taylor–Green: velocity fits reach 0.13–0.25 in 2 iterations, pressure solves
        # 0.14–0.28 once the flow has settled, 0.55–1.0 (every iteration rejected) in
        # the first steps — those are the ones this reports.
        "substep_rtol": 0.5,
        # The pressure (Poisson) sub-solve's iteration cap; 0: the per-step solver's own
        # (lm.max_iters / adam.max_iters).  Advection-reflection needs more there than the other
        # sub-solves: it doubles what a projection leaves undone, and with a shared cap of 4
        # Taylor-Green seed 1 diverged (pressure loss 0.19 -> 120 in 10 steps); with 8 for the
        # pressure seeds 0-2 end at 9.4-9.5e-6 (README, "Taylor-Green").
        "pressure_max_iters": 0,
        # Interior points of each pressure (Poisson) sub-solve; 0: ``samples``.  The pressure
        # network has 3,297 weights: on 1,000 points its held-out Poisson loss is 3-17× the
        # sampled one (Taylor-Green, advection-reflection); 4,000 brought that to 2-3× but the
        # held-out loss itself did not fall, nor the velocity error much (README, "Taylor-Green").
        "pressure_samples": 0,
        # Weight of a ∇·u = 0 block in the velocity (projection) fit, on points of its own;
        # 0: none (the paper's fit).
        "divergence_weight": 0.0,
        # Weight of the same block in the initial velocity fit, on its points; 0: none.  The
        # first Poisson solve must remove the initial fit's divergence divided by Δt (README,
        # "Taylor-Green": advection-reflection, a 5-step probe of seed 1).
        "init_divergence_weight": 0.0,
        "seed": 0,
        "save_every": 1,
        "plot_times": [],
    }


# scheme: "chorin" (the paper's first-order splitting) or "reflection" (advection–reflection,
# second order; nu = 0 and advection = "compose").
_PROBLEM = {"nu": 0.0, "walls": "hard", "backtrace": "euler", "advection": "compose", "scheme": "chorin"}

TAYLOR_GREEN_DEFAULTS = {
    "scenario": "taylor_green",
    "problem": dict(_PROBLEM),
    **_common(0.05, 100),
    "plot_times": [0.0, 2.5, 5.0],
}

TWO_VORTICES_DEFAULTS = {
    "scenario": "two_vortices",
    # The midpoint back-trace (second order), as the reference grid and the same-memory grids
    # use: with Euler's trace (the paper's) ours solved another scheme than its reference, and
    # that difference was most of our error at t = 2.5 (velocity MSE 3.2–4.0e-5 over seeds 0–4;
    # rk2: 1.08e-5 / 1.31e-5, seeds 0 / 1, measured 2026-12-04; the 48² bicubic grid 1.54e-5).
    "problem": {**_PROBLEM, "smooth": True, "reference_grid": 256, "backtrace": "rk2"},
    **_common(0.05, 50),
    # Finer features than Taylor–Green (cells of size 1/4, a blob of width 0.08, vorticity
    # jumps on the quadrant edges): higher ω0, more points and a longer initial fit.
    "velocity": _net(omega0=8.0),
    "pressure": _net(omega0=8.0),
    "density": _net(omega0=8.0),
    # 4,000 points per sub-step: with 2,000 the velocity MSE at t = 2.5 spread 9.3e-6 - 1.9e-5
    # over seeds 0-4 (max/median 1.70; seed 3's divergence doubled over the last 10 steps and
    # it lost to the 48^2 grid read bilinearly, 1.54e-5); with 4,000 it spread 4.1e-6 - 5.8e-6
    # (median 5.6e-6, max/median 1.03; the 48^2 grid read bicubically: 9.8e-6), at ~1.3x the
    # time per step.
    "samples": 4000,
    "init": {**_INIT, "max_iters": 40},
    # ≤ 4 LM iterations per sub-step (Taylor–Green needs 2): with 2 the pressure solve
    # barely lowered the divergence here, and whether the run survived depended on the
    # sample points — with seed 0 the RMS divergence grew ×1.3 per step (0.021 → 2.8 by
    # step 50, kinetic energy +28 %).  With 4: RMS divergence 0.016–0.027 over 12 steps.
    "lm": {**_LM, "max_iters": 4},
    "plot_times": [0.0, 1.25, 2.5],
}


# --------------------------------------------------------------------------------------
# Reference for flows without a closed form
# --------------------------------------------------------------------------------------


class GridReference:
    """A :class:`~insr.reference.fluid_grid.GridEuler2D` run used as the reference of a
    neural run: ``ref(t)`` advances the grid (lazily, from t = 0 or its last time) to
    ``t`` and returns ``{"u": (r², 2), "rho": (r²,)}`` sampled bilinearly at the r×r
    cell centres :func:`~insr.reference.fluid_grid.evaluation_points`, or ``None``
    when ``t`` is not a whole number of steps.  Only the current grid state is kept.
    """

    def __init__(self, n: int, velocity0, dt: float, *, density0=None, nu: float = 0.0, resolution: int = 256,
                 scheme: str = "chorin"):
        self.solver = GridEuler2D(n, nu, scheme=scheme)
        self.velocity0, self.density0, self.dt = velocity0, density0, float(dt)
        self.points = evaluation_points(resolution)
        self._state, self._step = None, 0

    def __call__(self, t: float):
        k = round(t / self.dt)
        if abs(k * self.dt - t) > 1e-9 * max(1.0, abs(t)) or k < 0:
            return None
        if self._state is None or self._step > k:
            self._state, self._step = self.solver.initial_state(self.velocity0, self.density0), 0
        if self._step < k:  # the missing steps, in the one time loop (GridEuler2D.run → insr.simulate)
            self._state = self.solver.run(self._state, self.dt, k - self._step).final
            self._step = k
        out = {"u": sample_velocity(self._state, self.points).reshape(-1, 2)}
        if self._state.density is not None:
            out["rho"] = sample_density(self._state, self.points).reshape(-1)
        return out


# --------------------------------------------------------------------------------------
# Builders
# --------------------------------------------------------------------------------------


def _choice(cfg, dotted, allowed):
    section, key = dotted.split(".")
    value = cfg[section][key]
    if value not in allowed:
        raise ConfigError(f"config key '{dotted}' must be one of {', '.join(map(repr, allowed))}, got {value!r}")
    return value


def _network(cfg, name, out_dim, seed_offset):
    """The network of the table ``cfg[name]`` on the domain (a grid spans [−1, 1]²); its values'
    ranges were checked by :data:`insr.config.RULES` in :func:`_validate`."""
    return network_from_table(cfg[name], 2, out_dim, key=jax.random.PRNGKey(cfg["seed"] * 3 + seed_offset),
                              lo=DOMAIN.lo, hi=DOMAIN.hi, name=name)


def _validate(cfg: dict, defaults: dict) -> dict:
    """Check ``cfg`` against the scenario's defaults (unknown keys, types, RULES) and the
    fluid-specific rules; returns the full config."""
    cfg = merge(defaults, cfg)
    p = cfg["problem"]
    if not (math.isfinite(p["nu"]) and p["nu"] >= 0):
        raise ConfigError(f"config key 'problem.nu' must be a number ≥ 0, got {p['nu']!r}")
    _choice(cfg, "problem.walls", WALLS)
    _choice(cfg, "problem.backtrace", BACKTRACES)
    _choice(cfg, "problem.advection", ADVECTIONS)
    if _choice(cfg, "problem.scheme", SCHEMES) == "reflection":
        if p["nu"] > 0 or p["advection"] != "compose":
            raise ConfigError("config key 'problem.scheme' = 'reflection' needs problem.nu = 0 and problem.advection "
                              f"= 'compose', got nu = {p['nu']!r}, advection = {p['advection']!r}")
        if p["backtrace"] != "rk2":
            # Euler's trace is first order and was the whole error of the second-order scheme:
            # Taylor-Green at t = 5 ended at 9.5e-6 with it (three seeds), as the MAC grid does
            # with the same trace (9.4e-6); with the midpoint trace it ended at 4.4e-8 - 8.0e-8
            # (seeds 0-2, median 7.0e-8; README, "Taylor-Green").
            raise ConfigError("config key 'problem.backtrace' = 'euler' with problem.scheme = 'reflection': "
                              "Euler's back-trace is first order and would set the error of the second-order "
                              "scheme; set problem.backtrace = 'rk2' (the midpoint trace, as the grids use)")
    for key in ("init_samples", "eval_resolution"):
        if cfg[key] < 1:
            raise ConfigError(f"config key '{key}' must be an integer ≥ 1, got {cfg[key]!r}")
    if not 0 < cfg["substep_rtol"] <= 1:
        raise ConfigError(f"config key 'substep_rtol' must be a number in (0, 1], got {cfg['substep_rtol']!r}")
    if not cfg["mean_weight"] >= 0:
        raise ConfigError(f"config key 'mean_weight' must be a number ≥ 0, got {cfg['mean_weight']!r}")
    if "reference_grid" in p and p["reference_grid"] != 0 and p["reference_grid"] < 4:
        raise ConfigError(f"config key 'problem.reference_grid' must be 0 (none) or an integer ≥ 4, "
                          f"got {p['reference_grid']!r}")
    return cfg


def _stepper(cfg: dict, velocity0, *, density0=None, exact_velocity=None, exact_pressure=None, reference=None):
    p = cfg["problem"]
    nb = cfg["boundary_samples"]
    return FluidStepper(
        _network(cfg, "velocity", 2, 0), _network(cfg, "pressure", 1, 1), make_solver(cfg),
        Sampler(DOMAIN, cfg["samples"], cfg["sampling"]),
        pressure_solver=make_solver(cfg, cfg["pressure_max_iters"]) if cfg["pressure_max_iters"] else None,
        pressure_sampler=Sampler(DOMAIN, cfg["pressure_samples"], cfg["sampling"]) if cfg["pressure_samples"] else None,
        velocity0=velocity0,
        density=_network(cfg, "density", 1, 2) if density0 is not None else None, density0=density0,
        nu=p["nu"], walls=p["walls"], backtrace=p["backtrace"], advection=p["advection"], scheme=p["scheme"],
        boundary_sampler=lambda key: DOMAIN.boundary_points(key, nb),
        boundary_weight=cfg["boundary_weight"], mean_weight=cfg["mean_weight"],
        init_solver=make_init_solver(cfg), init_sampler=Sampler(DOMAIN, cfg["init_samples"], cfg["sampling"]),
        exact_velocity=exact_velocity, exact_pressure=exact_pressure, reference=reference,
        eval_resolution=cfg["eval_resolution"], init_tolerance=cfg["init"]["tolerance"],
        substep_rtol=cfg["substep_rtol"], divergence_weight=cfg["divergence_weight"],
        init_divergence_weight=cfg["init_divergence_weight"])


def build_taylor_green(cfg: dict) -> FluidStepper:
    """Taylor–Green vortex u = (sin X cos Y, −cos X sin Y)/π, X = π(x+1), Y = π(y+1); with
    ν > 0 the exact solution decays as exp(−2νπ²t) (:mod:`insr.reference.flows`)."""
    cfg = _validate(cfg, TAYLOR_GREEN_DEFAULTS)
    nu = cfg["problem"]["nu"]
    return _stepper(cfg, flows.taylor_green_velocity,
                    exact_velocity=lambda x, t: flows.taylor_green_viscous(x, t, nu),
                    exact_pressure=lambda x, t: flows.taylor_green_viscous_pressure(x, t, nu))


def build_two_vortices(cfg: dict) -> FluidStepper:
    """Two vortex systems of different scale plus a passive density blob
    (:func:`insr.reference.flows.two_vortices_velocity`); errors against a grid run of
    ``problem.reference_grid`` cells per side (0: none; the paper's reference is 1024)."""
    cfg = _validate(cfg, TWO_VORTICES_DEFAULTS)
    p = cfg["problem"]
    smooth = p["smooth"]
    u0 = lambda x: flows.two_vortices_velocity(x, smooth=smooth)
    reference = None
    if p["reference_grid"]:
        reference = GridReference(p["reference_grid"], u0, cfg["dt"], density0=flows.two_vortices_density,
                                  nu=p["nu"], resolution=cfg["eval_resolution"], scheme=p["scheme"])
    return _stepper(cfg, u0, density0=flows.two_vortices_density, reference=reference)


_SUMMARIES = {
    "taylor_green": "2D Euler: Taylor-Green vortex on [-1,1]^2, Chorin splitting, dt=0.05, 100 steps (paper Sec. 5.2)",
    "two_vortices": "2D Euler: two vortices of different scale + passive density, dt=0.05, 50 steps (paper Sec. 5.2)",
}


FLUID_SCENARIOS: list[Scenario] = [
    Scenario("taylor_green", _SUMMARIES["taylor_green"], TAYLOR_GREEN_DEFAULTS, build_taylor_green),
    Scenario("two_vortices", _SUMMARIES["two_vortices"], TWO_VORTICES_DEFAULTS, build_two_vortices),
]
SCENARIOS = FLUID_SCENARIOS  # what the registry reads
