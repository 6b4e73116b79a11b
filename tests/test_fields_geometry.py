import jax
import jax.numpy as jnp
import numpy as np
import pytest

from insr.fields import Siren
from insr.geometry import Box, Interval, Sampler


def test_siren_parameter_counts_match_the_paper():
    key = jax.random.PRNGKey(0)
    assert Siren(1, 1, 20, 2, key=key).num_params == 901  # 1D advection
    vel, pres = Siren(2, 2, 32, 3, key=key), Siren(2, 1, 32, 3, key=key)
    assert vel.state_bytes + pres.state_bytes == 4 * (3330 + 3297)  # 25.9 KiB, Taylor–Green


def test_siren_initialisation_bounds_and_determinism():
    key = jax.random.PRNGKey(3)
    net = Siren(2, 1, 64, 2, key=key, omega0=30.0)
    assert np.max(np.abs(net.layers[0].weight)) <= 1 / 2
    assert np.max(np.abs(net.layers[1].weight)) <= np.sqrt(6 / 64) / 30
    again = Siren(2, 1, 64, 2, key=key, omega0=30.0)
    assert all(np.array_equal(a.weight, b.weight) for a, b in zip(net.layers, again.layers))
    y = jax.vmap(net)(jnp.zeros((5, 2)))
    assert y.shape == (5, 1)


def test_fast_sine_siren_matches_plain_siren():
    key = jax.random.PRNGKey(1)
    fast, plain = Siren(1, 1, 20, 2, key=key), Siren(1, 1, 20, 2, key=key, fast_sine=False)
    x = jnp.linspace(-2, 2, 101)[:, None]
    np.testing.assert_allclose(jax.vmap(fast)(x), jax.vmap(plain)(x), atol=5e-6)


@pytest.mark.parametrize("bad", [dict(width=0), dict(depth=-1), dict(omega0=0.0)])
def test_siren_rejects_bad_sizes(bad):
    args = dict(in_dim=1, out_dim=1, width=8, depth=1, key=jax.random.PRNGKey(0)) | bad
    with pytest.raises(ValueError, match=next(iter(bad))):
        Siren(**args)


@pytest.mark.parametrize("method", ["uniform", "stratified", "jittered", "sobol", "halton"])
def test_samplers_stay_in_the_box_and_cover_it(method):
    box = Box((-1.0, 0.0), (1.0, 2.0))
    pts = np.asarray(Sampler(box, 4096, method)(jax.random.PRNGKey(0)))
    assert pts.shape == (4096, 2)
    assert np.all(pts >= [-1, 0]) and np.all(pts <= [1, 2])
    hist, _, _ = np.histogram2d(pts[:, 0], pts[:, 1], bins=4, range=[[-1, 1], [0, 2]])
    assert hist.min() > 0.6 * 4096 / 16  # every cell gets its share (loose for i.i.d. uniform)
    other = np.asarray(Sampler(box, 4096, method)(jax.random.PRNGKey(1)))
    assert not np.allclose(pts, other)  # each key gives new points


def test_stratified_1d_puts_one_point_per_cell():
    pts = np.asarray(Sampler(Interval(0.0, 1.0), 100, "stratified")(jax.random.PRNGKey(0)))[:, 0]
    counts = np.histogram(pts, bins=100, range=(0, 1))[0]
    assert np.all(counts == 1)


@pytest.mark.parametrize("n, dim", [(400, 2), (1000, 2), (500, 3)])
def test_jittered_puts_at_most_one_point_per_grid_cell(n, dim):
    box = Box((0.0,) * dim, (1.0,) * dim)
    pts = np.asarray(Sampler(box, n, "jittered")(jax.random.PRNGKey(3)))
    m = int(np.ceil(n ** (1 / dim) - 1e-9))
    cells = np.ravel_multi_index(tuple(np.minimum((pts * m).astype(int), m - 1).T), (m,) * dim)
    assert pts.shape == (n, dim) and len(np.unique(cells)) == n
    if n == m**dim:  # a full grid: every cell holds its point
        assert np.unique(cells).size == m**dim


