"""Trustworthy solves: initial fits that succeed on every seed, failures that are loud.

The advection initial fit at the scenario's own sizes (SIREN 2×20, ω0 = 30, 5,000
points) stalled with plain Levenberg–Marquardt on some seeds: seed 0 on the machine a
user tried, seeds 13, 16 and 20 on another, seeds 4 and 16 on a third (loss 3e-4 … 4e-2
after 200 iterations, relative L2 0.1–0.95).  Which seeds stall flips with CPU rounding,
so the test covers the seeds known to have stalled somewhere.
"""


import jax
import jax.numpy as jnp
import numpy as np
import pytest

import insr
from insr.cli import build_stepper, main, resolve_config
from insr.fields import Siren
from insr.integrators import Midpoint
from insr.problems import Advection1D
from insr.simulate import SolveFailure, read_metrics, simulate
from insr.solvers import Block, LevenbergMarquardt
from insr.solvers.levenberg_marquardt import STOP_REASONS


def _check_initial_fit(row: dict):
    """``row``: the initial fit's report and the metrics of its state (metrics.csv's step 0)."""
    # The first attempt must succeed (the retry is a safety net, not the solver).
    assert row["fit_attempts"] == 1, row
    assert row["fit_ok"] and row["fit_error"] <= 1e-3, row
    assert row["max_error"] < 2e-3, row  # the pulse itself, not just the mean, is right


# Seeds 0 (the regression: it stalled on a user's machine), 4 and 16 (plain LM failed them in
# benchmarks/lm_variants.py) by default; 13 and 20 with the slow set (suite time).  Seed 0's
# fit is checked by default inside the stepping test below (the same key, one compilation less).
@pytest.mark.parametrize("seed", [pytest.param(0, marks=pytest.mark.slow), 4, pytest.param(13, marks=pytest.mark.slow),
                                  16, pytest.param(20, marks=pytest.mark.slow)])
def test_advection_initial_fit_succeeds_at_scenario_sizes(seed):
    cfg = resolve_config("advection1d", [f"seed={seed}"])
    stepper = build_stepper(cfg)
    state, info = stepper.initial_state(jax.random.fold_in(jax.random.PRNGKey(seed), 0))
    _check_initial_fit({**info, **stepper.metrics(state, 0.0)})


@pytest.mark.parametrize("seed", [0, pytest.param(4, marks=pytest.mark.slow)])
def test_advection_steps_meet_their_tolerance_at_scenario_sizes(seed, tmp_path):
    # The per-step default (lm.rtol = 1e-3, geodesic acceleration, ≤ 30 iterations) must be
    # reachable: every step meets it, in a few iterations, and the error stays at the scheme's.
    cfg = resolve_config("advection1d", [f"seed={seed}", "steps=12"])
    # simulate fits the initial condition with fold_in(key, 0), the key of the test above.
    traj = simulate(build_stepper(cfg), dt=cfg["dt"], steps=cfg["steps"], key=jax.random.PRNGKey(seed))
    _check_initial_fit(traj.metrics[0])
    steps = traj.metrics[1:]
    assert traj.summary["missed_tolerance"] == 0 and traj.summary["loss_jumps"] == 0, traj.summary
    assert all(r["stop"] == "rtol" for r in steps), [r["stop"] for r in steps]
    assert np.mean([r["iterations"] for r in steps]) <= 10
    # The midpoint rule alone gives 1.8e-4 at t = 0.6 (40,001-node FD); the solve adds little.
    assert steps[-1]["mae"] < 4e-4, steps[-1]["mae"]
    # The pulse moved with the flow: its peak is at c + a·t.
    x = np.linspace(-1.9, 1.9, 1000, dtype=np.float32)[:, None]
    peak = x[np.argmax(traj.evaluate(x, 0.6)[:, 0]), 0]
    assert abs(peak - (cfg["problem"]["center"] + cfg["problem"]["velocity"] * 0.6)) < 0.01, peak


