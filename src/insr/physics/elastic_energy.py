r"""Hyperelastic energy densities of the deformation gradient, shared by the neural
solver and the classical FEM reference (:mod:`insr.reference.fem_elastic`).

Everything here is pure ``jax.numpy``: the functions take one deformation gradient
``F`` of shape ``(d, d)`` (``d`` = 2 or 3) or a batch ``(..., d, d)``, return the energy
density per unit *rest* volume, and are safe under ``jit``, ``vmap``, ``grad`` and
``hessian`` -- including at ``F = I`` and at repeated singular values, where a naive
differentiation through an SVD returns NaN.

Energies
--------
``arap_volume`` -- the energy of Chen et al. (ICML 2023, "Implicit Neural Spatial
Representations for Time-dependent PDEs", Sec. 5.3), an as-rigid-as-possible term plus a
volume term on the singular values :math:`\sigma_i` of ``F``:

.. math::  \Psi(F) = \lambda \sum_i (\sigma_i - 1)^2 + \mu (\det F - 1)^2 .

``stable_neo_hookean`` -- Smith, de Goes & Kim, "Stable Neo-Hookean Flesh Simulation",
ACM TOG 37(2), 2018, Eq. (14) generalised to ``d`` dimensions and shifted by a constant so
that the energy is zero at rest (see its docstring).

Note on parameter names: both functions call their two weights ``lam`` and ``mu`` as the
papers do, but these are *not* the Lamé parameters of the linearised material. Use
:func:`arap_params_from_lame` and :func:`snh_params_from_lame` to obtain weights that
reproduce given Lamé parameters for small strains (checked in the tests by comparing the
Hessian at ``F = I`` with that of linear elasticity).

Contact penalties
-----------------
:class:`PlaneContact` and :class:`SphereContact` give the pointwise penalty
:math:`\tfrac{k}{2}\max(0, \text{penetration})^2` used by both solvers.
"""

from __future__ import annotations

import dataclasses
import functools
import math

import jax
import jax.numpy as jnp

from insr.physics.svd3 import svd3

__all__ = [
    "PlaneContact",
    "SphereContact",
    "arap_distance_sq",
    "arap_params_from_lame",
    "arap_volume",
    "determinant",
    "lame_from_young",
    "polar_rotation",
    "snh_params_from_lame",
    "stable_neo_hookean",
    "sum_singular_values",
    "validate_lame",
]


# --------------------------------------------------------------------------------------
# small helpers
# --------------------------------------------------------------------------------------
def _check_F(F) -> int:
    F = jnp.asarray(F)
    if F.ndim < 2 or F.shape[-1] != F.shape[-2] or F.shape[-1] not in (2, 3):
        raise ValueError(
            f"F must have shape (..., d, d) with d = 2 or 3, got shape {tuple(F.shape)}"
        )
    return F.shape[-1]


def _mT(A):
    return jnp.swapaxes(A, -1, -2)


def determinant(F):
    """Closed-form ``det F`` for ``(..., 2, 2)`` or ``(..., 3, 3)`` (exactly
    differentiable everywhere, unlike an LU-based determinant)."""
    d = _check_F(F)
    if d == 2:
        return F[..., 0, 0] * F[..., 1, 1] - F[..., 0, 1] * F[..., 1, 0]
    return (
        F[..., 0, 0] * (F[..., 1, 1] * F[..., 2, 2] - F[..., 1, 2] * F[..., 2, 1])
        - F[..., 0, 1] * (F[..., 1, 0] * F[..., 2, 2] - F[..., 1, 2] * F[..., 2, 0])
        + F[..., 0, 2] * (F[..., 1, 0] * F[..., 2, 1] - F[..., 1, 1] * F[..., 2, 0])
    )


def _safe_sqrt(x):
    pos = x > 0
    return jnp.where(pos, jnp.sqrt(jnp.where(pos, x, 1.0)), 0.0)


