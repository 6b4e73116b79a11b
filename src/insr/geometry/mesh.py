r"""Simplex meshes (triangles in 2D, tetrahedra in 3D) for rest shapes.

A :class:`SimplexMesh` is the rest configuration of an elastic body: the neural solver
samples points inside it (:func:`sample_volume`, :func:`volume_sampler`), the FEM
reference (:mod:`insr.reference.fem_elastic`) uses it directly, renderers use
:func:`boundary_facets`, and :func:`interpolate_p1` evaluates nodal fields at arbitrary
rest points so that solutions on different meshes (or a neural field) can be compared on
a common point set.

Meshes come from files (:func:`load_mesh`: Medit ``.mesh``, Gmsh ``.msh``, VTK ``.vtu`` and
anything else meshio reads), from code (:func:`rectangle_mesh`, :func:`box_mesh`,
:func:`implicit_mesh`, :func:`bunny_like_mesh`) or from a closed triangle surface with the
optional ``tetgen`` package (:func:`tetrahedralize_surface`); :func:`refine_uniform` splits
every element of a mesh into 2^d (the same shape, finer: for converged references). Every constructor runs
:func:`validate_mesh`, which raises :class:`MeshError` (a ``ValueError``) with the offending
element/point indices for: indices out of range, non-finite points, unused points,
degenerate elements, duplicated elements and non-manifold facets.

Inverted elements (negative signed volume: vertices listed clockwise in 2D /
left-handed in 3D) are **rejected** by default with a :class:`MeshOrientationError`
naming the count and the first indices: mixed orientation within a file often signals a
broken exporter.  At rest such an element is only a vertex-order matter -- the rest
shape itself *defines* the reference configuration and ``F = D_s D_m^{-1}`` does not
depend on the order -- so ``fix_orientation=True`` (config key
``geometry.fix_orientation = true`` of the elasticity scenarios) repairs them by swapping
the last two vertices and logs one line (logger ``insr.geometry.mesh``, level WARNING)
with the count and the first indices.  After validation every element has positive
signed volume, which :func:`boundary_facets` and the FEM rely on.
"""

from __future__ import annotations

import dataclasses
import itertools
import logging
import math
import os
from collections.abc import Callable

import numpy as np

__all__ = [
    "MeshError",
    "MeshFileNotFoundError",
    "MeshOrientationError",
    "SimplexMesh",
    "boundary_facets",
    "box_mesh",
    "bunny_like_mesh",
    "bunny_like_sdf",
    "element_volumes",
    "implicit_mesh",
    "interpolate_p1",
    "load_mesh",
    "locate_points",
    "rectangle_mesh",
    "sample_volume",
    "save_mesh",
    "signed_volumes",
    "tetrahedralize_surface",
    "validate_mesh",
    "volume_sampler",
]

_CELL_TYPE = {2: "triangle", 3: "tetra"}
_MAX_LISTED = 5

log = logging.getLogger(__name__)


class MeshError(ValueError):
    """A mesh file or array that cannot be used as a rest shape."""


class MeshFileNotFoundError(MeshError, FileNotFoundError):
    """The mesh file does not exist (both a :class:`MeshError` and a ``FileNotFoundError``)."""


class MeshOrientationError(MeshError):
    """Elements with negative orientation (inverted) and ``fix_orientation=False``.

    ``count`` is their number, ``elements`` their indices, ``total`` the number of elements.
    """

    def __init__(self, elements, total: int, hint: str = "pass fix_orientation=True to reorder them"):
        self.elements = np.asarray(elements, dtype=np.int64)
        self.count, self.total = int(self.elements.size), int(total)
        super().__init__(
            f"{self.count} of {self.total} element(s) are inverted (negative orientation): elements "
            f"{_first(self.elements)}; {hint}"
        )


def _first(indices, k: int = _MAX_LISTED) -> str:
    idx = [int(i) for i in np.asarray(indices).ravel()[:k]]
    more = "" if np.asarray(indices).size <= k else ", ..."
    return "[" + ", ".join(map(str, idx)) + more + "]"


@dataclasses.dataclass(frozen=True, eq=False)
class SimplexMesh:
    """Rest shape: ``points`` ``(n, d)`` float64 and ``cells`` ``(m, d + 1)`` int64 (P1
    triangles for ``d = 2``, tetrahedra for ``d = 3``). Construct through
    :func:`validate_mesh` (or any loader/generator here) to get the guarantees listed in
    the module docstring; the constructor itself only checks shapes and dtypes."""

    points: np.ndarray
    cells: np.ndarray

    def __post_init__(self):
        pts = np.array(self.points, dtype=np.float64, copy=True)
        cls = np.asarray(self.cells)
        if pts.ndim != 2 or pts.shape[1] not in (2, 3):
            raise MeshError(f"points must have shape (n, 2) or (n, 3), got {pts.shape}")
        d = pts.shape[1]
        if cls.ndim != 2 or cls.shape[1] != d + 1:
            raise MeshError(
                f"cells must have shape (m, {d + 1}) for {d}D points "
                f"({_CELL_TYPE[d]}), got {cls.shape}"
            )
        if cls.size and not np.issubdtype(cls.dtype, np.integer):
            if not np.all(np.equal(np.mod(cls, 1), 0)):
                raise MeshError("cells must contain integer vertex indices")
        cls = np.array(cls, dtype=np.int64, copy=True)
        pts.setflags(write=False)
        cls.setflags(write=False)
        object.__setattr__(self, "points", pts)
        object.__setattr__(self, "cells", cls)

    @property
    def dim(self) -> int:
        return int(self.points.shape[1])

    @property
    def n_points(self) -> int:
        return int(self.points.shape[0])

    @property
    def n_cells(self) -> int:
        return int(self.cells.shape[0])

    @property
    def cell_type(self) -> str:
        """meshio name of the cell type: ``"triangle"`` or ``"tetra"``."""
        return _CELL_TYPE[self.dim]

    def __repr__(self) -> str:
        return f"SimplexMesh(dim={self.dim}, n_points={self.n_points}, n_cells={self.n_cells})"


