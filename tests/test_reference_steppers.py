"""The classical reference solvers run through the one time loop (insr.simulate): same states
as stepping them by hand, checkpoints, and a resumed run equal to an uninterrupted one."""

from __future__ import annotations

import functools

import jax
import numpy as np
import pytest

import insr
from insr.geometry.mesh import rectangle_mesh
from insr.physics.elastic_energy import arap_volume
from insr.reference import flows
from insr.reference.fem_elastic import ElasticFEM
from insr.reference.fluid_grid import GridEuler2D, kinetic_energy, max_divergence, sample_velocity
from insr.reference.steppers import FEMStepper, GridFluidStepper


def test_grid_fluid_run_goes_through_simulate_and_resumes_exactly(tmp_path):
    solver = GridEuler2D(16)
    by_hand = solver.initial_state(flows.two_vortices_velocity, flows.two_vortices_density)
    for _ in range(4):
        by_hand = solver.step(by_hand, 0.05)
    res = solver.run(flows.two_vortices_velocity, 0.05, 4, flows.two_vortices_density, save_every=2)
    assert list(res.times) == [0.0, 0.1, 0.2] and res.final.t == 0.2
    np.testing.assert_array_equal(res.final.ux, by_hand.ux)
    np.testing.assert_array_equal(res.final.density, by_hand.density)
    assert res.wall_time > 0

    observe = lambda g, t: {"kinetic_energy": kinetic_energy(g), "div_max": max_divergence(g)}
    stepper = GridFluidStepper(solver, flows.two_vortices_velocity, flows.two_vortices_density, observers=[observe])
    run = tmp_path / "grid"
    insr.simulate(stepper, dt=0.05, steps=2, key=jax.random.PRNGKey(0), run_dir=run)
    resumed = insr.simulate(stepper, dt=0.05, steps=4, key=jax.random.PRNGKey(0), run_dir=run, resume=True)
    final = resumed.final_state
    assert final["ux"].dtype == np.float64  # a NumPy state comes back as float64 NumPy
    np.testing.assert_array_equal(final["ux"], by_hand.ux)
    rows = resumed.metrics
    assert [r["step"] for r in rows] == [0, 1, 2, 3, 4] and rows[-1]["div_max"] < 1e-8
    # evaluation samples the grid: the velocity at the cell centres, pressure and density columns
    pts = np.array([[0.1, -0.2], [0.5, 0.5]])
    vals = stepper.evaluate(final, pts)
    assert vals.shape == (2, 4)
    np.testing.assert_allclose(vals[:, :2], sample_velocity(by_hand, pts, 3))


def test_fem_simulate_goes_through_simulate_and_resumes_exactly(tmp_path):
    mesh = rectangle_mesh((0.0, 0.0), (2.0, 0.5), (4, 1))
    X = mesh.points
    left = np.flatnonzero(np.isclose(X[:, 0], 0.0))
    fem = ElasticFEM(mesh, 10.0, 10.0, energy=functools.partial(arap_volume, signed=True),
                     gravity=(0.0, -1.0), fixed_nodes=left)
    seen = []
    traj, infos = fem.simulate(0.1, 4, callback=lambda s, x, info: seen.append((s, info.converged)))
    assert traj.shape == (5,) + X.shape and len(infos) == 4 and all(i.converged for i in infos)
    assert seen == [(1, True), (2, True), (3, True), (4, True)]
    # the free end falls, the clamped one does not move
    assert traj[-1][~np.isin(np.arange(len(X)), left), 1].min() < X[:, 1].min()
    np.testing.assert_array_equal(traj[-1][left], X[left])

    stepper = FEMStepper(fem)
    run = tmp_path / "fem"
    insr.simulate(stepper, dt=0.1, steps=2, key=jax.random.PRNGKey(0), run_dir=run)
    resumed = insr.simulate(stepper, dt=0.1, steps=4, key=jax.random.PRNGKey(0), run_dir=run, resume=True)
    np.testing.assert_allclose(resumed.final_state["x"], traj[-1], rtol=0, atol=1e-12)
    assert all(r["converged"] for r in resumed.metrics) and resumed.metrics[-1]["iterations"] >= 1
    # a Newton step reports no loss, so the loop's loss-jump judge leaves it alone (it flagged every step)
    assert all(r["flag"] == "" for r in resumed.metrics), [r["flag"] for r in resumed.metrics]


