r"""Singular value decomposition of 3×3 matrices in plain ``jax.numpy``.

Why not ``jnp.linalg.svd``: on CPU it is a LAPACK custom call (``gesdd``) that jaxlib
splits over the XLA thread pool per batch (``ParallelBatchMap``) and then waits for. XLA runs
independent operations concurrently, so two batched SVDs can occupy every pool thread, each
waiting for work queued behind the other: a deadlock at 0 % CPU. Seen with jax 0.10.2 on a
2-core machine: ``elastic_drop_3d`` at the paper's size with ``lm.cg_curvature_fraction <
1`` (deformation gradients on the full and on the curvature points) hung in its second
step; gdb showed both ``tf_XLAEigen`` pool threads in
``jax::SingularValueDecompositionKernel`` → ``ParallelBatchMap`` → ``BlockingCounter::Wait``.
A fixed number of element-wise operations cannot block, and for 3×3 blocks it is faster
(8,000 matrices: 11 ms against LAPACK's 34 ms).

Method: one-sided (Hestenes) Jacobi. ``B = F V`` starts at ``V = I``; each rotation of
columns (p, q) of ``B`` and ``V`` makes ``b_p · b_q = 0`` (the smaller root ``t`` of
``γ t² + (β − α) t − γ = 0``, α = |b_p|², β = |b_q|², γ = b_p·b_q; Golub & Van Loan,
"Matrix Computations", 4th ed., Sec. 8.6.4), six cyclic sweeps. Convergence is quadratic:
on the tests' matrices 4 sweeps reach the float64 rounding tolerance and 3 do not, so 6 leave
a margin.
The columns are then sorted by length with swaps ``(b_p, b_q) → (b_q, −b_p)``, which are
rotations, so ``V`` stays in SO(3); ``U`` is built as ``u₁ = b₁/|b₁|``, ``u₂`` the unit
part of ``b₂`` orthogonal to ``u₁``, ``u₃ = u₁ × u₂`` (in SO(3) by construction, and
defined when ``F`` has rank < 3), and the signed singular values are ``σ_i = u_i · b_i``:
``σ₃ < 0`` exactly when ``det F < 0`` (the rotation-variant SVD of Irving, Teran & Fedkiw,
"Invertible finite elements for robust simulation of large deformation", SCA 2004).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

__all__ = ["svd3"]

SWEEPS = 6
_PAIRS = ((0, 1), (0, 2), (1, 2))


def _where_safe_div(a, b):
    ok = b != 0
    return jnp.where(ok, a / jnp.where(ok, b, 1.0), 0.0)


def _jacobi_rotation(B, V, p, q):
    """Rotate columns p, q of B and V (lists of column vectors) so that b_p · b_q = 0."""
    bp, bq = B[p], B[q]
    alpha, beta, gamma = jnp.sum(bp * bp, -1), jnp.sum(bq * bq, -1), jnp.sum(bp * bq, -1)
    diff = beta - alpha
    sign = jnp.where(diff >= 0, 1.0, -1.0).astype(bp.dtype)
    disc = diff * diff + 4.0 * gamma * gamma
    positive = disc > 0
    root = jnp.where(positive, jnp.sqrt(jnp.where(positive, disc, 1.0)), 0.0)  # no NaN gradient at 0
    t = _where_safe_div(2.0 * gamma, diff + sign * root)  # 0 when the columns are already orthogonal
    c = jax.lax.rsqrt(1.0 + t * t)[..., None]
    s = c * t[..., None]
    for M in (B, V):
        M[p], M[q] = c * M[p] - s * M[q], s * M[p] + c * M[q]


def _longer_first(B, V, p, q):
    """Swap columns p, q of B and V when column q of B is longer, as (p, q) → (q, −p)."""
    swap = (jnp.sum(B[q] ** 2, -1) > jnp.sum(B[p] ** 2, -1))[..., None]
    for M in (B, V):
        M[p], M[q] = jnp.where(swap, M[q], M[p]), jnp.where(swap, -M[p], M[q])


def _unit_or(v, fallback):
    n2 = jnp.sum(v * v, -1, keepdims=True)
    ok = n2 > 0
    return jnp.where(ok, v * jax.lax.rsqrt(jnp.where(ok, n2, 1.0)), fallback)


def _orthogonal_unit(u):
    """A unit vector orthogonal to the unit vector u: (−u_y, u_x, 0) or (0, −u_z, u_y), the
    longer of the two (no gather: fewer operations to compile)."""
    zero = jnp.zeros_like(u[..., 0])
    a = jnp.stack([-u[..., 1], u[..., 0], zero], -1)
    b = jnp.stack([zero, -u[..., 2], u[..., 1]], -1)
    pick_a = (jnp.abs(u[..., 0]) >= jnp.abs(u[..., 2]))[..., None]  # |a|² ≥ |b|² ⟺ u_x² ≥ u_z²
    w = jnp.where(pick_a, a, b)
    return w * jax.lax.rsqrt(jnp.maximum(jnp.sum(w * w, -1, keepdims=True), jnp.finfo(u.dtype).tiny))


@functools.partial(jax.jit, static_argnames="signed")  # eager callers (tests, FEM setup) reuse one compilation
def svd3(F, signed: bool = True):
    """``F = U diag(s) Vh`` for ``F`` of shape ``(..., 3, 3)``; ``|s|`` descending.

    ``signed=True``: ``U``, ``Vh`` in SO(3) and ``s[..., 2] < 0`` when ``det F < 0``.
    ``signed=False``: ``s ≥ 0`` (the last column of ``U`` flipped where needed), as LAPACK.
    Accuracy (tests): reconstruction and orthogonality to a few units of rounding in
    float32 and float64, singular and repeated-σ matrices included.
    """
    F = jnp.asarray(F)
    if F.shape[-2:] != (3, 3):
        raise ValueError(f"svd3 takes (..., 3, 3) matrices, got shape {F.shape}")
    B = [F[..., :, i] for i in range(3)]  # columns of B = F V, as a list: no scatters to compile
    eye = jnp.broadcast_to(jnp.eye(3, dtype=F.dtype), F.shape)
    V = [eye[..., :, i] for i in range(3)]

    def sweep(_, cols):
        B, V = list(cols[0]), list(cols[1])
        for p, q in _PAIRS:
            _jacobi_rotation(B, V, p, q)
        return B, V

    # A loop, not unrolled: unrolled, the sweeps compiled in 5.7 s against 1.6 s as a loop
    # (8,000 matrices, loaded 2-core machine) and ran no faster (14 against 11 ms; LAPACK 34 ms).
    B, V = jax.lax.fori_loop(0, SWEEPS, sweep, (B, V))
    B, V = list(B), list(V)
    for p, q in ((0, 1), (1, 2), (0, 1)):  # a sorting network on three columns
        _longer_first(B, V, p, q)
    b1, b2, b3 = B
    u1 = _unit_or(b1, jnp.broadcast_to(jnp.eye(3, dtype=F.dtype)[0], b1.shape))
    u2 = _unit_or(b2 - jnp.sum(u1 * b2, -1, keepdims=True) * u1, _orthogonal_unit(u1))
    u3 = jnp.cross(u1, u2)
    s3 = jnp.sum(u3 * b3, -1)
    if not signed:
        flip = jnp.where(s3 < 0, -1.0, 1.0).astype(F.dtype)
        u3, s3 = u3 * flip[..., None], s3 * flip
    U = jnp.stack([u1, u2, u3], -1)
    s = jnp.stack([jnp.sum(u1 * b1, -1), jnp.sum(u2 * b2, -1), s3], -1)
    return U, s, jnp.stack(V, -2)  # Vh: the rows are V's columns
