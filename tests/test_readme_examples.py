"""The README's worked examples, executed from the README itself (so the text cannot drift)."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

README = Path(__file__).resolve().parents[1] / "README.md"


def _block_after(heading: str) -> str:
    text = README.read_text()
    start = text.index(heading)
    return re.search(r"```python\n(.*?)```", text[start:], re.S).group(1)


@pytest.mark.slow  # ~40 s: keeps the default suite under 10 min on 2 cores
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


@pytest.mark.slow  # ~20-80 s: keeps the default suite under 10 min on 2 cores
def test_user_written_splitting_lie_is_first_order_and_strang_cancels_its_error():
    """The README's splitting example: Lie's error is the splitting error ab·Δt·t/2-sized and
    halves with Δt (slope 1), Strang's (exact for this pair, [A, B] = ab commutes with both) sits
    at the midpoint sub-steps' own error, far below."""
    import jax

    import insr
    from insr.splitting import lie

    ns: dict = {}
    exec(compile(_block_after("### A splitting scheme from existing pieces"), "README.md", "exec"), ns)
    errors = ns["errors"]
    coarse = insr.simulate(lie(ns["full"], ns["advect"], ns["react"]), dt=0.2, steps=4,
                           key=jax.random.PRNGKey(1)).metrics[-1]["rel_l2"]
    slope = np.log2(coarse / errors["lie"])
    assert 0.8 < slope < 1.3, (coarse, errors)
    assert errors["strang"] < errors["lie"] / 5, errors
    assert errors["lie"] > 5e-3  # the splitting error is really there (a bug that ran A+B at once would not show it)


@pytest.mark.slow  # keeps the default suite under 10 min on 2 cores
def test_divergence_free_field_keeps_the_constraint_exactly():
    """The README's constraint example: the field follows the exact decay (measured 3.0e-5
    relative) and its divergence is zero to float32 round-off (measured 1.2e-7, against
    velocities of size 1); the wrapper refuses a stream function that is not scalar."""
    import jax

    from insr.fields import DivergenceFree, Siren

    ns: dict = {}
    exec(compile(_block_after("### A constraint built into the field"), "README.md", "exec"), ns)
    rel, max_div = ns["traj"].metrics[-1]["rel_l2"], ns["max_div"]
    assert rel < 1e-3, rel
    assert max_div < 1e-5, max_div
    with np.testing.assert_raises(ValueError):
        DivergenceFree(Siren(2, 2, 8, 1, key=jax.random.PRNGKey(0)))


@pytest.mark.slow  # ~35 s: keeps the default suite under 10 min on 2 cores
def test_scheme_of_your_own_on_the_engine_is_first_order_and_follows_the_wave():
    """The README's engine example: two networks, two stages per step; symplectic Euler's error
    against the exact standing wave halves with Δt (measured 4.25e-2 → 2.11e-2), and the
    report carries each stage's statistics."""
    ns: dict = {}
    exec(compile(_block_after("### A scheme of your own on the engine"), "README.md", "exec"), ns)
    errors = ns["errors"]
    slope = np.log2(errors[0.1] / errors[0.05])
    assert 0.85 < slope < 1.15, errors
    assert errors[0.05] < 3e-2, errors
    import jax

    import insr

    row = insr.simulate(ns["engine"], dt=0.1, steps=1, key=jax.random.PRNGKey(2)).metrics[-1]
    assert {"u_iterations", "v_iterations", "u_loss", "v_loss"} <= set(row), row
