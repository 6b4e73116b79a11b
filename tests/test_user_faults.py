"""Faults users hit: each bad input is one line ``insr: error: …`` and exit status 2, checked
before anything is built or any run directory is made; concurrent runs are refused; files
honour the umask; ``insr eval`` edge cases."""

import errno
import os
import stat
from pathlib import Path

import numpy as np
import pytest

from insr import cli
from insr.cli import UsageError, main
from insr.io.checkpoint import atomic_write_bytes
from insr.io.lock import LOCK_NAME, RunDirLockedError, run_dir_lock

TINY = ["--set", "steps=2", "--set", "init.max_iters=100", "--quiet"]


def one_line_error(capsys, *needles):
    err = capsys.readouterr().err
    assert err.startswith("insr: error: ") and err.count("\n") == 1 and "Traceback" not in err, err
    for n in needles:
        assert n in err, (n, err)
    return err


@pytest.fixture
def no_build(monkeypatch):
    """Fail the test if the CLI gets as far as building a stepper."""
    def refuse(cfg):
        raise AssertionError("the stepper was built before the bad input was refused")
    monkeypatch.setattr(cli, "build_stepper", refuse)


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """One tiny heat1d run (umask 022), started over a stale lock file of a killed process."""
    run = tmp_path_factory.mktemp("faults") / "run"
    run.mkdir()
    (run / LOCK_NAME).write_text("999999\n")  # left by a killed run: flock died with it
    old = os.umask(0o022)
    try:
        assert main(["run", "heat1d", "--out", str(run), *TINY]) == 0
    finally:
        os.umask(old)
    return run


# --------------------------------------------------------------------------------------
# 1. one run per directory
# --------------------------------------------------------------------------------------
def test_second_run_into_a_locked_directory_is_refused(tmp_path, capsys, tiny_run):
    out = tmp_path / "busy"
    out.mkdir()
    with run_dir_lock(out):
        assert main(["run", "heat1d", "--out", str(out), *TINY]) == 2
        one_line_error(capsys, f"run directory {out} is in use by another insr process (pid {os.getpid()})")
        assert sorted(p.name for p in out.iterdir()) == [LOCK_NAME]  # nothing else written
    with run_dir_lock(tiny_run):
        assert main(["resume", str(tiny_run), "--quiet"]) == 2
        one_line_error(capsys, f"{tiny_run} is in use")
        assert main(["run", "heat1d", "--out", str(tiny_run), "--force", *TINY]) == 2
        one_line_error(capsys, "in use")
    # released: a run (here: the resume of the finished tiny run) goes ahead, and releases it again
    assert main(["resume", str(tiny_run), "--quiet"]) == 0
    with run_dir_lock(tiny_run):
        pass


def test_lock_is_exclusive_and_released(tmp_path):
    with run_dir_lock(tmp_path):
        with pytest.raises(RunDirLockedError, match="in use"):
            with run_dir_lock(tmp_path):
                pass
    with run_dir_lock(tmp_path):  # released on exit, also after an exception inside
        pass
    with pytest.raises(KeyError):
        with run_dir_lock(tmp_path):
            raise KeyError("x")
    with run_dir_lock(tmp_path):
        pass


def test_failed_writes_during_a_run_are_one_line_errors(tmp_path):
    with pytest.raises(UsageError, match=r"cannot write in run directory .*: /x/y: No space left on device"):
        with cli._holding(tmp_path):
            raise OSError(errno.ENOSPC, "No space left on device", "/x/y")
    with run_dir_lock(tmp_path):  # released
        pass


# --------------------------------------------------------------------------------------
# 2 and 6. bad --out, oversized networks, bad plot_times, unbounded steps: refused up front
# --------------------------------------------------------------------------------------
def test_out_naming_an_existing_file(tmp_path, capsys, no_build):
    f = tmp_path / "afile"
    f.write_text("x")
    assert main(["run", "heat1d", "--out", str(f), *TINY]) == 2
    one_line_error(capsys, f"--out {f} is an existing file, not a directory")
    assert main(["run", "heat1d", "--out", str(f / "sub"), *TINY]) == 2
    one_line_error(capsys, f"cannot create run directory {f / 'sub'}", "is a file")
    assert f.read_text() == "x"


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs /proc")
def test_out_where_no_directory_can_be_made(capsys, no_build):
    assert main(["run", "heat1d", "--out", "/proc/x/run", *TINY]) == 2
    one_line_error(capsys, "cannot create run directory /proc/x/run")


@pytest.mark.parametrize("sets,needles", [
    (["field.width=1e6"], ["'field.width' = 1000000", "2,000,005,000,001 parameters"]),
    (["field.width=5000"], ["'field.width' = 5000", "Levenberg–Marquardt", "of memory"]),
    (["samples=100000000"], ["Jacobian", "samples (now 100000000)"]),
    (['plot_times=[0,"a"]'], ["'plot_times' must be a list of finite times"]),
    (["plot_times=[0,0.5]"], ["'plot_times' must be a list of times within [0, steps·dt] = [0, 0.02]"]),
    (["plot_times=[-1]"], ["'plot_times'"]),
    (["steps=1e12"], ["'steps' must be an integer in [0, 10,000,000]"]),
])
def test_bad_sizes_are_refused_before_anything_is_made(sets, needles, tmp_path, capsys, no_build):
    out = tmp_path / "run"
    args = ["run", "heat1d", "--out", str(out), "--set", "steps=2", "--quiet"]
    for s in sets:
        args += ["--set", s]
    assert main(args) == 2
    one_line_error(capsys, *needles)
    assert not out.exists()