@pytest.mark.slow
def test_heat1d_steps_meet_their_tolerance(tmp_path):
    # heat1d's step tolerance (lm.rtol = 3e-3) is one the float32 solve reaches: with the
    # shared 1e-3, 47 of 50 steps stopped at the iteration cap (loss floor ≈ 1e-6).
    cfg = resolve_config("heat1d", ["steps=15"])
    traj = simulate(build_stepper(cfg), dt=cfg["dt"], steps=cfg["steps"], key=jax.random.PRNGKey(0))
    steps = traj.metrics[1:]
    assert traj.summary["missed_tolerance"] == 0, [r["stop"] for r in steps]
    assert np.mean([r["iterations"] for r in steps]) <= 20
    assert max(r["mae"] for r in steps) < 5e-5  # exact solution e^{−νπ²t} sin πx, |u| ≤ 1


def _linear_blocks():
    # r(θ) = A θ − b, a consistent linear least-squares problem: LM must meet rtol.
    A = jax.random.normal(jax.random.PRNGKey(0), (40, 5))
    b = A @ jnp.arange(1.0, 6.0)
    x = jnp.arange(40.0)[:, None]

    def res(params, xi, args):
        i = xi[0].astype(jnp.int32)
        return (A[i] @ params["w"] - b[i])[None]

    return (Block(res, lambda key: x, 1.0, "lin"),), {"w": jnp.zeros(5)}


def test_lm_reports_why_it_stopped():
    blocks, p0 = _linear_blocks()
    p, stats = LevenbergMarquardt(max_iters=50, rtol=1e-4, ftol=0.0).solve(blocks, p0, None, jax.random.PRNGKey(0))
    assert bool(stats.converged) and STOP_REASONS[int(stats.reason)] == "rtol"
    assert float(stats.loss) <= 1e-8 * float(stats.loss_initial)
    np.testing.assert_allclose(p["w"], np.arange(1.0, 6.0), rtol=1e-3)
    _, capped = LevenbergMarquardt(max_iters=1, rtol=1e-12, ftol=0.0).solve(blocks, p0, None, jax.random.PRNGKey(0))
    assert not bool(capped.converged) and STOP_REASONS[int(capped.reason)] == "max_iters"


def test_geodesic_acceleration_leaves_a_linear_problem_unchanged():
    # r is linear in θ, so r_vv = 0 and the accelerated step equals the plain one.
    blocks, p0 = _linear_blocks()
    a, sa = LevenbergMarquardt(max_iters=3, geodesic=0.75).solve(blocks, p0, None, jax.random.PRNGKey(0))
    b, sb = LevenbergMarquardt(max_iters=3, geodesic=0.0).solve(blocks, p0, None, jax.random.PRNGKey(0))
    np.testing.assert_allclose(a["w"], b["w"], rtol=1e-5)
    assert int(sa.rejected) == int(sb.rejected)


def test_forced_failing_fit_is_one_line_exit_2_and_keeps_the_checkpoint(tmp_path, capsys):
    run = tmp_path / "run"
    code = main(["run", "advection1d", "--out", str(run), "--set", "init.max_iters=2", "--set", "steps=3",
                 "--quiet"])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and "Traceback" not in err
    assert "initial-condition fit failed" in err and "tolerance 0.001" in err and "init.max_iters" in err
    assert (run / "checkpoint.npz").is_file()
    rows = read_metrics(run / "metrics.csv")
    assert len(rows) == 1 and rows[0]["fit_ok"] is False and rows[0]["flag"] == "fit_failed"
    assert rows[0]["fit_attempts"] == 2  # it was retried with the sounder setting first