# --------------------------------------------------------------------------------------
# geometry of elements
# --------------------------------------------------------------------------------------
def _edge_matrices(points, cells):
    """``D_m`` with columns ``X_k - X_0`` (k = 1..d): shape ``(m, d, d)``."""
    X = points[cells]
    return np.swapaxes(X[:, 1:, :] - X[:, :1, :], 1, 2)


def signed_volumes(points, cells) -> np.ndarray:
    """Signed element volumes ``det(D_m) / d!`` (positive for counter-clockwise triangles
    and right-handed tetrahedra)."""
    points = np.asarray(points, dtype=np.float64)
    cells = np.asarray(cells, dtype=np.int64)
    d = points.shape[1]
    if cells.shape[0] == 0:
        return np.zeros(0)
    return np.linalg.det(_edge_matrices(points, cells)) / math.factorial(d)


def element_volumes(mesh: SimplexMesh) -> np.ndarray:
    """Element areas (2D) or volumes (3D), shape ``(m,)``, non-negative."""
    return np.abs(signed_volumes(mesh.points, mesh.cells))


def _longest_edges(points, cells) -> np.ndarray:
    X = points[cells]
    k = cells.shape[1]
    out = np.zeros(cells.shape[0])
    for a, b in itertools.combinations(range(k), 2):
        out = np.maximum(out, np.linalg.norm(X[:, a] - X[:, b], axis=1))
    return out


def _facets(cells) -> np.ndarray:
    """All facets ``(m, d + 1, d)``; local facet ``i`` is the one opposite vertex ``i``."""
    k = cells.shape[1]
    idx = [[j for j in range(k) if j != i] for i in range(k)]
    return cells[:, idx]


def _facet_table(cells):
    """Unique sorted facets, per-(cell, local facet) inverse index and counts."""
    fac = _facets(cells)
    m, k, _ = fac.shape
    keys = np.sort(fac.reshape(m * k, -1), axis=1)
    uniq, inverse, counts = np.unique(keys, axis=0, return_inverse=True, return_counts=True)
    return uniq, inverse.reshape(m, k), counts


# --------------------------------------------------------------------------------------
# validation
# --------------------------------------------------------------------------------------
def validate_mesh(
    mesh: SimplexMesh,
    *,
    fix_orientation: bool = False,
    remove_unused_points: bool = False,
    degenerate_rtol: float = 1e-8,
) -> SimplexMesh:
    """Check a mesh and return a (possibly reordered / compacted) valid copy.

    Raises :class:`MeshError` naming the first offending indices for:

    - no cells, or vertex indices out of range;
    - non-finite point coordinates (NaN / inf);
    - points not used by any cell (or drops them with ``remove_unused_points=True``);
    - degenerate elements: ``|volume| <= degenerate_rtol * (longest edge)^d``, i.e. small
      relative to the element's own size (catches collapsed elements and slivers in
      graded meshes alike);
    - duplicated elements (same vertex set twice);
    - non-manifold facets: a facet shared by more than two elements.

    Elements with negative signed volume are rejected with :class:`MeshOrientationError`
    (default), or reordered with ``fix_orientation=True``, which logs one WARNING line on
    the ``insr.geometry.mesh`` logger (see the module docstring for why reordering is safe).
    """
    pts, cells = mesh.points, mesh.cells
    d = mesh.dim
    n = pts.shape[0]
    if cells.shape[0] == 0:
        raise MeshError(f"mesh has no {_CELL_TYPE[d]} cells")
    bad = np.flatnonzero((cells < 0).any(1) | (cells >= n).any(1))
    if bad.size:
        raise MeshError(
            f"{bad.size} element(s) reference vertex indices outside [0, {n}): "
            f"elements {_first(bad)}"
        )
    nonfinite = np.flatnonzero(~np.isfinite(pts).all(axis=1))
    if nonfinite.size:
        raise MeshError(
            f"{nonfinite.size} point(s) have non-finite (NaN/inf) coordinates: "
            f"points {_first(nonfinite)}"
        )
    used = np.zeros(n, dtype=bool)
    used[cells.ravel()] = True
    unused = np.flatnonzero(~used)
    if unused.size:
        if not remove_unused_points:
            raise MeshError(
                f"{unused.size} point(s) are not used by any {_CELL_TYPE[d]}: points "
                f"{_first(unused)} (pass remove_unused_points=True to drop them)"
            )
        remap = -np.ones(n, dtype=np.int64)
        remap[used] = np.arange(int(used.sum()))
        pts = pts[used]
        cells = remap[cells]

    vol = signed_volumes(pts, cells)
    size = _longest_edges(pts, cells) ** d
    degenerate = np.flatnonzero(np.abs(vol) <= degenerate_rtol * size)
    if degenerate.size:
        raise MeshError(
            f"{degenerate.size} degenerate element(s) (|volume| <= {degenerate_rtol:g} x "
            f"longest edge^{d}): elements {_first(degenerate)}"
        )
    inverted = np.flatnonzero(vol < 0)
    if inverted.size:
        if not fix_orientation:
            raise MeshOrientationError(inverted, cells.shape[0])
        log.warning(
            "mesh: %d of %d element(s) had negative orientation and were reordered "
            "(last two vertices swapped): elements %s",
            inverted.size, cells.shape[0], _first(inverted),
        )
        cells = cells.copy()
        cells[inverted, -2], cells[inverted, -1] = (
            cells[inverted, -1].copy(),
            cells[inverted, -2].copy(),
        )

    _, dinv, dcounts = np.unique(
        np.sort(cells, axis=1), axis=0, return_inverse=True, return_counts=True
    )
    dup_rows = np.flatnonzero(dcounts[dinv.ravel()] > 1)
    if dup_rows.size:
        raise MeshError(
            f"{int((dcounts > 1).sum())} element(s) are duplicated (same vertices): "
            f"elements {_first(dup_rows)}"
        )
    _, inv, fcounts = _facet_table(cells)
    nm = np.flatnonzero(fcounts > 2)
    if nm.size:
        bad_cells = np.flatnonzero(np.isin(inv, nm).any(axis=1))
        raise MeshError(
            f"non-manifold mesh: {nm.size} facet(s) shared by more than two elements "
            f"(elements {_first(bad_cells)})"
        )
    return SimplexMesh(pts, cells)


