"""``insr reproduce``: run the paper's examples with ours and the classical solvers and
write the report, resumably.

Layout of the output directory::

    suite.json                 profile, command, start time, examples selected
    report.md, report.html     rewritten after every finished example
    <example>/result.json      the example's rows, written when all of it finished
    <example>/rows/<id>.json   each row as soon as it is computed (resume unit)
    <example>/<run>/           neural runs: config.json, metrics.csv, checkpoint.npz, fields/, figures

A rerun with the same profile skips finished examples and rows and resumes an
interrupted neural run from its last checkpoint.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from insr.io.checkpoint import atomic_write_text
from insr.reproduce.core import PROFILES, Context, Example, run_artifacts
from insr.reproduce.report import fmt_seconds, write_report


def all_examples() -> list[Example]:
    """The paper's examples in report order, then the "beyond the paper" benchmarks."""
    from insr.reproduce.advection import EXAMPLE as ADVECTION
    from insr.reproduce.elastic import COLLIDE, DROP, STRETCH
    from insr.reproduce.fluids import TAYLOR_GREEN, TWO_VORTICES
    from insr.reproduce.neural_galerkin import ALLEN_CAHN, HEAT2D

    return [ADVECTION, TAYLOR_GREEN, TWO_VORTICES, STRETCH, COLLIDE, DROP, HEAT2D, ALLEN_CAHN]


class ReproduceError(ValueError):
    """Bad arguments or an output directory that belongs to another profile."""


def _select(examples, only):
    names = [e.name for e in examples]
    if not only:
        return list(examples)
    bad = [n for n in only if n not in names]
    if bad:
        raise ReproduceError(f"unknown example(s) {', '.join(map(repr, bad))}; choose from {', '.join(names)}")
    return [e for e in examples if e.name in only]


def _finished(out: Path, ex: Example, profile: str):
    path = out / ex.name / "result.json"
    if path.is_file():
        res = json.loads(path.read_text())
        if res.get("profile") == profile:
            return res
    return None


def reproduce(out, *, profile: str = "full", only=None, progress: bool = True, stream=None,
              examples: list[Example] | None = None, command: str = "") -> Path:
    """Run the selected examples (all by default) at ``profile`` sizes into ``out``;
    returns the path of ``report.md``.  Finished work in ``out`` is reused."""
    stream = stream or sys.stderr
    if profile not in PROFILES:
        raise ReproduceError(f"profile must be one of {', '.join(PROFILES)}, got {profile!r}")
    examples = _select(examples if examples is not None else all_examples(), only)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    suite_path = out / "suite.json"
    if suite_path.is_file():
        prev = json.loads(suite_path.read_text())
        if prev.get("profile") != profile:
            raise ReproduceError(f"{out} holds a '{prev.get('profile')}' reproduction; use another --out for "
                                 f"the '{profile}' profile")
        started = prev.get("started", "")
    else:
        started = time.strftime("%Y-%m-%d %H:%M:%S %Z")
    suite = {"profile": profile, "command": command or f"insr reproduce (profile {profile})", "started": started,
             "examples": [e.name for e in examples]}
    atomic_write_text(suite_path, json.dumps(suite, indent=1))

    def log(msg):
        stream.write(f"insr reproduce: {msg}\n")
        stream.flush()

    todo = [e for e in examples if _finished(out, e, profile) is None]
    estimate = sum(e.estimate_s[profile] for e in todo)
    log(f"{len(todo)} of {len(examples)} examples to run ({profile} profile), estimated {fmt_seconds(estimate)} "
        "on 2 CPU cores")
    results, t_suite = [], time.perf_counter()
    for i, ex in enumerate(examples, 1):
        res = _finished(out, ex, profile)
        if res is not None:
            log(f"[{i}/{len(examples)}] {ex.name}: finished earlier, skipped")
            results.append(res)
            continue
        left = sum(e.estimate_s[profile] for e in todo if e.name not in {r["name"] for r in results})
        log(f"[{i}/{len(examples)}] {ex.name} (about {fmt_seconds(ex.estimate_s[profile])}; suite ETA "
            f"{fmt_seconds(left)})")
        ctx = Context(out / ex.name, profile, ex.sizes[profile], log=log, progress=progress)
        ctx.out.mkdir(parents=True, exist_ok=True)
        t0 = time.perf_counter()
        rows = ex.run(ctx)
        figures, animations, configs = run_artifacts(ctx.out)
        res = {"name": ex.name, "title": ex.title, "profile": profile, "metric": ex.metric,
               "sizes": ex.sizes[profile], "rows": rows, "paper": [vars(p) for p in ex.paper],
               "figures": figures, "animations": animations, "configs": configs,
               "benchmark": ex.benchmark, "published_by": ex.published_by, "wall_s": time.perf_counter() - t0}
        atomic_write_text(ctx.out / "result.json", json.dumps(res, indent=1))
        results.append(res)
        write_report(out, results, suite)
        log(f"{ex.name} done in {fmt_seconds(res['wall_s'])}")
    md, html = write_report(out, results, suite)
    log(f"report: {md} and {html} (suite {fmt_seconds(time.perf_counter() - t_suite)})")
    return md
