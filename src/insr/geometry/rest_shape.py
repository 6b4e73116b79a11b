"""The rest shape (reference configuration Ω₀) of an elastic body, :class:`RestShape`: a
box or a simplex mesh, with its output mesh and boundary facets, volume samplers, a fixed
quadrature for metrics and samplers on planar sections (for Dirichlet handles).  (Moved
here from :mod:`insr.elasticity.stepper`, which re-exports it.)
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from insr.geometry.domains import Box, Sampler
from insr.geometry.mesh import (
    SimplexMesh,
    boundary_facets,
    box_mesh,
    element_volumes,
    rectangle_mesh,
    sample_volume,
    volume_sampler,
)

__all__ = ["RestShape"]


class RestShape:
    """The reference configuration Ω₀: a box (sampled by :class:`~insr.geometry.Sampler`)
    or a simplex mesh (sampled uniformly by volume, :func:`~insr.geometry.mesh.volume_sampler`).

    ``mesh`` is always present: for a box it is a structured mesh used for output
    (images, ParaView files) and boundary vertices (contact gap metric).
    """

    def __init__(self, mesh: SimplexMesh, box: Box | None = None):
        if not isinstance(mesh, SimplexMesh):
            raise TypeError(f"mesh must be a SimplexMesh, got {type(mesh).__name__}")
        self.mesh, self.box = mesh, box
        self.dim = mesh.dim
        if box is not None:
            if box.dim != mesh.dim:
                raise ValueError("box and mesh dimensions differ")
            self.volume = box.volume
            self.lo, self.hi = np.asarray(box.lo), np.asarray(box.hi)
        else:
            self.volume = float(element_volumes(mesh).sum())
            self.lo, self.hi = mesh.points.min(0), mesh.points.max(0)
        self.boundary = boundary_facets(mesh)
        self.boundary_nodes = np.unique(self.boundary)

    @classmethod
    def from_box(cls, lo, hi, resolution: int | None = None) -> RestShape:
        """The box [lo, hi] (2D or 3D); ``resolution`` cells per axis of its output mesh
        (default 32 in 2D, 10 in 3D)."""
        box = Box(tuple(lo), tuple(hi))
        if box.dim == 2:
            mesh = rectangle_mesh(box.lo, box.hi, resolution or 32)
        elif box.dim == 3:
            mesh = box_mesh(box.lo, box.hi, resolution or 10)
        else:
            raise ValueError(f"rest shape must be 2D or 3D, got a {box.dim}D box")
        return cls(mesh, box)

    @classmethod
    def from_mesh(cls, mesh: SimplexMesh) -> RestShape:
        return cls(mesh)

    def sampler(self, n: int, method: str = "uniform"):
        """``key -> (n, d)`` float32 points, uniform by volume."""
        if self.box is not None:
            return Sampler(self.box, int(n), method)
        if method != "uniform":
            raise ValueError(f"mesh rest shapes are sampled 'uniform' only, got sampling {method!r}")
        vs = volume_sampler(self.mesh, int(n))
        return lambda key: vs(key)[0].astype(jnp.float32)

    def quadrature(self, n: int = 4096) -> np.ndarray:
        """Fixed points with equal weights V/len(points) for metrics: cell centres of a grid
        with about ``n`` cells (box), or ``n`` uniform samples with seed 0 (mesh)."""
        if self.box is not None:
            k = max(2, int(round(n ** (1.0 / self.dim))))
            axes = [lo + (np.arange(k) + 0.5) * (hi - lo) / k for lo, hi in zip(self.box.lo, self.box.hi)]
            return np.stack(np.meshgrid(*axes, indexing="ij"), -1).reshape(-1, self.dim).astype(np.float32)
        pts, _ = sample_volume(self.mesh, np.random.default_rng(0), n)
        return pts.astype(np.float32)

    def section_sampler(self, axis: int, position: float, n: int):
        """Uniform points on the handle section {X ∈ Ω₀ : X_axis = position}; returns
        ``(sampler key -> (n, d), area |Γ|)``.  Box: the full cross-section.  Mesh: the
        boundary facets lying in the plane (within 1e-6 of the extent)."""
        d, n = self.dim, int(n)
        if not 0 <= axis < d:
            raise ValueError(f"handle axis must be in [0, {d}), got {axis}")
        if self.box is not None:
            lo, hi = np.asarray(self.box.lo), np.asarray(self.box.hi)
            if not lo[axis] <= position <= hi[axis]:
                raise ValueError(f"handle plane X_{axis} = {position} misses the rest box "
                                 f"[{lo[axis]}, {hi[axis]}]")
            area = float(np.prod(np.delete(hi - lo, axis)))
            lo_j, ext = jnp.asarray(lo, jnp.float32), jnp.asarray(hi - lo, jnp.float32)
            mask = jnp.arange(d) == axis

            def sample(key):
                u = lo_j + jax.random.uniform(key, (n, d)) * ext
                return jnp.where(mask, jnp.float32(position), u)

            return sample, area
        P = self.mesh.points
        tol = 1e-6 * float(np.max(self.hi - self.lo))
        fac = self.boundary[np.all(np.abs(P[self.boundary][..., axis] - position) <= tol, axis=1)]
        if fac.shape[0] == 0:
            raise ValueError(f"no boundary facet of the mesh lies in the handle plane X_{axis} = {position}")
        V = P[fac]  # (k, d, d)
        if d == 2:
            sizes = np.linalg.norm(V[:, 1] - V[:, 0], axis=1)
        else:
            sizes = 0.5 * np.linalg.norm(np.cross(V[:, 1] - V[:, 0], V[:, 2] - V[:, 0]), axis=1)
        area = float(sizes.sum())
        cdf = jnp.asarray(np.cumsum(sizes) / area, jnp.float32)
        corners = jnp.asarray(V, jnp.float32)

        def sample(key):
            k1, k2 = jax.random.split(key)
            idx = jnp.clip(jnp.searchsorted(cdf, jax.random.uniform(k1, (n,)), side="right"), 0, V.shape[0] - 1)
            e = jax.random.exponential(k2, (n, d))
            bary = e / jnp.sum(e, axis=1, keepdims=True)
            return jnp.einsum("nk,nkd->nd", bary, corners[idx]).at[:, axis].set(position)

        return sample, area
