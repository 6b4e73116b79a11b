"""Least-squares objectives made of residual blocks.

    loss(θ) = Σ_k  w_k · mean_{x ∈ M_k} |r_k(θ; x)|²

A :class:`Block` holds the per-point residual ``r_k(params, x, args) -> (m_k,)``,
the sampler that draws ``M_k`` from a PRNG key, and the weight ``w_k``.  ``args``
carries what changes from step to step (the previous field's parameters, t, Δt)
so that the compiled step is reused.  Stacking ``√(w_k/N_k)·r_k`` over blocks and
points gives the residual vector r with loss = |r|².
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp


@dataclass(frozen=True)
class Block:
    residual: Callable[[Any, jax.Array, Any], jax.Array]
    sampler: Callable[[jax.Array], jax.Array]
    weight: float = 1.0
    name: str = "pde"


def sample_blocks(blocks, key):
    """Draw the point sets of every block; one sub-key per block."""
    keys = jax.random.split(key, len(blocks))
    return tuple(b.sampler(k) for b, k in zip(blocks, keys))


def residual_vector(blocks, points, params, args):
    """The stacked, weighted residual vector r (loss = |r|²)."""
    parts = []
    for block, pts in zip(blocks, points):
        r = jax.vmap(block.residual, in_axes=(None, 0, None))(params, pts, args)
        parts.append(jnp.sqrt(block.weight / pts.shape[0]) * r.reshape(-1))
    return jnp.concatenate(parts)


def loss_value(blocks, points, params, args):
    r = residual_vector(blocks, points, params, args)
    return jnp.sum(r * r)


def block_losses(blocks, points, params, args):
    """Per-block mean square residuals (unweighted), for reporting."""
    return {
        b.name: jnp.mean(jax.vmap(b.residual, in_axes=(None, 0, None))(params, pts, args) ** 2)
        for b, pts in zip(blocks, points)
    }
