"""The pieces every reproduced example uses: the example record, a per-example context
that caches finished work, and helpers that run a built-in scenario or time the paper's
Adam loop.

Resumability: every table row is written to ``<example>/rows/<id>.json`` (atomically) the
moment it is computed, and neural runs keep their checkpoints in ``<example>/<id>/``; a
rerun reads finished rows and resumes unfinished runs from their last step.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from insr.io.checkpoint import atomic_write_text

PROFILES = ("full", "quick", "tiny")

# Row kinds, in the order tables list them.  "sweep" rows only feed the curves.
# "beyond": ours with a setting past the paper's (e.g. a 4th-order integrator), in the table
# but never in the verdicts against the paper, which judge the paper's own setup ("ours").
KINDS = ("ours", "beyond", "ours-adam", "same-memory", "same-error", "reference", "sweep")


@dataclass(frozen=True)
class PaperRow:
    """A number quoted from the paper (Chen et al., ICML 2023) with its hardware."""

    method: str
    error: float | None
    wall: str
    memory: str
    hardware: str = "one RTX 3090 GPU"
    kind: str = ""  # "ours" / "same-memory" / "same-error": matched against our rows
    # The final time t at which the paper's number holds (its horizon).  The report
    # compares our error with the paper's only at the same horizon, in the full profile.
    horizon: float | None = None


@dataclass(frozen=True)
class Example:
    """One paper example: how to run it (``run(ctx) -> rows``) at each profile's sizes."""

    name: str
    title: str
    metric: str  # definition of the error column: norm, points, time
    paper: tuple  # of PaperRow
    sizes: dict  # profile -> dict of sizes, passed to run() as ctx.sizes
    estimate_s: dict  # profile -> expected seconds on 2 CPU cores (measured)
    run: Callable
    benchmark: str = ""  # the equivalent stand-alone benchmark command
    published_by: str = ""  # whose numbers ``paper`` quotes, when not the ICML 2023 paper's


@dataclass
class Context:
    """Where an example writes (``out``), at which sizes, and how it reports progress."""

    out: Path
    profile: str
    sizes: dict
    log: Callable[[str], None] = print
    progress: bool = True

    def cached(self, row_id: str, compute: Callable[[], dict]) -> dict:
        """The row stored under ``row_id``, computing and storing it first if needed."""
        path = self.out / "rows" / f"{row_id}.json"
        if path.is_file():
            return json.loads(path.read_text())
        self.log(f"{self.out.name}: {row_id}")
        row = compute()
        row["id"] = row_id
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(path, json.dumps(row, indent=1))
        return row

    def rel(self, path: Path) -> str:
        """``path`` relative to the report directory (where report.md lives)."""
        return str(Path(path).resolve().relative_to(self.out.parent.resolve()))


def row(method: str, kind: str, *, error=None, wall_s=None, state_bytes=None, note: str = "",
        series: str | None = None, source: dict | None = None, projected: bool = False, **extra) -> dict:
    """One result row.  ``series`` names the curve it belongs to (error vs time/memory);
    ``source`` says which metrics file and column ``error`` was read from."""
    if kind not in KINDS:
        raise ValueError(f"row kind must be one of {KINDS}, got {kind!r}")
    clean = lambda v: None if v is None or (isinstance(v, float) and not math.isfinite(v)) else v
    return {"method": method, "kind": kind, "error": clean(error), "wall_s": clean(wall_s),
            "state_bytes": state_bytes, "note": note, "series": series, "source": source,
            "projected": bool(projected), **extra}


def smallest_matching(error_of: Callable[[int], float], target: float, start: int, grow: Callable[[int], int],
                      limit: int, rel_tol: float = 0.05) -> int | None:
    """Smallest size n ≥ ``start`` (sizes ``start, grow(start), …`` up to ``limit``, then
    bisection to ``rel_tol``) whose error is ≤ ``target``; errors must fall with n."""
    lo, n = start, start
    while n <= limit:
        if error_of(n) <= target:
            break
        lo, n = n, grow(n)
    else:
        return None
    if n == start:
        return n
    hi = n
    while hi - lo > max(2, int(lo * rel_tol)):
        mid = (lo + hi) // 2
        if error_of(mid) <= target:
            hi = mid
        else:
            lo = mid
    return hi


