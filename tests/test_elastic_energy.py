"""Tests of insr.physics.elastic_energy: rest state, invariance, analytic values,
derivatives at repeated singular values, small-strain limits and parameter checks."""

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from insr.physics.elastic_energy import (
    PlaneContact,
    SphereContact,
    arap_params_from_lame,
    arap_volume,
    lame_from_young,
    polar_rotation,
    snh_params_from_lame,
    stable_neo_hookean,
    sum_singular_values,
    validate_lame,
)

LAM, MU = 1.3, 0.7

ENERGIES = {
    "arap": functools.partial(arap_volume, signed=False),
    "arap_signed": functools.partial(arap_volume, signed=True),
    "snh": functools.partial(stable_neo_hookean, log_term=True),
    "snh_nolog": functools.partial(stable_neo_hookean, log_term=False),
}


@pytest.fixture(autouse=True)
def x64():
    with jax.enable_x64(True):
        yield


def rotation(rng, d):
    Q, _ = np.linalg.qr(rng.normal(size=(d, d)))
    if np.linalg.det(Q) < 0:
        Q[:, 0] *= -1
    return Q


def sample_Fs(d, seed=0):
    """Random F, F = I, and F with two (or, in 3D, also three) equal singular values."""
    rng = np.random.default_rng(seed)
    U, V = rotation(rng, d), rotation(rng, d)
    cases = {
        "identity": np.eye(d),
        "random": np.eye(d) + 0.3 * rng.normal(size=(d, d)),
        "repeated_large": U @ np.diag([1.6] * (d - 1) + [0.7]) @ V.T,
        "repeated_small": U @ np.diag([0.7] + [1.6] * (d - 1)) @ V.T,
        "scaled_rotation": 1.4 * U,
    }
    return {k: jnp.asarray(v) for k, v in cases.items()}


def fd_grad(f, F, eps=1e-6):
    F = np.asarray(F)
    G = np.zeros_like(F)
    for idx in np.ndindex(F.shape):
        E = np.zeros_like(F)
        E[idx] = eps
        G[idx] = (f(F + E) - f(F - E)) / (2 * eps)
    return G


@pytest.mark.parametrize("d", [2, 3])
def test_zero_energy_and_stress_at_rest(d):
    for name, psi in ENERGIES.items():
        value_and_grad = jax.jit(jax.value_and_grad(psi))
        e, g = value_and_grad(jnp.eye(d), LAM, MU)
        assert abs(float(e)) < 1e-14 and np.abs(np.asarray(g)).max() < 1e-12, name
        # float32 (JAX default) too: finite and zero
        with jax.enable_x64(False):
            e32, g32 = value_and_grad(jnp.eye(d, dtype=jnp.float32), LAM, MU)
            assert abs(float(e32)) < 1e-6, name
            assert np.all(np.isfinite(g32)) and np.abs(np.asarray(g32)).max() < 1e-6, name


