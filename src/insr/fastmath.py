"""Fast float32 sine and cosine for SIREN networks on XLA:CPU.

XLA's CPU ``sin``/``cos`` cost 4-5 ns per element, an order of magnitude more than
the rest of a SIREN layer.  These versions do a Cody–Waite range reduction
``x = k·π + r`` with ``|r| ≤ π/2`` (π split into three parts so that ``k·π_hi`` is
exact in float32 for ``|k| < 2**8``), then evaluate odd/even Taylor polynomials
in ``r`` (degree 13 / 14, truncation error < 1e-9 on ``[-π/2, π/2]``), and fix
the sign by the parity of ``k``.  Absolute error is ~1e-7 for ``|x| ≤ 200``,
which covers ``ω0 = 30`` SIREN pre-activations.

Both carry a ``custom_jvp`` whose derivative uses the matching fast function,
so nested forward/reverse derivatives (the residuals need up to third order)
stay on the fast path.  For float64 inputs they fall back to ``jnp.sin`` and
``jnp.cos``: the polynomial is only accurate to float32 precision.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

# π = _PI_A + _PI_B + _PI_C; _PI_A and _PI_B have few significant bits so that
# k * _PI_A and k * _PI_B are exact in float32 for |k| < 256.
_PI_A = 3.140625
_PI_B = 9.67502593994140625e-4
_PI_C = 1.509957990978376432e-7
_INV_PI = 0.3183098861837907

# Taylor coefficients of sin(r)/r and cos(r) in powers of r².
_SIN_COEFFS = (1.0, -1 / 6, 1 / 120, -1 / 5040, 1 / 362880, -1 / 39916800, 1 / 6227020800)
_COS_COEFFS = (1.0, -1 / 2, 1 / 24, -1 / 720, 1 / 40320, -1 / 3628800, 1 / 479001600, -1 / 87178291200)


def _reduce(x):
    """Return (r, sign) with x = k·π + r, |r| ≤ π/2 and sign = (-1)^k."""
    k = jnp.round(x * _INV_PI)
    r = ((x - k * _PI_A) - k * _PI_B) - k * _PI_C
    half = k * 0.5
    sign = 1.0 - 4.0 * (half - jnp.floor(half))  # +1 for even k, -1 for odd k
    return r, sign


def _horner(coeffs, z):
    acc = jnp.full_like(z, coeffs[-1])
    for c in coeffs[-2::-1]:
        acc = acc * z + c
    return acc


def _is_f32(x) -> bool:
    return jnp.result_type(x) == jnp.float32


# The polynomials are jitted functions so that a transformed residual (vmap of jacrev of a
# Laplacian: up to four nested traces) holds one call per sine instead of ~30 primitives that
# every trace level processes again.  Tracing a heat1d step took 4.8 s → 1.4 s; the program
# XLA compiles and its results are the same (bit-identical losses, heat1d and advection1d).
@jax.jit
def _sin_f32(x):
    r, sign = _reduce(x)
    return sign * r * _horner(_SIN_COEFFS, r * r)


@jax.jit
def _cos_f32(x):
    r, sign = _reduce(x)
    return sign * _horner(_COS_COEFFS, r * r)


@jax.custom_jvp
def fast_sin(x):
    """sin(x) via range reduction and a degree-13 polynomial (float32); jnp.sin otherwise."""
    if not _is_f32(x):
        return jnp.sin(x)
    return _sin_f32(x)


@jax.custom_jvp
def fast_cos(x):
    """cos(x) via range reduction and a degree-14 polynomial (float32); jnp.cos otherwise."""
    if not _is_f32(x):
        return jnp.cos(x)
    return _cos_f32(x)


@fast_sin.defjvp
def _fast_sin_jvp(primals, tangents):
    (x,), (dx,) = primals, tangents
    return fast_sin(x), fast_cos(x) * dx


@fast_cos.defjvp
def _fast_cos_jvp(primals, tangents):
    (x,), (dx,) = primals, tangents
    return fast_cos(x), -fast_sin(x) * dx
