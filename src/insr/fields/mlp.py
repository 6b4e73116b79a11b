"""The tanh MLP that follows an input encoding (Fourier features, a multiresolution grid)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import jax
import jax.numpy as jnp

from insr.fields.siren import Linear


def glorot_tanh_layers(key, sizes: Sequence[int], dtype) -> tuple[Linear, ...]:
    """Layers ``sizes[0] → … → sizes[-1]`` with Glorot-uniform weights (±√(6/(n_in + n_out)))
    and zero biases, from the explicit ``key``."""
    keys = jax.random.split(key, len(sizes) - 1)
    return tuple(
        Linear(jax.random.uniform(k, (n_out, n_in), minval=-1.0, maxval=1.0, dtype=dtype)
               * math.sqrt(6.0 / (n_in + n_out)), jnp.zeros((n_out,), dtype))
        for k, n_in, n_out in zip(keys, sizes[:-1], sizes[1:]))


def tanh_mlp(layers: Sequence[Linear], h):
    """tanh after every layer but the last (linear output)."""
    for layer in layers[:-1]:
        h = jnp.tanh(layer(h))
    return layers[-1](h)


def mlp_params(layers: Sequence[Linear]) -> int:
    return sum(l.weight.size + l.bias.size for l in layers)
