r"""Analytic 2D incompressible flows on the box :math:`\Omega = [-1, 1]^2`.

These are the initial conditions and exact solutions of the paper's 2D Euler examples
(Chen et al., ICML 2023, section 5.2). Every function takes points ``x`` of shape
``(..., 2)`` (``x[..., 0]`` is the horizontal coordinate *x*, ``x[..., 1]`` the vertical
coordinate *y*) and returns a velocity of shape ``(..., 2)`` or a scalar of shape ``(...)``.

Array namespace
---------------
The formulas are written once against the operations that :mod:`numpy` and
:mod:`jax.numpy` share. A NumPy array (or a list / Python scalar) is evaluated with NumPy
in its own precision (float64 for the grid reference solver); a JAX array or a JAX tracer
is evaluated with ``jax.numpy``, so the functions can be used inside ``jit``, ``grad``,
``vmap`` and ``jacfwd`` of neural-field code. ``np.asarray`` converts either result to a
NumPy array.

Mapped coordinates
------------------
The Taylor–Green flow is classically defined on :math:`[0, 2\pi]^2`. With

.. math:: X = \pi (x + 1), \qquad Y = \pi (y + 1),

:math:`\partial/\partial x = \pi\, \partial/\partial X`, so a stream function
:math:`\psi` gives the velocity

.. math:: u = (\partial_y \psi, -\partial_x \psi) = \pi\,(\partial_Y \psi, -\partial_X \psi),

which is divergence-free for any smooth :math:`\psi`, and whose normal component on a
wall vanishes wherever :math:`\psi` is constant along that wall.

Wall conditions
---------------
All flows here satisfy the no-penetration condition :math:`u \cdot n = 0` on the four
walls :math:`x = \pm 1`, :math:`y = \pm 1`. The viscous Taylor–Green solution additionally
satisfies free-slip walls (zero tangential stress, :math:`\partial_n (u \cdot t) = 0`),
which is the wall condition the grid solver's implicit diffusion uses.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

__all__ = [
    "taylor_green_velocity",
    "taylor_green_pressure",
    "taylor_green_vorticity",
    "taylor_green_viscous",
    "taylor_green_viscous_pressure",
    "taylor_green_kinetic_energy",
    "taylor_green_decay_rate",
    "two_vortices_stream_function",
    "two_vortices_velocity",
    "two_vortices_density",
    "TWO_VORTICES_BLOB_CENTRE",
    "TWO_VORTICES_BLOB_WIDTH",
]

PI = math.pi

#: Centre of the passive density blob of the two-vortices example.
TWO_VORTICES_BLOB_CENTRE = (-0.5, -0.3)
#: Standard deviation of the Gaussian density blob of the two-vortices example.
TWO_VORTICES_BLOB_WIDTH = 0.08


def _namespace(*args: Any):
    """``jax.numpy`` if any argument is a JAX array or tracer, else NumPy."""
    try:
        import jax
    except ImportError:  # pragma: no cover - jax is a hard dependency of insr
        return np
    if any(isinstance(a, jax.Array) for a in args):
        import jax.numpy as jnp

        return jnp
    return np


def _mapped(x):
    """Mapped coordinates ``X = pi (x + 1)``, ``Y = pi (y + 1)``."""
    return PI * (x[..., 0] + 1.0), PI * (x[..., 1] + 1.0)


# --------------------------------------------------------------------------------------
# Taylor–Green vortex
# --------------------------------------------------------------------------------------


def taylor_green_velocity(x):
    r"""Taylor–Green velocity, the paper's steady 2D Euler test case.

    .. math::

        u(x, y) = \frac{1}{\pi}\bigl(\sin X \cos Y,\; -\cos X \sin Y\bigr),
        \qquad X = \pi(x+1),\; Y = \pi(y+1),

    i.e. the stream function :math:`\psi = \pi^{-2} \sin X \sin Y`. Properties on
    :math:`[-1,1]^2`: :math:`\nabla\cdot u = \cos X\cos Y - \cos X\cos Y = 0`; on
    :math:`x = \pm 1` (:math:`X \in \{0, 2\pi\}`) :math:`u_x = 0`, on :math:`y = \pm 1`
    :math:`u_y = 0` (no penetration); :math:`\max|u| = 1/\pi`; kinetic energy
    :math:`\tfrac12\int|u|^2 = 1/\pi^2`. It is a steady solution of incompressible Euler
    (ρ = 1) with the pressure :func:`taylor_green_pressure`.
    """
    xp = _namespace(x)
    x = xp.asarray(x)
    X, Y = _mapped(x)
    return xp.stack((xp.sin(X) * xp.cos(Y), -xp.cos(X) * xp.sin(Y)), axis=-1) / PI


def taylor_green_pressure(x):
    r"""Exact pressure of the steady Taylor–Green flow (ρ = 1), zero mean on the box.

    .. math:: p(x, y) = \frac{\cos 2X + \cos 2Y}{4\pi^2}.

    Derivation: in mapped coordinates :math:`U = \pi u = (\sin X\cos Y, -\cos X\sin Y)`
    satisfies :math:`(U\cdot\nabla_X) U = -\nabla_X P` with
    :math:`P = \tfrac14(\cos 2X + \cos 2Y)`. Since :math:`\nabla_x = \pi\nabla_X`,
    :math:`(u\cdot\nabla_x)u = \pi^{-1}(U\cdot\nabla_X)U = -\pi^{-1}\nabla_X P
    = -\nabla_x (P/\pi^2)`, hence :math:`p = P/\pi^2`. Both cosines integrate to zero
    over :math:`X, Y \in [0, 2\pi]`, so :math:`\int_\Omega p = 0`.
    """
    xp = _namespace(x)
    x = xp.asarray(x)
    X, Y = _mapped(x)
    return (xp.cos(2.0 * X) + xp.cos(2.0 * Y)) / (4.0 * PI**2)


def taylor_green_vorticity(x):
    r"""Vorticity :math:`\omega = \partial_x u_y - \partial_y u_x = 2 \sin X \sin Y`."""
    xp = _namespace(x)
    x = xp.asarray(x)
    X, Y = _mapped(x)
    return 2.0 * xp.sin(X) * xp.sin(Y)


def taylor_green_decay_rate(nu: float) -> float:
    r"""Velocity decay rate :math:`2\nu\pi^2` of the viscous Taylor–Green flow on [-1,1]²."""
    return 2.0 * float(nu) * PI**2


def taylor_green_viscous(x, t, nu):
    r"""Exact viscous Taylor–Green velocity (incompressible Navier–Stokes, ρ = 1).

    .. math:: u(x, t) = e^{-2\nu\pi^2 t}\, u_0(x),

    with :math:`u_0` = :func:`taylor_green_velocity`. Derivation: in mapped coordinates
    :math:`\nabla_X^2 (\sin X\cos Y) = -2 \sin X\cos Y` (and likewise for the second
    component), and :math:`\nabla_x^2 = \pi^2 \nabla_X^2`, so
    :math:`\nabla^2 u_0 = -2\pi^2 u_0`: :math:`u_0` is an eigenfunction of the vector
    Laplacian on :math:`[-1,1]^2` with eigenvalue :math:`-2\pi^2`. The ansatz
    :math:`u = a(t)\,u_0` turns :math:`u_t + (u\cdot\nabla)u = -\nabla p + \nu\nabla^2 u`
    into :math:`a' u_0 + a^2 (u_0\cdot\nabla)u_0 = -\nabla p - 2\nu\pi^2 a\, u_0`; the
    quadratic term is the gradient :math:`-a^2\nabla p_0` and is balanced by
    :math:`p = a^2 p_0` (:func:`taylor_green_viscous_pressure`), leaving
    :math:`a' = -2\nu\pi^2 a`, i.e. :math:`a = e^{-2\nu\pi^2 t}`. The kinetic energy
    decays as :math:`e^{-4\nu\pi^2 t}`. On the walls :math:`u\cdot n = 0` and the
    tangential component has zero normal derivative (free slip); the flow does *not*
    satisfy no-slip walls.

    ``t`` and ``nu`` may be scalars or arrays broadcastable against ``x[..., 0]``.
    """
    xp = _namespace(x, t, nu)
    x = xp.asarray(x)
    decay = xp.exp(-2.0 * xp.asarray(nu) * PI**2 * xp.asarray(t))
    return taylor_green_velocity(x) * decay[..., None]


def taylor_green_viscous_pressure(x, t, nu):
    r"""Pressure of the viscous Taylor–Green flow, :math:`p = e^{-4\nu\pi^2 t} p_0(x)`."""
    xp = _namespace(x, t, nu)
    x = xp.asarray(x)
    return taylor_green_pressure(x) * xp.exp(-4.0 * xp.asarray(nu) * PI**2 * xp.asarray(t))


def taylor_green_kinetic_energy(t: float = 0.0, nu: float = 0.0) -> float:
    r"""Exact kinetic energy :math:`\tfrac12\int_\Omega|u|^2 = \pi^{-2} e^{-4\nu\pi^2 t}`."""
    return math.exp(-4.0 * nu * PI**2 * t) / PI**2


# --------------------------------------------------------------------------------------
# Two vortices of different scale
# --------------------------------------------------------------------------------------


def _two_vortices_profiles(xp, s, k, smooth):
    r"""1D profile :math:`f(s)` and its derivative :math:`f'(s)` for one quadrant.

    Pure cell (``smooth=False``): :math:`f = \sin(kS)`; enveloped (``smooth=True``):
    :math:`f = \sin(kS)\sin S`, with :math:`S = \pi(s + 1)` and derivatives taken with
    respect to :math:`S`.
    """
    S = PI * (s + 1.0)
    mode, dmode = xp.sin(k * S), k * xp.cos(k * S)
    if not smooth:
        return mode, dmode
    env, denv = xp.sin(S), xp.cos(S)
    return mode * env, dmode * env + mode * denv


def two_vortices_stream_function(x, *, smooth: bool = True, speed: float = 1.0 / PI):
    r"""Stream function of :func:`two_vortices_velocity` (see there for the formula)."""
    xp = _namespace(x)
    x = xp.asarray(x)
    fl_x, _ = _two_vortices_profiles(xp, x[..., 0], 1, smooth)
    fl_y, _ = _two_vortices_profiles(xp, x[..., 1], 1, smooth)
    fs_x, _ = _two_vortices_profiles(xp, x[..., 0], 4, smooth)
    fs_y, _ = _two_vortices_profiles(xp, x[..., 1], 4, smooth)
    large, small = _two_vortices_masks(xp, x)
    # psi = A_k f_k(X) f_k(Y) with A_1 = s / pi, A_4 = s / (4 pi).
    a_large, a_small = speed / PI, speed / (4.0 * PI)
    return xp.where(large, a_large * fl_x * fl_y, 0.0) + xp.where(
        small, a_small * fs_x * fs_y, 0.0
    )


def _two_vortices_masks(xp, x):
    large = (x[..., 0] <= 0.0) & (x[..., 1] <= 0.0)
    small = (x[..., 0] > 0.0) & (x[..., 1] > 0.0)
    return large, small


def two_vortices_velocity(x, *, smooth: bool = True, speed: float = 1.0 / PI):
    r"""Two Taylor–Green vortex systems of different scale in opposite corners.

    The velocity is :math:`u = (\partial_y\psi, -\partial_x\psi)` of the stream function

    .. math::

        \psi(x, y) = \begin{cases}
            A_1\, f_1(X)\, f_1(Y) & (x, y) \in Q_{--} = [-1, 0]^2
                \quad\text{(one large cell)}\\
            A_4\, f_4(X)\, f_4(Y) & (x, y) \in Q_{++} = (0, 1]^2
                \quad\text{(a 4×4 pattern of small cells)}\\
            0 & \text{elsewhere,}
        \end{cases}

    with :math:`X = \pi(x+1)`, :math:`Y = \pi(y+1)`, amplitudes
    :math:`A_1 = s/\pi`, :math:`A_4 = s/(4\pi)` (``s = speed``, default :math:`1/\pi` as in
    :func:`taylor_green_velocity`) and, for wavenumber :math:`k \in \{1, 4\}` (Taylor–Green
    periods :math:`2\pi` and :math:`2\pi/4` in the mapped coordinate),

    * ``smooth=True`` (default): :math:`f_k(S) = \sin(kS)\,\sin S` — the Taylor–Green mode
      multiplied by the envelope :math:`\sin S`, which vanishes on the quadrant's edges;
    * ``smooth=False``: :math:`f_k(S) = \sin(kS)` — bare Taylor–Green cells.

    Explicitly :math:`u = \pi A_k\,\bigl(f_k(X) f_k'(Y),\; -f_k'(X) f_k(Y)\bigr)` in each
    quadrant, zero in the two other quadrants.

    Properties. Inside each quadrant :math:`\nabla\cdot u = 0` identically (u comes from a
    stream function). :math:`\psi = 0` on every quadrant edge (:math:`\sin kS = 0` at
    :math:`S \in \{0, \pi, 2\pi\}`), so the normal velocity vanishes on the box walls and
    is continuous (zero) across the interior edges :math:`x = 0` and :math:`y = 0`; the
    field is therefore weakly divergence-free on the whole box. With ``smooth=True`` also
    :math:`\nabla\psi = 0` on the quadrant edges, so the *whole* velocity is continuous
    (Lipschitz) across them (the vorticity jumps), with max speed ``speed`` in the large vortex and
    0.93 ``speed`` in the small ones. With ``smooth=False`` the tangential velocity jumps
    from :math:`\pm s` to 0 across the interior edges of the two quadrants (a vortex
    sheet), which neither a grid nor a smooth network resolves; it is offered for
    comparison with bare Taylor–Green cells.

    The paper's script places scaled copies of the full Taylor–Green pattern in
    :math:`[-1,0]^2` and :math:`[0.75,1]^2` and joins them to zero with a linear ramp,
    which is not divergence-free; this construction keeps the two scales (cells of size 1
    and 1/4) and the opposite corners but is exactly divergence-free.
    """
    xp = _namespace(x)
    x = xp.asarray(x)
    fl_x, dfl_x = _two_vortices_profiles(xp, x[..., 0], 1, smooth)
    fl_y, dfl_y = _two_vortices_profiles(xp, x[..., 1], 1, smooth)
    fs_x, dfs_x = _two_vortices_profiles(xp, x[..., 0], 4, smooth)
    fs_y, dfs_y = _two_vortices_profiles(xp, x[..., 1], 4, smooth)
    large, small = _two_vortices_masks(xp, x)
    # u = pi A_k (f_k(X) f_k'(Y), -f_k'(X) f_k(Y)); pi A_1 = s, pi A_4 = s / 4.
    c_large, c_small = speed, speed / 4.0
    ux = xp.where(large, c_large * fl_x * dfl_y, 0.0) + xp.where(
        small, c_small * fs_x * dfs_y, 0.0
    )
    uy = xp.where(large, -c_large * dfl_x * fl_y, 0.0) + xp.where(
        small, -c_small * dfs_x * fs_y, 0.0
    )
    return xp.stack((ux, uy), axis=-1)


def two_vortices_density(
    x,
    *,
    centre: tuple[float, float] = TWO_VORTICES_BLOB_CENTRE,
    width: float = TWO_VORTICES_BLOB_WIDTH,
):
    r"""Passive density blob of the two-vortices example.

    .. math:: \rho_0(x) = \exp\!\Bigl(-\frac{|x - c|^2}{2\sigma^2}\Bigr),

    with :math:`c = (-0.5, -0.3)` and :math:`\sigma = 0.08` by default: the blob sits
    0.2 above the centre :math:`(-0.5, -0.5)` of the large vortex, where the flow is
    fast (speed ≈ 0.95 ``speed``) and sheared, so it is wound into a spiral. It is below
    :math:`10^{-8}` on the walls and below :math:`10^{-3}` on the edges of the large
    vortex's quadrant.
    """
    xp = _namespace(x)
    x = xp.asarray(x)
    d2 = (x[..., 0] - centre[0]) ** 2 + (x[..., 1] - centre[1]) ** 2
    return xp.exp(-d2 / (2.0 * width**2))