# --------------------------------------------------------------------------------------
# I/O
# --------------------------------------------------------------------------------------
def _cells_by_type(m) -> dict:
    out: dict = {}
    for block in m.cells:
        out.setdefault(block.type, []).append(np.asarray(block.data))
    return {k: np.concatenate(v, axis=0) for k, v in out.items()}


def _meshio_read(path: str, what: str):
    """``meshio.read`` with every failure turned into a :class:`MeshError`. meshio prints
    reader errors and calls ``sys.exit(1)`` when no reader succeeds, so ``SystemExit`` is
    caught too and the printed text is folded into the message."""
    import contextlib
    import io

    import meshio

    if os.path.isfile(path) and os.path.getsize(path) == 0:
        raise MeshError(f"{what} file {path!r} is empty: it holds no points and no cells")
    buf = io.StringIO()
    try:
        with contextlib.redirect_stdout(buf), contextlib.redirect_stderr(buf):
            return meshio.read(path)
    except (Exception, SystemExit) as exc:
        if isinstance(exc, ValueError) and "need at least one array to concatenate" in str(exc):
            # what meshio's readers (e.g. the ANSYS one for .msh) raise on a file without any
            # point or cell section
            raise MeshError(f"{what} file {path!r} holds no points or cells that meshio could read "
                            "(is it empty or truncated?)") from None
        detail = " ".join(buf.getvalue().split()) or f"{type(exc).__name__}: {exc}"
        raise MeshError(f"could not read {what} file {path!r}: {detail}") from None


def load_mesh(
    path,
    *,
    dim: int | None = None,
    fix_orientation: bool = False,
    remove_unused_points: bool = False,
) -> SimplexMesh:
    """Read a tetrahedral (3D) or triangle (2D) mesh with meshio and validate it.

    Formats: anything meshio reads, e.g. Medit ``.mesh``, Gmsh ``.msh``, VTK ``.vtu``.
    If the file has tetrahedra they are used (lower-dimensional cells such as boundary
    triangles are ignored); otherwise triangles, whose points must be 2D or have an
    all-zero z column (dropped). ``dim`` (2 or 3) forces the expected dimension.
    ``fix_orientation`` / ``remove_unused_points``: see :func:`validate_mesh`.

    Raises :class:`MeshFileNotFoundError` if the file is missing and :class:`MeshError`
    if it cannot be parsed, has no usable cells (the message lists the cell types found),
    is a 3D triangle surface, or fails :func:`validate_mesh`.
    """
    path = os.fspath(path)
    if dim not in (None, 2, 3):
        raise ValueError(f"dim must be None, 2 or 3, got {dim}")
    if not os.path.exists(path):
        raise MeshFileNotFoundError(f"mesh file not found: {path!r}")
    if os.path.isdir(path):
        raise MeshError(f"mesh path is a directory, not a file: {path!r}")
    m = _meshio_read(path, "mesh")
    blocks = _cells_by_type(m)
    pts = np.asarray(m.points, dtype=np.float64)
    if pts.size == 0:
        raise MeshError(f"{path!r} holds no points (cell types found: {sorted(blocks) or 'none'})")
    found = sorted(blocks) or ["none"]
    allowed = "'tetra' (3D) or 'triangle' (2D)"
    if "tetra" in blocks and dim in (None, 3):
        if pts.shape[1] != 3:
            raise MeshError(f"{path!r}: tetrahedra need 3D points, got shape {pts.shape}")
        cells = blocks["tetra"]
    elif "triangle" in blocks and dim in (None, 2):
        if pts.shape[1] == 3:
            if not np.all(pts[:, 2] == 0):
                raise MeshError(
                    f"{path!r} has triangles with non-zero z coordinates: a surface mesh, "
                    "not a 2D domain (no tetrahedra found). Tetrahedralise it first, e.g. "
                    "with tetrahedralize_surface()"
                )
            pts = pts[:, :2]
        cells = blocks["triangle"]
    else:
        want = allowed if dim is None else repr(_CELL_TYPE[dim]) + f" ({dim}D)"
        raise MeshError(
            f"{path!r} contains no usable cells: found cell types {found}, allowed {want} "
            "(linear elements only)"
        )
    return validate_mesh(
        SimplexMesh(pts, cells),
        fix_orientation=fix_orientation,
        remove_unused_points=remove_unused_points,
    )