# --------------------------------------------------------------------------------------
# polar rotation
# --------------------------------------------------------------------------------------
def _polar_2d(F, signed: bool):
    r"""Closed-form orthogonal polar factor of a 2x2 matrix.

    With ``F = [[a, b], [c, e]]``: the rotation maximising ``tr(R^T F)`` over SO(2) is
    ``[[C, -S], [S, C]]`` with ``(C, S) = (a + e, c - b) / r_p``, ``r_p^2 = (a+e)^2 +
    (c-b)^2 = |F|^2 + 2 det F``; the reflection maximising it over O(2)\SO(2) is
    ``[[C, S], [S, -C]]`` with ``(C, S) = (a - e, b + c) / r_q``, ``r_q^2 = |F|^2 - 2 det F``.
    The unsigned polar factor picks the reflection when ``det F < 0``. Smooth except where
    the chosen ``r`` vanishes (only ``F = 0`` for the unsigned factor).
    """
    a, b, c, e = F[..., 0, 0], F[..., 0, 1], F[..., 1, 0], F[..., 1, 1]
    p = (a + e) ** 2 + (c - b) ** 2
    rp = _safe_sqrt(p)
    okp = rp > 0
    Cp = jnp.where(okp, (a + e) / jnp.where(okp, rp, 1.0), 1.0)
    Sp = jnp.where(okp, (c - b) / jnp.where(okp, rp, 1.0), 0.0)
    Rrot = jnp.stack([jnp.stack([Cp, -Sp], -1), jnp.stack([Sp, Cp], -1)], -2)
    if signed:
        return Rrot
    q = (a - e) ** 2 + (b + c) ** 2
    rq = _safe_sqrt(q)
    okq = rq > 0
    Cq = jnp.where(okq, (a - e) / jnp.where(okq, rq, 1.0), 1.0)
    Sq = jnp.where(okq, (b + c) / jnp.where(okq, rq, 1.0), 0.0)
    Rref = jnp.stack([jnp.stack([Cq, Sq], -1), jnp.stack([Sq, -Cq], -1)], -2)
    return jnp.where((determinant(F) < 0)[..., None, None], Rref, Rrot)


@functools.partial(jax.custom_jvp, nondiff_argnums=(1,))
def _polar_svd(F, signed):
    # the signed (rotation-variant, Irving et al. 2004) or plain SVD, in plain jax.numpy:
    # jaxlib's batched CPU SVD can deadlock when two run at once (see insr.physics.svd3)
    U, _, Vh = svd3(F, signed)
    return U @ Vh


@_polar_svd.defjvp
def _polar_svd_jvp(signed, primals, tangents):
    r"""Derivative of the polar factor ``R = U V^T``.

    Writing ``G = U^T dF V`` and ``dR = U W V^T`` with ``W`` skew, ``dF = dR S + R dS``
    gives ``G - G^T = W Sigma + Sigma W``, i.e.
    ``W_ij = (G_ij - G_ji) / (sigma_i + sigma_j)``. Only *sums* of singular values appear,
    so the derivative is finite at repeated singular values (``F = I`` included); it is
    singular only when two (signed) singular values add up to zero.
    """
    (F,), (dF,) = primals, tangents
    U, s, Vh = svd3(F, signed)
    R = U @ Vh
    G = _mT(U) @ dF @ _mT(Vh)
    A = G - _mT(G)
    den = s[..., :, None] + s[..., None, :]
    scale = jnp.max(jnp.abs(s), axis=-1)[..., None, None]
    ok = jnp.abs(den) > 10 * jnp.finfo(F.dtype).eps * scale
    W = jnp.where(ok, A / jnp.where(ok, den, 1.0), 0.0)
    return R, U @ W @ Vh


