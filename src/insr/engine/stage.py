"""One sub-solve of a time step, and the report of a step made of several.

A :class:`Stage` is one least-squares (or energy) problem for the weights of one field: the
residual :class:`~insr.solvers.objective.Block` s (each with its sampler and weight) and the
solver that minimises them.  A scheme's step runs its stages in order inside one traced
function, recording each solve's :class:`~insr.solvers.levenberg_marquardt.SolveStats` in a
:class:`StageLog`; on the host :func:`step_info` turns them into the row that
:func:`insr.simulate.simulate` writes to ``metrics.csv``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import jax
import numpy as np

from insr.solvers.levenberg_marquardt import SolveStats, stop_reason_name
from insr.solvers.objective import loss_value, sample_blocks


@dataclass(frozen=True)
class Stage:
    """Minimise Σ_k w_k·mean_{x∈M_k}|r_k(θ; x)|² over θ, from a warm start, with ``solver``.

    ``name`` labels the stage in the step report (``<name>_iterations``, ``<name>_loss``);
    ``blocks`` are the residual blocks (:class:`~insr.solvers.objective.Block`); ``solver``
    any object with ``solve(blocks, params0, args, key) -> (params, SolveStats)``.
    """

    name: str
    blocks: tuple
    solver: Any

    def solve(self, guess, args, key):
        return self.solver.solve(tuple(self.blocks), guess, args, key)


# Salt of the held-out points' key: fold_in(key, HELDOUT_SALT) draws points independent of the
# solve's own (the solvers draw theirs from split(key)).
HELDOUT_SALT = 0x4E1D


class StageLog:
    """Run stages and keep their stats by name, in order (inside a traced step).

    With ``heldout=True`` each stage's objective is also evaluated at its solution on fresh
    points (same blocks and samplers, key ``fold_in(key, HELDOUT_SALT)``) and kept as
    ``SolveStats.heldout``: the solve's loss measures the fit on its own sample only, and a
    network with about as many weights as residual rows can fit those while missing the points
    between.  One residual evaluation per stage, no Jacobian; it does not change the solve.
    """

    def __init__(self, heldout: bool = False):
        self.stats: dict[str, SolveStats] = {}
        self.heldout = bool(heldout)

    def run(self, stage: Stage, guess, args, key):
        if stage.name in self.stats:
            raise ValueError(f"stage name {stage.name!r} used twice in one step")
        params, stats = stage.solve(guess, args, key)
        if self.heldout:
            blocks = tuple(stage.blocks)
            points = sample_blocks(blocks, jax.random.fold_in(key, HELDOUT_SALT))
            stats = stats._replace(heldout=loss_value(blocks, points, params, args))
        self.stats[stage.name] = stats
        return params


def step_info(stats: Mapping[str, SolveStats], main: str | None = None,
              converged: Callable[[dict], bool] | None = None) -> dict:
    """The report of one step (or initial fit) made of the solves in ``stats`` (name → stats).

    ``iterations``, ``rejected`` (and ``cg_iterations`` when an iterative linear solver ran)
    add up over the solves; ``loss_initial``/``loss`` are the ``main`` solve's (default: the
    last); ``converged`` holds when every solve met its tolerance — the solver's own, or the
    judge ``converged(solve_info)`` a scheme passes (a fluid sub-step counts as converged when
    it cut its residual enough); ``stop`` is the stop reason of the first solve that did not
    converge (the main solve's when all did).  With more than one solve the row also carries
    ``<name>_iterations`` and ``<name>_loss`` for each.  Solves run by a ``StageLog(heldout=True)``
    add their held-out loss: ``heldout_loss`` (the ``main`` solve's) and ``<name>_heldout``.
    """
    if not stats:
        raise ValueError("step_info: no solves to report")
    per = {}
    for name, s in stats.items():
        info = {"iterations": int(s.iterations), "rejected": int(s.rejected),
                "loss_initial": float(s.loss_initial), "loss": float(s.loss),
                "converged": bool(s.converged), "stop": stop_reason_name(s.reason), "inner": int(s.inner),
                "heldout": float(s.heldout)}
        info["ok"] = bool(converged(info)) if converged is not None else info["converged"]
        per[name] = info
    main = main if main is not None else list(per)[-1]
    first_miss = next((i for i in per.values() if not i["ok"]), None)
    out = {"iterations": sum(i["iterations"] for i in per.values()),
           "rejected": sum(i["rejected"] for i in per.values()),
           "loss_initial": per[main]["loss_initial"], "loss": per[main]["loss"],
           "converged": first_miss is None,
           "stop": (first_miss or per[main])["stop"]}
    inner = [i["inner"] for i in per.values() if i["inner"] >= 0]
    if inner:  # an iterative linear solver says how much it worked
        out["cg_iterations"] = sum(inner)
    if np.isfinite(per[main]["heldout"]):
        out["heldout_loss"] = per[main]["heldout"]
    if len(per) > 1:
        for name, i in per.items():
            out[f"{name}_iterations"] = i["iterations"]
            out[f"{name}_loss"] = i["loss"]
            if np.isfinite(i["heldout"]):
                out[f"{name}_heldout"] = i["heldout"]
    return out