def save_mesh(mesh: SimplexMesh, path, *, file_format: str | None = None, **kwargs) -> None:
    """Write a mesh with meshio (format from the extension or ``file_format``, e.g.
    ``"medit"``, ``"gmsh22"``, ``"vtu"``). 2D points are written with a zero z column,
    which :func:`load_mesh` drops again."""
    import meshio

    pts = mesh.points
    if mesh.dim == 2:
        pts = np.column_stack([pts, np.zeros(len(pts))])
    m = meshio.Mesh(pts, [(mesh.cell_type, mesh.cells)])
    meshio.write(os.fspath(path), m, file_format=file_format, **kwargs)


# --------------------------------------------------------------------------------------
# boundary and sampling
# --------------------------------------------------------------------------------------
def boundary_facets(mesh: SimplexMesh, *, return_cells: bool = False):
    """Boundary facets: triangles ``(k, 3)`` in 3D, edges ``(k, 2)`` in 2D, oriented
    outward (3D: ``(b - a) x (c - a)`` points out of the body; 2D: the boundary is
    traversed counter-clockwise, outward normal ``(dy, -dx)``). A facet is on the boundary
    when exactly one element has it. With ``return_cells=True`` also returns the index
    of the element each facet belongs to."""
    cells = mesh.cells
    _, inv, counts = _facet_table(cells)
    on_bnd = counts[inv] == 1  # (m, d+1)
    cell_idx, local = np.nonzero(on_bnd)
    fac = _facets(cells)[cell_idx, local]  # (k, d)
    opp = cells[cell_idx, local]
    P = mesh.points
    if mesh.dim == 3:
        a, b, c = P[fac[:, 0]], P[fac[:, 1]], P[fac[:, 2]]
        normal = np.cross(b - a, c - a)
    else:
        a, b = P[fac[:, 0]], P[fac[:, 1]]
        t = b - a
        normal = np.column_stack([t[:, 1], -t[:, 0]])
    flip = np.einsum("ij,ij->i", normal, a - P[opp]) < 0
    fac = fac.copy()
    fac[flip, 0], fac[flip, 1] = fac[flip, 1].copy(), fac[flip, 0].copy()
    return (fac, cell_idx) if return_cells else fac


def _is_jax_key(x) -> bool:
    try:
        import jax
    except ImportError:  # pragma: no cover
        return False
    return isinstance(x, jax.Array)


def sample_volume(mesh: SimplexMesh, key_or_rng, n: int):
    r"""``n`` points uniformly distributed in the mesh, with quadrature weights.

    An element is drawn with probability ``vol_e / V`` and a point inside it with
    barycentric coordinates ``E_k / sum_j E_j``, ``E_k ~ Exp(1)`` (the uniform Dirichlet
    distribution on the simplex). Every weight is ``V / n`` (sum = total volume ``V``),
    so ``sum_i w_i f(x_i)`` is an unbiased Monte Carlo estimate of ``\int f dV``.

    ``key_or_rng``: a JAX PRNG key (returns ``jax.Array`` s in JAX's default float dtype)
    or a ``numpy.random.Generator`` / int seed (returns float64 numpy arrays).
    Returns ``(points (n, d), weights (n,))``.
    """
    n = int(n)
    if n <= 0:
        raise ValueError(f"number of samples n must be > 0, got {n}")
    if _is_jax_key(key_or_rng):
        return volume_sampler(mesh, n)(key_or_rng)
    rng = key_or_rng
    if not isinstance(rng, np.random.Generator):
        rng = np.random.default_rng(rng)
    vols = element_volumes(mesh)
    total = float(vols.sum())
    cell = rng.choice(mesh.n_cells, size=n, p=vols / total)
    e = rng.exponential(size=(n, mesh.dim + 1))
    bary = e / e.sum(axis=1, keepdims=True)
    pts = np.einsum("nk,nkd->nd", bary, mesh.points[mesh.cells[cell]])
    return pts, np.full(n, total / n)


def volume_sampler(mesh: SimplexMesh, n: int) -> Callable:
    """A jitted ``key -> (points (n, d), weights (n,))`` drawing ``n`` uniform samples
    in the mesh (same distribution as :func:`sample_volume`), for use inside a JAX
    solver loop. The mesh arrays are captured as constants."""
    import jax
    import jax.numpy as jnp

    n = int(n)
    vols = element_volumes(mesh)
    total = float(vols.sum())
    cdf = jnp.asarray(np.cumsum(vols) / total)
    corners = jnp.asarray(mesh.points[mesh.cells])  # (m, d+1, d)
    d = mesh.dim

    @jax.jit
    def sample(key):
        k1, k2 = jax.random.split(key)
        u = jax.random.uniform(k1, (n,), dtype=cdf.dtype)
        cell = jnp.clip(jnp.searchsorted(cdf, u, side="right"), 0, corners.shape[0] - 1)
        e = jax.random.exponential(k2, (n, d + 1), dtype=corners.dtype)
        bary = e / e.sum(axis=1, keepdims=True)
        pts = jnp.einsum("nk,nkd->nd", bary, corners[cell])
        return pts, jnp.full((n,), total / n, dtype=pts.dtype)

    return sample


