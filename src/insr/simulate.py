"""The one time loop: initial fit, steps, metrics, checkpoints, progress, resume.

``simulate(stepper, ...)`` advances any :class:`~insr.stepper.Stepper`;
``solve(problem, field, integrator, solver, ...)`` is the one-call entry point
for an :class:`~insr.problems.EvolutionProblem` (in the spirit of
``diffrax.diffeqsolve``).

Run directory (when ``run_dir`` is given)::

    checkpoint.npz          latest state, step, t, Δt, key, cumulative wall time
    fields/step_NNNNNN.npz  the state at every saved step (SaveAt)
    metrics.csv             one row per step (step 0 = the initial-condition fit)

Step n uses the key ``fold_in(key, n + 1)`` (the initial fit uses
``fold_in(key, 0)``), so a resumed run draws the same points as an
uninterrupted one and reproduces it.

Failures are loud: an initial fit whose step-0 info says ``fit_ok = False`` (see
:class:`~insr.stepper.FieldStepper`) stops the run with :class:`SolveFailure`
after its state is checkpointed; a step whose final loss is more than
``jump_factor`` × the median of the previous ``history`` steps' is flagged
``loss_jump`` in the ``flag`` column and on the progress line (beside any flag the
stepper raises itself, e.g. the elastic stepper's ``overfit``, and any its
``flag_metrics(metrics)`` returns for the new state, e.g. ``penetration``); the
:class:`Trajectory`'s ``summary`` counts the steps that missed their solver's
tolerance (``converged = False``), the loss jumps and each flag.
"""

from __future__ import annotations

import csv
import io
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import jax
import numpy as np

from insr.blas import single_threaded_blas
from insr.io.checkpoint import CheckpointError, atomic_write_text, load_state, save_state
from insr.io.progress import ProgressBar

CHECKPOINT = "checkpoint.npz"


class SolveFailure(RuntimeError):
    """A solve failed in a way that makes the rest of the run meaningless (the message
    names the loss or error reached, the tolerance and what to try)."""
METRICS = "metrics.csv"
FIELDS = "fields"


@dataclass(frozen=True)
class SaveAt:
    """Which states to keep: every ``every``-th step, plus step 0 and the last step."""

    every: int = 1

    def __post_init__(self):
        if int(self.every) < 1:
            raise ValueError(f"save_every must be ≥ 1, got {self.every!r}")

    def wants(self, step: int, last: int) -> bool:
        return step % self.every == 0 or step == last


@dataclass
class Trajectory:
    """Saved states of a run and its per-step metrics."""

    stepper: object
    steps: list = field(default_factory=list)
    ts: list = field(default_factory=list)
    states: list = field(default_factory=list)
    metrics: list = field(default_factory=list)
    run_dir: Path | None = None
    summary: dict = field(default_factory=dict)

    def nearest(self, t: float) -> int:
        """Index of the saved state whose time is nearest ``t``."""
        if not self.ts:
            raise ValueError("the trajectory holds no saved states")
        return int(np.argmin(np.abs(np.asarray(self.ts) - t)))

    def evaluate(self, points, t: float) -> np.ndarray:
        """Field values at ``points`` (n, d) for the saved state nearest ``t``."""
        i = self.nearest(t)
        return self.stepper.evaluate(self.states[i], points, self.ts[i])

    @property
    def final_state(self):
        return self.states[-1]


def _key_data(key) -> np.ndarray:
    if jax.dtypes.issubdtype(key.dtype, jax.dtypes.prng_key):
        key = jax.random.key_data(key)
    return np.asarray(key)


def _write_metrics(path: Path, rows: list[dict]) -> None:
    if not rows:
        return
    cols = list(rows[0].keys())
    for row in rows[1:]:
        cols += [k for k in row if k not in cols]
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=cols)
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_text(path, buf.getvalue())


