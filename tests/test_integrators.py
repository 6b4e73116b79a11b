"""Integrator orders, measured: halve Δt, fit the slope of the error.

The field is one mode, u(x) = c·sin(πx), and the PDE the heat equation: every
residual is then exactly minimised by the scheme's amplitude update (e.g.
c^{n+1} = c^n (1 − ½νπ²Δt)/(1 + ½νπ²Δt) for the midpoint rule), so the error
against exp(−νπ²t) measures the scheme alone, through the same Levenberg–
Marquardt solver and time loop that run the neural fields.
"""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import insr
from insr.integrators import (
    BDF2,
    RK4,
    SSPRK3,
    ExplicitEuler,
    GaussLegendre4,
    Heun,
    ImplicitEuler,
    ImplicitRungeKutta,
    Midpoint,
)
from insr.problems import Heat1D
from insr.solvers import LevenbergMarquardt


class SineMode(eqx.Module):
    c: jax.Array
    in_dim: int = eqx.field(static=True, default=1)
    out_dim: int = eqx.field(static=True, default=1)
    num_params: int = eqx.field(static=True, default=1)

    def __call__(self, x):
        return self.c * jnp.sin(jnp.pi * x)


def final_error(integrator, dt, t1=0.4, nu=0.5):
    traj = insr.solve(Heat1D(nu=nu), SineMode(jnp.zeros(1)), integrator,
                      LevenbergMarquardt(max_iters=20, ftol=1e-12), dt=dt, t1=t1,
                      # no relative stopping rule: the initial fit's own error (rtol 1e-5 by
                      # default) would be as large as RK4's at Δt = 0.025 (4e-7)
                      init_solver=LevenbergMarquardt.initial_fit(rtol=0.0),
                      key=jax.random.PRNGKey(0), samples=64, saveat=insr.SaveAt(every=10_000))
    x = np.linspace(0, 1, 11, dtype=np.float32)[:, None]
    u = traj.evaluate(x, t1)[:, 0]
    return np.max(np.abs(u - np.exp(-nu * np.pi**2 * t1) * np.sin(np.pi * x[:, 0])))


@pytest.mark.parametrize("integrator", [ExplicitEuler(), ImplicitEuler(), Midpoint(), BDF2()], ids=lambda i: i.name)
def test_measured_order_matches_declared_order(integrator):
    dts = [0.04, 0.02, 0.01]
    errors = [final_error(integrator, dt) for dt in dts]
    slope = np.polyfit(np.log(dts), np.log(errors), 1)[0]
    assert abs(slope - integrator.order) < 0.25, (errors, slope)


def _rk_exact_error(scheme, dt, t1=0.4, nu=0.5):
    """max |cⁿ sin πx − exp(−νπ²t) sin πx| of the tableau itself: cⁿ = R(z)ⁿ with the
    stability function R(z) = 1 + z bᵀ(I − zA)⁻¹1, z = −νπ²Δt (one Fourier mode)."""
    s = scheme.stages
    A = np.zeros((s, s))
    if isinstance(scheme, ImplicitRungeKutta):
        A[:] = scheme.a
    else:
        for i, row in enumerate(scheme.a):
            A[i + 1, : len(row)] = row
    z = -nu * np.pi**2 * dt
    R = 1 + z * np.asarray(scheme.b) @ np.linalg.solve(np.eye(s) - z * A, np.ones(s))
    return abs(R ** round(t1 / dt) - np.exp(-nu * np.pi**2 * t1))


@pytest.mark.parametrize("scheme", [pytest.param(Heun(), marks=pytest.mark.slow),
                                    pytest.param(SSPRK3(), marks=pytest.mark.slow), RK4(), GaussLegendre4()],
                         ids=lambda s: s.name)
def test_runge_kutta_projections_reproduce_the_tableau_and_its_order(scheme):
    # Each stage is a least-squares projection through the same LM solver and time loop;
    # on one Fourier mode the projections are exact, so the error must be the tableau's own
    # (R(z)ⁿ against the exact decay) and its slope the declared order.  Measured slopes:
    # Heun 2.09, SSPRK3 3.21, RK4 4.30, Gauss–Legendre 4.16 (pre-asymptotic: the tableau's
    # own errors give the same).
    # (gauss4's own error at Δt = 0.025 is 9e-8, at float32's noise: it gets coarser steps)
    dts = [0.04, 0.02, 0.01] if scheme.order == 2 else [0.2, 0.1, 0.05] if scheme.name == "gauss4" \
        else [0.1, 0.05, 0.025]
    errors = [final_error(scheme, dt) for dt in dts]
    expected = [_rk_exact_error(scheme, dt) for dt in dts]
    np.testing.assert_allclose(errors, expected, rtol=0.05, atol=2e-7)
    slope = np.polyfit(np.log(dts), np.log(errors), 1)[0]
    assert abs(slope - scheme.order) < 0.35, (errors, slope)


@pytest.mark.slow  # the order tests above already step through each branch; this adds the CLI path
@pytest.mark.parametrize("name", ["rk4", "gauss4", "bdf2"])  # one per branch of FieldStepper.step
def test_higher_order_schemes_are_selectable_by_name(name):
    from insr.cli import build_stepper, resolve_config

    # small and short: this checks the wiring from the config to the scheme's own branch
    st = build_stepper(resolve_config("heat1d", [f"integrator={name}", "samples=64", "field.width=8",
                                                 "init.max_iters=5", "init.tolerance=10", "lm.max_iters=2"]))
    assert st.integrator.name == name
    state, _ = st.initial_state(jax.random.PRNGKey(0))
    _, info = st.step(state, 0.0, 0.01, jax.random.PRNGKey(1))  # through the scheme's own branch
    assert info["iterations"] > 0 and np.isfinite(info["loss"]), info


def test_every_scheme_name_maps_to_its_scheme():
    from insr.scenarios import INTEGRATORS

    for name, cls in INTEGRATORS.items():
        assert cls().name == name


def test_an_unknown_scheme_name_lists_the_allowed_ones():
    from insr.cli import build_stepper, resolve_config
    from insr.config import ConfigError

    with pytest.raises(ConfigError, match="integrator.*gauss4"):
        build_stepper(resolve_config("heat1d", ["integrator=rk5"]))
