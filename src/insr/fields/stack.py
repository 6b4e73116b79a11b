"""Several networks as one field: a system of PDEs with one network per unknown.

``Stack((net_u, net_v))(x) = concat(net_u(x), net_v(x))``: the problem sees one field with
``out_dim = Σ out_dim`` and writes its right-hand side per component, while each unknown
keeps its own network (own width, frequency, initialisation).  The per-step solve is
joint over all the networks' weights (one Levenberg–Marquardt problem), which is what an
implicit or midpoint step of a coupled system needs.
"""

from __future__ import annotations

from collections.abc import Sequence

import equinox as eqx
import jax.numpy as jnp

__all__ = ["Stack"]


class Stack(eqx.Module):
    """Fields ``parts`` on the same input space, outputs concatenated in order."""

    parts: tuple
    in_dim: int = eqx.field(static=True)
    out_dim: int = eqx.field(static=True)

    def __init__(self, parts: Sequence[eqx.Module]):
        parts = tuple(parts)
        if not parts:
            raise ValueError("Stack needs at least one field")
        dims = {getattr(p, "in_dim", None) for p in parts}
        if len(dims) != 1 or None in dims:
            raise ValueError(f"Stack: every field needs the same in_dim, got {sorted(map(str, dims))}")
        self.parts = parts
        self.in_dim = int(parts[0].in_dim)
        self.out_dim = int(sum(p.out_dim for p in parts))

    def __call__(self, x):
        return jnp.concatenate([p(x) for p in self.parts])

    @property
    def num_params(self) -> int:
        return int(sum(p.num_params for p in self.parts))

    @property
    def state_bytes(self) -> int:
        """Bytes of all the networks' weights (each in its own float type)."""
        return int(sum(getattr(p, "state_bytes", 4 * p.num_params) for p in self.parts))
