"""Axis-aligned domains and point sampling inside them and on their boundary.

All samplers are pure functions of an explicit PRNG key, jit-able, and return
float32 arrays of shape (n, d).
"""

from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np
from scipy.stats import qmc

SAMPLING_METHODS = ("uniform", "stratified", "jittered", "sobol", "halton")


def clamp(x, lo, hi):
    """min(max(x, lo), hi) whose derivative is 1 on [lo, hi] *including* its ends (0 outside).

    ``jnp.clip`` splits a tie and gives 1/2 at x = lo or x = hi, so anything differentiated
    through it is wrong on the boundary itself: a Taylor–Green back-trace from a sample point
    exactly on the wall (``jax.random.uniform`` returns 0 about once in 10⁷ draws) had its
    ∇·ũ at −9.06 instead of −0.318, one Poisson residual of 8.6 against ≈ 0.03 elsewhere, and
    the solve of that step failed (its loss 6.5e-2 → 5.4e-2 instead of ≈ 1e-3 → 2e-6)."""
    return jnp.where(x < lo, lo, jnp.where(x > hi, hi, x))


@dataclass(frozen=True)
class Box:
    """The box [lo_0, hi_0] × … × [lo_{d-1}, hi_{d-1}]."""

    lo: tuple[float, ...]
    hi: tuple[float, ...]

    def __post_init__(self):
        lo, hi = tuple(float(v) for v in self.lo), tuple(float(v) for v in self.hi)
        if len(lo) != len(hi) or len(lo) == 0:
            raise ValueError(f"Box: lo and hi need the same positive length, got {lo} and {hi}")
        if any(not h > l for l, h in zip(lo, hi)):
            raise ValueError(f"Box: need lo < hi in every dimension, got lo={lo}, hi={hi}")
        object.__setattr__(self, "lo", lo)
        object.__setattr__(self, "hi", hi)

    @property
    def dim(self) -> int:
        return len(self.lo)

    @property
    def volume(self) -> float:
        return float(np.prod(np.subtract(self.hi, self.lo)))

    @property
    def boundary_measure(self) -> float:
        """Total area of the faces (perimeter in 2D); in 1D the number of end points, 2."""
        if self.dim == 1:
            return 2.0
        lengths = np.subtract(self.hi, self.lo)
        return float(2 * sum(np.prod(np.delete(lengths, i)) for i in range(self.dim)))

    def matching_boundary_samples(self, n_interior: int) -> int:
        """Boundary points at the spacing of ``n_interior`` uniform interior points:
        h = (volume / n)^(1/d), then ⌈boundary measure / h^(d−1)⌉ (2 in 1D: the ends).
        E.g. 1,000 points in the unit square → 127 on its perimeter."""
        if self.dim == 1:
            return 2
        h = (self.volume / max(int(n_interior), 1)) ** (1.0 / self.dim)
        return max(2 * self.dim, int(np.ceil(self.boundary_measure / h ** (self.dim - 1))))

    def to_box(self, unit):
        """Map points of [0, 1]^d to the box."""
        lo, hi = jnp.asarray(self.lo, jnp.float32), jnp.asarray(self.hi, jnp.float32)
        return lo + unit * (hi - lo)

    def grid(self, n: int) -> np.ndarray:
        """n points per axis including the ends, as an (n^d, d) array (evaluation grids)."""
        axes = [np.linspace(l, h, n) for l, h in zip(self.lo, self.hi)]
        mesh = np.meshgrid(*axes, indexing="ij")
        return np.stack([m.ravel() for m in mesh], axis=-1).astype(np.float32)

    def cell_centres(self, n: int) -> np.ndarray:
        """The centres of the n^d equal cells of the box, as an (n^d, d) float32 array in
        row-major [i0, i1, …] order (evaluation points that avoid the walls)."""
        axes = [lo + (np.arange(n) + 0.5) * (hi - lo) / n for lo, hi in zip(self.lo, self.hi)]
        mesh = np.meshgrid(*axes, indexing="ij")
        return np.stack([m.ravel() for m in mesh], axis=-1).astype(np.float32)

    def contains(self, x, tol: float = 0.0):
        lo, hi = jnp.asarray(self.lo), jnp.asarray(self.hi)
        return jnp.all((x >= lo - tol) & (x <= hi + tol), axis=-1)

    def clamp(self, x, margin: float = 0.0):
        """The nearest point of the box grown by ``margin`` on every side; derivative 1 inside and
        on its faces (:func:`clamp`)."""
        return clamp(x, jnp.asarray(self.lo, x.dtype) - margin, jnp.asarray(self.hi, x.dtype) + margin)

    def boundary_points(self, key, n: int):
        """n points uniform on the boundary (in 1D: the two end points, alternating)."""
        d = self.dim
        if d == 1:
            ends = jnp.asarray([[self.lo[0]], [self.hi[0]]], jnp.float32)
            return jnp.tile(ends, (n // 2 + 1, 1))[:n]
        lengths = np.subtract(self.hi, self.lo)
        # Face areas: for each axis, two faces of area Π_{j≠i} L_j.
        face_area = np.array([np.prod(np.delete(lengths, i)) for i in range(d)])
        probs = np.repeat(face_area, 2) / (2 * face_area.sum())
        k_face, k_pts = jax.random.split(key)
        face = jax.random.choice(k_face, 2 * d, (n,), p=jnp.asarray(probs))
        unit = jax.random.uniform(k_pts, (n, d))
        axis, side = face // 2, (face % 2).astype(jnp.float32)
        unit = jnp.where(jnp.arange(d)[None, :] == axis[:, None], side[:, None], unit)
        return self.to_box(unit)


def Interval(lo: float, hi: float) -> Box:
    """The interval [lo, hi] as a one-dimensional Box."""
    return Box((lo,), (hi,))


@dataclass(frozen=True)
class Sampler:
    """Draws n points in a box by one of ``SAMPLING_METHODS``.

    - ``uniform``: i.i.d. uniform.
    - ``stratified``: in 1D one jittered point per equal cell; in d > 1 a Latin
      hypercube (each axis stratified into n cells).
    - ``jittered``: a jittered grid. The box is cut into m^d equal cells with
      m = ⌈n^(1/d)⌉; n distinct cells are drawn at random and one uniform point is
      placed in each. Every point is uniform on the box (unbiased for the same equal
      weights), but no cell holds two: the variance of a smooth integrand's mean falls
      as n^(-1-2/d) instead of i.i.d.'s n^(-1) (Owen, "Monte Carlo theory, methods and
      examples", ch. 10). In 1D with n = m it is ``stratified``.
    - ``sobol`` / ``halton``: a scrambled low-discrepancy set (fixed at construction),
      moved by a random shift modulo 1 for each key (Cranley–Patterson rotation),
      so each step still sees new points.
    """

    domain: Box
    n: int
    method: str = "uniform"

    def __post_init__(self):
        if self.method not in SAMPLING_METHODS:
            raise ValueError(f"sampling method must be one of {SAMPLING_METHODS}, got {self.method!r}")
        if int(self.n) < 1:
            raise ValueError(f"number of samples must be ≥ 1, got {self.n!r}")
        if self.method in ("sobol", "halton"):
            engine = (qmc.Sobol if self.method == "sobol" else qmc.Halton)(d=self.domain.dim, scramble=True, seed=0)
            # Sobol warns for n not a power of two; drawing the next power and keeping n is fine.
            m = int(np.ceil(np.log2(max(self.n, 2))))
            base = engine.random_base2(m)[: self.n] if self.method == "sobol" else engine.random(self.n)
            object.__setattr__(self, "_base", np.asarray(base, np.float32))

    def __hash__(self):
        return hash((self.domain, self.n, self.method))

    def __eq__(self, other):
        return isinstance(other, Sampler) and ((self.domain, self.n, self.method)
                                               == (other.domain, other.n, other.method))

    def __call__(self, key):
        d, n = self.domain.dim, self.n
        if self.method == "uniform":
            unit = jax.random.uniform(key, (n, d))
        elif self.method == "stratified":
            k_jit, k_perm = jax.random.split(key)
            jitter = jax.random.uniform(k_jit, (n, d))
            cells = jnp.arange(n, dtype=jnp.float32)[:, None]
            if d == 1:
                unit = (cells + jitter) / n
            else:
                perms = jax.vmap(lambda k: jax.random.permutation(k, n))(jax.random.split(k_perm, d)).T
                unit = (perms.astype(jnp.float32) + jitter) / n
        elif self.method == "jittered":
            m = int(np.ceil(self.n ** (1.0 / d) - 1e-9))
            m += int(m**d < self.n)  # guard the rounding of the root
            k_cell, k_jit = jax.random.split(key)
            cell = jax.random.permutation(k_cell, m**d)[:n] if m**d > n else jnp.arange(n)
            # cell index -> its d grid coordinates (mixed radix m)
            coords = jnp.stack([(cell // m**i) % m for i in range(d)], axis=1).astype(jnp.float32)
            unit = (coords + jax.random.uniform(k_jit, (n, d))) / m
        else:
            shift = jax.random.uniform(key, (1, d))
            unit = jnp.mod(jnp.asarray(self._base) + shift, 1.0)
        return self.domain.to_box(unit)