def polar_rotation(F, signed: bool = False):
    r"""Orthogonal factor ``R`` of the polar decomposition ``F = R S`` (``S`` symmetric).

    ``R`` maximises ``tr(R^T F)``; with ``signed=False`` over O(d) (``S`` positive semi-
    definite, ``det R = sign det F``), with ``signed=True`` over SO(d) (``det R = +1``,
    ``S`` may have one negative eigenvalue: the "signed singular values").

    2D: closed form (see ``_polar_2d``), differentiated by plain autodiff. 3D: a Jacobi SVD
    (:func:`insr.physics.svd3.svd3`) with a
    ``custom_jvp`` implementing ``dR = U W V^T``, ``W_ij = ((U^T dF V)_ij - (U^T dF V)_ji)
    / (sigma_i + sigma_j)``, finite at repeated singular values. Second derivatives of the
    energies below need first derivatives of ``R`` only.
    """
    d = _check_F(F)
    F = jnp.asarray(F)
    if d == 2:
        return _polar_2d(F, signed)
    return _polar_svd(F, signed)


@functools.partial(jax.custom_jvp, nondiff_argnums=(1,))
def _sum_sv(F, signed):
    R = polar_rotation(F, signed)
    return jnp.sum(R * F, axis=(-2, -1))


@_sum_sv.defjvp
def _sum_sv_jvp(signed, primals, tangents):
    (F,), (dF,) = primals, tangents
    R = polar_rotation(F, signed)
    return jnp.sum(R * F, axis=(-2, -1)), jnp.sum(R * dF, axis=(-2, -1))


def sum_singular_values(F, signed: bool = False):
    r"""``sum_i sigma_i = tr(S) = tr(R^T F)`` with ``F = R S`` the polar decomposition.

    Derivative: ``d(sum sigma)/dF = R`` (the polar rotation), implemented as a
    ``custom_jvp``; its own derivative is that of :func:`polar_rotation`, finite at
    repeated singular values. In 2D this equals ``sqrt(|F|^2 + 2|det F|)`` (unsigned) or
    ``sqrt(|F|^2 + 2 det F)`` (signed).
    """
    _check_F(F)
    return _sum_sv(jnp.asarray(F), signed)


@functools.partial(jax.custom_jvp, nondiff_argnums=(1,))
def _arap_dist(F, signed):
    R = polar_rotation(F, signed)
    return jnp.sum((F - R) ** 2, axis=(-2, -1))


@_arap_dist.defjvp
def _arap_dist_jvp(signed, primals, tangents):
    (F,), (dF,) = primals, tangents
    R = polar_rotation(F, signed)
    D = F - R
    return jnp.sum(D * D, axis=(-2, -1)), 2.0 * jnp.sum(D * dF, axis=(-2, -1))


def arap_distance_sq(F, signed: bool = False):
    r"""``sum_i (sigma_i - 1)^2 = |F - R|_F^2 = |S - I|_F^2`` (``F = R S`` polar).

    Identical to ``|F|^2 - 2 sum_i sigma_i + d`` but computed as ``|F - R|^2``, which has
    no cancellation near ``F = I`` (important in float32: the energy value, not just its
    gradient, is used by line searches). Gradient ``2 (F - R)`` (the term
    ``<F - R, dR>`` vanishes because ``R^T dR`` is skew and ``S - I`` symmetric),
    implemented as a ``custom_jvp``; the Hessian ``2 (dF - dR)`` uses the finite
    derivative of :func:`polar_rotation`.
    """
    _check_F(F)
    return _arap_dist(jnp.asarray(F), signed)


