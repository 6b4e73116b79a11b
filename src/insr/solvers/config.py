"""Solver settings shared by the field and fluid scenarios, and the config → solver edge.

``SOLVER_DEFAULTS`` is the ``solver`` / ``lm`` / ``adam`` / ``init`` part of a scenario's
config; :func:`make_solver` and :func:`make_init_solver` turn a validated config into
solver objects (the only place where the names "lm" and "adam" map to classes).
"""

from __future__ import annotations

from insr.config import ConfigError
from insr.solvers.adam_plateau import AdamPlateau
from insr.solvers.levenberg_marquardt import LevenbergMarquardt
from insr.solvers.matrix_free import MatrixFreeLM

__all__ = ["SOLVER_DEFAULTS", "INIT_ONLY_KEYS", "LINEAR_SOLVERS", "LM_LINEAR_DEFAULTS", "make_lm", "make_solver",
           "make_init_solver"]

#: How the damped Gauss–Newton system of each LM iteration is solved: "cholesky" (dense
#: JᵀJ, :class:`LevenbergMarquardt`) or "cg" (matrix-free, :class:`MatrixFreeLM`).
LINEAR_SOLVERS = ("cholesky", "cg")
#: The ``lm`` table's keys that choose and bound the linear solve (every scenario has them).
#: cg_max_iters / cg_rtol: the inexact-Newton bounds of each CG solve; cg_chunk: points whose
#: Jacobians exist at once while the Jacobi preconditioner is accumulated;
#: cg_precondition_every: accepted steps between its refreshes (0: once per solve);
#: cg_curvature_fraction: the share of the points the CG products use.
LM_LINEAR_DEFAULTS = {"linear_solver": "cholesky", "cg_max_iters": 100, "cg_rtol": 1e-2, "cg_chunk": 256,
                      "cg_precondition_every": 0, "cg_curvature_fraction": 1.0}
# ``lm`` table key → MatrixFreeLM field (its defaults are the table's).
_CG_FIELDS = {"cg_max_iters": "cg_max_iters", "cg_rtol": "cg_rtol", "cg_chunk": "chunk",
              "cg_precondition_every": "precondition_every", "cg_curvature_fraction": "curvature_fraction"}


def make_lm(table: dict) -> LevenbergMarquardt | MatrixFreeLM:
    """The Levenberg–Marquardt solver an ``lm`` table describes (ValueError naming the key)."""
    table = dict(table)
    linear = table.pop("linear_solver", "cholesky")
    cg = {_CG_FIELDS[k]: table.pop(k) for k in _CG_FIELDS if k in table}
    if linear == "cholesky":
        return LevenbergMarquardt(**table)
    if linear == "cg":
        # Combinations are config errors (one line from the CLI), named by their keys.
        if int(table.pop("jacobian_every", 1)) != 1:
            raise ConfigError("config key 'lm.jacobian_every' must be 1 with lm.linear_solver = 'cg' (no Jacobian "
                              "is stored to reuse)")
        if table.pop("trace", False):  # the fluid tables carry every LevenbergMarquardt field
            raise ConfigError("config key 'lm.trace' must be false with lm.linear_solver = 'cg' (the trace is "
                              "the dense solver's)")
        return MatrixFreeLM(**table, **cg)
    raise ConfigError(f"config key 'lm.linear_solver' must be one of {', '.join(map(repr, LINEAR_SOLVERS))}, "
                      f"got {linear!r}")

SOLVER_DEFAULTS = {
    "solver": "lm",
    # Per step: stop when the residual is 1e-3 × its warm-start value (for the midpoint
    # rule that is |L(uⁿ)|, the size of ∂u/∂t), at most 30 iterations.  Measured on the
    # paper's advection, seed 0, 240 steps, one machine: rtol 1e-3 → 2.7 iterations/step,
    # every step meets it, MAE 3.70e-3 (the midpoint rule's floor is 3.66e-3) in 106 s;
    # rtol 3e-4 → 20 iterations/step, 34 steps at the cap, MAE 3.67e-3 in 430 s; rtol 1e-3
    # without geodesic acceleration → 5.6 iterations/step, 6 misses, MAE 3.96e-3.
    "lm": {"max_iters": 30, "ftol": 1e-5, "gtol": 0.0, "atol": 0.0, "rtol": 1e-3, "tau": 1e-6, "geodesic": 0.75,
           "linear_dtype": "float32", "jacobian_every": 1, **LM_LINEAR_DEFAULTS},
    "adam": {"lr": 1e-4, "factor": 0.1, "patience": 500, "threshold": 1e-4, "min_lr": 1.1e-8, "max_iters": 20000},
    # The initial fit starts from a random initialisation: geodesic acceleration on, and
    # ``tolerance`` = the relative L2 error on held-out points it must reach (else it is
    # retried, then the run stops with an error).
    "init": {"max_iters": 200, "ftol": 1e-9, "rtol": 1e-5, "jacobian_every": 1, "geodesic": 0.75,
             "tolerance": 1e-3},
}

#: Keys of the ``init`` table that are not LevenbergMarquardt arguments.
INIT_ONLY_KEYS = ("tolerance",)


def make_solver(cfg: dict, max_iters: int | None = None) -> LevenbergMarquardt | MatrixFreeLM | AdamPlateau:
    """The per-step solver named by ``cfg["solver"]`` with its table's settings (its
    iteration cap replaced by ``max_iters`` where given)."""
    cap = {} if max_iters is None else {"max_iters": int(max_iters)}
    if cfg["solver"] == "lm":
        return make_lm({**cfg["lm"], **cap})
    return AdamPlateau(**{**cfg["adam"], **cap})


def make_init_solver(cfg: dict) -> LevenbergMarquardt | MatrixFreeLM:
    """The initial condition is always fitted by LM (for Adam too: fitting u0 is not what is
    compared), with the ``init`` table over the ``lm`` one (its linear solver included)."""
    init = {k: v for k, v in cfg["init"].items() if k not in INIT_ONLY_KEYS}
    return make_lm({**cfg["lm"], **init})
