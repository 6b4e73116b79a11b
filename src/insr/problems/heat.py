"""The heat equation — the worked example of defining a new PDE.

    u_t = ν·u_xx  on [0, 1],  u(0, t) = u(1, t) = 0,  u(x, 0) = sin(πx)
    exact: u(x, t) = exp(−ν π² t)·sin(πx)
"""

from __future__ import annotations

import equinox as eqx
import jax.numpy as jnp

from insr.geometry import Box, Interval
from insr.operators import laplacian
from insr.problems.base import EvolutionProblem


class Heat1D(EvolutionProblem):
    nu: float = 0.1
    domain: Box = eqx.field(static=True, default=Interval(0.0, 1.0))
    out_dim: int = eqx.field(static=True, default=1)

    def __check_init__(self):
        if not self.nu >= 0:
            raise ValueError(f"Heat1D: nu (diffusivity) must be ≥ 0, got {self.nu!r}")

    def initial_condition(self, x):
        return jnp.sin(jnp.pi * x)

    def rhs(self, u, x, t):
        return self.nu * laplacian(u)(x)

    def boundary_residual(self, u, x, t):
        return u(x)

    def exact_solution(self, x, t):
        return jnp.exp(-self.nu * jnp.pi**2 * t) * jnp.sin(jnp.pi * x)