# --------------------------------------------------------------------------------------
# point location and interpolation
# --------------------------------------------------------------------------------------
def _bary(Dinv, X0, cell, p):
    lam = np.einsum("...ij,...j->...i", Dinv[cell], p - X0[cell])
    return np.concatenate([1.0 - lam.sum(-1, keepdims=True), lam], axis=-1)


def locate_points(
    mesh: SimplexMesh, points, *, allow_outside: bool = False, tol: float = 1e-9
):
    """Find, for each query point, an element containing it and its barycentric
    coordinates. Returns ``(cells (N,), bary (N, d + 1))``.

    Candidates are the elements whose centroids are nearest (k-d tree, widening the
    search when needed, then a brute-force pass). A point counts as inside when all its
    barycentric coordinates are ``>= -tol``. Points outside the mesh raise ``ValueError``
    naming them, unless ``allow_outside=True``: then the best element is used with its
    barycentric coordinates clipped to ``>= 0`` and renormalised (evaluating the field at
    a nearby point of that element).
    """
    from scipy.spatial import cKDTree

    P = np.asarray(points, dtype=np.float64)
    if P.ndim != 2 or P.shape[1] != mesh.dim:
        raise ValueError(f"points must have shape (N, {mesh.dim}), got {P.shape}")
    X = mesh.points[mesh.cells]
    X0 = X[:, 0]
    Dinv = np.linalg.inv(np.swapaxes(X[:, 1:] - X[:, :1], 1, 2))
    tree = cKDTree(X.mean(axis=1))
    N, m = P.shape[0], mesh.n_cells
    best_cell = np.zeros(N, dtype=np.int64)
    best_min = np.full(N, -np.inf)
    todo = np.arange(N)
    for k in (8, 32, 128):
        if todo.size == 0:
            break
        kk = min(k, m)
        _, cand = tree.query(P[todo], k=kk)
        cand = np.asarray(cand).reshape(todo.size, kk)
        b = _bary(Dinv, X0, cand, P[todo][:, None, :])
        mins = b.min(-1)
        j = mins.argmax(1)
        cm = mins[np.arange(todo.size), j]
        improve = cm > best_min[todo]
        best_min[todo[improve]] = cm[improve]
        best_cell[todo[improve]] = cand[np.arange(todo.size), j][improve]
        todo = todo[best_min[todo] < -tol]
        if kk == m:
            break
    if todo.size:  # brute force in chunks
        chunk = max(1, 2_000_000 // max(m, 1))
        for s in range(0, todo.size, chunk):
            t = todo[s : s + chunk]
            b = _bary(Dinv, X0, np.arange(m)[None, :], P[t][:, None, :])
            mins = b.min(-1)
            j = mins.argmax(1)
            cm = mins[np.arange(t.size), j]
            improve = cm > best_min[t]
            best_min[t[improve]] = cm[improve]
            best_cell[t[improve]] = j[improve]
        todo = todo[best_min[todo] < -tol]
    bary = _bary(Dinv, X0, best_cell, P)
    if todo.size:
        if not allow_outside:
            raise ValueError(
                f"{todo.size} point(s) lie outside the mesh: indices {_first(todo)}, e.g. "
                f"{P[todo[0]].tolist()} (pass allow_outside=True to clamp them)"
            )
        bb = np.clip(bary[todo], 0.0, None)
        bary[todo] = bb / bb.sum(1, keepdims=True)
    return best_cell, bary


def interpolate_p1(mesh: SimplexMesh, values, points, *, allow_outside: bool = False):
    """Evaluate the piecewise-linear (P1) interpolant of nodal ``values`` ``(n, ...)`` at
    rest ``points`` ``(N, d)``: ``sum_k bary_k * values[cell_k]``. Returns ``(N, ...)``."""
    values = np.asarray(values)
    if values.shape[0] != mesh.n_points:
        raise ValueError(
            f"values must have one row per mesh point ({mesh.n_points}), got {values.shape}"
        )
    cell, bary = locate_points(mesh, points, allow_outside=allow_outside)
    return np.einsum("nk,nk...->n...", bary, values[mesh.cells[cell]])


# --------------------------------------------------------------------------------------
# meshes made by code
# --------------------------------------------------------------------------------------
def _resolution(n, d) -> tuple:
    if np.ndim(n) == 0:
        n = (int(n),) * d
    n = tuple(int(v) for v in n)
    if len(n) != d or min(n) < 1:
        raise ValueError(f"resolution must be a positive int or {d} positive ints, got {n}")
    return n


def _kuhn_mesh(lo, hi, n) -> SimplexMesh:
    """Structured simplex mesh of the box ``[lo, hi]`` with ``n`` cells per axis, each cell
    split into ``d!`` simplices by the Kuhn (Freudenthal) triangulation: for a permutation
    ``pi``, the simplex ``v_0 = corner, v_{k+1} = v_k + e_{pi(k)}``. All cells share the
    main diagonal, so the mesh is conforming."""
    lo = np.asarray(lo, dtype=np.float64)
    hi = np.asarray(hi, dtype=np.float64)
    d = lo.size
    if hi.size != d or d not in (2, 3):
        raise ValueError(f"lo and hi must both have 2 or 3 entries, got {lo}, {hi}")
    if not np.all(hi > lo):
        raise ValueError(f"need hi > lo componentwise, got lo={lo.tolist()}, hi={hi.tolist()}")
    n = _resolution(n, d)
    axes = [np.linspace(lo[a], hi[a], n[a] + 1) for a in range(d)]
    grid = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, d)
    shape = tuple(v + 1 for v in n)
    base = np.stack(
        np.meshgrid(*[np.arange(v) for v in n], indexing="ij"), axis=-1
    ).reshape(-1, d)
    cells = []
    for perm in itertools.permutations(range(d)):
        verts = [base]
        cur = base.copy()
        for axis in perm:
            cur = cur.copy()
            cur[:, axis] += 1
            verts.append(cur)
        idx = [np.ravel_multi_index(tuple(v.T), shape) for v in verts]
        cells.append(np.stack(idx, axis=1))
    cells = np.concatenate(cells, axis=0)
    vol = signed_volumes(grid, cells)
    neg = vol < 0
    cells[neg, -2], cells[neg, -1] = cells[neg, -1].copy(), cells[neg, -2].copy()
    return SimplexMesh(grid, cells)


