r"""Fourier-feature networks (Tancik et al., "Fourier features let networks learn high frequency
functions in low dimensional domains", NeurIPS 2020).

    γ(x) = [sin(2π B x), cos(2π B x)] ∈ R^{2m},   B ∈ R^{m×d} fixed (not trained)
    h_0 = tanh(W_0 γ(x) + b_0),   h_k = tanh(W_k h_{k−1} + b_k)  (k = 1 … depth)
    f(x) = W_out h_depth + b_out

The frequencies B (in cycles per unit of the field's input: of x, or of the cos/sin embedding
behind :class:`~insr.fields.Periodic`) come in two kinds:

- ``"gaussian"``: every entry drawn from N(0, σ²) (the paper's Gaussian mapping; σ sets the
  bandwidth the network fits easily: too small blurs, too large gives noisy fits);
- ``"axis"``: axis-aligned, log-spaced frequencies σ^{k/(n−1)}, k = 0 … n−1, along each
  axis (n = m/d per axis; the "positional encoding" of NeRF with the top frequency σ).

The activation is tanh, not ReLU: the PDE residuals differentiate the field in space, and a
ReLU network's second derivative is zero almost everywhere.  Initialisation: Glorot uniform
weights, zero biases; all randomness (B included) comes from the explicit ``key``.

``num_params`` counts the trained weights; ``state_bytes`` also counts B, which is needed
to evaluate the field (the same accounting as a grid's: every number stored).
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from insr.fields.mlp import glorot_tanh_layers, mlp_params, tanh_mlp
from insr.fields.siren import Linear, check_dtype

ENCODINGS = ("gaussian", "axis")


def fourier_frequencies(encoding: str, in_dim: int, features: int, sigma: float, key) -> np.ndarray:
    """The fixed frequency matrix B (features × in_dim) of the ``encoding``."""
    if encoding == "gaussian":
        # drawn in float32 whatever JAX's x64 mode: the same seed gives the same B everywhere
        return sigma * np.asarray(jax.random.normal(key, (features, in_dim), dtype=jnp.float32), np.float64)
    per_axis = features // in_dim
    scales = sigma ** (np.arange(per_axis) / max(per_axis - 1, 1)) if per_axis > 1 else np.array([sigma])
    rows = [np.eye(in_dim)[j] * s for j in range(in_dim) for s in scales]
    return np.asarray(rows, np.float64)


class FourierFeatures(eqx.Module):
    """A Fourier-feature MLP R^in_dim → R^out_dim at one point ``x`` of shape (in_dim,).

    ``features`` = m frequencies (for ``"axis"``, a multiple of ``in_dim``); ``sigma`` = the
    Gaussian standard deviation or the top axis frequency, in cycles per unit length;
    ``width``/``depth`` as for :class:`~insr.fields.Siren` (``depth`` hidden layers after the
    first).
    """

    layers: tuple[Linear, ...]
    frequencies: tuple[tuple[float, ...], ...] = eqx.field(static=True)  # B: fixed, so not a trained leaf
    in_dim: int = eqx.field(static=True)
    out_dim: int = eqx.field(static=True)
    width: int = eqx.field(static=True)
    depth: int = eqx.field(static=True)
    encoding: str = eqx.field(static=True)
    dtype: str = eqx.field(static=True)

    def __init__(self, in_dim: int, out_dim: int, width: int, depth: int, *, key, features: int = 32,
                 sigma: float = 1.0, encoding: str = "gaussian", dtype: str = "float32"):
        for name, value in (("in_dim", in_dim), ("out_dim", out_dim), ("width", width), ("features", features)):
            if int(value) < 1:
                raise ValueError(f"FourierFeatures: {name} must be a positive integer, got {value!r}")
        if int(depth) < 0:
            raise ValueError(f"FourierFeatures: depth must be ≥ 0 hidden layers, got {depth!r}")
        if not sigma > 0:
            raise ValueError(f"FourierFeatures: sigma must be > 0, got {sigma!r}")
        if encoding not in ENCODINGS:
            raise ValueError(f"FourierFeatures: encoding must be one of {ENCODINGS}, got {encoding!r}")
        if encoding == "axis" and int(features) % int(in_dim):
            raise ValueError(f"FourierFeatures: encoding 'axis' needs features to be a multiple of in_dim = "
                             f"{in_dim}, got {features!r}")
        self.dtype = check_dtype("FourierFeatures", dtype)
        self.in_dim, self.out_dim, self.width, self.depth = int(in_dim), int(out_dim), int(width), int(depth)
        self.encoding = encoding
        kb, kw = jax.random.split(key)
        b = fourier_frequencies(encoding, self.in_dim, int(features), float(sigma), kb)
        self.frequencies = tuple(tuple(float(v) for v in row) for row in b)
        sizes = [2 * b.shape[0]] + [self.width] * (self.depth + 1) + [self.out_dim]
        self.layers = glorot_tanh_layers(kw, sizes, self.dtype)

    def embed(self, x):
        """γ(x) = [sin(2πBx), cos(2πBx)]."""
        phase = 2 * jnp.pi * (jnp.asarray(self.frequencies, self.dtype) @ x)
        return jnp.concatenate([jnp.sin(phase), jnp.cos(phase)])

    def __call__(self, x):
        return tanh_mlp(self.layers, self.embed(x))

    @property
    def features(self) -> int:
        return len(self.frequencies)

    @property
    def num_params(self) -> int:
        return mlp_params(self.layers)

    @property
    def state_bytes(self) -> int:
        """Bytes needed to evaluate the field: the trained weights and the fixed frequencies B."""
        return jnp.dtype(self.dtype).itemsize * (self.num_params + self.features * self.in_dim)