def test_quiet_run_still_reports_steps_that_missed_their_tolerance(tmp_path, capsys):
    """--quiet drops progress and summary, not failures: one LM iteration per step cannot meet the
    tolerance, and the one line says how many steps missed it."""
    # init.max_iters=100: the initial fit of the CLI tests' tiny heat1d runs (one compilation, cached)
    code = main(["run", "heat1d", "--out", str(tmp_path / "a"), "--set", "steps=2", "--set", "lm.max_iters=1",
                 "--set", "lm.rtol=1e-12", "--set", "init.max_iters=100", "--quiet"])
    err = capsys.readouterr().err
    rows = read_metrics(tmp_path / "a" / "metrics.csv")
    missed = sum(1 for r in rows[1:] if r["converged"] is False)
    assert code == 0 and missed == 2
    assert err.count("\n") == 1 and err.startswith("insr: warning:")
    assert "2 of 2 steps missed their solver tolerance" in err
    # A clean quiet run stays silent: tests/test_checkpoint_resume.py checks it on its heat1d runs.


def test_python_api_fits_the_initial_condition_with_its_own_solver():
    # A per-step solver capped at 8 iterations used to fit u0 with that same cap (loss
    # 0.39, relative L2 0.88) and step on silently; the fit now has its own solver.
    problem = Advection1D(velocity=0.25)
    field = Siren(1, 1, 20, 2, key=jax.random.PRNGKey(0))
    traj = insr.solve(problem, field, Midpoint(), LevenbergMarquardt(max_iters=8), dt=0.05, t1=0.1,
                      key=jax.random.PRNGKey(1), samples=2000)
    assert traj.metrics[0]["fit_ok"] and traj.metrics[0]["fit_error"] < 1e-3


# Two more fit programs (~15 s); in the default suite the CLI test above raises the same
# SolveFailure from simulate (exit 2, one line).
@pytest.mark.slow
def test_python_api_raises_when_the_given_initial_fit_solver_fails():
    problem = Advection1D(velocity=0.25)
    field = Siren(1, 1, 20, 2, key=jax.random.PRNGKey(0))
    with pytest.raises(SolveFailure, match="initial-condition fit failed"):
        insr.solve(problem, field, Midpoint(), LevenbergMarquardt(max_iters=8), dt=0.05, t1=0.1,
                   key=jax.random.PRNGKey(1), samples=2000, init_solver=LevenbergMarquardt(max_iters=3))


def test_a_fit_that_only_interpolates_its_samples_is_caught():
    # 100 points for a pulse of width 0.1 on [−2, 2] with ω0 = 30: the samples can be fitted
    # while the field oscillates between them; the held-out error exposes it.
    cfg = resolve_config("advection1d", ["samples=100", "init.max_iters=60"])
    stepper = build_stepper(cfg)
    _, info = stepper.initial_state(jax.random.PRNGKey(0))
    assert info["loss"] < 1e-3 * info["loss_initial"]  # the sampled loss looks fine …
    assert not info["fit_ok"] and info["fit_error"] > 1e-3  # … the held-out error does not


class _ScriptedStepper:
    """A stepper whose step losses and convergence follow a script (for the time loop)."""

    channel_names, dim = ("u",), 1

    def __init__(self, losses, converged):
        self.losses, self.converged = losses, converged

    def state_template(self):
        return {"u": jnp.zeros(1)}

    def initial_state(self, key):
        return {"u": jnp.zeros(1)}, {"iterations": 0, "loss": 0.0, "converged": True}

    def step(self, state, t, dt, key):
        n = int(round(t / dt))
        return {"u": state["u"] + 1}, {"iterations": 3, "loss": self.losses[n], "converged": self.converged[n]}

    def evaluate(self, state, points, t=None):
        return np.zeros((len(points), 1))

    def metrics(self, state, t):
        return {}

    def state_bytes(self):
        return 4


