"""SIREN: sinusoidal representation networks (Sitzmann et al., NeurIPS 2020).

    h_0 = sin(ω0 · (W_0 x + b_0))
    h_k = sin(ω0 · (W_k h_{k-1} + b_k)),   k = 1 … depth
    f(x) = W_out h_depth + b_out

``depth`` counts the hidden layers after the first sine layer, as in the ICML 2023
paper: its 1D advection network "2 hidden layers of width 20" has
1·20+20 + 2·(20·20+20) + 20+1 = 901 parameters.

Initialisation (Sitzmann et al., Sec. 3.2): first layer W ~ U(−1/d_in, 1/d_in);
later layers W ~ U(−√(6/n)/ω0, √(6/n)/ω0); biases U(−1/√n, 1/√n) with n the
fan-in.  All randomness comes from the explicit ``key``.

``dtype`` is the parameters' float type: ``"float32"`` (the paper's, the default) or
``"float64"`` (for accuracy below float32 round-off, e.g. the heat2d and allen_cahn1d
benchmarks; JAX must run with ``jax_enable_x64`` on, else it would silently give float32).
"""

from __future__ import annotations

import math

import equinox as eqx
import jax
import jax.numpy as jnp

from insr.fastmath import fast_sin

DTYPES = ("float32", "float64")


def check_dtype(owner: str, dtype) -> str:
    """``dtype`` as one of :data:`DTYPES`; float64 only when JAX runs in 64-bit mode."""
    name = jnp.dtype(dtype).name if not isinstance(dtype, str) else dtype
    if name not in DTYPES:
        raise ValueError(f"{owner}: dtype must be one of {DTYPES}, got {dtype!r}")
    if name == "float64" and jax.dtypes.canonicalize_dtype(jnp.float64) != jnp.float64:
        raise ValueError(f"{owner}: dtype float64 needs 64-bit JAX: call jax.config.update('jax_enable_x64', "
                         "True) before building the field (the CLI does this when field.precision = float64)")
    return name


def _uniform(key, shape, bound, dtype):
    return jax.random.uniform(key, shape, minval=-bound, maxval=bound, dtype=dtype)


class Linear(eqx.Module):
    weight: jax.Array
    bias: jax.Array

    def __call__(self, x):
        return self.weight @ x + self.bias


class Siren(eqx.Module):
    """A SIREN field R^in_dim → R^out_dim evaluated at one point ``x`` of shape (in_dim,).

    Use ``jax.vmap`` to evaluate many points.  ``out_scale`` multiplies the output
    (useful when the field's magnitude is known, e.g. velocities of size 1/π).
    """

    layers: tuple[Linear, ...]
    omega0: float = eqx.field(static=True)
    in_dim: int = eqx.field(static=True)
    out_dim: int = eqx.field(static=True)
    width: int = eqx.field(static=True)
    depth: int = eqx.field(static=True)
    fast_sine: bool = eqx.field(static=True)
    dtype: str = eqx.field(static=True)

    def __init__(self, in_dim: int, out_dim: int, width: int, depth: int, *, key,
                 omega0: float = 30.0, fast_sine: bool = True, dtype: str = "float32"):
        for name, value in (("in_dim", in_dim), ("out_dim", out_dim), ("width", width)):
            if int(value) < 1:
                raise ValueError(f"Siren: {name} must be a positive integer, got {value!r}")
        if int(depth) < 0:
            raise ValueError(f"Siren: depth must be ≥ 0 hidden layers, got {depth!r}")
        if not omega0 > 0:
            raise ValueError(f"Siren: omega0 must be > 0, got {omega0!r}")
        self.dtype = check_dtype("Siren", dtype)
        if fast_sine and self.dtype == "float64":
            raise ValueError("Siren: fast_sine is a float32 polynomial; use fast_sine=False with dtype float64")
        self.in_dim, self.out_dim, self.width, self.depth = int(in_dim), int(out_dim), int(width), int(depth)
        self.omega0, self.fast_sine = float(omega0), bool(fast_sine)
        sizes = [self.in_dim] + [self.width] * (self.depth + 1) + [self.out_dim]
        keys = jax.random.split(key, 2 * (len(sizes) - 1))
        layers = []
        for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
            w_bound = 1.0 / n_in if i == 0 else math.sqrt(6.0 / n_in) / self.omega0
            layers.append(Linear(_uniform(keys[2 * i], (n_out, n_in), w_bound, self.dtype),
                                 _uniform(keys[2 * i + 1], (n_out,), 1.0 / math.sqrt(n_in), self.dtype)))
        self.layers = tuple(layers)

    def __call__(self, x):
        sin = fast_sin if self.fast_sine else jnp.sin
        h = x
        for layer in self.layers[:-1]:
            h = sin(self.omega0 * layer(h))
        return self.layers[-1](h)

    @property
    def num_params(self) -> int:
        return sum(l.weight.size + l.bias.size for l in self.layers)

    @property
    def state_bytes(self) -> int:
        """Bytes of state as the paper counts it: parameters × 4 (float32; × 8 for float64)."""
        return jnp.dtype(self.dtype).itemsize * self.num_params
