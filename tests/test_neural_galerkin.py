"""The Neural Galerkin benchmarks (``heat2d`` after TENG, ``allen_cahn1d`` after RSNG): their
problems say the published equations, their references are converged, float64 fields are
what they claim, and the scenarios run end to end with the space–time metric computed right."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from insr.cli import build_stepper, resolve_config
from insr.fields import Periodic, Siren
from insr.problems import AllenCahn1D, Heat2DPeriodic
from insr.reference.spectral import semilinear_reference
from insr.simulate import simulate

TP = 2 * math.pi


@pytest.fixture
def x64_cli():
    """Scenario builds turn on 64-bit JAX globally (the CLI's edge); put the process back after."""
    yield
    jax.config.update("jax_enable_x64", False)


def test_heat2d_problem_is_tengs_equation_and_its_exact_solution_solves_it():
    with jax.enable_x64(True):
        p = Heat2DPeriodic()
        pts = jax.random.uniform(jax.random.PRNGKey(0), (50, 2), jnp.float64, 0.0, TP)
        x, y = pts[:, 0], pts[:, 1]
        teng_u0 = (0.2207 * jnp.sin(y) - 0.2030 * jnp.sin(y) * jnp.cos(2 * x) + 0.0294 * jnp.sin(y) * jnp.cos(4 * x)
                   - 0.0087 * jnp.sin(3 * y) + 0.0080 * jnp.sin(3 * y) * jnp.cos(2 * x))
        np.testing.assert_allclose(jax.vmap(p.initial_condition)(pts)[:, 0], teng_u0, atol=1e-15)
        def residual(z, t):
            u_t = jax.jacfwd(lambda s: p.exact_solution(z, s))(t)
            return u_t - p.rhs(lambda q: p.exact_solution(q, t), z, t)

        batch = jax.jit(jax.vmap(residual, in_axes=(0, None)))  # jitted: one compilation for the three times
        for t in (0.0, 1.3, 4.0):
            assert float(jnp.max(jnp.abs(batch(pts, t)))) < 1e-14
        assert p.error_points().shape == (256 * 256, 2) and p.error_points().max() < TP


def test_allen_cahn_reference_is_converged_and_moves():
    """Space–time relative difference to a 2× finer grid and 2× smaller Δt far below the 1.66e-5
    it judges; and the solution at T = 4 is far from u0 (the interfaces have moved)."""
    with jax.enable_x64(True):
        p = AllenCahn1D()
        coarse = semilinear_reference(p, t1=4.0, save_dt=0.5, n=256, max_dt=1e-2)
        fine = semilinear_reference(p, t1=4.0, save_dt=0.5, n=512, max_dt=5e-3)
        x = p.error_points()
        num = sum(np.sum((coarse.interpolate(t, x) - fine.interpolate(t, x)) ** 2) for t in coarse.times)
        den = sum(np.sum(fine.interpolate(t, x) ** 2) for t in coarse.times)
        assert math.sqrt(num / den) < 1e-8
        u0, u4 = fine.interpolate(0.0, x), fine.interpolate(4.0, x)
        np.testing.assert_allclose(u0, np.asarray(jax.vmap(p.initial_condition)(jnp.asarray(x)))[:, 0], atol=1e-12)
        assert np.linalg.norm(u4 - u0) > 0.3 * np.linalg.norm(u0)
        assert np.max(np.abs(u4)) < 1.01  # Allen–Cahn's maximum principle (|u0| ≤ 1)


def test_float64_siren_is_float64_and_refuses_to_be_built_without_x64():
    with pytest.raises(ValueError, match="needs 64-bit JAX"):
        Siren(2, 1, 8, 1, fast_sine=False, dtype="float64", key=jax.random.PRNGKey(0))
    with pytest.raises(ValueError, match="dtype must be one of"):
        Siren(2, 1, 8, 1, dtype="float16", key=jax.random.PRNGKey(0))
    with jax.enable_x64(True):
        with pytest.raises(ValueError, match="fast_sine"):
            Siren(2, 1, 8, 1, dtype="float64", key=jax.random.PRNGKey(0))
        f = Periodic(Siren(2, 1, 8, 1, fast_sine=False, dtype="float64", key=jax.random.PRNGKey(0)), periods=[TP])
        assert {a.dtype for a in jax.tree.leaves(f)} == {jnp.dtype("float64")}
        assert f.state_bytes == 8 * f.num_params
    assert Siren(2, 1, 8, 1, key=jax.random.PRNGKey(0)).state_bytes == 4 * (2 * 8 + 8 + 8 * 8 + 8 + 8 + 1)


SMALL = ["field.width=8", "samples=400", "init.max_iters=300", "lm.max_iters=30"]


def test_heat2d_scenario_runs_in_float64_to_high_accuracy(x64_cli):
    """Two gauss4 steps of Δt = 0.2 at a reduced size (a 2×8 SIREN, 400 points) reach a relative
    L2 error (256² grid, exact solution) below 1e-5, with a float64 state."""
    stepper = build_stepper(resolve_config("heat2d", ["steps=2", *SMALL]))
    assert stepper.state_bytes() == 8 * stepper.num_params
    traj = simulate(stepper, dt=0.2, steps=2, key=jax.random.PRNGKey(0))
    last = traj.metrics[-1]
    assert last["t"] == pytest.approx(0.4) and last["rel_l2"] < 1e-5, last
    assert traj.metrics[0]["fit_ok"]
    # The space–time summary is the root of the summed squares of all rows.
    rows = traj.metrics
    want = math.sqrt(sum(r["sq_error"] for r in rows) / sum(r["sq_ref"] for r in rows))
    assert traj.summary["spacetime_rel_l2"] == pytest.approx(want, rel=1e-12)


@pytest.mark.slow  # ~20-80 s: keeps the default suite under 10 min on 2 cores
def test_allen_cahn_scenario_scores_against_an_independent_reference(x64_cli):
    """The run's space–time error (its reference: 1,024 points) equals the error recomputed from
    the saved fields against an independent finer reference (2,048 points, Δt/2) to 1e-3 relative,
    and is small: the float64 field follows the interfaces."""
    cfg = resolve_config("allen_cahn1d", ["steps=2", *SMALL])
    stepper = build_stepper(cfg)
    traj = simulate(stepper, dt=cfg["dt"], steps=2, key=jax.random.PRNGKey(0))
    ref = semilinear_reference(AllenCahn1D(), t1=2 * cfg["dt"], save_dt=cfg["dt"], n=2048, max_dt=2.5e-3)
    x = AllenCahn1D().error_points()
    num = den = 0.0
    for t, state in zip(traj.ts, traj.states):
        r = ref.interpolate(t, x)
        num += np.sum((stepper.evaluate(state, x)[:, 0] - r) ** 2)
        den += np.sum(r**2)
    assert traj.summary["spacetime_rel_l2"] == pytest.approx(math.sqrt(num / den), rel=1e-3)
    assert traj.summary["spacetime_rel_l2"] < 1e-3


@pytest.mark.slow
@pytest.mark.parametrize("name", ["heat2d", "allen_cahn1d"])
def test_benchmark_initial_fit_succeeds_on_ten_seeds(name, x64_cli):
    failures = []
    for seed in range(10):
        stepper = build_stepper(resolve_config(name, [f"seed={seed}"]))
        _, info = stepper.initial_state(jax.random.fold_in(jax.random.PRNGKey(seed), 0))
        if not info["fit_ok"] or info["fit_attempts"] != 1:
            failures.append((seed, info["fit_error"], info["fit_attempts"]))
    assert not failures, failures


@pytest.mark.slow
def test_heat2d_full_run_meets_the_issue_target(x64_cli):
    """The built-in heat2d (20 gauss4 steps of 0.2): relative L2 ≤ 1e-6 at t = 1, 2, 3, 4."""
    cfg = resolve_config("heat2d", [])
    traj = simulate(build_stepper(cfg), dt=cfg["dt"], steps=cfg["steps"], key=jax.random.PRNGKey(cfg["seed"]))
    at = {round(r["t"], 6): r["rel_l2"] for r in traj.metrics}
    assert all(at[t] <= 1e-6 for t in (1.0, 2.0, 3.0, 4.0)), at