def test_jittered_mean_is_unbiased_and_far_less_noisy_than_iid():
    """The sample mean of a smooth f over the unit square, 300 keys of 1,000 points:
    unbiased (within 4 standard errors of the exact integral) for both, and the jittered
    grid's variance below 1/20 of i.i.d.'s (theory: ~1/n^(2/d) = 1/1000 of it for smooth f)."""
    box = Box((0.0, 0.0), (1.0, 1.0))

    def f(p):
        return jnp.sin(3 * p[:, 0]) * jnp.cos(2 * p[:, 1]) + p[:, 0] ** 2

    exact = (1 - np.cos(3)) / 3 * np.sin(2) / 2 + 1 / 3
    keys = jax.random.split(jax.random.PRNGKey(0), 300)
    est = {m: np.asarray(jax.vmap(lambda k, m=m: jnp.mean(f(Sampler(box, 1000, m)(k))))(keys), np.float64)
           for m in ("uniform", "jittered")}
    for m, e in est.items():
        assert abs(e.mean() - exact) < 4 * e.std() / np.sqrt(len(e)) + 1e-6, (m, e.mean(), exact)
    assert est["jittered"].var() < est["uniform"].var() / 20, {m: e.var() for m, e in est.items()}


def test_boundary_points_lie_on_the_boundary():
    box = Box((0.0, 0.0, 0.0), (1.0, 2.0, 3.0))
    pts = np.asarray(box.boundary_points(jax.random.PRNGKey(0), 500))
    on_face = np.isclose(pts, box.lo).any(axis=1) | np.isclose(pts, box.hi).any(axis=1)
    assert on_face.all()
    ends = np.asarray(Interval(-2.0, 2.0).boundary_points(jax.random.PRNGKey(0), 4))[:, 0]
    assert sorted(set(ends.tolist())) == [-2.0, 2.0]


def test_bad_domain_and_sampler_arguments():
    with pytest.raises(ValueError, match="lo < hi"):
        Box((1.0,), (0.0,))
    with pytest.raises(ValueError, match="sampling method"):
        Sampler(Interval(0, 1), 10, "grid")


def test_matching_boundary_samples_follow_the_interior_spacing():
    from insr.geometry import Box, Interval

    assert Interval(0.0, 1.0).matching_boundary_samples(5000) == 2  # the two ends
    assert Box((0.0, 0.0), (1.0, 1.0)).matching_boundary_samples(1000) == 127  # 4 / (1/√1000)
    assert Box((0.0, 0.0), (2.0, 1.0)).matching_boundary_samples(2000) == 190  # h = 1/√1000, 6/h
    assert Box((0.0,) * 3, (1.0,) * 3).matching_boundary_samples(1000) == 600  # h = 0.1, 6/h²


def test_snapshot_times_beyond_a_shortened_run_are_drawn_once():
    from insr.simulate import Trajectory
    from insr.viz.plots1d import distinct_steps

    traj = Trajectory(stepper=None)
    traj.steps, traj.ts, traj.states = [0, 1, 2], [0.0, 0.01, 0.02], [None] * 3
    assert distinct_steps(traj, [0.0, 4.0, 8.0, 12.0]) == [0, 2]  # 4, 8, 12 all clamp to t = 0.02
    assert distinct_steps(traj, []) == [0, 2]


def test_clamp_keeps_the_derivative_on_the_box_faces():
    """Box.clamp is the nearest point of the box with derivative 1 inside and on the faces, 0
    outside (``jnp.clip`` gives 1/2 on a face: a back-trace from a wall point was wrong)."""
    from insr.geometry.domains import clamp

    box = Box((-1.0, 0.0), (1.0, 2.0))
    x = jnp.array([[-1.0, 2.0], [-1.5, 0.5], [0.3, 2.5], [1.0, 0.0]])
    np.testing.assert_array_equal(box.clamp(x), jnp.clip(x, jnp.array(box.lo), jnp.array(box.hi)))
    d = jax.vmap(lambda s: jax.grad(lambda t: clamp(t, -1.0, 1.0))(s))(jnp.array([-1.0, -0.5, 1.0, -1.5, 2.0]))
    np.testing.assert_array_equal(d, [1.0, 1.0, 1.0, 0.0, 0.0])