# --------------------------------------------------------------------------------------
# energies
# --------------------------------------------------------------------------------------
def arap_volume(F, lam, mu, *, signed: bool = False):
    r"""ARAP-with-volume energy density of Chen et al. (ICML 2023):

    .. math::  \Psi(F) = \lambda \sum_{i=1}^{d} (\sigma_i - 1)^2 + \mu (\det F - 1)^2 ,

    :math:`\sigma_i` the singular values of ``F``. Zero energy and zero stress at
    ``F = I``; invariant under ``F -> Q F`` and ``F -> F Q`` for rotations ``Q``.
    Gradient (first Piola-Kirchhoff stress) ``P = 2 lam (F - R) + 2 mu (J - 1) cof(F)``.

    ``signed=False`` (default, as the paper's ``torch.svd``): singular values are
    non-negative, so the first term does not resist inversion, only the volume term does.
    ``signed=True`` uses the rotation-variant SVD (``R`` in SO(d)), which penalises
    inverted states more strongly.

    Small strains: ``Psi ~ lam |eps|^2 + mu (tr eps)^2``, i.e. linear elasticity with Lamé
    parameters ``mu_L = lam`` and ``lambda_L = 2 mu`` (see :func:`arap_params_from_lame`).
    The paper's 2D stretch uses ``lam = 1, mu = 1e3`` (``ratio_arap``, ``ratio_volume``),
    i.e. an effective Poisson ratio of about 0.4998.
    """
    F = jnp.asarray(F)
    _check_F(F)
    J = determinant(F)
    return lam * arap_distance_sq(F, signed) + mu * (J - 1.0) ** 2


def stable_neo_hookean(F, lam, mu, *, log_term: bool = True):
    r"""Stable Neo-Hookean energy density (Smith, de Goes & Kim, ACM TOG 2018).

    With :math:`I_C = |F|_F^2`, :math:`J = \det F` and ``d`` the dimension, the published
    form (their Eq. 14, written there for d = 3) is

    .. math::  \Psi = \frac{\mu}{2}(I_C - d) + \frac{\lambda}{2}(J - \alpha)^2
               - \frac{\mu}{2}\log(I_C + 1),
               \qquad \alpha = 1 + \frac{d}{d+1}\frac{\mu}{\lambda}

    (``alpha = 1 + 3 mu / (4 lam)`` in 3D, ``1 + 2 mu / (3 lam)`` in 2D). This ``alpha``
    is the one for which the stress vanishes at rest:
    ``dPsi/dF = mu F + lam (J - alpha) cof F - mu F / (I_C + 1)`` is
    ``[mu + lam (1 - alpha) - mu / (d + 1)] I = 0`` at ``F = I``. We subtract the constant
    :math:`\Psi(I) = \tfrac{\lambda}{2}(1-\alpha)^2 - \tfrac{\mu}{2}\log(d+1)` so that the
    energy is also zero at rest; the result is evaluated without cancellation as

    .. math::  \Psi = \frac{\mu}{2}(I_C - d) - \frac{d\,\mu}{d+1}(J - 1)
               + \frac{\lambda}{2}(J-1)^2 - \frac{\mu}{2}\,\mathrm{log1p}\frac{I_C - d}{d+1}

    (well defined for ``lam = 0`` too). ``log_term=False`` gives the variant without the
    logarithm used in Kim & Eberle, "Dynamic Deformables" (SIGGRAPH course 2020/2022):
    :math:`\Psi = \tfrac{\mu}{2}(I_C - d) - \mu (J - 1) + \tfrac{\lambda}{2}(J - 1)^2`
    (``alpha = 1 + mu / lam``, again zero energy and stress at rest).

    Small strains: ``mu``/``lam`` here are the paper's parameters, not the Lamé ones; use
    :func:`snh_params_from_lame` (3D with the log term: ``mu = 4/3 mu_L``,
    ``lam = lambda_L + 5/6 mu_L``, the paper's Sec. 3.4).
    """
    F = jnp.asarray(F)
    d = _check_F(F)
    eye = jnp.eye(d, dtype=F.dtype)
    H = F - eye
    Ic_minus_d = jnp.sum(H * H, axis=(-2, -1)) + 2.0 * jnp.trace(H, axis1=-2, axis2=-1)
    Jm1 = determinant(F) - 1.0
    if log_term:
        return (
            0.5 * mu * Ic_minus_d
            - (d / (d + 1.0)) * mu * Jm1
            + 0.5 * lam * Jm1**2
            - 0.5 * mu * jnp.log1p(Ic_minus_d / (d + 1.0))
        )
    return 0.5 * mu * Ic_minus_d - mu * Jm1 + 0.5 * lam * Jm1**2


