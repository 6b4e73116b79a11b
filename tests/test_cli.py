import subprocess
import sys

import numpy as np
import pytest

from insr.cli import main

TINY = ["--set", "steps=2", "--set", "init.max_iters=100", "--quiet"]


@pytest.mark.parametrize("args,needle", [
    (["run", "advection1d", "--set", "problem.velocty=1"], "unknown config key 'problem.velocty'"),
    (["run", "advection1d", "--set", "dt=-0.1"], "'dt' must be a number > 0"),
    (["run", "advection1d", "--set", "field.width=0"], "'field.width' must be an integer ≥ 1"),
    (["run", "advection1d", "--set", "solver=sgd"], "'solver' must be one of 'lm', 'adam'"),
    (["run", "advection1d", "--set", "steps=1.5"], "'steps' must be an integer"),
    (["run", "no_such_scenario"], "unknown scenario 'no_such_scenario'"),
    (["run", "missing.toml"], "does not exist"),
    (["resume", "/nonexistent/run"], "does not exist"),
])
def test_bad_input_is_one_line_and_exit_code_2(args, needle, capsys):
    assert main(args) == 2
    err = capsys.readouterr().err
    assert needle in err
    assert err.count("\n") == 1 and "Traceback" not in err


def test_cli_subprocess_has_no_traceback_for_bad_config():
    proc = subprocess.run([sys.executable, "-m", "insr.cli", "run", "advection1d", "--set", "dt=-1"],
                          capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr.strip() == "insr: error: config key 'dt' must be a number > 0, got -1.0"


def test_config_file_with_unknown_key(tmp_path, capsys):
    cfg = tmp_path / "c.toml"
    cfg.write_text('scenario = "heat1d"\n[problem]\nnu = 0.1\nkappa = 2\n')
    assert main(["run", str(cfg)]) == 2
    assert "unknown config key 'problem.kappa'" in capsys.readouterr().err


def test_run_writes_outputs_and_eval_reads_them(tmp_path, capsys):
    run = tmp_path / "run"
    cfg = tmp_path / "heat.toml"
    cfg.write_text('scenario = "heat1d"\ndt = 0.02\n[problem]\nnu = 0.2\n')
    assert main(["run", str(cfg), "--out", str(run), *TINY]) == 0
    for name in ("config.json", "config.toml", "metrics.csv", "checkpoint.npz", "snapshots.png"):
        assert (run / name).is_file(), name
    assert (run / "animation.mp4").is_file() or (run / "animation.gif").is_file()
    pts = np.linspace(0, 1, 7, dtype=np.float32)[:, None]
    np.save(tmp_path / "p.npy", pts)
    assert main(["eval", str(run), "--time", "0.035", "--points", str(tmp_path / "p.npy"),
                 "--out", str(tmp_path / "v.npy")]) == 0
    err = capsys.readouterr().err
    assert "step 2 (t=0.04" in err  # nearest saved step to t = 0.035 with dt = 0.02
    vals = np.load(tmp_path / "v.npy")
    assert vals.shape == (7, 1)
    np.testing.assert_allclose(vals[:, 0], np.exp(-0.2 * np.pi**2 * 0.04) * np.sin(np.pi * pts[:, 0]), atol=0.05)
    # wrong dimension
    np.save(tmp_path / "p2.npy", np.zeros((5, 2), np.float32))
    assert main(["eval", str(run), "--time", "0", "--points", str(tmp_path / "p2.npy"),
                 "--out", str(tmp_path / "v2.npy")]) == 2
    assert "shape (n, 1)" in capsys.readouterr().err
    # an existing run is not overwritten silently
    assert main(["run", str(cfg), "--out", str(run), *TINY]) == 2


def test_list_names_every_scenario(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert "advection1d" in out and "heat1d" in out


def test_paper_faithful_adam_mode_is_built_from_the_cli_settings():
    from insr.cli import build_stepper, resolve_config
    from insr.solvers import AdamPlateau

    st = build_stepper(resolve_config("heat1d", ["solver=adam", "adam.max_iters=300", "adam.lr=1e-3"]))
    assert isinstance(st.solver, AdamPlateau) and (st.solver.max_iters, st.solver.lr) == (300, 1e-3)


@pytest.mark.slow  # its own programs (~11 s); the settings above and tests/test_solvers.py's Adam runs stay
def test_paper_faithful_adam_mode_runs_from_the_cli(tmp_path):
    run = tmp_path / "adam"
    assert main(["run", "heat1d", "--out", str(run), "--set", "solver=adam", "--set", "adam.max_iters=300",
                 "--set", "adam.lr=1e-3", "--set", "steps=1", "--set", "init.max_iters=100", "--quiet"]) == 0
    from insr.simulate import read_metrics

    rows = read_metrics(run / "metrics.csv")
    assert rows[1]["iterations"] == 300  # Adam ran its iteration cap (lr never fell to min_lr)
    assert rows[1]["loss"] < rows[1]["loss_initial"]


@pytest.mark.slow  # keeps the default suite under 10 min on 2 cores
def test_float64_linear_solve_from_the_cli(tmp_path):
    run = tmp_path / "f64"
    assert main(["run", "heat1d", "--out", str(run), "--set", "lm.linear_dtype=float64", "--set", "lm.tau=1e-3",
                 *TINY]) == 0
    import jax

    jax.config.update("jax_enable_x64", False)  # leave the process as other tests expect it
    from insr.simulate import read_metrics

    assert read_metrics(run / "metrics.csv")[-1]["rel_l2"] < 0.01