def test_grid_and_neural_fluid_runs_report_the_same_metrics_by_the_same_formulas():
    from insr.fluids import FluidStepper
    from insr.reference.steppers import grid_flow_observer

    exact = lambda pts, t: flows.taylor_green_velocity(pts)  # steady Euler
    observe = grid_flow_observer(exact_velocity=exact)
    traj = insr.simulate(GridFluidStepper(GridEuler2D(32), flows.taylor_green_velocity, observers=[observe]),
                         dt=0.05, steps=4, key=jax.random.PRNGKey(0))
    first, last = traj.metrics[0], traj.metrics[-1]
    ke = flows.taylor_green_kinetic_energy()
    assert abs(first["kinetic_energy"] - ke) < 1e-2 * ke  # cell averages of the faces: O(h²)
    assert last["div_max"] < 1e-8 and last["rel_l2"] < 5e-2 and last["velocity_mse"] > 0
    neural_keys = {"kinetic_energy", "enstrophy", "div_max", "div_rms", "velocity_mse", "rel_l2"}
    assert neural_keys <= set(last)
    # the neural stepper's metrics come from the same function: same keys
    assert "flow_metrics" in FluidStepper.flow_metrics.__code__.co_names


def test_fem_and_neural_elastic_runs_report_the_same_body_metrics():
    """Free fall onto a plane from rest: the FEM (lumped nodal quadrature) and the neural stepper
    (volume quadrature) report centre of mass, energies and the gap by the same formulas
    (insr.observers.body_metrics), and both follow the discrete ballistic path."""
    from insr.elasticity import ElasticStepper
    from insr.fields import Siren
    from insr.geometry.rest_shape import RestShape
    from insr.physics.elastic_energy import PlaneContact
    from insr.physics.materials import Material
    from insr.reference.steppers import fem_body_observer
    from insr.solvers import LevenbergMarquardt

    g, dt, floor = 9.8, 0.1, PlaneContact((0.0, 1.0), -2.0, 1e4)
    rest = RestShape.from_box((-0.5, 0.0), (0.5, 1.0))
    mat = Material("arap", 200.0, 150.0, 1.0)
    neural = ElasticStepper(Siren(2, 2, 8, 1, omega0=5.0, key=jax.random.PRNGKey(0)), rest, mat,
                            LevenbergMarquardt(max_iters=8), gravity=(0.0, -g), contacts=[floor], samples=200)
    fem = ElasticFEM(rectangle_mesh((-0.5, 0.0), (0.5, 1.0), 6), 150.0, 200.0, density=1.0, gravity=(0.0, -g),
                     contacts=[floor])
    a = insr.simulate(neural, dt=dt, steps=2, key=jax.random.PRNGKey(1)).metrics
    b = insr.simulate(FEMStepper(fem, observers=[fem_body_observer(fem)]), dt=dt, steps=2,
                      key=jax.random.PRNGKey(1)).metrics
    keys = {"com_x", "com_y", "kinetic_energy", "elastic_energy", "gravity_energy", "contact_energy", "min_gap",
            "max_penetration", "total_energy"}
    assert keys <= set(a[-1]) and keys <= set(b[-1])
    for ra, rb, n in zip(a, b, range(3)):
        com = 0.5 - g * dt**2 * n * (n + 1) / 2  # xⁿ = X + Δt²b·n(n+1)/2
        assert ra["com_y"] == pytest.approx(com, abs=2e-4) and rb["com_y"] == pytest.approx(com, abs=1e-9)
        v = g * dt * n
        for r in (ra, rb):
            assert r["kinetic_energy"] == pytest.approx(0.5 * v * v, rel=2e-3, abs=1e-9)  # ρ = 1, V = 1
            assert r["gravity_energy"] == pytest.approx(g * r["com_y"], rel=1e-5)
            assert r["min_gap"] == pytest.approx(2.0 - g * dt**2 * n * (n + 1) / 2, abs=1e-3)
        assert rb["elastic_energy"] < 1e-12 and ra["elastic_energy"] < 1e-6