# --------------------------------------------------------------------------------------
# parameters
# --------------------------------------------------------------------------------------
def _as_finite_float(value, name: str) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a real number, got {value!r}") from None
    if not math.isfinite(v):
        raise ValueError(f"{name} must be finite, got {v}")
    return v


def lame_from_young(E, nu):
    r"""Lamé parameters from Young's modulus ``E`` and Poisson's ratio ``nu``:

    .. math::  \lambda = \frac{E\nu}{(1+\nu)(1-2\nu)}, \qquad \mu = \frac{E}{2(1+\nu)} .

    These are the 3D (and 2D plane-strain) relations. Requires ``E > 0`` and
    ``-1 < nu < 0.5`` (strictly: ``nu = 0.5`` is incompressible, ``lambda = inf``);
    otherwise ``ValueError`` naming the parameter and the allowed range.
    Returns ``(lam, mu)`` as Python floats.
    """
    E = _as_finite_float(E, "Young's modulus E")
    nu = _as_finite_float(nu, "Poisson's ratio nu")
    if not E > 0:
        raise ValueError(f"Young's modulus E must be > 0, got E = {E}")
    if not -1.0 < nu < 0.5:
        raise ValueError(
            f"Poisson's ratio nu must satisfy -1 < nu < 0.5, got nu = {nu}"
        )
    lam = E * nu / ((1.0 + nu) * (1.0 - 2.0 * nu))
    mu = E / (2.0 * (1.0 + nu))
    return lam, mu


def validate_lame(lam, mu, dim: int = 3):
    r"""Check Lamé parameters for a stable (positive-definite) linear material in ``dim``
    dimensions: finite, shear modulus ``mu > 0`` and bulk modulus
    ``kappa = lam + 2 mu / dim > 0``. Returns ``(lam, mu)`` as floats or raises
    ``ValueError`` naming the offending parameter and the allowed range."""
    if dim not in (2, 3):
        raise ValueError(f"dim must be 2 or 3, got {dim}")
    lam = _as_finite_float(lam, "Lamé parameter lam")
    mu = _as_finite_float(mu, "shear modulus mu")
    if not mu > 0:
        raise ValueError(f"shear modulus mu must be > 0, got mu = {mu}")
    if not lam + 2.0 * mu / dim > 0:
        raise ValueError(
            f"Lamé parameter lam must satisfy lam > -2*mu/{dim} = {-2.0 * mu / dim} "
            f"(positive bulk modulus), got lam = {lam}"
        )
    return lam, mu


def arap_params_from_lame(lam, mu):
    r"""Weights ``(lam_arap, mu_arap)`` of :func:`arap_volume` whose small-strain limit is
    linear elasticity with Lamé parameters ``(lam, mu)``: ``Psi ~ lam_arap |eps|^2 +
    mu_arap (tr eps)^2 = mu |eps|^2 + lam/2 (tr eps)^2`` gives
    ``lam_arap = mu``, ``mu_arap = lam / 2`` (any dimension)."""
    return float(mu), 0.5 * float(lam)