@pytest.mark.parametrize("name", sorted(ENERGIES))
@pytest.mark.parametrize("d", [2, 3])
def test_rotation_invariance_and_isotropy(name, d):
    psi = jax.jit(ENERGIES[name])
    rng = np.random.default_rng(1)
    F = np.eye(d) + 0.4 * rng.normal(size=(3, d, d))
    Q = np.stack([rotation(rng, d) for _ in range(3)])
    ref = np.asarray(psi(jnp.asarray(F), LAM, MU))
    np.testing.assert_allclose(psi(jnp.asarray(Q @ F), LAM, MU), ref, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(psi(jnp.asarray(F @ Q), LAM, MU), ref, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("d", [2, 3])
def test_uniform_stretch_analytic(d):
    arap = jax.jit(arap_volume, static_argnames="signed")
    snh = jax.jit(stable_neo_hookean, static_argnames="log_term")
    alpha = 1 + d / (d + 1) * MU / LAM

    def published(Ic, J):  # Smith et al. 2018, Eq. 14, before the shift to zero at rest
        return 0.5 * MU * (Ic - d) + 0.5 * LAM * (J - alpha) ** 2 - 0.5 * MU * math.log(Ic + 1)

    for s in (0.6, 1.0, 1.7):
        F = jnp.diag(jnp.asarray([s] + [1.0] * (d - 1)))
        # ARAP: sum (sigma - 1)^2 = (s - 1)^2, det F - 1 = s - 1
        expected = LAM * (s - 1) ** 2 + MU * (s - 1) ** 2
        for signed in (False, True):
            assert float(arap(F, LAM, MU, signed=signed)) == pytest.approx(expected, abs=1e-14)
        Ic = s**2 + d - 1
        expected = published(Ic, s) - published(d, 1.0)
        assert float(snh(F, LAM, MU)) == pytest.approx(expected, rel=1e-12, abs=1e-14)
        expected_nolog = 0.5 * MU * (Ic - d) - MU * (s - 1) + 0.5 * LAM * (s - 1) ** 2
        assert float(snh(F, LAM, MU, log_term=False)) == pytest.approx(
            expected_nolog, rel=1e-12, abs=1e-14
        )


@pytest.mark.parametrize("name", sorted(ENERGIES))
@pytest.mark.parametrize("d", [2, 3])
def test_gradient_and_hessian_match_finite_differences(name, d):
    psi = ENERGIES[name]
    energy = jax.jit(lambda F: psi(F, LAM, MU))

    def f(F):
        return float(energy(jnp.asarray(F)))

    grad = jax.jit(jax.grad(lambda F: psi(F, LAM, MU)))
    hess = jax.jit(jax.hessian(lambda F: psi(F, LAM, MU)))
    for case, F in sample_Fs(d).items():
        G = np.asarray(grad(F))
        H = np.asarray(hess(F))
        assert np.all(np.isfinite(G)) and np.all(np.isfinite(H)), case
        np.testing.assert_allclose(G, fd_grad(f, F), atol=1e-7, err_msg=case)
        # Hessian column (i, j) = d grad / d F_ij by central differences of the gradient
        eps = 1e-6
        for idx in np.ndindex(d, d):
            E = np.zeros((d, d))
            E[idx] = eps
            col = (np.asarray(grad(F + E)) - np.asarray(grad(F - E))) / (2 * eps)
            np.testing.assert_allclose(H[..., idx[0], idx[1]], col, atol=1e-6, err_msg=case)


@pytest.mark.parametrize("d", [2, 3])
def test_gradient_finite_at_repeated_singular_values_float32(d):
    with jax.enable_x64(False):
        g = jax.jit(jax.grad(lambda F: arap_volume(F, LAM, MU)))
        h = jax.jit(jax.hessian(lambda F: arap_volume(F, LAM, MU)))
        for case, F in sample_Fs(d).items():
            F = F.astype(jnp.float32)
            assert np.all(np.isfinite(np.asarray(g(F)))), case
            assert np.all(np.isfinite(np.asarray(h(F)))), case


@pytest.mark.parametrize("d", [2, 3])
def test_polar_rotation_and_sum_of_singular_values(d):
    rng = np.random.default_rng(3)
    polar = jax.jit(polar_rotation, static_argnums=1)
    ssv = jax.jit(sum_singular_values, static_argnums=1)
    grad_ssv = jax.jit(jax.grad(sum_singular_values))
    for _ in range(4):
        F = rng.normal(size=(d, d))
        sv = np.linalg.svd(F, compute_uv=False)
        R = np.asarray(polar(jnp.asarray(F), False))
        S = R.T @ F
        np.testing.assert_allclose(R.T @ R, np.eye(d), atol=1e-12)
        np.testing.assert_allclose(S, S.T, atol=1e-12)
        assert np.linalg.eigvalsh(0.5 * (S + S.T)).min() > -1e-12
        assert float(ssv(jnp.asarray(F), False)) == pytest.approx(sv.sum(), rel=1e-12)
        Rs = np.asarray(polar(jnp.asarray(F), True))
        assert np.linalg.det(Rs) == pytest.approx(1.0, abs=1e-12)
        signed_sum = sv.sum() if np.linalg.det(F) > 0 else sv[:-1].sum() - sv[-1]
        assert float(ssv(jnp.asarray(F), True)) == pytest.approx(signed_sum, rel=1e-12)
        # d(sum sigma)/dF = R
        np.testing.assert_allclose(np.asarray(grad_ssv(jnp.asarray(F))), R, atol=1e-12)


def _linear_hessian(lam, mu, d):
    def lin(F):
        eps = 0.5 * (F + F.T) - jnp.eye(d)
        return mu * jnp.sum(eps * eps) + 0.5 * lam * jnp.trace(eps) ** 2

    return np.asarray(jax.jit(jax.hessian(lin))(jnp.eye(d)))


@pytest.mark.parametrize("d", [2, 3])
def test_small_strain_limit_matches_linear_elasticity(d):
    lam, mu = lame_from_young(10.0, 0.3)
    ref = _linear_hessian(lam, mu, d)
    la, ma = arap_params_from_lame(lam, mu)
    for signed in (False, True):
        H = np.asarray(
            jax.jit(jax.hessian(lambda F, signed=signed: arap_volume(F, la, ma, signed=signed)))(jnp.eye(d))
        )
        np.testing.assert_allclose(H, ref, atol=1e-10)
    for log_term in (True, False):
        ls, ms = snh_params_from_lame(lam, mu, d, log_term=log_term)
        H = np.asarray(
            jax.jit(jax.hessian(lambda F, ls=ls, ms=ms, lt=log_term: stable_neo_hookean(F, ls, ms, log_term=lt)))(
                jnp.eye(d)
            )
        )
        np.testing.assert_allclose(H, ref, atol=1e-10)
    # the paper's 3D reparametrisation
    assert snh_params_from_lame(2.0, 3.0, 3) == pytest.approx((2.0 + 5 / 6 * 3.0, 4 / 3 * 3.0))


def test_jit_vmap_batches():
    rng = np.random.default_rng(4)
    for d in (2, 3):
        Fs = jnp.asarray(np.eye(d) + 0.2 * rng.normal(size=(16, d, d)))
        Fs = Fs.at[0].set(jnp.eye(d))
        for psi in ENERGIES.values():

            @jax.jit
            def both(Fs, psi=psi):
                batched = psi(Fs, LAM, MU)  # leading batch dimensions broadcast
                return batched, jax.vmap(jax.value_and_grad(lambda F, psi=psi: psi(F, LAM, MU)))(Fs)

            e_batched, (e_vmap, g) = both(Fs)
            np.testing.assert_allclose(e_batched, e_vmap, rtol=1e-12, atol=1e-14)
            assert g.shape == Fs.shape and np.all(np.isfinite(np.asarray(g)))
    with pytest.raises(ValueError, match="shape"):
        arap_volume(jnp.ones((4, 4)), 1.0, 1.0)


def test_lame_from_young_values_and_validation():
    lam, mu = lame_from_young(1.0, 0.25)
    assert lam == pytest.approx(0.4) and mu == pytest.approx(0.4)
    lam, mu = lame_from_young(2.0, 0.0)
    assert lam == 0.0 and mu == pytest.approx(1.0)
    for E in (0.0, -1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="Young's modulus E"):
            lame_from_young(E, 0.3)
    for nu in (0.5, 0.6, -1.0, -2.0, float("nan")):
        with pytest.raises(ValueError, match="Poisson's ratio nu"):
            lame_from_young(1.0, nu)
    with pytest.raises(ValueError, match=r"-1 < nu < 0.5"):
        lame_from_young(1.0, 0.5)
    with pytest.raises(ValueError, match="E must be > 0"):
        lame_from_young(-3.0, 0.3)


def test_validate_lame():
    assert validate_lame(1.0, 2.0) == (1.0, 2.0)
    assert validate_lame(-0.5, 1.0, dim=3) == (-0.5, 1.0)  # negative lam allowed: nu < 0
    with pytest.raises(ValueError, match="shear modulus mu"):
        validate_lame(1.0, 0.0)
    with pytest.raises(ValueError, match="lam must satisfy lam >"):
        validate_lame(-1.0, 1.0, dim=2)
    with pytest.raises(ValueError, match="finite"):
        validate_lame(float("nan"), 1.0)
    with pytest.raises(ValueError, match="dim"):
        validate_lame(1.0, 1.0, dim=4)


def test_contact_penalties():
    plane = PlaneContact(normal=(0.0, 2.0), offset=0.5, stiffness=10.0)
    assert plane.normal == (0.0, 1.0)
    x = jnp.asarray([[0.0, 1.0], [0.0, 0.25]])
    np.testing.assert_allclose(plane.penetration(x), [-0.5, 0.25])
    np.testing.assert_allclose(plane.energy_density(x), [0.0, 0.5 * 10 * 0.25**2])
    sphere = SphereContact(center=(0.0, 0.0, 0.0), radius=1.0, stiffness=4.0)
    y = jnp.asarray([[2.0, 0.0, 0.0], [0.5, 0.0, 0.0], [0.0, 0.0, 0.0]])
    np.testing.assert_allclose(sphere.penetration(y), [-1.0, 0.5, 1.0])
    g = jax.jit(jax.vmap(jax.grad(sphere.energy_density)))(y)
    assert np.all(np.isfinite(np.asarray(g)))
    np.testing.assert_allclose(g[1], [-4.0 * 0.5, 0.0, 0.0])
    hash(plane), hash(sphere)  # usable as static jit arguments
    with pytest.raises(ValueError, match="stiffness"):
        PlaneContact((0.0, 1.0), 0.0, 0.0)
    with pytest.raises(ValueError, match="radius"):
        SphereContact((0.0, 0.0), -1.0, 1.0)
    with pytest.raises(ValueError, match="non-zero"):
        PlaneContact((0.0, 0.0), 0.0, 1.0)
