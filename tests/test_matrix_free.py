"""Matrix-free Levenberg–Marquardt (:class:`insr.solvers.MatrixFreeLM`): its pieces against
dense linear algebra, and its solves against the dense solver's on the same problems."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from insr.elasticity import ElasticStepper
from insr.fields import Siren
from insr.geometry.rest_shape import RestShape
from insr.physics.materials import Material
from insr.solvers import Block, LevenbergMarquardt, MatrixFreeLM, sample_blocks
from insr.solvers.config import make_lm
from insr.solvers.matrix_free import gauss_newton_diagonal, pcg
from insr.solvers.objective import residual_vector


def test_pcg_solves_a_badly_scaled_spd_system():
    """A = DBD with D spanning 1e-2…1e2 (cond ≈ 1e9): Jacobi-preconditioned CG reaches the
    asked relative residual, and its solution is numpy's."""
    rng = np.random.default_rng(0)
    B = rng.normal(size=(60, 60))
    B = B @ B.T / 60 + np.eye(60)
    D = np.diag(np.logspace(-2, 2, 60))
    A = D @ B @ D
    b = rng.normal(size=60)
    x, k = pcg(lambda v: jnp.asarray(A, jnp.float32) @ v, jnp.asarray(b, jnp.float32),
               jnp.asarray(1.0 / np.diag(A), jnp.float32), 200, 1e-5)
    # the recursion reaches 1e-5; the true residual of the float32 iterate is a little larger
    assert np.linalg.norm(A @ np.asarray(x, np.float64) - b) <= 1e-4 * np.linalg.norm(b)
    np.testing.assert_allclose(np.asarray(x), np.linalg.solve(A, b), rtol=1e-3, atol=1e-6)
    assert 0 < int(k) < 200
    _, k_max = pcg(lambda v: jnp.asarray(A, jnp.float32) @ v, jnp.asarray(b, jnp.float32),
                   jnp.ones(60, jnp.float32), 3, 1e-12)
    assert int(k_max) == 3  # truncated at the cap


def _siren_blocks(width=12, n=300, seed=0):
    field = Siren(1, 1, width, 1, omega0=10.0, key=jax.random.PRNGKey(seed))
    params, static = eqx.partition(field, eqx.is_array)
    xs = jnp.linspace(-1.0, 1.0, n)[:, None]

    def fit(p, x, a):
        return eqx.combine(p, static)(x) - jnp.exp(-(x**2) / 0.05)

    def weighted(p, x, a):  # a second block (two rows per point, a weight), consistent with the first
        e = eqx.combine(p, static)(x)[0] - jnp.exp(-(x[0] ** 2) / 0.05)
        return jnp.stack([e * x[0], 0.5 * e])

    blocks = (Block(fit, lambda k: xs), Block(weighted, lambda k: xs[::3], weight=0.3))
    return blocks, params


def test_gauss_newton_diagonal_is_the_dense_one_for_any_chunk():
    """Chunks that do not divide the point count (padding is masked) give diag(JᵀJ) exactly."""
    blocks, params = _siren_blocks(n=100)
    theta, unravel = jax.flatten_util.ravel_pytree(params)
    pts = sample_blocks(blocks, jax.random.PRNGKey(0))
    # Jitted: one compilation each instead of one per operation.
    J = jax.jit(jax.jacfwd(lambda th: residual_vector(blocks, pts, unravel(th), None)))(theta)
    dense = np.sum(np.asarray(J, np.float64) ** 2, axis=0)
    for chunk in (7, 10_000):
        diag = jax.jit(lambda th, c=chunk: gauss_newton_diagonal(blocks, pts, unravel, th, None, c))(theta)
        np.testing.assert_allclose(np.asarray(diag), dense, rtol=2e-4, atol=1e-7 * dense.max())


@pytest.mark.parametrize("geodesic", [0.0, 0.75])
def test_matrix_free_lm_finds_the_minimum_of_a_nonlinear_fit(geodesic):
    xs = jnp.linspace(0.0, 2.0, 50)[:, None]
    blocks = (Block(lambda p, x, a: p["a"] * jnp.exp(p["b"] * x) - 2.0 * jnp.exp(-1.5 * x), lambda k: xs),)
    solver = MatrixFreeLM(max_iters=100, ftol=1e-14, cg_rtol=1e-6, geodesic=geodesic)
    p, st = jax.jit(lambda p: solver.solve(blocks, p, None, jax.random.PRNGKey(0)))(
        {"a": jnp.array(0.5), "b": jnp.array(0.3)})
    np.testing.assert_allclose([p["a"], p["b"]], [2.0, -1.5], rtol=1e-4)
    assert float(st.loss) < 1e-9 * float(st.loss_initial)
    assert int(st.inner) >= int(st.iterations) - int(st.rejected) > 0  # at least one CG product per step