def test_loss_jumps_are_flagged_and_missed_tolerances_counted(tmp_path):
    losses = [1e-8, 1.2e-8, 0.9e-8, 1.1e-8, 1e-8, 5e-6, 1e-8, 1e-8]
    converged = [True, True, False, True, True, False, True, True]
    traj = simulate(_ScriptedStepper(losses, converged), dt=0.1, steps=8, key=jax.random.PRNGKey(0),
                    run_dir=tmp_path / "run")
    flags = [r["flag"] for r in traj.metrics[1:]]
    assert flags == ["", "", "", "", "", "loss_jump", "", ""]
    assert traj.summary == {"steps": 8, "missed_tolerance": 2, "loss_jumps": 1, "overfit": 0, "penetration": 0}
    rows = read_metrics(tmp_path / "run" / "metrics.csv")
    assert rows[6]["flag"] == "loss_jump"


def test_progress_line_shows_flag_and_misses():
    import io

    from insr.io.progress import ProgressBar

    buf = io.StringIO()
    bar = ProgressBar(10, stream=buf)
    bar.update(3, 0.3, {"loss": 1e-3, "iterations": 5, "flag": "loss_jump"}, {"missed_tolerance": 2})
    bar.close()
    lines = buf.getvalue().replace("\r", "\n").splitlines()
    # the flagged step has a line of its own, with the misses so far; the bar shows them too
    assert any(ln.startswith("insr: step 3") and "!loss_jump" in ln and "missed=2" in ln for ln in lines), lines
    assert any("3/10" in ln and "missed=2" in ln for ln in lines), lines


def test_cli_summary_states_missed_steps(tmp_path, capsys):
    # The settings of the --quiet test above: the same step program (one compilation).
    run = tmp_path / "heat"
    assert main(["run", "heat1d", "--out", str(run), "--set", "steps=2", "--set", "lm.max_iters=1",
                 "--set", "lm.rtol=1e-12", "--set", "init.max_iters=100"]) == 0
    err = capsys.readouterr().err
    assert "2 of 2 steps missed their solver tolerance" in err


def test_retry_setting_is_sounder():
    from insr.stepper import retry_solver

    s = retry_solver(LevenbergMarquardt(max_iters=50, tau=1e-6, geodesic=0.0))
    assert (s.tau, s.geodesic, s.max_iters) == (1e-3, 0.75, 100)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["advection1d", "heat1d", "taylor_green", "two_vortices"])
def test_initial_fit_succeeds_on_ten_seeds(name):
    """Every built-in scenario with an initial fit, seeds 0–9.  The elasticity scenarios
    start from φ = X (NN = 0 exactly, no fit) and need none."""
    failures = []
    for seed in range(10):
        cfg = resolve_config(name, [f"seed={seed}"])
        stepper = build_stepper(cfg)
        _, info = stepper.initial_state(jax.random.fold_in(jax.random.PRNGKey(seed), 0))
        if not info["fit_ok"] or info["fit_attempts"] != 1:
            failures.append((seed, info["fit_error"], info["fit_attempts"]))
    assert not failures, failures


def test_quiet_elastic_run_still_reports_a_body_that_sank_into_an_obstacle(tmp_path, capsys):
    """A soft penalty (contact.stiffness = 10³, 100× below the scenario's) lets the square sink
    into the disk deeper than penetration_alarm (0.1 of its size): --quiet still says so."""
    run = tmp_path / "sink"
    code = main(["run", "elastic_collide_2d", "--out", str(run), "--set", "contact.stiffness=1000",
                 "--set", "steps=6", "--set", "samples=300", "--set", "field.width=12",
                 "--set", "output.images=false", "--set", "output.paraview=false", "--set", "output.ply=false",
                 "--quiet"])
    err = capsys.readouterr().err
    rows = read_metrics(run / "metrics.csv")
    flagged = sum(1 for r in rows[1:] if "penetration" in r["flag"])
    assert code == 0 and flagged == sum(1 for r in rows[1:] if r["max_penetration"] > 0.1) > 0
    assert err.count("\n") == 1 and err.startswith("insr: warning:")
    assert f"{flagged} step(s) flagged penetration" in err
