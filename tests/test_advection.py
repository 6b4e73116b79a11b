"""1D advection against its exact solution, and the finite-difference reference's order."""

import jax
import numpy as np
import pytest

import insr
from insr.fields import Siren
from insr.integrators import ImplicitEuler, Midpoint
from insr.problems import Advection1D
from insr.reference.advection_fd import advection_exact, advection_fd_midpoint, gaussian, mae_on
from insr.solvers import LevenbergMarquardt


def run_paper_net(integrator, steps, dt=0.05, samples=5000):
    problem = Advection1D()
    traj = insr.solve(problem, Siren(1, 1, 20, 2, key=jax.random.PRNGKey(0)), integrator,
                      # The scenario's step solver: stop when the residual has dropped 1e3-fold.
                      LevenbergMarquardt.per_step(),
                      dt=dt, t1=steps * dt, key=jax.random.PRNGKey(1), samples=samples)
    return problem, traj


# The default suite checks the same at the scenario's sizes (seed 0, t = 0.6: MAE and the peak's
# position), tests/test_solve_robustness.py::test_advection_steps_meet_their_tolerance_at_scenario_sizes.
@pytest.mark.slow
def test_advection_matches_exact_solution_over_a_short_horizon():
    problem, traj = run_paper_net(Midpoint(), steps=10)
    x = np.linspace(-2, 2, 1000, dtype=np.float32)[:, None]
    for t in (0.0, 0.25, 0.5):
        u = traj.evaluate(x, t)[:, 0]
        exact = advection_exact(x[:, 0], t, velocity=0.25, center=-1.5, width=0.1)
        # The midpoint rule alone (Δt = 0.05) contributes 1.5e-4 at t = 0.5 (fine FD grid).
        assert np.mean(np.abs(u - exact)) < 5e-4, t
        # The pulse moved: its peak is at −1.5 + 0.25·t.
        assert abs(x[np.argmax(u), 0] - (-1.5 + 0.25 * t)) < 0.01
    # Per-step metrics were recorded against the same exact solution.
    assert traj.metrics[-1]["mae"] < 5e-4 and traj.metrics[-1]["step"] == 10


@pytest.mark.slow
def test_midpoint_is_far_more_accurate_than_implicit_euler():
    """The paper (Fig. 3) shows implicit Euler damping the pulse while midpoint keeps it."""
    _, mid = run_paper_net(Midpoint(), steps=40)
    _, ie = run_paper_net(ImplicitEuler(), steps=40)
    assert ie.metrics[-1]["mae"] > 5 * mid.metrics[-1]["mae"]


def test_fd_reference_converges_at_second_order_in_space():
    # Tiny Δt so the spatial error dominates; halve h, fit the slope.
    errs, hs = [], []
    pts = np.linspace(-2, 2, 1000)
    exact = advection_exact(pts, 0.5, velocity=0.25, center=-1.5, width=0.1)
    for n in (101, 201, 401):
        x, u, _ = advection_fd_midpoint(gaussian(-1.5, 0.1), velocity=0.25, lo=-2, hi=2, n_nodes=n, dt=0.001,
                                        steps=500)
        errs.append(np.max(np.abs(u - advection_exact(x, 0.5, velocity=0.25, center=-1.5, width=0.1))))
        hs.append(4 / (n - 1))
    slope = np.polyfit(np.log(hs), np.log(errs), 1)[0]
    assert 1.7 < slope < 2.3, (errs, slope)
    assert mae_on(pts, x, u, exact) < 1e-3


def test_fd_reference_converges_at_second_order_in_time():
    errs, dts = [], [0.1, 0.05, 0.025]
    for dt in dts:
        x, u, _ = advection_fd_midpoint(gaussian(-1.5, 0.1), velocity=0.25, lo=-2, hi=2, n_nodes=8001, dt=dt,
                                        steps=round(2.0 / dt))
        errs.append(np.max(np.abs(u - advection_exact(x, 2.0, velocity=0.25, center=-1.5, width=0.1))))
    slope = np.polyfit(np.log(dts), np.log(errs), 1)[0]
    assert 1.8 < slope < 2.2, (errs, slope)