def rectangle_mesh(lo=(0.0, 0.0), hi=(1.0, 1.0), n=8, *, crossed: bool = False) -> SimplexMesh:
    """Structured triangle mesh of ``[lo_0, hi_0] x [lo_1, hi_1]`` with ``n`` (int or
    pair) squares per axis.

    Default: each square is cut into two counter-clockwise triangles along the
    ``(+1, +1)`` diagonal: ``(n_0 + 1)(n_1 + 1)`` points, ``2 n_0 n_1`` triangles.
    ``crossed=True``: each square is cut by both diagonals into four triangles around an
    extra centre node ("crossed triangles", Nagtegaal, Parks & Rice 1974), which is
    symmetric and much less prone to volumetric locking of P1 elements for nearly
    incompressible materials: ``(n_0 + 1)(n_1 + 1) + n_0 n_1`` points, ``4 n_0 n_1``
    triangles.
    """
    if len(lo) != 2 or len(hi) != 2:
        raise ValueError("rectangle_mesh needs 2D lo and hi")
    base = _kuhn_mesh(lo, hi, n)
    if not crossed:
        return validate_mesh(base)
    n0, n1 = _resolution(n, 2)
    P = base.points
    i, j = np.meshgrid(np.arange(n0), np.arange(n1), indexing="ij")
    i, j = i.ravel(), j.ravel()

    def vid(a, b):
        return a * (n1 + 1) + b

    c00, c10, c11, c01 = vid(i, j), vid(i + 1, j), vid(i + 1, j + 1), vid(i, j + 1)
    centre = P.shape[0] + np.arange(i.size)
    pts = np.concatenate([P, 0.25 * (P[c00] + P[c10] + P[c11] + P[c01])])
    cells = np.concatenate(
        [
            np.stack([c00, c10, centre], 1),
            np.stack([c10, c11, centre], 1),
            np.stack([c11, c01, centre], 1),
            np.stack([c01, c00, centre], 1),
        ]
    )
    return validate_mesh(SimplexMesh(pts, cells))


def box_mesh(lo=(0.0, 0.0, 0.0), hi=(1.0, 1.0, 1.0), n=4) -> SimplexMesh:
    """Structured tetrahedral mesh of a box: ``n`` (int or triple) cubes per axis, each
    split into 6 right-handed tetrahedra (Kuhn triangulation, conforming)."""
    if len(lo) != 3 or len(hi) != 3:
        raise ValueError("box_mesh needs 3D lo and hi")
    return validate_mesh(_kuhn_mesh(lo, hi, n))


def _largest_component(cells) -> np.ndarray:
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    m = cells.shape[0]
    _, inv, counts = _facet_table(cells)
    flat = inv.ravel()
    owner = np.repeat(np.arange(m), cells.shape[1])
    order = np.argsort(flat, kind="stable")
    f_sorted, o_sorted = flat[order], owner[order]
    pair = np.flatnonzero(f_sorted[1:] == f_sorted[:-1])
    a, b = o_sorted[pair], o_sorted[pair + 1]
    g = coo_matrix((np.ones(a.size), (a, b)), shape=(m, m))
    _, labels = connected_components(g, directed=False)
    keep = labels == np.bincount(labels).argmax()
    return keep


