"""Built-in single-field scenarios (``advection1d``, ``heat1d``): a default config (the
schema) and a builder each.

With :mod:`insr.fluids.scenarios` and :mod:`insr.elasticity.scenarios` this is the CLI's
edge: names in a config map to classes there and nowhere else; the library itself is
configured by passing objects.  The name → scenario lookup is :mod:`insr.registry`
(``get`` and ``register`` are re-exported here for older code; ``SCENARIOS`` here lists
only this module's two, ``insr.registry.scenarios()`` all of them).
"""

from __future__ import annotations

import jax

from insr.config import ConfigError
from insr.fields import Siren
from insr.geometry import Interval, Sampler
from insr.integrators import BDF2, RK4, SSPRK3, ExplicitEuler, GaussLegendre4, Heun, ImplicitEuler, Midpoint
from insr.problems import Advection1D, Heat1D
from insr.registry import Scenario, get, register  # noqa: F401  (re-exported: the registry API)
from insr.solvers.config import INIT_ONLY_KEYS, SOLVER_DEFAULTS, make_init_solver, make_solver  # noqa: F401
from insr.stepper import FieldStepper

INTEGRATORS = {"explicit_euler": ExplicitEuler, "implicit_euler": ImplicitEuler, "midpoint": Midpoint,
               "heun": Heun, "ssprk3": SSPRK3, "rk4": RK4, "gauss4": GaussLegendre4,
               "bdf2": BDF2}


def _field_stepper(problem, cfg):
    f = cfg["field"]
    try:
        field = Siren(problem.domain.dim, problem.out_dim, f["width"], f["depth"], omega0=f["omega0"],
                      fast_sine=f["fast_sine"], key=jax.random.PRNGKey(cfg["seed"]))
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    return FieldStepper(problem, field, INTEGRATORS[cfg["integrator"]](), make_solver(cfg),
                        Sampler(problem.domain, cfg["samples"], cfg["sampling"]),
                        boundary_weight=cfg["boundary_weight"], init_solver=make_init_solver(cfg),
                        extrapolate=cfg["extrapolate"], init_tolerance=cfg["init"]["tolerance"])


def _common(dt, steps, samples, width, depth):
    return {
        "field": {"width": width, "depth": depth, "omega0": 30.0, "fast_sine": True},
        "integrator": "midpoint",
        **SOLVER_DEFAULTS,
        "dt": dt,
        "steps": steps,
        "samples": samples,
        "sampling": "uniform",
        "boundary_weight": 1.0,
        "extrapolate": False,
        "seed": 0,
        "save_every": 1,
        "plot_times": [],
    }


def _build_advection(cfg):
    p = cfg["problem"]
    if not p["hi"] > p["lo"]:
        raise ConfigError(f"config key 'problem.hi' must be > problem.lo={p['lo']}, got {p['hi']}")
    if not p["width"] > 0:
        raise ConfigError(f"config key 'problem.width' must be a number > 0, got {p['width']}")
    problem = Advection1D(velocity=p["velocity"], center=p["center"], width=p["width"],
                          domain=Interval(p["lo"], p["hi"]))
    return _field_stepper(problem, cfg)


def _build_heat(cfg):
    p = cfg["problem"]
    if not p["nu"] >= 0:
        raise ConfigError(f"config key 'problem.nu' must be a number ≥ 0, got {p['nu']}")
    return _field_stepper(Heat1D(nu=p["nu"]), cfg)


SCENARIOS: list[Scenario] = [
    Scenario(
        "advection1d",
        "1D advection of a Gaussian, a=0.25 on [-2,2], midpoint rule, 240 steps (paper Sec. 5.1)",
        {"scenario": "advection1d",
         "problem": {"velocity": 0.25, "center": -1.5, "width": 0.1, "lo": -2.0, "hi": 2.0},
         **_common(0.05, 240, 5000, 20, 2), "plot_times": [0.0, 4.0, 8.0, 12.0]},
        _build_advection),
    Scenario(
        "heat1d",
        "1D heat equation u_t = nu*u_xx on [0,1] with exact solution exp(-nu*pi^2*t)*sin(pi*x)",
        {"scenario": "heat1d", "problem": {"nu": 0.1}, **_common(0.01, 50, 1000, 16, 2),
         "plot_times": [0.0, 0.25, 0.5]},
        _build_heat),
]
