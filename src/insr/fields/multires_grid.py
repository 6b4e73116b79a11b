r"""Multiresolution grid encoding + a small MLP (after Müller et al., "Instant neural graphics
primitives with a multiresolution hash encoding", SIGGRAPH 2022), differentiable twice.

    x ∈ box  →  u = (x − lo)/(hi − lo) ∈ [0, 1]^d
    level l = 0 … L−1:  N_l = ⌊N_0·b^l⌋ cells per axis, a table of F-vectors at the
                        (N_l + 1)^d grid nodes (dense), or at T slots indexed by the spatial
                        hash  h(i) = (⊕_k i_k·π_k) mod T  once (N_l + 1)^d > T
    e_l(x) = Σ_{nodes i near x} w_i(x)·table_l[i]      (interpolation, below)
    f(x)   = MLP([e_0(x), …, e_{L−1}(x)])              (tanh hidden layers, linear output)

Interpolation: ``"cubic"`` (default) is the tensor-product Catmull–Rom spline over the 4^d
nearest nodes (indices clamped at the box's faces): C¹ across cells and exact for fields
linear in x, so the residual of a first-order PDE is continuous and a second derivative
exists between nodes.  ``"linear"`` is the original d-linear interpolation over 2^d nodes
(C⁰: its gradient jumps at every cell face and its second derivative is zero inside the
cells — fine for fitting, poor for PDE residuals).  π = (1, 2654435761, 805459861), the
primes of the paper.  The tables start uniform in ±1e-4 and the MLP Glorot-uniform, as in
the paper, all from the explicit ``key``.

Trained parameters are the tables and the MLP; ``num_params`` counts both and
``state_bytes`` = 4 (or 8) × ``num_params``: every number the field stores.  A hashed level
shares slots between nodes (collisions), which the MLP and the other levels disambiguate.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from insr.fields.mlp import glorot_tanh_layers, mlp_params, tanh_mlp
from insr.fields.siren import Linear, check_dtype
from insr.geometry.domains import clamp

INTERPOLATIONS = ("cubic", "linear")
_PRIMES = (1, 2654435761, 805459861)


def level_resolutions(levels: int, base: int, growth: float) -> tuple[int, ...]:
    """N_l = ⌊base·growth^l⌋ cells per axis, l = 0 … levels−1."""
    return tuple(int(math.floor(base * growth**level)) for level in range(levels))


def multires_param_count(in_dim: int, out_dim: int, width: int, depth: int, *, levels: int = 8, features: int = 2,
                         base: int = 4, growth: float = 1.5, table_size: int = 4096) -> int:
    """Parameters of :class:`MultiresGrid` with these settings (tables + MLP), without building it."""
    tables = sum(min((n + 1) ** in_dim, table_size) * features for n in level_resolutions(levels, base, growth))
    sizes = [levels * features] + [width] * (depth + 1) + [out_dim]
    return tables + sum(a * b + b for a, b in zip(sizes[:-1], sizes[1:]))


def _catmull_rom(t):
    """Weights of the nodes i−1, i, i+1, i+2 at the fraction t ∈ [0, 1) of cell [i, i+1]."""
    t2, t3 = t * t, t * t * t
    return (0.5 * (-t3 + 2 * t2 - t), 0.5 * (3 * t3 - 5 * t2 + 2), 0.5 * (-3 * t3 + 4 * t2 + t), 0.5 * (t3 - t2))


class MultiresGrid(eqx.Module):
    """A multiresolution grid field R^in_dim → R^out_dim on the box [lo, hi] at one point x.

    ``levels`` L, ``features`` F per level, ``base`` N_0 cells per axis on the coarsest level,
    ``growth`` b between levels, ``table_size`` T (a level with more nodes is hashed), an MLP
    of ``depth`` hidden layers of ``width`` (tanh) after the encoding.  ``interpolation``:
    ``"cubic"`` or ``"linear"`` (module docstring).  Points outside the box are clamped to it.
    """

    tables: tuple[jax.Array, ...]
    layers: tuple[Linear, ...]
    resolutions: tuple[int, ...] = eqx.field(static=True)
    hashed: tuple[bool, ...] = eqx.field(static=True)
    lo: tuple[float, ...] = eqx.field(static=True)
    hi: tuple[float, ...] = eqx.field(static=True)
    in_dim: int = eqx.field(static=True)
    out_dim: int = eqx.field(static=True)
    width: int = eqx.field(static=True)
    depth: int = eqx.field(static=True)
    interpolation: str = eqx.field(static=True)
    dtype: str = eqx.field(static=True)

    def __init__(self, in_dim: int, out_dim: int, width: int, depth: int, *, key, lo: Sequence[float],
                 hi: Sequence[float], levels: int = 8, features: int = 2, base: int = 4, growth: float = 1.5,
                 table_size: int = 4096, interpolation: str = "cubic", dtype: str = "float32"):
        for name, value in (("in_dim", in_dim), ("out_dim", out_dim), ("width", width), ("levels", levels),
                            ("features", features), ("base", base), ("table_size", table_size)):
            if int(value) < 1:
                raise ValueError(f"MultiresGrid: {name} must be a positive integer, got {value!r}")
        if int(in_dim) > len(_PRIMES):
            raise ValueError(f"MultiresGrid: in_dim must be ≤ {len(_PRIMES)}, got {in_dim!r}")
        if int(depth) < 0:
            raise ValueError(f"MultiresGrid: depth must be ≥ 0 hidden layers, got {depth!r}")
        if not growth >= 1:
            raise ValueError(f"MultiresGrid: growth must be ≥ 1, got {growth!r}")
        if interpolation not in INTERPOLATIONS:
            raise ValueError(f"MultiresGrid: interpolation must be one of {INTERPOLATIONS}, got {interpolation!r}")
        lo, hi = tuple(float(v) for v in lo), tuple(float(v) for v in hi)
        if len(lo) != int(in_dim) or len(hi) != int(in_dim) or any(not h > l for l, h in zip(lo, hi)):
            raise ValueError(f"MultiresGrid: lo and hi must be {in_dim} numbers with lo < hi, got {lo}, {hi}")
        self.dtype = check_dtype("MultiresGrid", dtype)
        self.in_dim, self.out_dim, self.width, self.depth = int(in_dim), int(out_dim), int(width), int(depth)
        self.lo, self.hi, self.interpolation = lo, hi, interpolation
        self.resolutions = level_resolutions(int(levels), int(base), float(growth))
        nodes = [(n + 1) ** self.in_dim for n in self.resolutions]
        self.hashed = tuple(m > int(table_size) for m in nodes)
        kt, kw = jax.random.split(key)
        tkeys = jax.random.split(kt, len(nodes))
        self.tables = tuple(
            jax.random.uniform(k, (min(m, int(table_size)), int(features)), minval=-1e-4, maxval=1e-4,
                               dtype=self.dtype)
            for k, m in zip(tkeys, nodes))
        sizes = [len(nodes) * int(features)] + [self.width] * (self.depth + 1) + [self.out_dim]
        self.layers = glorot_tanh_layers(kw, sizes, self.dtype)

    def _index(self, level: int, idx):
        """Table rows of integer node coordinates ``idx`` (..., d) on ``level``."""
        n1 = self.resolutions[level] + 1
        if not self.hashed[level]:
            strides = jnp.asarray([n1**k for k in range(self.in_dim)], jnp.int32)
            return jnp.sum(idx * strides, axis=-1)
        h = jnp.zeros(idx.shape[:-1], jnp.uint32)
        for k in range(self.in_dim):
            h = h ^ (idx[..., k].astype(jnp.uint32) * jnp.uint32(_PRIMES[k]))
        return (h % jnp.uint32(self.tables[level].shape[0])).astype(jnp.int32)

    def _level(self, level: int, u):
        """e_l at the unit-box point u (d,)."""
        n = self.resolutions[level]
        p = u * n
        cell = jnp.clip(jnp.floor(p), 0, n - 1)
        t = p - cell  # in [0, 1]; t = 1 only on the upper face
        cell = cell.astype(jnp.int32)
        if self.interpolation == "linear":
            offsets, weights = (0, 1), [(1 - t, t)]
        else:
            offsets, weights = (-1, 0, 1, 2), [_catmull_rom(t)]
        w_axis = [jnp.stack(weights[0])[:, k] for k in range(self.in_dim)]  # (len(offsets),) per axis
        corners = np.asarray(list(itertools.product(range(len(offsets)), repeat=self.in_dim)))  # (C, d)
        idx = jnp.clip(cell[None, :] + jnp.asarray(np.asarray(offsets)[corners], jnp.int32), 0, n)
        w = jnp.prod(jnp.stack([w_axis[k][corners[:, k]] for k in range(self.in_dim)], axis=-1), axis=-1)
        rows = self.tables[level][self._index(level, idx)]  # (C, F)
        return w @ rows

    def encode(self, x):
        lo, hi = jnp.asarray(self.lo, x.dtype), jnp.asarray(self.hi, x.dtype)
        u = clamp((x - lo) / (hi - lo), 0.0, 1.0)  # not jnp.clip: its derivative is 1/2 on the box's faces
        return jnp.concatenate([self._level(level, u) for level in range(len(self.resolutions))])

    def __call__(self, x):
        return tanh_mlp(self.layers, self.encode(x))

    @property
    def num_params(self) -> int:
        return sum(t.size for t in self.tables) + mlp_params(self.layers)

    @property
    def state_bytes(self) -> int:
        """Bytes of every stored number: the tables and the MLP."""
        return jnp.dtype(self.dtype).itemsize * self.num_params