def run_scenario(ctx: Context, run_id: str, scenario: str, updates: dict, *, outputs: bool = False):
    """Run a built-in scenario with ``updates`` into ``ctx.out/run_id`` (checkpointed;
    resumed if a matching checkpoint is there).  Returns ``(stepper, trajectory, config)``;
    with ``outputs`` also writes the scenario's figures and animation and lists them in
    ``outputs.json`` there (see :func:`run_artifacts`)."""
    import jax

    from insr import config as cfgmod
    from insr.registry import get

    sc = get(scenario)
    if ctx.profile == "tiny" and "tolerance" in sc.defaults.get("init", {}):
        # The tiny profile is a seconds-long smoke test of the plumbing: its fits are far
        # too short to meet the real tolerance, which the other profiles keep.
        updates = {**updates, "init": {**updates.get("init", {}), "tolerance": 1e9}}
    cfg = cfgmod.merge(sc.defaults, updates)
    # A float64 scenario runs in 64-bit JAX for this run only (the examples around it keep 32-bit).
    with jax.enable_x64(cfgmod.needs_x64(cfg)):
        return _run_config(ctx, run_id, sc, cfg, outputs)


def _run_config(ctx: Context, run_id: str, sc, cfg: dict, outputs: bool):
    import jax

    from insr.outputs import write_outputs
    from insr.simulate import SaveAt, simulate

    run_dir = ctx.out / run_id
    run_dir.mkdir(parents=True, exist_ok=True)
    cfg_path = run_dir / "config.json"
    resume = (run_dir / "checkpoint.npz").is_file() and cfg_path.is_file() and json.loads(cfg_path.read_text()) == cfg
    atomic_write_text(cfg_path, json.dumps(cfg, indent=2))
    stepper = sc.build(cfg)
    traj = simulate(stepper, dt=cfg["dt"], steps=cfg["steps"], key=jax.random.PRNGKey(cfg["seed"]),
                    saveat=SaveAt(cfg.get("save_every", 1)), run_dir=run_dir, resume=resume,
                    progress=f"{ctx.out.name}/{run_id}" if ctx.progress else False)
    if outputs:
        written = [ctx.rel(p) for p in write_outputs(cfg, traj, run_dir)]
        atomic_write_text(run_dir / "outputs.json", json.dumps(written))
    return stepper, traj, cfg


def metrics_value(ctx: Context, run_id: str, column: str, step: int | None = None) -> tuple[float, dict]:
    """``column`` of ``metrics.csv`` in run ``run_id`` at ``step`` (default: the last row),
    with the source record the report cites."""
    from insr.simulate import read_metrics

    path = ctx.out / run_id / "metrics.csv"
    rows = read_metrics(path)
    r = rows[-1] if step is None else next(r for r in rows if r["step"] == step)
    return float(r[column]), {"file": ctx.rel(path), "column": column, "step": int(r["step"])}


def run_wall(traj) -> tuple[float, float]:
    """(total wall seconds incl. the initial fit and compilation, mean seconds per step
    after the first step)."""
    m = traj.metrics
    later = [r["step_time"] for r in m[2:]] or [r["step_time"] for r in m[1:]] or [m[0]["step_time"]]
    return float(m[-1]["wall_time"]), float(sum(later) / len(later))


def run_timing(traj) -> dict:
    """The timing and horizon fields every "ours" row carries, so that the report compares
    like with like: ``per_step_s`` (mean seconds per step, the initial fit and the first,
    compiling step excluded where the run has more steps; ``per_step_from`` is the first
    step in the mean), ``init_s`` (the initial fit), ``steps`` and ``t_final`` (the
    horizon: the time of the last step)."""
    m = traj.metrics
    _, per_step = run_wall(traj)
    first = 2 if len(m) > 2 else (1 if len(m) > 1 else 0)
    return {"per_step_s": per_step, "per_step_from": first, "init_s": float(m[0]["step_time"]),
            "steps": int(m[-1]["step"]), "t_final": float(m[-1]["t"])}


