"""The periodic spectral reference (ETDRK4): exact on linear problems, exact on a known
nonlinear solution, and fourth order in Δt (measured slope)."""

from __future__ import annotations

import numpy as np

from insr.reference.spectral import PeriodicGrid, etdrk4

TP = 2 * np.pi


def test_linear_heat_2d_is_exact_mode_by_mode():
    grid = PeriodicGrid((32, 32), (TP, TP))
    u0 = lambda p: np.sin(p[:, 1]) - 0.2 * np.sin(p[:, 1]) * np.cos(2 * p[:, 0])
    sol = etdrk4(u0, grid, linear=lambda kx, ky: -0.1 * (kx**2 + ky**2), nonlinear=None, dt=0.5, t1=4.0)
    p = grid.points()
    exact = (np.sin(p[:, 1]) * np.exp(-0.4) - 0.2 * np.sin(p[:, 1]) * np.cos(2 * p[:, 0]) * np.exp(-2.0))
    assert np.max(np.abs(sol.at(4.0).ravel() - exact)) < 1e-13
    np.testing.assert_allclose(sol.interpolate(4.0, [[0.3, 1.1]]), [np.sin(1.1) * np.exp(-0.4)
                               - 0.2 * np.sin(1.1) * np.cos(0.6) * np.exp(-2.0)], atol=1e-12)


def _logistic_cubic(u0, t):
    """u' = u − u³ exactly: u = u0 eᵗ / sqrt(1 − u0² + u0² e²ᵗ)."""
    return u0 * np.exp(t) / np.sqrt(1 - u0**2 + u0**2 * np.exp(2 * t))


def test_allen_cahn_nonlinearity_is_fourth_order_on_an_exact_solution():
    grid = PeriodicGrid((8,), (TP,))  # a constant field: the diffusion does nothing
    errs = []
    for dt in (0.4, 0.2, 0.1):
        sol = etdrk4(lambda p: np.full(len(p), 0.1), grid, linear=lambda k: -5e-3 * k**2,
                     nonlinear=lambda u, t: u - u**3, dt=dt, t1=4.0)
        errs.append(abs(sol.at(4.0)[0] - _logistic_cubic(0.1, 4.0)))
    slopes = np.log2(np.array(errs[:-1]) / np.array(errs[1:]))
    assert np.all(slopes > 3.7) and np.all(slopes < 4.6), (errs, slopes)