def implicit_mesh(
    fn: Callable[[np.ndarray], np.ndarray],
    lo,
    hi,
    n,
    *,
    project_boundary: bool = True,
    min_volume_ratio: float = 0.1,
) -> SimplexMesh:
    """Simplex mesh of the region ``{x : fn(x) < 0}`` inside the box ``[lo, hi]``.

    1. A Kuhn mesh of the box (:func:`rectangle_mesh` / :func:`box_mesh` pattern) with
       ``n`` cells per axis; keep the elements whose centroid has ``fn < 0``; keep the
       largest face-connected component; drop unused points.
    2. ``project_boundary``: move boundary vertices onto the zero level set by three
       Newton steps ``x <- x - fn(x) grad fn / |grad fn|^2`` (central-difference
       gradient, each step capped at one grid spacing), vertex by vertex in three
       Gauss-Seidel sweeps; a move (or half / a quarter of it) is accepted only if every
       element around the vertex keeps at least ``min_volume_ratio`` of its original
       volume. This removes most of the staircase without creating slivers.

    ``fn`` maps ``(N, d)`` float64 arrays to ``(N,)`` (a signed distance or any function
    negative inside). Returns a validated mesh.
    """
    lo = np.asarray(lo, dtype=np.float64)
    hi = np.asarray(hi, dtype=np.float64)
    base = _kuhn_mesh(lo, hi, n)
    d = base.dim
    pts, cells = base.points, base.cells
    inside = np.asarray(fn(pts[cells].mean(axis=1))) < 0
    cells = cells[inside]
    if cells.shape[0] == 0:
        raise MeshError("implicit_mesh: no element centroid satisfies fn < 0")
    cells = cells[_largest_component(cells)]
    used = np.unique(cells)
    remap = -np.ones(pts.shape[0], dtype=np.int64)
    remap[used] = np.arange(used.size)
    pts = pts[used].copy()
    cells = remap[cells]
    mesh = SimplexMesh(pts, cells)
    if not project_boundary:
        return validate_mesh(mesh)

    h = float(np.min((hi - lo) / np.asarray(_resolution(n, d))))
    eps = 1e-4 * h

    def project(x):
        # three Newton steps towards fn = 0, each capped at one grid spacing
        for _ in range(3):
            f = np.asarray(fn(x), dtype=np.float64)
            grad = np.zeros_like(x)
            for a in range(d):
                e = np.zeros(d)
                e[a] = eps
                grad[:, a] = (np.asarray(fn(x + e)) - np.asarray(fn(x - e))) / (2 * eps)
            g2 = np.maximum((grad**2).sum(1), 1e-30)
            step = -(f / g2)[:, None] * grad
            norm = np.linalg.norm(step, axis=1, keepdims=True)
            x = x + step * np.minimum(1.0, h / np.maximum(norm, 1e-300))
        return x

    bverts = np.unique(boundary_facets(mesh))
    vol0 = signed_volumes(pts, cells)
    # cells incident to each vertex
    flat = cells.ravel()
    order = np.argsort(flat, kind="stable")
    starts = np.searchsorted(flat[order], np.arange(pts.shape[0] + 1))
    owner = order // cells.shape[1]
    moved = pts.copy()
    target = project(pts[bverts])
    # Gauss-Seidel sweeps: move each boundary vertex to its projection (or part of the
    # way) if every incident element keeps >= min_volume_ratio of its original volume
    for _ in range(3):
        for v, tgt in zip(bverts, target):
            inc = owner[starts[v] : starts[v + 1]]
            old = moved[v].copy()
            for frac in (1.0, 0.5, 0.25):
                moved[v] = old + frac * (tgt - old)
                if np.all(signed_volumes(moved, cells[inc]) >= min_volume_ratio * vol0[inc]):
                    break
            else:
                moved[v] = old
        target = project(moved[bverts])
    return validate_mesh(SimplexMesh(moved, cells))


def _ellipsoid(x, center, radii):
    """Approximate signed distance to an axis-aligned ellipsoid."""
    r = np.asarray(radii, dtype=np.float64)
    q = (x - np.asarray(center)) / r
    return (np.linalg.norm(q, axis=1) - 1.0) * r.min()


def _smin(a, b, k):
    """Polynomial smooth minimum (blend width ``k``)."""
    h = np.clip(0.5 + 0.5 * (b - a) / k, 0.0, 1.0)
    return b * (1 - h) + a * h - k * h * (1 - h)


def bunny_like_sdf(x: np.ndarray) -> np.ndarray:
    """Implicit function of the bundled "bunny-like" shape (negative inside): a smooth
    union of an ellipsoidal body, a head, two ears and a tail, about 1.5 x 0.9 x 1.5
    units, resting on ``z = -0.43``. Vectorised over ``(N, 3)``."""
    x = np.asarray(x, dtype=np.float64)
    body = _ellipsoid(x, (0.0, 0.0, 0.0), (0.55, 0.42, 0.43))
    head = _ellipsoid(x, (0.48, 0.0, 0.36), (0.26, 0.23, 0.24))
    ear_l = _ellipsoid(x, (0.42, 0.11, 0.72), (0.08, 0.07, 0.24))
    ear_r = _ellipsoid(x, (0.42, -0.11, 0.72), (0.08, 0.07, 0.24))
    tail = _ellipsoid(x, (-0.56, 0.0, 0.08), (0.12, 0.12, 0.12))
    f = _smin(body, head, 0.12)
    f = _smin(f, ear_l, 0.06)
    f = _smin(f, ear_r, 0.06)
    return _smin(f, tail, 0.06)


def bunny_like_mesh(resolution: int = 16) -> SimplexMesh:
    """A bundled, code-generated closed 3D shape for the elastodynamics examples: the
    "bunny-like" implicit shape of :func:`bunny_like_sdf` tetrahedralised by
    :func:`implicit_mesh` on a grid with ``resolution`` cells along its longest side
    (16: about 4,000 tetrahedra and 1,000 points; grows as ``resolution^3``).
    Deterministic; no download."""
    resolution = int(resolution)
    if resolution < 4:
        raise ValueError(f"resolution must be >= 4, got {resolution}")
    lo = np.array([-0.75, -0.5, -0.5])
    hi = np.array([0.8, 0.5, 1.0])
    ext = hi - lo
    h = ext.max() / resolution
    n = np.maximum(1, np.ceil(ext / h).astype(int))
    hi = lo + n * h
    return implicit_mesh(bunny_like_sdf, lo, hi, tuple(n))


