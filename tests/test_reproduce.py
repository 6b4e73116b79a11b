"""`insr reproduce`: the runner and report generator on a tiny synthetic suite (a real
two-step heat run and a cheap "classical" row), and the CLI's argument checks.

The real examples at their tiny sizes run in the slow test at the end."""

import json
import re
import subprocess
import sys

import numpy as np
import pytest

from insr.reproduce import Example, PaperRow, ReproduceError, reproduce
from insr.reproduce.core import metrics_value, row, run_scenario, run_wall, smallest_matching
from insr.reproduce.report import TABLE_HEADER
from insr.simulate import read_metrics

CALLS = {"ours": 0, "classical": 0}


def _run_heat(ctx):
    def ours():
        CALLS["ours"] += 1
        st, traj, _ = run_scenario(ctx, "ours", "heat1d", {"steps": ctx.sizes["steps"], "samples": 64,
                                                             "init": {"max_iters": 30}}, outputs=True)
        err, src = metrics_value(ctx, "ours", "mae")
        return row("ours", "ours", error=err, wall_s=run_wall(traj)[0], state_bytes=st.state_bytes(),
                   series="ours", source=src)

    def classical(n, kind):
        def compute():
            CALLS["classical"] += 1
            return row(f"grid {n}", kind, error=1.0 / n ** 2, wall_s=1e-3 * n, state_bytes=4 * n, series="grid")
        return compute

    rows = [ctx.cached("ours", ours), ctx.cached("grid_same_memory", classical(10, "same-memory"))]
    rows += [ctx.cached(f"grid{n}", classical(n, "sweep")) for n in (4, 8, 16)]
    return rows


HEAT = Example(name="heat", title="Heat equation (synthetic suite)", metric="MAE on 1,000 points at the final time",
               paper=(PaperRow("ours (Adam)", 1e-3, "1 h", "1 KB", kind="ours"),),
               sizes={"full": {"steps": 4}, "quick": {"steps": 2}, "tiny": {"steps": 2}},
               estimate_s={"full": 10, "quick": 5, "tiny": 5}, run=_run_heat, benchmark="none")


def _md_table(md: str, title: str) -> list[list[str]]:
    section = md.split(f"## {title}")[1]
    lines = [ln for ln in section.splitlines() if ln.startswith("|")]
    header = [c.strip() for c in lines[0].strip("|").split("|")]
    assert tuple(header) == TABLE_HEADER
    body = []
    for ln in lines[2:]:
        cells = [c.strip() for c in re.split(r"(?<!\\)\|", ln.strip().strip("|"))]
        if cells[0].startswith("paper"):
            break
        body.append(cells)
    return body


def test_report_tables_figures_values_and_resume(tmp_path):
    out = tmp_path / "rep"
    CALLS.update(ours=0, classical=0)
    md_path = reproduce(out, profile="quick", examples=[HEAT], progress=False, command="test")
    md = md_path.read_text()
    assert "QUICK PROFILE" in md
    rows = _md_table(md, HEAT.title)
    assert [r[0] for r in rows] == ["ours", "grid 10"]  # sweep rows feed the curves only
    assert [r[1] for r in rows] == ["ours", "classical, same memory"]
    # the value in the report is the one in the run's metrics file
    result = json.loads((out / "heat" / "result.json").read_text())
    ours = result["rows"][0]
    src = ours["source"]
    metric_rows = read_metrics(out / src["file"])
    assert src["column"] == "mae" and src["step"] == 2 == metric_rows[-1]["step"]
    assert ours["error"] == metric_rows[-1]["mae"]
    assert rows[0][2] == f"{metric_rows[-1]['mae']:.3e}"
    assert "meets" in md or "MISSES" in md  # compared with the quoted paper number
    # figures exist and are referenced; the HTML embeds them
    for name in ("error_vs_time.png", "error_vs_memory.png"):
        assert (out / "heat" / name).stat().st_size > 1000
        assert f"heat/{name}" in md
    html = (out / "report.html").read_text()
    assert html.count("data:image/png;base64,") >= 3  # two curves + the run's snapshots
    assert "config of ours" in html
    assert CALLS == {"ours": 1, "classical": 4}

    # rerun: finished example skipped
    reproduce(out, profile="quick", examples=[HEAT], progress=False)
    assert CALLS == {"ours": 1, "classical": 4}
    # interrupted after some rows: only the missing rows are computed
    (out / "heat" / "result.json").unlink()
    (out / "heat" / "rows" / "grid16.json").unlink()
    reproduce(out, profile="quick", examples=[HEAT], progress=False)
    assert CALLS == {"ours": 1, "classical": 5}
    # a directory of another profile is refused, by name
    with pytest.raises(ReproduceError, match="'quick' reproduction"):
        reproduce(out, profile="full", examples=[HEAT], progress=False)
    with pytest.raises(ReproduceError, match="unknown example.*'nope'.*heat"):
        reproduce(tmp_path / "x", profile="quick", only=["nope"], examples=[HEAT], progress=False)


def test_interrupted_neural_run_resumes_from_its_checkpoint(tmp_path):
    """A killed run leaves checkpoint.npz and no row: the rerun continues at its last step."""
    from insr.reproduce.core import Context

    ctx = Context(tmp_path / "heat", "quick", {"steps": 3}, log=lambda m: None, progress=False)
    upd = {"steps": 3, "samples": 64, "init": {"max_iters": 30}}
    _, full, _ = run_scenario(ctx, "a", "heat1d", upd)
    _, part, _ = run_scenario(ctx, "b", "heat1d", {**upd, "steps": 2})
    # pretend run b was the 3-step run killed after step 2
    cfg = json.loads((tmp_path / "heat" / "a" / "config.json").read_text())
    (tmp_path / "heat" / "b" / "config.json").write_text(json.dumps(cfg))
    _, resumed, _ = run_scenario(ctx, "b", "heat1d", upd)
    assert [r["step"] for r in resumed.metrics] == [0, 1, 2, 3]
    assert resumed.metrics[1]["step_time"] == part.metrics[1]["step_time"]  # kept, not recomputed
    np.testing.assert_allclose(resumed.metrics[-1]["mae"], full.metrics[-1]["mae"], rtol=1e-6)


def test_smallest_matching_finds_the_threshold():
    err = lambda n: 1.0 / n
    n = smallest_matching(err, 1 / 300, 16, lambda n: 2 * n, 4096, 0.02)
    assert 300 <= n <= 306
    assert smallest_matching(err, 1e-9, 16, lambda n: 2 * n, 4096) is None
    assert smallest_matching(err, 1.0, 16, lambda n: 2 * n, 4096) == 16


def test_cli_reproduce_bad_arguments():
    r = subprocess.run([sys.executable, "-m", "insr.cli", "reproduce", "--only", "nope", "--out", "/tmp/never"],
                       capture_output=True, text=True)
    assert r.returncode == 2
    assert r.stderr.startswith("insr: error: unknown example") and "advection1d" in r.stderr
    assert "Traceback" not in r.stderr


@pytest.mark.slow
def test_every_paper_example_runs_at_tiny_sizes(tmp_path):
    """The six real examples end to end at seconds-scale sizes (minutes in total)."""
    from insr.reproduce import all_examples

    md = reproduce(tmp_path, profile="tiny", progress=False).read_text()
    for ex in all_examples():
        assert f"## {ex.title}" in md
        assert (tmp_path / ex.name / "result.json").is_file()
        kinds = {r["kind"] for r in json.loads((tmp_path / ex.name / "result.json").read_text())["rows"]}
        assert {"ours", "same-memory"} <= kinds
