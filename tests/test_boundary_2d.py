"""A 2D Dirichlet problem through ``insr.solve``: the boundary sample must be adequate."""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import insr
from insr.fields import Siren
from insr.geometry import Box
from insr.integrators import Midpoint
from insr.operators import laplacian
from insr.problems import EvolutionProblem
from insr.solvers import LevenbergMarquardt


class Heat2D(EvolutionProblem):
    """u_t = ν Δu on [0, 1]², u = 0 on the boundary; u = exp(−2νπ²t) sin πx sin πy."""

    nu: float = 0.05
    domain: Box = eqx.field(static=True, default=Box((0.0, 0.0), (1.0, 1.0)))
    out_dim: int = eqx.field(static=True, default=1)

    def initial_condition(self, x):
        return (jnp.sin(jnp.pi * x[0]) * jnp.sin(jnp.pi * x[1]))[None]

    def rhs(self, u, x, t):
        return self.nu * laplacian(u)(x)

    def boundary_residual(self, u, x, t):
        return u(x)

    def exact_solution(self, x, t):
        return jnp.exp(-2 * self.nu * jnp.pi**2 * t) * self.initial_condition(x)


@pytest.mark.slow  # the default suite checks the same through the README's wave example
def test_2d_dirichlet_heat_holds_its_boundary_with_the_default_boundary_sample():
    # Measured (seeds 0/1, 10 steps): with the default 70 boundary points per solve the
    # relative L2 error at t = 0.5 is 1.9e-3 and max |u| on the boundary 4e-3; with the 2
    # points insr.solve used to take in any dimension, 4.5e-2 and 0.16.
    traj = insr.solve(Heat2D(), Siren(2, 1, 24, 2, omega0=5.0, key=jax.random.PRNGKey(0)), Midpoint(),
                      LevenbergMarquardt(max_iters=10), dt=0.05, t1=0.5, key=jax.random.PRNGKey(1), samples=300)
    assert traj.stepper.boundary_samples == Box((0.0, 0.0), (1.0, 1.0)).matching_boundary_samples(300) == 70
    assert traj.metrics[-1]["rel_l2"] < 1e-2
    edge = np.asarray(Heat2D().domain.boundary_points(jax.random.PRNGKey(9), 2000))
    assert np.abs(traj.evaluate(edge, 0.5)).max() < 2e-2
