"""The 1D Allen–Cahn equation, the benchmark of randomized sparse Neural Galerkin (RSNG:
Berman & Peherstorfer, NeurIPS 2023, Sec. 5.2).

    u_t = ε·u_xx + u − u³   on [0, 2π) periodic,  ε = 5e-3,  0 ≤ t ≤ 4,
    u0(x) = ⅓·tanh(2 sin x) − exp(−23.5 (x − π/2)²) + exp(−27 (x − 4.2)²) + exp(−38 (x − 5.4)²)

(u0 is periodic only up to its Gaussian tails, below 1e-40 at x = 0 and 2π.)  There is no
closed form: errors are measured against a spectral reference computed from the same
definition (:meth:`linear_symbol` and :meth:`nonlinear` feed
:func:`insr.reference.spectral.etdrk4`).  Periodicity is the field's job (an
:class:`insr.fields.Periodic` embedding), so the problem has no boundary residual.
"""

from __future__ import annotations

import math

import equinox as eqx
import jax.numpy as jnp
import numpy as np

from insr.geometry import Box, Interval
from insr.operators import laplacian
from insr.problems.base import EvolutionProblem

TWO_PI = 2 * math.pi


class AllenCahn1D(EvolutionProblem):
    eps: float = 5e-3
    error_samples: int = eqx.field(static=True, default=1000)
    domain: Box = eqx.field(static=True, default=Interval(0.0, TWO_PI))
    out_dim: int = eqx.field(static=True, default=1)

    def __check_init__(self):
        if not self.eps > 0:
            raise ValueError(f"AllenCahn1D: eps (the diffusion coefficient) must be > 0, got {self.eps!r}")
        if int(self.error_samples) < 16:
            raise ValueError(f"AllenCahn1D: error_samples must be ≥ 16, got {self.error_samples!r}")

    def initial_condition(self, x):
        x = x[0]
        return jnp.atleast_1d(jnp.tanh(2 * jnp.sin(x)) / 3 - jnp.exp(-23.5 * (x - jnp.pi / 2) ** 2)
                              + jnp.exp(-27 * (x - 4.2) ** 2) + jnp.exp(-38 * (x - 5.4) ** 2))

    def rhs(self, u, x, t):
        v = u(x)
        return self.eps * laplacian(u)(x) + v - v**3

    def linear_symbol(self, k):
        """The Fourier symbol of the linear part ε·∂ₓₓ: −ε k²."""
        return -self.eps * k**2

    @staticmethod
    def nonlinear(u, t):
        """The pointwise nonlinear part u − u³."""
        return u - u**3

    def error_points(self) -> np.ndarray:
        """``error_samples`` equispaced points of the period [0, 2π) (the endpoint once)."""
        return (np.arange(self.error_samples) * (TWO_PI / self.error_samples))[:, None]
