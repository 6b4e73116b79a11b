"""Finite-difference reference for 1D advection u_t + a·u_x = 0 with u = 0 at both ends.

Space: N nodes x_0 = lo … x_{N−1} = hi including the ends, second-order central
differences for u_x at interior nodes, Dirichlet u = 0 at the ends.
Time: the same midpoint (Crank–Nicolson) rule as the neural solver,

    (u^{n+1} − u^n)/Δt = −a·D (u^{n+1} + u^n)/2,

solved exactly per step as a tridiagonal system (scipy.linalg.solve_banded).
Second order in Δt and in h; non-dissipative, so under-resolved pulses show
dispersive ripples rather than damping.  State memory: N nodes × 4 bytes.
"""

from __future__ import annotations

import time

import numpy as np
from scipy.linalg import solve_banded


def advection_fd_midpoint(u0, *, velocity: float, lo: float, hi: float, n_nodes: int, dt: float, steps: int):
    """Run the scheme; returns (x, u at t = steps·dt, wall seconds).  ``u0`` is a callable of x."""
    if int(n_nodes) < 3:
        raise ValueError(f"n_nodes must be ≥ 3, got {n_nodes!r}")
    if not dt > 0:
        raise ValueError(f"dt must be > 0, got {dt!r}")
    t0 = time.perf_counter()
    x = np.linspace(lo, hi, n_nodes)
    h = x[1] - x[0]
    u = np.asarray(u0(x), dtype=np.float64)
    u[0] = u[-1] = 0.0
    c = velocity * dt / (4 * h)  # (a·Δt/2)·(1/(2h))
    m = n_nodes - 2  # interior unknowns
    # (I + c·S) u^{n+1} = (I − c·S) u^n with S the skew-symmetric stencil [−1, 0, 1].
    ab = np.zeros((3, m))
    ab[0, 1:] = c
    ab[1, :] = 1.0
    ab[2, :-1] = -c
    for _ in range(int(steps)):
        ui = u[1:-1]
        rhs = ui.copy()
        rhs[:-1] -= c * ui[1:]
        rhs[1:] += c * ui[:-1]
        u[1:-1] = solve_banded((1, 1), ab, rhs)
    return x, u, time.perf_counter() - t0


def gaussian(center: float, width: float):
    return lambda x: np.exp(-((x - center) ** 2) / (2 * width**2))


def advection_exact(x, t, *, velocity: float, center: float, width: float):
    """u0(x − a·t) for the Gaussian initial condition."""
    return gaussian(center, width)(np.asarray(x) - velocity * t)


def mae_on(points, x_grid, u_grid, exact):
    """Mean absolute error of the piecewise-linear interpolant of a grid solution at ``points``."""
    return float(np.mean(np.abs(np.interp(points, x_grid, u_grid) - exact)))