@pytest.mark.parametrize("seed", [0, pytest.param(3, marks=pytest.mark.slow)])
def test_matrix_free_lm_fits_a_siren_as_well_as_the_dense_solver(seed):
    """Same problem, same damping rule: the matrix-free solve (inexact CG steps) lowers the
    loss by as many orders as the dense Cholesky solve in the same iteration budget."""
    blocks, params = _siren_blocks(seed=seed)
    dense = LevenbergMarquardt(max_iters=40, ftol=0.0, tau=1e-3)
    free = MatrixFreeLM(max_iters=40, ftol=0.0, tau=1e-3, cg_max_iters=200, cg_rtol=1e-4, precondition_every=1)
    _, sd = jax.jit(lambda p: dense.solve(blocks, p, None, jax.random.PRNGKey(0)))(params)
    _, sf = jax.jit(lambda p: free.solve(blocks, p, None, jax.random.PRNGKey(0)))(params)
    assert float(sd.loss_initial) == pytest.approx(float(sf.loss_initial), rel=1e-5)
    reduction_dense = float(sd.loss_initial) / float(sd.loss)
    reduction_free = float(sf.loss_initial) / float(sf.loss)
    assert reduction_dense > 1e3
    assert reduction_free > 0.1 * reduction_dense, (float(sd.loss), float(sf.loss))


@pytest.mark.slow  # keeps the default suite under 10 min on 2 cores
def test_subsampled_curvature_still_converges_with_the_full_gradient():
    """CG products on half of the points (the gradient, loss and gain ratio on all of them):
    the fit still converges (10⁶-fold lower loss in 40 iterations), though more slowly near a
    zero-residual minimum than with the full curvature (measured: 9e-8 against 7e-11)."""
    blocks, params = _siren_blocks()
    solve = lambda s: jax.jit(lambda p: s.solve(blocks, p, None, jax.random.PRNGKey(0)))(params)[1]
    common = dict(max_iters=40, ftol=0.0, tau=1e-3, cg_max_iters=200, cg_rtol=1e-4, precondition_every=1)
    full, half = solve(MatrixFreeLM(**common)), solve(MatrixFreeLM(**common, curvature_fraction=0.5))
    assert float(half.loss) < 1e-6 * float(half.loss_initial), float(half.loss)
    assert float(full.loss) < float(half.loss)


@pytest.mark.slow  # keeps the default suite under 10 min on 2 cores
def test_a_truncated_cg_step_still_descends():
    """Two CG products per step: every accepted step lowers the loss (the gain ratio uses the
    decrease predicted for the truncated step), and the fit still makes progress."""
    blocks, params = _siren_blocks()
    solver = MatrixFreeLM(max_iters=30, ftol=0.0, tau=1e-3, cg_max_iters=2)
    _, st = jax.jit(lambda p: solver.solve(blocks, p, None, jax.random.PRNGKey(0)))(params)
    assert float(st.loss) < 0.1 * float(st.loss_initial)
    assert int(st.inner) <= 2 * int(st.iterations)
    assert int(st.rejected) < int(st.iterations)


def test_the_lm_table_chooses_the_linear_solver_and_names_bad_keys():
    assert isinstance(make_lm({"max_iters": 5}), LevenbergMarquardt)
    mf = make_lm({"max_iters": 5, "linear_solver": "cg", "cg_max_iters": 7, "cg_rtol": 0.1, "cg_chunk": 32})
    assert isinstance(mf, MatrixFreeLM) and (mf.cg_max_iters, mf.cg_rtol, mf.chunk) == (7, 0.1, 32)
    with pytest.raises(ValueError, match="lm.linear_solver"):
        make_lm({"linear_solver": "qr"})
    with pytest.raises(ValueError, match="lm.jacobian_every"):
        make_lm({"linear_solver": "cg", "jacobian_every": 3})
    with pytest.raises(ValueError, match="lm.cg_rtol"):
        make_lm({"linear_solver": "cg", "cg_rtol": 1.5})
    with pytest.raises(ValueError, match="lm.cg_curvature_fraction"):
        make_lm({"linear_solver": "cg", "cg_curvature_fraction": 0.0})
    with pytest.raises(ValueError, match="lm.trace"):
        make_lm({"linear_solver": "cg", "trace": True})
    # every scenario's lm table (the fluids' carries all LevenbergMarquardt fields) takes "cg"
    from insr.registry import get, scenarios

    with jax.enable_x64(True):  # the float64 scenarios' tables need it, as the CLI gives them
        for name in scenarios():
            table = get(name).defaults.get("lm")
            if table is not None:
                assert isinstance(make_lm({**table, "linear_solver": "cg"}), MatrixFreeLM), name


@pytest.mark.slow  # keeps the default suite under 10 min on 2 cores
def test_matrix_free_elastic_free_fall_follows_the_ballistic_path():
    """The elastic step through the matrix-free solver: implicit Euler free fall from rest is
    xⁿ = X + Δt²b·n(n+1)/2 (see test_elasticity), reached to the same accuracy as dense LM."""
    rest = RestShape.from_box((-0.5, 0.0), (0.5, 1.0))
    field = Siren(2, 2, 12, 1, key=jax.random.PRNGKey(0), omega0=5.0)
    solver = MatrixFreeLM(max_iters=10, ftol=1e-6, atol=1e-12)
    st = ElasticStepper(field, rest, Material("arap", 200.0, 150.0, 1.0), solver, gravity=(0.0, -9.8), samples=200)
    state, _ = st.initial_state(None)
    com0 = st.metrics(state, 0.0)["com_y"]
    dt = 0.1
    for n in range(1, 4):
        state, info = st.step(state, (n - 1) * dt, dt, jax.random.PRNGKey(n))
        m = st.metrics(state, n * dt)
        assert m["com_y"] == pytest.approx(com0 - 9.8 * dt**2 * n * (n + 1) / 2, abs=2e-4), n
        assert m["elastic_energy"] < 1e-6
        assert "cg_iterations" in info