def read_metrics(path: Path) -> list[dict]:
    """Rows of a metrics.csv with numbers parsed."""
    with open(path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    out = []
    for row in rows:
        parsed = {}
        for k, v in row.items():
            try:
                parsed[k] = int(v) if k in ("step", "iterations") else float(v)
            except (TypeError, ValueError):
                parsed[k] = v == "True" if v in ("True", "False") else v
        out.append(parsed)
    return out


def saved_steps(run_dir: Path) -> list[tuple[int, Path]]:
    """(step, file) of every saved state in a run directory, by step."""
    files = sorted((Path(run_dir) / FIELDS).glob("step_*.npz"))
    return [(int(f.stem.split("_")[1]), f) for f in files]


def fit_failure_message(info: dict) -> str:
    """The one-line error for an initial fit that missed its tolerance."""
    return (f"the initial-condition fit failed: relative L2 error {info['fit_error']:.3g} on held-out points "
            f"> tolerance {info['fit_tolerance']:.3g} (loss {info['loss']:.3g} after {info['iterations']} "
            f"iterations in {info.get('fit_attempts', 1)} attempt(s), the second with τ ≥ 1e-3, geodesic "
            f"acceleration and twice the iterations); try more iterations (init.max_iters), more sample points "
            f"(samples: a fit that interpolates too few points oscillates between them), a smaller field.omega0, "
            f"or another seed")


# The summary's count of the steps carrying each flag: the loop's own (a loss jump) and the
# steppers' ("overfit" from the elastic solve, "penetration" from its flag_metrics).
FLAG_COUNTS = {"loss_jumps": "loss_jump", "overfit": "overfit", "penetration": "penetration"}


def alarmed(summary: dict) -> bool:
    """Whether any step missed its tolerance or carries a flag (what ``--quiet`` still reports)."""
    return any(summary.get(k) for k in ("missed_tolerance", *FLAG_COUNTS))


def summarize(rows: list[dict]) -> dict:
    """Counts over the time steps (step 0, the initial fit, excluded), and, when every row (step 0
    included) carries the sums ``sq_error`` and ``sq_ref``, the space–time relative L2 error
    ``spacetime_rel_l2`` = √(Σ_rows sq_error / Σ_rows sq_ref): the error over all recorded
    steps × error points at once (the metric of the Neural Galerkin benchmarks)."""
    steps = [r for r in rows if r.get("step", 0) > 0]
    out = {"steps": len(steps), "missed_tolerance": sum(1 for r in steps if r.get("converged") is False)}
    for count, flag in FLAG_COUNTS.items():
        out[count] = sum(1 for r in steps if flag in str(r.get("flag", "")))
    sums = [(r.get("sq_error"), r.get("sq_ref")) for r in rows]
    if rows and all(isinstance(e, float) and isinstance(q, float) for e, q in sums):
        out["spacetime_rel_l2"] = math.sqrt(sum(e for e, _ in sums) / max(sum(q for _, q in sums), 1e-300))
    return out


def summary_line(summary: dict) -> str:
    line = (f"{summary['missed_tolerance']} of {summary['steps']} steps missed their solver tolerance "
            f"(converged = False in metrics.csv); {summary['loss_jumps']} loss jump(s) flagged")
    if "spacetime_rel_l2" in summary:
        line = f"space–time relative L2 error {summary['spacetime_rel_l2']:.3e}; " + line
    if summary.get("overfit"):
        line += (f"; {summary['overfit']} step(s) flagged overfit (the loss on held-out points far above the "
                 "fitted one: more points per solve)")
    if summary.get("penetration"):
        line += (f"; {summary['penetration']} step(s) flagged penetration (the body deeper inside an obstacle "
                 "than penetration_alarm allows: more points per solve (samples, or contact_band.width as the 3D "
                 "drop uses), more LM iterations (lm.max_iters), or another seed)")
    return line


def _loss_flag(rows: list[dict], loss: float, jump_factor: float, history: int) -> str:
    """'loss_jump' when ``loss`` exceeds jump_factor × the median loss of the last steps."""
    recent = [r["loss"] for r in rows[-history:] if r.get("step", 0) > 0 and isinstance(r.get("loss"), float)]
    if not np.isfinite(loss):
        return "loss_jump"
    if len(recent) >= 3:
        med = float(np.median(recent))
        if med > 0 and loss > jump_factor * med:
            return "loss_jump"
    return ""


@single_threaded_blas()
def simulate(stepper, *, dt: float, steps: int, key=None, saveat: SaveAt = SaveAt(), run_dir=None,
             resume: bool = False, progress: bool = False, callbacks=(), jump_factor: float = 100.0,
             history: int = 10) -> Trajectory:
    """Advance ``stepper`` by ``steps`` steps of size ``dt`` from its fitted initial state.

    With ``run_dir`` every step is checkpointed atomically and its metrics row
    appended; with ``resume=True`` the run continues from the checkpoint there
    (the result equals an uninterrupted run).  ``callbacks`` are called as
    ``cb(step, t, state, row)`` after every step.  ``progress``: ``True`` for a
    progress bar on stderr, or a string to use as the bar's label.  A step whose loss
    exceeds ``jump_factor`` × the median of the last ``history`` steps' is flagged.
    Raises :class:`SolveFailure` (after checkpointing step 0) when the initial fit
    missed its tolerance.  A stepper whose ``needs_key`` is False gets ``None`` for its keys
    (and ``key`` may be omitted).
    """
    if not (isinstance(dt, (int, float)) and math.isfinite(dt) and dt > 0):
        raise ValueError(f"dt must be a finite number > 0, got {dt!r}")
    if int(steps) < 0:
        raise ValueError(f"steps must be ≥ 0, got {steps!r}")
    steps = int(steps)
    run_dir = Path(run_dir) if run_dir is not None else None
    traj = Trajectory(stepper=stepper, run_dir=run_dir)
    # A deterministic stepper (the classical reference solvers: needs_key = False) gets no key:
    # deriving one per step (jax.random.fold_in) costs ~0.5 ms, more than a small grid's step.
    needs_key = bool(getattr(stepper, "needs_key", True))
    if key is None and needs_key:
        raise ValueError("simulate: this stepper draws random points: give key (e.g. jax.random.PRNGKey(seed))")
    key_np = np.zeros(0, np.uint32) if key is None else _key_data(key)
    rows: list[dict] = []

    def record(step, t, state, row):
        rows.append(row)
        if saveat.wants(step, steps):
            traj.steps.append(step)
            traj.ts.append(t)
            traj.states.append(state)
            if run_dir is not None:
                save_state(run_dir / FIELDS / f"step_{step:06d}.npz", state, step=step, t=t)
        if run_dir is not None:
            _write_metrics(run_dir / METRICS, rows)
            save_state(run_dir / CHECKPOINT, state, step=step, t=t, dt=dt, steps=steps, key=key_np,
                       wall_time=row["wall_time"])
        for cb in callbacks:
            cb(step, t, state, row)

    if resume:
        if run_dir is None:
            raise ValueError("resume=True needs run_dir")
        state, meta = load_state(run_dir / CHECKPOINT, stepper.state_template())
        if not np.isclose(float(meta["dt"]), dt):
            raise CheckpointError(f"checkpoint in {run_dir} was written with dt={float(meta['dt'])}, not {dt}")
        if not np.array_equal(meta["key"], key_np):
            raise CheckpointError(f"checkpoint in {run_dir} was written with another PRNG key (seed)")
        start, wall = int(meta["step"]), float(meta["wall_time"])
        t = float(meta["t"])
        rows = ([r for r in read_metrics(run_dir / METRICS) if r["step"] <= start]
                if (run_dir / METRICS).exists() else [])
        _write_metrics(run_dir / METRICS, rows)  # drop rows written after the checkpoint by a killed run
        for s, f in saved_steps(run_dir):
            if s <= start:
                st, m = load_state(f, stepper.state_template())
                traj.steps.append(s)
                traj.ts.append(float(m["t"]))
                traj.states.append(st)
    else:
        if run_dir is not None:
            (run_dir / FIELDS).mkdir(parents=True, exist_ok=True)
            for _, f in saved_steps(run_dir):  # a fresh run must not mix with old files
                f.unlink()
        t0 = time.perf_counter()
        state, info = stepper.initial_state(jax.random.fold_in(key, 0) if needs_key else None)
        wall = time.perf_counter() - t0
        start, t = 0, 0.0
        record(0, t, state, {"step": 0, "t": 0.0, **info, "flag": "" if info.get("fit_ok", True) else "fit_failed",
                             "step_time": wall, "wall_time": wall, **stepper.metrics(state, 0.0)})
        if info.get("fit_ok") is False:
            raise SolveFailure(fit_failure_message(info))

    label = progress if isinstance(progress, str) else "insr"
    bar = ProgressBar(steps, start=start, label=label) if progress else None
    try:
        for n in range(start, steps):
            t0 = time.perf_counter()
            state, info = stepper.step(state, t, dt, jax.random.fold_in(key, n + 1) if needs_key else None)
            t = round((n + 1) * dt, 12)  # not t += dt: no drift, and resume reproduces it exactly
            elapsed = time.perf_counter() - t0
            wall += elapsed
            # the loop's own judgement (a loss jump) beside the stepper's (e.g. "overfit")
            # (a step that reports no loss, e.g. a direct or Newton reference step, is not judged)
            jump = _loss_flag(rows, float(info["loss"]), jump_factor, history) if "loss" in info else ""
            metrics = stepper.metrics(state, t)
            # and the stepper's judgement of its state (e.g. the elastic "penetration" alarm)
            judge = getattr(stepper, "flag_metrics", None)
            flags = [jump, info.get("flag", ""), judge(metrics) if judge else ""]
            flag = "+".join(f for f in flags if f)
            row = {"step": n + 1, "t": t, **info, "flag": flag, "step_time": elapsed, "wall_time": wall, **metrics}
            record(n + 1, t, state, row)
            if bar:
                bar.update(n + 1, t, {**info, "flag": flag}, summarize(rows))
    finally:  # a failure or Ctrl-C must not leave the bar open (the next one would nest under it)
        if bar:
            bar.close()
    traj.metrics = rows
    traj.summary = summarize(rows)
    return traj


def solve(problem, field, integrator, solver, *, dt: float, t1: float, key, sampler=None, samples: int = 5000,
          sampling: str = "uniform", boundary_samples: int | None = None, boundary_weight: float = 1.0,
          init_solver=None, init_tolerance: float = 1e-3,
          saveat: SaveAt = SaveAt(), checkpoint_dir=None, resume: bool = False, progress: bool = False,
          callbacks=()) -> Trajectory:
    """Solve ∂u/∂t = L(u) for ``problem`` from t = 0 to ``t1`` with a neural ``field``.

    ``integrator`` (e.g. :class:`~insr.integrators.Midpoint`) gives the residual of
    one step, ``solver`` (e.g. :class:`~insr.solvers.LevenbergMarquardt`) minimises
    it; ``samples`` points drawn by ``sampling`` (or a given ``sampler``) per step, and
    ``boundary_samples`` points on the boundary (default: the interior sample's spacing,
    :meth:`~insr.geometry.Box.matching_boundary_samples`; the two ends in 1D).
    Returns the :class:`Trajectory`; with ``checkpoint_dir`` the run is
    checkpointed there and can be resumed.  The initial condition is fitted by
    ``init_solver`` (default: ``LevenbergMarquardt.initial_fit()``, the built-in scenarios'
    ``init`` setting; not the per-step ``solver``, whose few iterations suit warm-started
    steps but not a fit from a random initialisation) to relative L2 error ≤ ``init_tolerance`` on
    held-out points, else :class:`SolveFailure` is raised.
    """
    from insr.geometry import Sampler
    from insr.stepper import FieldStepper

    if not (isinstance(t1, (int, float)) and t1 >= 0):
        raise ValueError(f"t1 must be a number ≥ 0, got {t1!r}")
    if not (isinstance(dt, (int, float)) and dt > 0):
        raise ValueError(f"dt must be > 0, got {dt!r}")
    steps = round(t1 / dt)
    if abs(steps * dt - t1) > 1e-9 * max(1.0, t1):
        raise ValueError(f"t1={t1} is not a whole number of steps of dt={dt}")
    sampler = sampler or Sampler(problem.domain, samples, sampling)
    stepper = FieldStepper(problem, field, integrator, solver, sampler, boundary_samples=boundary_samples,
                           boundary_weight=boundary_weight,
                           init_solver=init_solver, init_tolerance=init_tolerance)
    return simulate(stepper, dt=dt, steps=steps, key=key, saveat=saveat, run_dir=checkpoint_dir,
                    resume=resume, progress=progress, callbacks=callbacks)
