"""The README's worked examples, executed from the README itself (so the text cannot drift)."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

README = Path(__file__).resolve().parents[1] / "README.md"


def _block_after(heading: str) -> str:
    text = README.read_text()
    start = text.index(heading)
    return re.search(r"```python\n(.*?)```", text[start:], re.S).group(1)


def test_system_with_one_network_per_unknown():
    ns: dict = {}
    exec(compile(_block_after("### A system with one network per unknown"), "README.md", "exec"), ns)
    traj, field = ns["traj"], ns["field"]
    assert len(field.parts) == 2 and field.out_dim == 2  # two separate networks
    last = traj.metrics[-1]
    assert last["t"] == 0.5 and last["rel_l2"] < 1e-2, last
    # the Dirichlet condition holds between the sampled boundary points
    import jax

    edge = np.asarray(ns["Wave"]().domain.boundary_points(jax.random.PRNGKey(5), 1000))
    assert np.abs(traj.evaluate(edge, 0.5)).max() < 3e-2
    assert traj.stepper.boundary_samples == 70
