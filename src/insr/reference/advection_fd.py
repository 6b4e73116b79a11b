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


def midpoint_matrix(velocity: float, h: float, dt: float, n_nodes: int):
    """(c, banded I + c·S) of the scheme: (I + c·S) u^{n+1} = (I − c·S) u^n at the interior
    nodes, S the skew-symmetric stencil [−1, 0, 1], c = (a·Δt/2)·(1/(2h))."""
    c = velocity * dt / (4 * h)
    m = n_nodes - 2  # interior unknowns
    ab = np.zeros((3, m))
    ab[0, 1:] = c
    ab[1, :] = 1.0
    ab[2, :-1] = -c
    return c, ab


def midpoint_step(u: np.ndarray, c: float, ab: np.ndarray) -> np.ndarray:
    """One step of the scheme (a new array; the end values are kept)."""
    u = u.copy()
    ui = u[1:-1]
    rhs = ui.copy()
    rhs[:-1] -= c * ui[1:]
    rhs[1:] += c * ui[:-1]
    u[1:-1] = solve_banded((1, 1), ab, rhs)
    return u


def advection_fd_midpoint(u0, *, velocity: float, lo: float, hi: float, n_nodes: int, dt: float, steps: int):
    """Run the scheme; returns (x, u at t = steps·dt, wall seconds).  ``u0`` is a callable of x.
    The steps run in :func:`insr.simulate.simulate`
    (:class:`insr.reference.steppers.AdvectionFDStepper`)."""

    from insr.reference.steppers import AdvectionFDStepper
    from insr.simulate import SaveAt, simulate

    t0 = time.perf_counter()
    stepper = AdvectionFDStepper(u0, velocity=velocity, lo=lo, hi=hi, n_nodes=n_nodes, dt=dt)
    setup = time.perf_counter() - t0
    traj = simulate(stepper, dt=float(dt), steps=int(steps),
                    saveat=SaveAt(every=max(int(steps), 1)))
    # the solver's time: its setup, initial state and steps (not the loop's own bookkeeping)
    return stepper.x, np.asarray(traj.final_state["u"]), setup + traj.metrics[-1]["wall_time"]


def gaussian(center: float, width: float):
    return lambda x: np.exp(-((x - center) ** 2) / (2 * width**2))


def advection_exact(x, t, *, velocity: float, center: float, width: float):
    """u0(x − a·t) for the Gaussian initial condition."""
    return gaussian(center, width)(np.asarray(x) - velocity * t)


def mae_on(points, x_grid, u_grid, exact):
    """Mean absolute error of the piecewise-linear interpolant of a grid solution at ``points``."""
    return float(np.mean(np.abs(np.interp(points, x_grid, u_grid) - exact)))