def test_bad_plot_times_in_a_config_file(tmp_path, capsys, no_build):
    cfg = tmp_path / "c.toml"
    cfg.write_text('scenario = "heat1d"\nsteps = 2\nplot_times = [0.0, 3.0]\n')
    assert main(["run", str(cfg), "--out", str(tmp_path / "run")]) == 2
    one_line_error(capsys, "'plot_times'", "[0, 0.02]")
    assert not (tmp_path / "run").exists()


def test_fluid_and_elastic_networks_are_sized_too(tmp_path, capsys, no_build):
    assert main(["run", "taylor_green", "--out", str(tmp_path / "a"), "--set", "pressure.width=100000"]) == 2
    one_line_error(capsys, "'pressure.width' = 100000")
    assert main(["run", "elastic_drop_3d", "--out", str(tmp_path / "b"), "--set", "field.depth=100000"]) == 2
    one_line_error(capsys, "'field.depth' = 100000")
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()
    assert cli.siren_params(1, 1, 20, 2) == 901  # the paper's 1D advection network


@pytest.mark.parametrize("scenario, setting, needle", [
    ("two_vortices", 'velocity.kind="rbf"', "'velocity.kind' must be one of 'siren', 'fourier', 'grid', got 'rbf'"),
    ("two_vortices", "density.grid_growth=0.5", "'density.grid_growth' must be a number ≥ 1"),
    ("taylor_green", "pressure.depth=-1", "'pressure.depth' must be an integer ≥ 0"),
    ("elastic_collide_2d", "field.sigma=0", "'field.sigma' must be a number > 0"),
])
def test_every_network_tables_keys_are_checked_before_anything_is_built(scenario, setting, needle, tmp_path,
                                                                         capsys, no_build):
    out = tmp_path / "run"
    assert main(["run", scenario, "--out", str(out), "--set", setting]) == 2
    one_line_error(capsys, needle)
    assert not out.exists()


@pytest.mark.parametrize("scenario, sets, needle", [
    ("taylor_green", ['problem.scheme="reflection"', "problem.nu=0.1"], "'problem.scheme' = 'reflection'"),
    ("taylor_green", ['velocity.kind="fourier"', 'velocity.encoding="axis"', "velocity.features=3"],
     "config table 'velocity'"),
    ("elastic_collide_2d", ["material.poisson=0.7"], "'material.poisson'"),
])
def test_a_config_its_builder_refuses_leaves_no_run_directory(scenario, sets, needle, tmp_path, capsys):
    """A config that only its scenario's builder refuses (a network's own arguments,
    combinations) leaves nothing behind: the directories the run made are removed."""
    out = tmp_path / "new" / "run"
    args = ["run", scenario, "--out", str(out), "--quiet"]
    for s in sets:
        args += ["--set", s]
    assert main(args) == 2
    one_line_error(capsys, needle)
    assert not (tmp_path / "new").exists()


def test_saved_fields_that_cannot_fit_on_the_disk(tmp_path, capsys, monkeypatch, no_build):
    real = cli.shutil.disk_usage
    monkeypatch.setattr(cli.shutil, "disk_usage", lambda p: real(p)._replace(free=10 << 20))
    out = tmp_path / "run"
    assert main(["run", "heat1d", "--out", str(out), "--set", "steps=1000000", "--quiet"]) == 2
    one_line_error(capsys, "'steps' = 1000000", "'save_every' = 1", "1,000,002 field files", "10 MiB free")
    assert not out.exists()


# --------------------------------------------------------------------------------------
# 4. permissions follow the umask
# --------------------------------------------------------------------------------------
def test_written_files_honour_the_umask(tmp_path, tiny_run):
    old = os.umask(0o022)
    try:
        atomic_write_bytes(tmp_path / "a.bin", b"x")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "a.bin").stat().st_mode) == 0o644
    for name in ("config.json", "checkpoint.npz", "metrics.csv", "fields/step_000002.npz"):
        assert stat.S_IMODE((tiny_run / name).stat().st_mode) == 0o644, name
    if Path("/proc/self/status").is_file():  # the umask at write time, not only at import
        old = os.umask(0o027)
        try:
            atomic_write_bytes(tmp_path / "b.bin", b"x")
        finally:
            os.umask(old)
        assert stat.S_IMODE((tmp_path / "b.bin").stat().st_mode) == 0o640


# --------------------------------------------------------------------------------------
# 3. insr eval
# --------------------------------------------------------------------------------------
def _eval(run, tmp_path, pts, *extra, time="0.01", out="v.npy"):
    p = tmp_path / "p.npy"
    np.save(p, pts)
    return main(["eval", str(run), f"--time={time}", "--points", str(p), "--out", str(tmp_path / out), *extra])


