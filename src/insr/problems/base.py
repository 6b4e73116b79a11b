"""What a time-dependent PDE ``∂u/∂t = L(u)`` must say to be solved by insr.

Subclass :class:`EvolutionProblem` and give the domain, the number of output
channels, the initial condition and the spatial operator ``L``; optionally a
boundary residual and an exact solution (then error metrics are reported).
Every method acts on one point ``x`` of shape (d,); fields ``u`` are callables
of one point returning shape (m,).  See ``insr.problems.heat`` for a complete
example in a dozen lines.
"""

from __future__ import annotations

import equinox as eqx
import jax
import numpy as np

from insr.geometry import Box


class EvolutionProblem(eqx.Module):
    """∂u/∂t = L(u, x, t) on ``domain`` with u(x, 0) = u0(x).

    Subclasses define the dataclass fields ``domain`` and ``out_dim`` (usually as
    class-level defaults or in ``__init__``) and the methods below.
    """

    def initial_condition(self, x: jax.Array) -> jax.Array:
        """u0(x), shape (out_dim,)."""
        raise NotImplementedError

    def rhs(self, u, x: jax.Array, t) -> jax.Array:
        """L(u)(x, t), shape (out_dim,)."""
        raise NotImplementedError

    def boundary_residual(self, u, x: jax.Array, t) -> jax.Array | None:
        """Residual of the boundary condition at boundary point x, or None if the
        field satisfies it by construction (or the problem has no boundary)."""
        return None

    def exact_solution(self, x: jax.Array, t) -> jax.Array:
        """The exact u(x, t), shape (out_dim,), if known; ``has_exact`` says if it is."""
        raise NotImplementedError

    @property
    def has_exact(self) -> bool:
        return type(self).exact_solution is not EvolutionProblem.exact_solution

    @property
    def has_boundary(self) -> bool:
        return type(self).boundary_residual is not EvolutionProblem.boundary_residual

    def error_points(self) -> np.ndarray:
        """Where errors are measured: 1,000 uniform points in 1D, a 101² grid in 2D, a 22³
        grid (10,648 points; not 101³ = 1 M) in 3D and above: every step evaluates them."""
        domain: Box = self.domain
        return domain.grid({1: 1000, 2: 101}.get(domain.dim, 22))
