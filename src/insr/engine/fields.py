"""Named networks whose trainable weights are a simulation's state."""

from __future__ import annotations

from collections.abc import Callable, Mapping

import equinox as eqx
import jax
import jax.numpy as jnp


class FieldSet:
    """The networks of one simulation, by name (e.g. ``u``, ``p``, ``rho``).

    Each network is split once into its array leaves (the *weights*: what a solve changes and
    a checkpoint stores) and its static rest; the state of a simulation is a dict
    ``{name: weights}`` (:attr:`template` is the initial one).  ``transforms`` maps a name
    to ``g(value, x)`` applied to the network's output at the point ``x`` — a constraint built
    into the field, such as the hard-wall factor of a fluid velocity — or ``g(value, x, t)``
    when the constraint moves in time (``time_dependent``: the elastic deformation
    φ = X + g(X, t) + s(X)·NN(X) of prescribed handles), so every solve and every evaluation
    sees the constrained field (:meth:`fn`).

    Bytes are counted honestly per network (its ``state_bytes`` attribute when it has one,
    else 4 bytes per parameter: float32).
    """

    def __init__(self, networks: Mapping[str, eqx.Module], transforms: Mapping[str, Callable] | None = None,
                 time_dependent: bool = False):
        self.networks = {name: net for name, net in networks.items() if net is not None}
        if not self.networks:
            raise ValueError("FieldSet: give at least one network")
        transforms = dict(transforms or {})
        unknown = sorted(set(transforms) - set(self.networks))
        if unknown:
            raise ValueError(f"FieldSet: transforms for fields that do not exist: {unknown}")
        self.transforms, self.time_dependent = transforms, bool(time_dependent)
        self.template, self.static = {}, {}
        for name, net in self.networks.items():
            self.template[name], self.static[name] = eqx.partition(net, eqx.is_array)
        leaves = jax.tree.leaves(self.template)
        # Points and times are handed to the fields in their own float type (a float64 field
        # must not see float32-rounded coordinates: that alone is a 1e-7 relative error).
        self.dtype = jnp.result_type(*leaves) if leaves else jnp.result_type(float)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self.networks)

    def __contains__(self, name: str) -> bool:
        return name in self.networks

    def module(self, name: str, weights) -> eqx.Module:
        """The network ``name`` with ``weights`` (no transform): call it, differentiate it."""
        return eqx.combine(weights, self.static[name])

    def fn(self, name: str) -> Callable:
        """``f(weights, x[, t])``: the field ``name`` at one point (at time t), its transform applied."""
        static, g = self.static[name], self.transforms.get(name)
        if g is None:
            return lambda weights, x, t=None: eqx.combine(weights, static)(x)
        if self.time_dependent:
            return lambda weights, x, t=None: g(eqx.combine(weights, static)(x), x, t)
        return lambda weights, x, t=None: g(eqx.combine(weights, static)(x), x)

    def num_params(self, name: str | None = None) -> int:
        """Trainable parameters of one network, or of all."""
        nets = [self.networks[name]] if name else self.networks.values()
        return int(sum(net.num_params for net in nets))

    def state_bytes(self) -> int:
        return int(sum(getattr(net, "state_bytes", 4 * net.num_params) for net in self.networks.values()))