def snh_params_from_lame(lam, mu, dim: int = 3, *, log_term: bool = True):
    r"""Parameters ``(lam_snh, mu_snh)`` of :func:`stable_neo_hookean` whose small-strain
    limit is linear elasticity with Lamé parameters ``(lam, mu)``.

    Linearising the ``log_term`` energy at ``F = I`` gives ``mu_L = d/(d+1) mu_snh`` and
    ``lam_L = lam_snh - mu_snh (d/(d+1) - 2/(d+1)^2)``, hence
    ``mu_snh = (d+1)/d mu`` and ``lam_snh = lam + mu - 2 mu / (d (d+1))``
    (3D: ``4/3 mu`` and ``lam + 5/6 mu``, Smith et al. 2018 Sec. 3.4; 2D: ``3/2 mu`` and
    ``lam + 2/3 mu``). Without the log term: ``mu_snh = mu``, ``lam_snh = lam + mu``.
    """
    lam, mu = float(lam), float(mu)
    if dim not in (2, 3):
        raise ValueError(f"dim must be 2 or 3, got {dim}")
    if not log_term:
        return lam + mu, mu
    return lam + mu - 2.0 * mu / (dim * (dim + 1.0)), (dim + 1.0) / dim * mu


# --------------------------------------------------------------------------------------
# contact penalties
# --------------------------------------------------------------------------------------
def _positive(value, name: str) -> float:
    v = _as_finite_float(value, name)
    if not v > 0:
        raise ValueError(f"{name} must be > 0, got {v}")
    return v


@dataclasses.dataclass(frozen=True)
class PlaneContact:
    r"""Half-space obstacle ``{x : n.x < c}``; admissible points satisfy ``n.x >= c``.

    ``penetration(x) = c - n.x`` (positive inside the obstacle) and the penalty energy
    density ``k/2 max(0, penetration)^2``. ``normal`` is normalised on construction;
    fields are plain floats/tuples so the object is hashable (usable as a static
    argument of ``jax.jit``).
    """

    normal: tuple
    offset: float
    stiffness: float

    def __post_init__(self):
        n = tuple(_as_finite_float(v, "plane normal component") for v in self.normal)
        if len(n) not in (2, 3):
            raise ValueError(f"plane normal must have 2 or 3 components, got {len(n)}")
        norm = math.sqrt(sum(v * v for v in n))
        if not norm > 0:
            raise ValueError("plane normal must be non-zero")
        object.__setattr__(self, "normal", tuple(v / norm for v in n))
        object.__setattr__(self, "offset", _as_finite_float(self.offset, "plane offset"))
        object.__setattr__(self, "stiffness", _positive(self.stiffness, "contact stiffness"))

    @property
    def dim(self) -> int:
        return len(self.normal)

    def penetration(self, x):
        x = jnp.asarray(x)
        n = jnp.asarray(self.normal, dtype=x.dtype)
        return self.offset - x @ n

    def energy_density(self, x):
        p = jnp.maximum(self.penetration(x), 0.0)
        return 0.5 * self.stiffness * p * p


@dataclasses.dataclass(frozen=True)
class SphereContact:
    r"""Solid ball obstacle ``{x : |x - c| < r}``; admissible points satisfy
    ``|x - c| >= r``. ``penetration(x) = r - |x - c|``, penalty energy density
    ``k/2 max(0, penetration)^2`` (its gradient is finite at ``x = c``)."""

    center: tuple
    radius: float
    stiffness: float

    def __post_init__(self):
        c = tuple(_as_finite_float(v, "sphere center component") for v in self.center)
        if len(c) not in (2, 3):
            raise ValueError(f"sphere center must have 2 or 3 components, got {len(c)}")
        object.__setattr__(self, "center", c)
        object.__setattr__(self, "radius", _positive(self.radius, "sphere radius"))
        object.__setattr__(self, "stiffness", _positive(self.stiffness, "contact stiffness"))

    @property
    def dim(self) -> int:
        return len(self.center)

    def penetration(self, x):
        x = jnp.asarray(x)
        c = jnp.asarray(self.center, dtype=x.dtype)
        return self.radius - _safe_sqrt(jnp.sum((x - c) ** 2, axis=-1))

    def energy_density(self, x):
        p = jnp.maximum(self.penetration(x), 0.0)
        return 0.5 * self.stiffness * p * p
