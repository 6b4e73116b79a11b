"""The engine every neural simulation runs through.

A simulation is a :class:`FieldSet` (named networks whose weights are the state), a *scheme*
(what one step and the initial fit solve: a sequence of :class:`Stage` sub-solves, composed in
plain Python and traced once under ``jax.jit``) and an :class:`Engine` that owns the rest: the
compiled step, the judged-and-retried initial fit, the state template that checkpoints are
read into, evaluation, the per-step report (:func:`step_info`) and the metrics observers.
:func:`insr.simulate.simulate` is the one time loop that drives it.

Where to add what:

* a PDE of the form ∂u/∂t = L(u): an :class:`insr.problems.EvolutionProblem` (its scheme is
  :class:`insr.stepper.EvolutionScheme` and friends);
* a new scheme (a splitting, a multi-field system): a class with ``initial`` and ``step``
  (see :class:`Scheme`) that runs :class:`Stage` s; :class:`insr.fluids.stepper.ChorinScheme`
  is the worked example with three networks and four sub-solves;
* a solver: any object with ``solve(blocks, params0, args, key) -> (params, SolveStats)``
  (:mod:`insr.solvers`), held by the stage.
"""

from insr.engine.core import Engine, Scheme, judged_initial_fit, relative_l2, retry_solver
from insr.engine.fields import FieldSet
from insr.engine.stage import Stage, StageLog, step_info

__all__ = ["Engine", "FieldSet", "Scheme", "Stage", "StageLog", "judged_initial_fit", "relative_l2", "retry_solver",
           "step_info"]
