"""Divergence-free 2D vector fields by construction: the perpendicular gradient of a stream
function, u = ∇⊥ψ = (∂ψ/∂y, −∂ψ/∂x).

Then ∇·u = ψ_yx − ψ_xy = 0 identically, for every weight vector, so an incompressibility
constraint needs no penalty and no projection: it is built into the function space (the
constraint as an ansatz, as :class:`~insr.fields.Periodic` builds in periodicity).  The
derivative costs one forward-mode pass of ψ per evaluation.
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp

__all__ = ["DivergenceFree"]


class DivergenceFree(eqx.Module):
    """u(x) = (∂ψ/∂y, −∂ψ/∂x)(x) for a scalar network ``stream`` of 2D points (ψ: R² → R)."""

    stream: eqx.Module
    in_dim: int = eqx.field(static=True)
    out_dim: int = eqx.field(static=True)

    def __init__(self, stream: eqx.Module):
        if getattr(stream, "in_dim", None) != 2 or getattr(stream, "out_dim", None) != 1:
            raise ValueError("DivergenceFree: the stream function must map R² → R (in_dim 2, out_dim 1), got "
                             f"in_dim {getattr(stream, 'in_dim', None)}, out_dim {getattr(stream, 'out_dim', None)}")
        self.stream, self.in_dim, self.out_dim = stream, 2, 2

    def __call__(self, x):
        g = jax.jacfwd(lambda y: self.stream(y)[0])(x)
        return jnp.stack([g[1], -g[0]])

    @property
    def num_params(self) -> int:
        return int(self.stream.num_params)

    @property
    def state_bytes(self) -> int:
        return int(getattr(self.stream, "state_bytes", 4 * self.num_params))
