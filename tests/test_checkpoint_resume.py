import json
import zipfile

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from insr.cli import main
from insr.io.checkpoint import CheckpointError, load_state, save_state
from insr.simulate import read_metrics

TINY = ["--set", "steps=4", "--set", "init.max_iters=100", "--quiet"]


def test_state_round_trip(tmp_path):
    state = {"u": {"w": jnp.arange(6.0).reshape(2, 3), "b": jnp.ones(3)}, "u_prev": {"w": jnp.zeros((2, 3)),
                                                                                       "b": jnp.zeros(3)}}
    save_state(tmp_path / "c.npz", state, step=7, t=0.35, key=np.array([0, 1], np.uint32))
    back, meta = load_state(tmp_path / "c.npz", state)
    assert jax.tree.all(jax.tree.map(lambda a, b: bool(jnp.array_equal(a, b)), state, back))
    assert int(meta["step"]) == 7 and float(meta["t"]) == 0.35 and meta["key"].tolist() == [0, 1]


def test_corrupt_missing_and_mismatched_checkpoints_give_clear_errors(tmp_path):
    state = {"w": jnp.ones((2, 2))}
    with pytest.raises(CheckpointError, match="does not exist"):
        load_state(tmp_path / "none.npz", state)
    (tmp_path / "bad.npz").write_bytes(b"PK\x03\x04 truncated")
    with pytest.raises(CheckpointError, match="corrupt"):
        load_state(tmp_path / "bad.npz", state)
    save_state(tmp_path / "c.npz", state)
    with pytest.raises(CheckpointError, match="shape"):
        load_state(tmp_path / "c.npz", {"w": jnp.ones((3, 2))})


def test_no_temporary_files_are_left_behind(tmp_path):
    save_state(tmp_path / "c.npz", {"w": jnp.ones(3)})
    save_state(tmp_path / "c.npz", {"w": jnp.zeros(3)})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.npz"]
    assert zipfile.is_zipfile(tmp_path / "c.npz")


def test_resumed_run_equals_uninterrupted_run(tmp_path, capsys):
    full, part = tmp_path / "full", tmp_path / "part"
    assert main(["run", "heat1d", "--out", str(full), *TINY]) == 0
    assert capsys.readouterr().err == ""  # a clean --quiet run stays silent
    # Simulate a kill after step 2: run 2 steps, then declare 4 in the saved config and resume.
    assert main(["run", "heat1d", "--out", str(part), *TINY, "--set", "steps=2"]) == 0
    cfg = json.loads((part / "config.json").read_text())
    cfg["steps"] = 4
    (part / "config.json").write_text(json.dumps(cfg))
    assert main(["resume", str(part), "--quiet"]) == 0
    assert capsys.readouterr().err == ""  # its resume too
    a = np.load(full / "checkpoint.npz")
    b = np.load(part / "checkpoint.npz")
    leaves = [k for k in a.files if k.startswith("leaf_")]
    assert leaves
    for k in leaves:
        np.testing.assert_array_equal(a[k], b[k])
    ra, rb = read_metrics(full / "metrics.csv"), read_metrics(part / "metrics.csv")
    assert [r["step"] for r in rb] == [0, 1, 2, 3, 4]
    assert [r["loss"] for r in ra] == [r["loss"] for r in rb]
    assert sorted(p.name for p in (part / "fields").iterdir()) == [f"step_{i:06d}.npz" for i in range(5)]


def test_resume_drops_metrics_rows_written_after_the_checkpoint(tmp_path):
    run = tmp_path / "run"
    assert main(["run", "heat1d", "--out", str(run), *TINY, "--set", "steps=2"]) == 0
    # A kill between the metrics write and the checkpoint write would leave an extra row.
    with open(run / "metrics.csv", "a") as fh:
        fh.write("3," + ",".join(["0"] * (len(read_metrics(run / "metrics.csv")[0]) - 1)) + "\n")
    assert main(["resume", str(run), "--quiet"]) == 0
    assert [r["step"] for r in read_metrics(run / "metrics.csv")] == [0, 1, 2]
