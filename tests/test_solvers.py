import jax
import jax.numpy as jnp
import numpy as np
import pytest

from insr.solvers import AdamPlateau, Block, LevenbergMarquardt, loss_value, sample_blocks
from insr.solvers.levenberg_marquardt import STOP_REASONS


def exp_fit_blocks():
    """Fit y = a·exp(b·x) to data made with a = 2, b = −1.5 (a nonlinear least-squares problem)."""
    xs = jnp.linspace(0.0, 2.0, 50)[:, None]

    def residual(params, x, args):
        return params["a"] * jnp.exp(params["b"] * x) - 2.0 * jnp.exp(-1.5 * x)

    return (Block(residual, lambda key: xs),)


def test_levenberg_marquardt_finds_the_minimum_of_a_nonlinear_fit():
    blocks = exp_fit_blocks()
    p, stats = jax.jit(lambda p: LevenbergMarquardt(max_iters=100, ftol=1e-14).solve(blocks, p, None,
                                                                                     jax.random.PRNGKey(0)))(
        {"a": jnp.array(0.5), "b": jnp.array(0.3)})
    np.testing.assert_allclose([p["a"], p["b"]], [2.0, -1.5], rtol=1e-4)
    assert float(stats.loss) < 1e-9 * float(stats.loss_initial)
    assert int(stats.iterations) < 100


def test_levenberg_marquardt_stops_by_tolerance_not_cap():
    blocks = exp_fit_blocks()
    _, stats = LevenbergMarquardt(max_iters=500, ftol=1e-3).solve(blocks, {"a": jnp.array(1.9), "b": jnp.array(-1.4)},
                                                                  None, jax.random.PRNGKey(0))
    assert bool(stats.converged) and int(stats.iterations) < 50


@pytest.mark.parametrize("jacobian_every", [1, 3])
def test_levenberg_marquardt_stops_by_gtol_when_the_gradient_is_small(jacobian_every):
    # gtol is judged on the gradient Jᵀr at an accepted point, which the loop builds only at the
    # top of the next iteration: the solve must stop there, at a point whose gradient is small,
    # and not at the cap (the other rules are off).
    blocks = exp_fit_blocks()
    solver = LevenbergMarquardt(max_iters=200, ftol=0.0, rtol=0.0, atol=0.0, gtol=1e-4, jacobian_every=jacobian_every)
    p, stats = jax.jit(lambda p: solver.solve(blocks, p, None, jax.random.PRNGKey(0)))(
        {"a": jnp.array(0.5), "b": jnp.array(0.3)})
    assert STOP_REASONS[int(stats.reason)] == "gtol" and bool(stats.converged), stats
    assert int(stats.iterations) < 200
    grad = jax.grad(lambda q: loss_value(blocks, sample_blocks(blocks, jax.random.PRNGKey(0)), q, None))(p)
    # The solver's residual and J carry the block's 1/√N, so its loss is loss_value (the mean of r²)
    # and its gradient Jᵀr is half of ∇loss_value: |Jᵀr|∞ = |∇loss|∞ / 2.
    assert max(abs(float(grad["a"])), abs(float(grad["b"]))) / 2 <= 1e-4
    np.testing.assert_allclose([p["a"], p["b"]], [2.0, -1.5], rtol=1e-2)