def adam_probe(ctx: Context, run_id: str, scenario: str, updates: dict, iters: int, steps_total: int,
               cap: int = 20_000) -> dict:
    """Time the paper-faithful Adam loop: run 2 steps of ``scenario`` with Adam stopped
    after ``iters`` iterations per solve, take the second step's seconds per iteration and
    project ``cap`` iterations per solve (the paper's Adam loop runs until its learning
    rate decays, at most 20,000 iterations) to seconds per step, and over ``steps_total``
    steps — pass the number of steps *our* run took, so that the totals compare equal
    horizons (the initial fit is not in the projection).  Projections are labelled as
    such in the report."""
    from insr.simulate import read_metrics

    upd = dict(updates)
    upd["steps"] = 2
    st, traj, _ = run_scenario(ctx, run_id, scenario, upd)
    last = read_metrics(ctx.out / run_id / "metrics.csv")[-1]
    per_it = last["step_time"] / max(1, last["iterations"])
    solves = max(1.0, last["iterations"] / iters)
    per_step = per_it * cap * solves
    return {"state_bytes": st.state_bytes(), "per_iteration_s": per_it, "iterations_timed": int(last["iterations"]),
            "iteration_cap": cap, "solves_per_step": solves, "projected_step_s": per_step,
            "projected_steps": int(steps_total), "projected_total_s": per_step * steps_total}


def adam_row(ctx: Context, scenario: str, updates: dict, iters: int, steps: int,
             loop: str = "the paper's Adam loop") -> dict:
    """The cached "ours-adam" row of an example: :func:`adam_probe` projected per step and
    over ``steps`` steps (the steps our run took: equal horizons).  ``loop`` names what is
    timed in the report's sentences."""
    def compute():
        pr = adam_probe(ctx, "adam_probe", scenario, updates, iters, steps)
        return row(f"ours, {loop.removeprefix('the ')} (projected)", "ours-adam", wall_s=pr.pop("projected_total_s"),
                   state_bytes=pr.pop("state_bytes"), projected=True, loop=loop,
                   note=(f"{pr['per_iteration_s'] * 1e3:.3g} ms/iteration measured over {pr['iterations_timed']} "
                         f"iterations; × {pr['iteration_cap']:,} iterations per solve (the paper's cap) × "
                         f"{pr['solves_per_step']:.3g} solves/step = {fmt_s(pr['projected_step_s'])}/step; × {steps} "
                         f"step{'' if steps == 1 else 's'} (the horizon ours ran); initial fit not included"), **pr)
    return ctx.cached("adam", compute)


def fmt_s(s: float) -> str:
    """Seconds, human-readable (the report's format)."""
    if s < 1:
        return f"{s * 1e3:.0f} ms"
    if s < 120:
        return f"{s:.1f} s"
    if s < 7200:
        return f"{s / 60:.1f} min"
    return f"{s / 3600:.1f} h"


def timed(fn, *args, **kwargs):
    """(result, seconds)."""
    t0 = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - t0


def run_artifacts(example_dir: Path) -> tuple[list, list, dict]:
    """(figures, animations, configs) of the neural runs in an example directory, from
    their ``outputs.json`` and ``config.json`` (paths relative to the report directory)."""
    figures, animations, configs = [], [], {}
    for run_dir in sorted(p for p in Path(example_dir).iterdir() if p.is_dir()):
        if (run_dir / "config.json").is_file():
            configs[run_dir.name] = json.loads((run_dir / "config.json").read_text())
        if (run_dir / "outputs.json").is_file():
            for p in json.loads((run_dir / "outputs.json").read_text()):
                if p.endswith(".png"):
                    figures.append(p)
                elif p.endswith((".mp4", ".gif")):
                    animations.append(p)
    return figures, animations, configs