def test_eval_times(tiny_run, tmp_path, capsys):
    pts = np.linspace(0, 1, 5)[:, None]
    assert _eval(tiny_run, tmp_path, pts, time="nan") == 2
    one_line_error(capsys, "--time must be a number", "got nan")
    assert _eval(tiny_run, tmp_path, pts, time="inf") == 0
    assert "step 2 (t=0.02, the last saved step)" in capsys.readouterr().err
    assert _eval(tiny_run, tmp_path, pts, time="-inf") == 0
    assert "step 0 (t=0, the first saved step)" in capsys.readouterr().err


def test_eval_points_outside_the_domain_are_warned_about(tiny_run, tmp_path, capsys):
    assert _eval(tiny_run, tmp_path, np.array([[-0.5], [0.5], [1.5], [2.0]])) == 0
    err = capsys.readouterr().err
    assert "insr: warning: 3 of 4 points lie outside the domain [0, 1]" in err
    assert _eval(tiny_run, tmp_path, np.array([[0.0], [1.0]])) == 0
    assert "warning" not in capsys.readouterr().err


def test_eval_refuses_complex_points(tiny_run, tmp_path, capsys):
    assert _eval(tiny_run, tmp_path, np.array([[0.5 + 1j]])) == 2
    one_line_error(capsys, "complex")
    assert not (tmp_path / "v.npy").exists()


def test_eval_out_is_written_under_the_name_given(tiny_run, tmp_path, capsys):
    assert _eval(tiny_run, tmp_path, np.array([[0.5]]), out="values") == 0
    err = capsys.readouterr().err
    assert err.rstrip().endswith(f"→ {tmp_path / 'values'}")
    assert np.load(tmp_path / "values").shape == (1, 1)
    assert not (tmp_path / "values.npy").exists()
    assert _eval(tiny_run, tmp_path, np.array([[0.5]]), out="missing/v.npy") == 2
    one_line_error(capsys, "missing does not exist")


def test_eval_points_files_that_are_not_arrays(tiny_run, tmp_path, capsys):
    text = tmp_path / "text.npy"
    text.write_text("0.1\n0.2\n")
    obj = tmp_path / "obj.npy"
    np.save(obj, np.array([[0.5], None], dtype=object), allow_pickle=True)
    npz = tmp_path / "pts.npz"
    np.savez(npz, a=np.zeros((2, 1)))
    for path, needle in ((text, "not a NumPy .npy file"), (obj, "dtype object"), (npz, ".npz archive"),
                         (tmp_path / "nope.npy", "does not exist")):
        assert main(["eval", str(tiny_run), "--time", "0", "--points", str(path),
                     "--out", str(tmp_path / "v.npy")]) == 2
        err = one_line_error(capsys, needle)
        assert "pickle" not in err


# --------------------------------------------------------------------------------------
# 5. meshes: inverted elements rejected unless geometry.fix_orientation; empty files
# --------------------------------------------------------------------------------------
def _inverted_cube(path):
    import meshio

    from insr.geometry.mesh import box_mesh

    m = box_mesh((0.0, 0.0, 0.0), (1.0, 1.0, 1.0), 2)
    cells = m.cells.copy()
    cells[[3, 7, 11], 0], cells[[3, 7, 11], 1] = m.cells[[3, 7, 11], 1], m.cells[[3, 7, 11], 0]
    meshio.write(path, meshio.Mesh(m.points, [("tetra", cells)]))
    return path


def test_inverted_mesh_names_the_config_key_that_repairs_it(tmp_path, caplog):
    import logging

    from insr.config import ConfigError, merge
    from insr.elasticity.scenarios import build_elastic
    from insr.registry import get

    path = _inverted_cube(tmp_path / "inv.vtu")
    cfg = merge(get("elastic_drop_3d").defaults, {"geometry": {"shape": "mesh", "mesh": str(path)}})
    with pytest.raises(ConfigError, match=r"3 of 48 element\(s\) inverted.*\[3, 7, 11\]"
                                          r".*set geometry.fix_orientation = true"):
        build_elastic(cfg)
    cfg["geometry"]["fix_orientation"] = True
    with caplog.at_level(logging.WARNING, logger="insr.geometry.mesh"):
        st = build_elastic(cfg)
    assert st.rest.volume == pytest.approx(1.0)
    assert any("reordered" in r.getMessage() for r in caplog.records)


def test_mesh_errors_reach_the_cli_as_one_line(tmp_path, capsys):
    path = _inverted_cube(tmp_path / "inv.vtu")
    empty = tmp_path / "empty.msh"
    empty.write_bytes(b"")
    for mesh, needle in ((path, "geometry.fix_orientation = true"), (empty, "is empty")):
        assert main(["run", "elastic_drop_3d", "--out", str(tmp_path / "run"), "--quiet",
                     "--set", 'geometry.shape="mesh"', "--set", f'geometry.mesh="{mesh}"']) == 2
        one_line_error(capsys, "config key 'geometry.mesh'", needle)
