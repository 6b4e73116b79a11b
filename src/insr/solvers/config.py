"""Solver settings shared by the field and fluid scenarios, and the config → solver edge.

``SOLVER_DEFAULTS`` is the ``solver`` / ``lm`` / ``adam`` / ``init`` part of a scenario's
config; :func:`make_solver` and :func:`make_init_solver` turn a validated config into
solver objects (the only place where the names "lm" and "adam" map to classes).
"""

from __future__ import annotations

from insr.config import ConfigError
from insr.solvers.adam_plateau import AdamPlateau
from insr.solvers.levenberg_marquardt import INITIAL_FIT, LevenbergMarquardt
from insr.solvers.matrix_free import MatrixFreeLM

__all__ = ["SOLVER_DEFAULTS", "LM_FIELDS", "lm_table", "INIT_ONLY_KEYS", "LINEAR_SOLVERS", "LM_LINEAR_DEFAULTS",
           "make_lm", "make_solver", "make_init_solver"]

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

#: The ``lm`` table's keys that are :class:`LevenbergMarquardt` fields.
LM_FIELDS = ("max_iters", "ftol", "gtol", "atol", "rtol", "tau", "geodesic", "linear_dtype", "jacobian_every")


def lm_table(solver: LevenbergMarquardt) -> dict:
    """A :class:`LevenbergMarquardt`'s settings as an ``lm`` config table (dense linear solve)."""
    return {**{k: getattr(solver, k) for k in LM_FIELDS}, **LM_LINEAR_DEFAULTS}


SOLVER_DEFAULTS = {
    "solver": "lm",
    # The per-step and initial-fit settings are LevenbergMarquardt.per_step() and
    # .initial_fit() (measured there, insr.solvers.levenberg_marquardt.PER_STEP).
    "lm": lm_table(LevenbergMarquardt.per_step()),
    "adam": {"lr": 1e-4, "factor": 0.1, "patience": 500, "threshold": 1e-4, "min_lr": 1.1e-8, "max_iters": 20000},
    # ``tolerance`` = the relative L2 error on held-out points the initial fit must reach
    # (else it is retried, then the run stops with an error).
    "init": {**INITIAL_FIT, "jacobian_every": 1, "tolerance": 1e-3},
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
