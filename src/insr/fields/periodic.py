"""Exactly periodic fields: an input embedding x_i ↦ (cos 2πx_i/L_i, sin 2πx_i/L_i).

A field u(x) = net(E(x)) with the embedding E above on the periodic axes (other axes pass
through unchanged) is L_i-periodic in x_i for every weight vector, with every derivative
continuous across the period boundary, so a periodic box needs no boundary residual at all:
periodicity is built into the function space, not penalised (the usual construction in
physics-informed networks, e.g. Dong & Ni, J. Comput. Phys. 435, 2021).
"""

from __future__ import annotations

from collections.abc import Sequence

import equinox as eqx
import jax.numpy as jnp

__all__ = ["Periodic"]


class Periodic(eqx.Module):
    """``net`` behind the embedding of the ``axes`` of a box with periods ``periods``.

    ``net`` must take ``in_dim + len(axes)`` inputs (each periodic axis becomes a cos and a
    sin); build it with :meth:`embedded_dim`, e.g.
    ``Periodic(Siren(Periodic.embedded_dim(1, [0]), 1, 20, 2, key=k), periods=[2 * pi])``.
    """

    net: eqx.Module
    periods: tuple = eqx.field(static=True)
    axes: tuple = eqx.field(static=True)
    in_dim: int = eqx.field(static=True)
    out_dim: int = eqx.field(static=True)

    def __init__(self, net: eqx.Module, periods: Sequence[float], axes: Sequence[int] | None = None,
                 in_dim: int | None = None):
        periods = tuple(float(p) for p in periods)
        axes = tuple(range(len(periods))) if axes is None else tuple(int(a) for a in axes)
        if len(axes) != len(periods) or not periods:
            raise ValueError(f"Periodic: one period per periodic axis, got axes {axes} and periods {periods}")
        if any(not p > 0 for p in periods):
            raise ValueError(f"Periodic: periods must be > 0, got {periods}")
        in_dim = len(axes) if in_dim is None else int(in_dim)
        if len(set(axes)) != len(axes) or any(not 0 <= a < in_dim for a in axes):
            raise ValueError(f"Periodic: axes must be distinct and in [0, {in_dim}), got {axes}")
        want = self.embedded_dim(in_dim, axes)
        if getattr(net, "in_dim", None) != want:
            raise ValueError(f"Periodic: the network must take {want} inputs (the embedding of {in_dim}D "
                             f"points with {len(axes)} periodic axes), it takes {getattr(net, 'in_dim', None)}")
        self.net, self.periods, self.axes = net, periods, axes
        self.in_dim, self.out_dim = in_dim, int(net.out_dim)

    @staticmethod
    def embedded_dim(in_dim: int, axes: Sequence[int]) -> int:
        """Inputs of the inner network: one per plain axis, two per periodic axis."""
        return int(in_dim) + len(tuple(axes))

    def embed(self, x):
        parts = []
        for i in range(self.in_dim):
            if i in self.axes:
                w = 2 * jnp.pi / self.periods[self.axes.index(i)]
                parts += [jnp.cos(w * x[i]), jnp.sin(w * x[i])]
            else:
                parts.append(x[i])
        return jnp.stack(parts)

    def __call__(self, x):
        return self.net(self.embed(x))

    @property
    def num_params(self) -> int:
        return int(self.net.num_params)

    @property
    def state_bytes(self) -> int:
        return int(self.net.state_bytes)
