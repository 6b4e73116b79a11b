"""The 2D periodic heat equation, the benchmark of TENG (Chen, McCarran, Vizcaino, Soljačić,
Luo; ICML 2024, Sec. 4).

    u_t = ν·Δu   on [0, 2π)² periodic,  ν = 0.1,  0 ≤ t ≤ 4,
    u0 = 0.2207 sin y − 0.2030 sin y cos 2x + 0.0294 sin y cos 4x − 0.0087 sin 3y
         + 0.0080 sin 3y cos 2x

Each Fourier mode decays on its own: a term with wavenumbers (k_x, k_y) is multiplied by
exp(−ν (k_x² + k_y²) t), which gives the exact solution.  Periodicity is the field's job
(an :class:`insr.fields.Periodic` embedding), so the problem has no boundary residual.
"""

from __future__ import annotations

import math

import equinox as eqx
import jax.numpy as jnp
import numpy as np

from insr.geometry import Box
from insr.operators import laplacian
from insr.problems.base import EvolutionProblem

TWO_PI = 2 * math.pi

#: (amplitude, k_x, k_y): the term amplitude · cos(k_x x) · sin(k_y y) of u0.
MODES = ((0.2207, 0, 1), (-0.2030, 2, 1), (0.0294, 4, 1), (-0.0087, 0, 3), (0.0080, 2, 3))


class Heat2DPeriodic(EvolutionProblem):
    nu: float = 0.1
    error_samples: int = eqx.field(static=True, default=256)
    domain: Box = eqx.field(static=True, default=Box((0.0, 0.0), (TWO_PI, TWO_PI)))
    out_dim: int = eqx.field(static=True, default=1)

    def __check_init__(self):
        if not self.nu >= 0:
            raise ValueError(f"Heat2DPeriodic: nu (diffusivity) must be ≥ 0, got {self.nu!r}")
        if int(self.error_samples) < 8:
            raise ValueError(f"Heat2DPeriodic: error_samples must be ≥ 8, got {self.error_samples!r}")

    def initial_condition(self, x):
        return self.exact_solution(x, 0.0)

    def rhs(self, u, x, t):
        return self.nu * laplacian(u)(x)

    def exact_solution(self, x, t):
        return jnp.atleast_1d(sum(a * jnp.exp(-self.nu * (kx**2 + ky**2) * t) * jnp.cos(kx * x[0]) * jnp.sin(ky * x[1])
                                  for a, kx, ky in MODES))

    def error_points(self) -> np.ndarray:
        """The ``error_samples``² periodic grid (each period's endpoint once): 256² by default,
        TENG's evaluation grid."""
        g = np.arange(self.error_samples) * (TWO_PI / self.error_samples)
        x, y = np.meshgrid(g, g, indexing="ij")
        return np.stack([x.ravel(), y.ravel()], axis=-1)