def test_the_presets_are_the_scenarios_solvers_and_stop_by_their_relative_rule():
    from insr.cli import resolve_config
    from insr.scenarios import make_init_solver, make_solver

    # One source: the advection1d / heat1d config tables build exactly the presets.
    cfg = resolve_config("advection1d", [])
    assert make_solver(cfg) == LevenbergMarquardt.per_step()
    assert make_init_solver(cfg) == LevenbergMarquardt.initial_fit()
    assert make_solver(resolve_config("heat1d", [])) == LevenbergMarquardt.per_step(rtol=3e-3)
    assert LevenbergMarquardt.per_step(max_iters=5).max_iters == 5
    # The Python API fits the initial condition with the same initial-fit preset, not with the
    # per-step solver (whose few iterations used to fit u0 badly and silently).
    from insr.fields import Siren
    from insr.geometry import Sampler
    from insr.integrators import Midpoint
    from insr.problems import Advection1D
    from insr.stepper import FieldStepper

    problem = Advection1D()
    st = FieldStepper(problem, Siren(1, 1, 8, 1, key=jax.random.PRNGKey(0)), Midpoint(),
                      LevenbergMarquardt.per_step(max_iters=8), Sampler(problem.domain, 64))
    assert st.init_solver == LevenbergMarquardt.initial_fit()
    # The per-step preset stops once |r| ≤ 1e-3·|r₀| (reason "rtol").
    p0 = {"a": jnp.array(1.0), "b": jnp.array(-1.0)}
    _, preset = LevenbergMarquardt.per_step().solve(exp_fit_blocks(), p0, None, jax.random.PRNGKey(0))
    assert bool(preset.converged) and STOP_REASONS[int(preset.reason)] == "rtol"
    assert float(preset.loss) <= 1e-6 * float(preset.loss_initial)


def test_adam_plateau_reduces_loss_and_lowers_lr():
    blocks = exp_fit_blocks()
    p0 = {"a": jnp.array(1.0), "b": jnp.array(-1.0)}
    solver = AdamPlateau(lr=1e-2, patience=20, max_iters=3000, min_lr=1e-7)
    p, stats = jax.jit(lambda p: solver.solve(blocks, p, None, jax.random.PRNGKey(0)))(p0)
    assert float(stats.loss) < 1e-3 * float(stats.loss_initial)
    assert int(stats.iterations) < 3000  # stopped because lr fell below min_lr (plateaus happened)


def test_loss_is_weighted_mean_square():
    xs = jnp.arange(4.0)[:, None]
    b1 = Block(lambda p, x, a: x * p, lambda k: xs, weight=2.0)
    b2 = Block(lambda p, x, a: jnp.ones(1) * p, lambda k: xs[:2], weight=0.5)
    pts = sample_blocks((b1, b2), jax.random.PRNGKey(0))
    val = loss_value((b1, b2), pts, jnp.array(1.0), None)
    assert np.isclose(float(val), 2.0 * np.mean(np.arange(4.0) ** 2) + 0.5 * 1.0)


@pytest.mark.parametrize("kwargs,field", [(dict(max_iters=0), "max_iters"), (dict(ftol=-1.0), "ftol"),
                                          (dict(linear_dtype="float16"), "linear_dtype")])
def test_lm_rejects_bad_options(kwargs, field):
    with pytest.raises(ValueError, match=field):
        LevenbergMarquardt(**kwargs)


def test_a_sequence_of_solves_reports_totals_and_the_first_miss():
    import jax.numpy as jnp

    from insr.solvers.levenberg_marquardt import STOP_REASONS, SolveStats, sequence_stats, stop_reason_name

    code = {n: i for i, n in enumerate(STOP_REASONS)}
    a = SolveStats(jnp.asarray(3), jnp.asarray(9.0), jnp.asarray(1.0), jnp.asarray(True), jnp.asarray(1), code["rtol"])
    b = SolveStats(jnp.asarray(5), jnp.asarray(2.0), jnp.asarray(0.5), jnp.asarray(False), jnp.asarray(2),
                   code["max_iters"])
    c = SolveStats(jnp.asarray(2), jnp.asarray(1.0), jnp.asarray(0.1), jnp.asarray(True), jnp.asarray(0), code["ftol"])
    s = sequence_stats([a, b, c])
    assert int(s.iterations) == 10 and int(s.rejected) == 3
    assert float(s.loss_initial) == 9.0 and float(s.loss) == pytest.approx(0.1)
    assert not bool(s.converged) and stop_reason_name(s.reason) == "max_iters"
    assert stop_reason_name(sequence_stats([a, c]).reason) == "ftol" and bool(sequence_stats([a, c]).converged)