# sub-simplices of one red refinement, as indices into (vertices..., edge midpoints...) with
# the edges ordered as in _EDGES; 3D: four corner tetrahedra and the inner octahedron cut
# along its diagonal m02–m13 (Bey 1995, "Tetrahedral grid refinement")
_EDGES = {2: [(0, 1), (0, 2), (1, 2)], 3: [(0, 1), (0, 2), (0, 3), (1, 2), (1, 3), (2, 3)]}
_RED_CHILDREN = {
    # vertices 0-2, midpoints 3 = m01, 4 = m02, 5 = m12
    2: [(0, 3, 4), (3, 1, 5), (4, 5, 2), (3, 5, 4)],
    # vertices 0-3, midpoints 4 = m01, 5 = m02, 6 = m03, 7 = m12, 8 = m13, 9 = m23
    3: [(0, 4, 5, 6), (4, 1, 7, 8), (5, 7, 2, 9), (6, 8, 9, 3),
        (4, 5, 6, 8), (4, 5, 7, 8), (5, 6, 8, 9), (5, 7, 8, 9)],
}


def refine_uniform(mesh: SimplexMesh, times: int = 1) -> SimplexMesh:
    """The same shape with every element split into 2^d children ``times`` times (red
    refinement: new nodes at the edge midpoints; 4 triangles per triangle, 8 tetrahedra per
    tetrahedron, Bey 1995).  Unlike a generator called at a higher resolution, this keeps the
    polyhedron exactly, so FEM runs on ``refine_uniform(m, k)`` for k = 1, 2, … converge to the
    solution *on m's shape* (``bunny_like_mesh(r)`` is a different polyhedron for each r).
    Element quality is bounded: the 3D children of one tetrahedron fall into at most three
    similarity classes however often it is refined (Bey 1995; tested)."""
    if isinstance(times, bool) or int(times) != times or times < 0:
        raise ValueError(f"times must be an integer ≥ 0, got {times!r}")
    if times == 0:
        return mesh
    d = mesh.dim
    pts, cells = mesh.points, np.array(mesh.cells)
    for _ in range(int(times)):
        pairs = np.concatenate([cells[:, [a, b]] for a, b in _EDGES[d]], axis=0)
        edges, inverse = np.unique(np.sort(pairs, axis=1), axis=0, return_inverse=True)
        midpoint_ids = pts.shape[0] + inverse.reshape(len(_EDGES[d]), -1).T  # (m, n_edges)
        local = np.concatenate([cells, midpoint_ids], axis=1)
        # Bey's vertex order is carried to the next level unchanged: it is what keeps the
        # children in three similarity classes (reordering between levels would cut other
        # octahedron diagonals and degrade the elements level by level)
        cells = np.concatenate([local[:, list(c)] for c in _RED_CHILDREN[d]], axis=0)
        pts = np.concatenate([pts, 0.5 * (pts[edges[:, 0]] + pts[edges[:, 1]])], axis=0)
    flip = signed_volumes(pts, cells) < 0  # orient once, at the end (a reordering changes no shape)
    cells[flip, -2:] = cells[flip, -2:][:, ::-1]
    return validate_mesh(SimplexMesh(pts, cells))


def tetrahedralize_surface(
    surface,
    *,
    max_volume: float | None = None,
    min_ratio: float = 1.5,
    quality: bool = True,
) -> SimplexMesh:
    """Tetrahedralise a closed, manifold triangle surface with TetGen (optional
    dependency: ``pip install tetgen``, imported lazily).

    ``surface``: a path meshio can read (e.g. ``.obj``, ``.ply``, ``.stl``, ``.off``)
    or a pair ``(points (n, 3), triangles (k, 3))``. ``max_volume`` bounds the tetrahedron
    volume, ``min_ratio`` the radius-edge ratio (quality mesh, TetGen ``-q``).
    """
    try:
        import tetgen
    except ImportError as exc:
        raise ImportError(
            "tetrahedralize_surface needs the optional package 'tetgen' "
            "(pip install tetgen); alternatively tetrahedralise with an external tool and "
            "load the result with load_mesh()"
        ) from exc
    if isinstance(surface, (str, os.PathLike)):
        path = os.fspath(surface)
        if not os.path.exists(path):
            raise MeshFileNotFoundError(f"surface file not found: {path!r}")
        m = _meshio_read(path, "surface")
        blocks = _cells_by_type(m)
        if "triangle" not in blocks:
            raise MeshError(
                f"{path!r} has no triangle cells (found {sorted(blocks)}); a closed "
                "triangle surface is required"
            )
        pts, tris = np.asarray(m.points, dtype=np.float64), blocks["triangle"]
    else:
        pts, tris = surface
        pts = np.asarray(pts, dtype=np.float64)
        tris = np.asarray(tris)
    if pts.ndim != 2 or pts.shape[1] != 3:
        raise MeshError(f"surface points must have shape (n, 3), got {pts.shape}")
    tg = tetgen.TetGen(pts, np.ascontiguousarray(tris, dtype=np.int32))
    kwargs = dict(quality=quality, minratio=float(min_ratio))
    if max_volume is not None:
        kwargs.update(maxvolume=float(max_volume), fixedvolume=True)
    try:
        out = tg.tetrahedralize(**kwargs)
    except Exception as exc:
        raise MeshError(
            f"TetGen failed ({type(exc).__name__}: {exc}); is the surface closed and "
            "free of self-intersections?"
        ) from exc
    nodes, elems = np.asarray(out[0]), np.array(out[1])[:, :4]
    # TetGen's own vertex order; make it right-handed here (our convention, not a defect)
    neg = signed_volumes(nodes, elems) < 0
    elems[neg, -2], elems[neg, -1] = elems[neg, -1].copy(), elems[neg, -2].copy()
    return validate_mesh(SimplexMesh(nodes, elems), remove_unused_points=True)
