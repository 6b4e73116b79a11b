"""1D linear advection, the first example of Chen et al. (ICML 2023), Sec. 5.1.

    u_t + a·u_x = 0   on [x_lo, x_hi],   u(x, 0) = exp(−(x − c)² / (2σ²)),
    u = 0 at both ends (inflow boundary condition; the pulse never reaches them
    in the paper's setup: a = 0.25, c = −1.5, σ = 0.1 on [−2, 2] up to t = 12).

Exact solution: u(x, t) = u0(x − a·t) (the Gaussian restricted to the interval;
with the paper's numbers the truncation at the ends is below 4e-6).
"""

from __future__ import annotations

import equinox as eqx
import jax.numpy as jnp

from insr.geometry import Box, Interval
from insr.operators import jacobian
from insr.problems.base import EvolutionProblem


class Advection1D(EvolutionProblem):
    velocity: float = 0.25
    center: float = -1.5
    width: float = 0.1
    domain: Box = eqx.field(static=True, default=Interval(-2.0, 2.0))
    out_dim: int = eqx.field(static=True, default=1)

    def __check_init__(self):
        if not self.width > 0:
            raise ValueError(f"Advection1D: width (σ of the Gaussian) must be > 0, got {self.width!r}")

    def initial_condition(self, x):
        return jnp.exp(-((x - self.center) ** 2) / (2 * self.width**2))

    def rhs(self, u, x, t):
        return -self.velocity * jacobian(u)(x)[:, 0]

    def boundary_residual(self, u, x, t):
        return u(x)

    def exact_solution(self, x, t):
        return self.initial_condition(x - self.velocity * t)
