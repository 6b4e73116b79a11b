"""Tests of insr.geometry.mesh: file round trips, clear errors for bad meshes, volumes,
boundary facets, volume sampling, interpolation and the code-generated meshes."""

import importlib.util
import logging
import warnings

import jax
import meshio
import numpy as np
import pytest

from insr.geometry.mesh import (
    MeshError,
    MeshFileNotFoundError,
    MeshOrientationError,
    SimplexMesh,
    boundary_facets,
    box_mesh,
    bunny_like_mesh,
    element_volumes,
    interpolate_p1,
    load_mesh,
    locate_points,
    rectangle_mesh,
    sample_volume,
    save_mesh,
    tetrahedralize_surface,
    validate_mesh,
    volume_sampler,
)


@pytest.fixture(scope="module")
def bunny():
    return bunny_like_mesh()


def closed_surface_volume(mesh):
    """Volume from the outward boundary by the divergence theorem (area in 2D)."""
    f = boundary_facets(mesh)
    P = mesh.points
    if mesh.dim == 3:
        a, b, c = P[f[:, 0]], P[f[:, 1]], P[f[:, 2]]
        return float(np.einsum("ij,ij->i", a, np.cross(b, c)).sum() / 6)
    a, b = P[f[:, 0]], P[f[:, 1]]
    return float(0.5 * np.sum(a[:, 0] * b[:, 1] - b[:, 0] * a[:, 1]))


# --------------------------------------------------------------------------------------
# round trips
# --------------------------------------------------------------------------------------
@pytest.mark.parametrize("ext", ["vtu", "mesh", "msh"])
@pytest.mark.parametrize("dim", [2, 3])
def test_round_trip(tmp_path, ext, dim):
    mesh = rectangle_mesh((0, 0), (2, 1), (3, 2)) if dim == 2 else box_mesh(n=(2, 1, 2))
    path = tmp_path / f"m.{ext}"
    save_mesh(mesh, path)
    back = load_mesh(path)
    assert back.dim == dim
    np.testing.assert_allclose(back.points, mesh.points)
    np.testing.assert_array_equal(back.cells, mesh.cells)
    assert back.points.dtype == np.float64 and back.cells.dtype == np.int64


def test_load_prefers_tetra_and_ignores_boundary_triangles(tmp_path):
    mesh = box_mesh(n=2)
    tris = boundary_facets(mesh)
    m = meshio.Mesh(mesh.points, [("triangle", tris), ("tetra", mesh.cells[:10]), ("tetra", mesh.cells[10:])])
    path = tmp_path / "mixed.msh"
    meshio.write(path, m, file_format="gmsh22", binary=False)
    back = load_mesh(path)
    assert back.n_cells == mesh.n_cells and back.dim == 3


# --------------------------------------------------------------------------------------
# errors
# --------------------------------------------------------------------------------------
def test_missing_and_unreadable_files(tmp_path):
    with pytest.raises(MeshFileNotFoundError, match="not found") as exc:
        load_mesh(tmp_path / "nope.mesh")
    assert isinstance(exc.value, FileNotFoundError) and isinstance(exc.value, ValueError)
    bad = tmp_path / "bad.vtu"
    bad.write_text("this is not a vtu file")
    with pytest.raises(MeshError, match="could not read mesh file"):
        load_mesh(bad)
    unknown = tmp_path / "bad.xyz123"
    unknown.write_text("1 2 3")
    with pytest.raises(MeshError, match="could not read"):
        load_mesh(unknown)
    with pytest.raises(MeshError, match="directory"):
        load_mesh(tmp_path)


def test_no_usable_cells_names_types(tmp_path):
    pts = np.array([[0, 0, 0], [1, 0, 0], [1, 1, 0], [0, 1, 0.0]])
    path = tmp_path / "quads.vtu"
    meshio.write(path, meshio.Mesh(pts, [("quad", np.array([[0, 1, 2, 3]]))]))
    with pytest.raises(MeshError, match=r"found cell types \['quad'\].*allowed 'tetra' \(3D\) or 'triangle' \(2D\)"):
        load_mesh(path)
    with pytest.raises(MeshError, match="'tetra' \\(3D\\)"):
        save_mesh(rectangle_mesh(n=1), tmp_path / "tri.vtu")
        load_mesh(tmp_path / "tri.vtu", dim=3)


def test_surface_triangles_in_3d_rejected(tmp_path):
    mesh = box_mesh(n=1)
    path = tmp_path / "surface.vtu"
    meshio.write(path, meshio.Mesh(mesh.points, [("triangle", boundary_facets(mesh))]))
    with pytest.raises(MeshError, match="surface mesh"):
        load_mesh(path)


def test_degenerate_element():
    pts = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, 0.0]])
    cells = np.array([[0, 1, 2, 3], [0, 1, 4, 2]])  # second is flat (z = 0)
    with pytest.raises(MeshError, match=r"1 degenerate element\(s\).*elements \[1\]"):
        validate_mesh(SimplexMesh(pts, cells))
    pts2 = np.array([[0, 0], [1, 0], [2, 0.0], [0, 1.0]])
    with pytest.raises(MeshError, match=r"degenerate.*\[0\]"):
        validate_mesh(SimplexMesh(pts2, [[0, 1, 2], [0, 1, 3]]))


def test_inverted_elements_are_rejected_unless_repair_is_asked_for(tmp_path, caplog):
    mesh = box_mesh(n=2)
    cells = mesh.cells.copy()
    flip = [3, 7, 11]
    cells[flip, 0], cells[flip, 1] = mesh.cells[flip, 1], mesh.cells[flip, 0]
    bad = SimplexMesh(mesh.points, cells)
    # default: rejected (the README promises that broken meshes are rejected), naming the count,
    # the first elements and the option that repairs them
    with pytest.raises(MeshOrientationError, match=r"3 of 48 element\(s\) are inverted.*elements \[3, 7, 11\]"
                                                   r".*fix_orientation=True") as info:
        validate_mesh(bad)
    assert info.value.count == 3 and list(info.value.elements) == flip
    assert isinstance(info.value, MeshError)
    # repair on request: one log line, no UserWarning
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with caplog.at_level(logging.WARNING, logger="insr.geometry.mesh"):
            fixed = validate_mesh(bad, fix_orientation=True)
    (rec,) = [r for r in caplog.records if r.name == "insr.geometry.mesh"]
    msg = rec.getMessage()
    assert "\n" not in msg and "3 of 48 element(s) had negative orientation" in msg and "[3, 7, 11]" in msg
    vol = np.linalg.det(np.swapaxes(fixed.points[fixed.cells[:, 1:]] - fixed.points[fixed.cells[:, :1]], 1, 2))
    assert np.all(vol > 0)
    np.testing.assert_allclose(element_volumes(fixed).sum(), 1.0)
    # through a file too
    path = tmp_path / "inv.vtu"
    meshio.write(path, meshio.Mesh(mesh.points, [("tetra", cells)]))
    with pytest.raises(MeshOrientationError, match="inverted"):
        load_mesh(path)
    assert load_mesh(path, fix_orientation=True).n_cells == 48


def test_empty_mesh_file_gives_a_clear_error(tmp_path):
    empty = tmp_path / "empty.msh"
    empty.write_bytes(b"")
    with pytest.raises(MeshError, match="is empty: it holds no points and no cells") as info:
        load_mesh(empty)
    assert "concatenate" not in str(info.value)
    # a file with a header but no point or cell sections
    blank = tmp_path / "blank.msh"
    blank.write_text("\n\n")
    with pytest.raises(MeshError) as info:
        load_mesh(blank)
    assert "concatenate" not in str(info.value) and "no points" in str(info.value)


def test_unused_and_nan_points():
    mesh = rectangle_mesh(n=2)
    pts = np.vstack([mesh.points, [[5.0, 5.0]]])
    with pytest.raises(MeshError, match=r"1 point\(s\) are not used.*points \[9\].*remove_unused_points"):
        validate_mesh(SimplexMesh(pts, mesh.cells))
    ok = validate_mesh(SimplexMesh(pts, mesh.cells), remove_unused_points=True)
    assert ok.n_points == mesh.n_points
    pts = mesh.points.copy()
    pts[4] = np.nan
    with pytest.raises(MeshError, match=r"non-finite.*points \[4\]"):
        validate_mesh(SimplexMesh(pts, mesh.cells))
    with pytest.raises(MeshError, match="outside"):
        validate_mesh(SimplexMesh(mesh.points, mesh.cells + 100))


def test_non_manifold_and_duplicates():
    # three triangles sharing the edge (0, 1)
    pts = np.array([[0, 0], [1, 0], [0.5, 1], [0.5, -1], [0.6, 0.8]])
    cells = np.array([[0, 1, 2], [1, 0, 3], [0, 1, 4]])
    with pytest.raises(MeshError, match=r"non-manifold.*shared by more than two.*\[0, 1, 2\]"):
        validate_mesh(SimplexMesh(pts, cells))
    mesh = box_mesh(n=1)
    dup = np.vstack([mesh.cells, mesh.cells[[2]]])
    with pytest.raises(MeshError, match=r"duplicated.*elements \[2, 6\]"):
        validate_mesh(SimplexMesh(mesh.points, dup))
    with pytest.raises(MeshError, match="shape"):
        SimplexMesh(np.zeros((4, 3)), np.zeros((2, 3), dtype=int))


# --------------------------------------------------------------------------------------
# geometry
# --------------------------------------------------------------------------------------
def test_volumes_and_outward_boundary():
    box = box_mesh((0, 0, 0), (2, 1, 3), (3, 2, 2))
    assert element_volumes(box).sum() == pytest.approx(6.0)
    assert closed_surface_volume(box) == pytest.approx(6.0)
    assert boundary_facets(box).shape == (2 * 2 * (3 * 2 + 2 * 2 + 3 * 2), 3)
    rect = rectangle_mesh((-1, -1), (1, 1), 4)
    assert element_volumes(rect).sum() == pytest.approx(4.0)
    assert closed_surface_volume(rect) == pytest.approx(4.0)
    assert boundary_facets(rect).shape == (16, 2)
    crossed = rectangle_mesh((0, 0), (1, 2), (2, 3), crossed=True)
    assert crossed.n_points == 3 * 4 + 6 and crossed.n_cells == 24
    assert closed_surface_volume(crossed) == pytest.approx(2.0)
    facets, owners = boundary_facets(rect, return_cells=True)
    assert np.all(np.isin(facets, rect.cells[owners]).all(axis=1))


def test_bunny_like_mesh(bunny):
    assert 2000 <= bunny.n_cells <= 8000 and bunny.dim == 3
    vol = element_volumes(bunny)
    assert vol.min() > 0.05 * np.median(vol)
    assert closed_surface_volume(bunny) == pytest.approx(vol.sum(), rel=1e-10)
    # closed two-manifold surface: every surface edge shared by exactly two triangles
    f = boundary_facets(bunny)
    edges = np.sort(np.concatenate([f[:, [0, 1]], f[:, [1, 2]], f[:, [2, 0]]]), axis=1)
    _, counts = np.unique(edges, axis=0, return_counts=True)
    assert np.all(counts == 2)
    again = bunny_like_mesh()
    np.testing.assert_array_equal(again.cells, bunny.cells)


def test_sample_volume_weights_and_centroid(bunny):
    vol = element_volumes(bunny)
    V = vol.sum()
    centroid = (vol[:, None] * bunny.points[bunny.cells].mean(axis=1)).sum(0) / V
    n = 20000
    for key in (np.random.default_rng(0), 7, jax.random.key(0)):
        pts, w = sample_volume(bunny, key, n)
        pts, w = np.asarray(pts, dtype=np.float64), np.asarray(w, dtype=np.float64)
        assert pts.shape == (n, 3) and w.shape == (n,)
        assert w.sum() == pytest.approx(V, rel=1e-5)
        sigma = pts.std(axis=0) / np.sqrt(n)
        assert np.all(np.abs(pts.mean(axis=0) - centroid) < 5 * sigma)
    locate_points(bunny, pts[:500])  # all inside: no error
    sampler = volume_sampler(bunny, 64)
    a, _ = sampler(jax.random.key(1))
    b, _ = sampler(jax.random.key(1))
    np.testing.assert_array_equal(a, b)
    rect = rectangle_mesh((0, 0), (2, 1), 3)
    pts, w = sample_volume(rect, 0, 10000)
    assert w.sum() == pytest.approx(2.0)
    assert np.abs(pts.mean(0) - [1.0, 0.5]).max() < 0.03
    with pytest.raises(ValueError, match="n must be > 0"):
        sample_volume(rect, 0, 0)


def test_interpolation_exact_for_affine_fields(bunny):
    rng = np.random.default_rng(2)
    A, c = rng.normal(size=(3, 3)), rng.normal(size=3)
    pts, _ = sample_volume(bunny, rng, 300)
    vals = interpolate_p1(bunny, bunny.points @ A.T + c, pts)
    np.testing.assert_allclose(vals, pts @ A.T + c, atol=1e-12)
    cells, bary = locate_points(bunny, pts)
    np.testing.assert_allclose(bary.sum(1), 1.0)
    assert np.all(bary > -1e-9)
    with pytest.raises(ValueError, match="outside the mesh"):
        locate_points(bunny, np.array([[5.0, 5.0, 5.0]]))
    clamped = interpolate_p1(bunny, bunny.points, np.array([[5.0, 5.0, 5.0]]), allow_outside=True)
    assert np.all(np.isfinite(clamped))


# --------------------------------------------------------------------------------------
# optional TetGen
# --------------------------------------------------------------------------------------
HAVE_TETGEN = importlib.util.find_spec("tetgen") is not None


@pytest.mark.skipif(not HAVE_TETGEN, reason="optional package tetgen not installed")
def test_tetrahedralize_surface(bunny, tmp_path):
    f = boundary_facets(bunny)
    path = tmp_path / "surface.obj"
    meshio.write(path, meshio.Mesh(bunny.points, [("triangle", f)]))
    for source in (path, (bunny.points, f)):
        mesh = tetrahedralize_surface(source)
        assert mesh.dim == 3 and mesh.n_cells > 0
        assert element_volumes(mesh).sum() == pytest.approx(element_volumes(bunny).sum(), rel=1e-4)
    finer = tetrahedralize_surface((bunny.points, f), max_volume=5e-5)
    assert finer.n_cells > mesh.n_cells
    assert element_volumes(finer).max() < element_volumes(mesh).max()


@pytest.mark.skipif(HAVE_TETGEN, reason="tests the message when tetgen is missing")
def test_tetrahedralize_surface_without_tetgen():
    with pytest.raises(ImportError, match="pip install tetgen"):
        tetrahedralize_surface((np.zeros((4, 3)), np.zeros((4, 3), dtype=int)))



def _surface_measure(mesh):
    """Perimeter (2D) or surface area (3D) of the boundary facets."""
    from insr.geometry.mesh import boundary_facets

    f = boundary_facets(mesh)
    e = mesh.points[f[:, 1:]] - mesh.points[f[:, :1]]
    if mesh.dim == 2:
        return np.linalg.norm(e[:, 0], axis=1).sum()
    return 0.5 * np.linalg.norm(np.cross(e[:, 0], e[:, 1]), axis=1).sum()


@pytest.mark.parametrize("make", [lambda: rectangle_mesh((0, 0), (2, 1), 3, crossed=True), lambda: bunny_like_mesh(6)],
                         ids=["square", "bunny"])
def test_uniform_refinement_keeps_the_shape_and_splits_every_element(make):
    from insr.geometry.mesh import element_volumes, refine_uniform

    mesh = make()
    fine = refine_uniform(mesh, 2)
    assert fine.n_cells == mesh.n_cells * (2**mesh.dim) ** 2
    # the same polyhedron: volume, surface measure, and the coarse nodes (first, unchanged)
    assert element_volumes(fine).sum() == pytest.approx(element_volumes(mesh).sum(), rel=1e-12)
    assert _surface_measure(fine) == pytest.approx(_surface_measure(mesh), rel=1e-12)
    np.testing.assert_array_equal(fine.points[: mesh.n_points], mesh.points)
    # children positively oriented (validate_mesh would refuse inverted ones) and not degenerate:
    # each is similar to its parent or, in 3D, to one of two octahedron pieces
    vols = element_volumes(fine)
    assert vols.min() > 0.01 * vols.max()
    assert np.isclose(vols.sum() / fine.n_cells, element_volumes(mesh).mean() / (2**mesh.dim) ** 2)
    assert refine_uniform(mesh, 0) is mesh
    with pytest.raises(ValueError, match="times"):
        refine_uniform(mesh, -1)


def test_refined_tetrahedra_stay_in_three_similarity_classes():
    """Bey's red refinement, carried level to level in its own vertex order, keeps the children of
    a tetrahedron in at most three similarity classes (a reordering between levels gave 3, 7, 17,
    37 classes over 1-4 levels and a worst quality falling 10×)."""
    from insr.geometry.mesh import SimplexMesh, refine_uniform, validate_mesh

    tet = validate_mesh(SimplexMesh(np.array([[0.0, 0, 0], [1.0, 0.1, 0], [0.3, 0.9, 0.05], [0.2, 0.3, 0.8]]),
                                    np.array([[0, 1, 2, 3]])))
    for times in (1, 3):
        fine = refine_uniform(tet, times)
        edges = fine.points[fine.cells[:, [0, 0, 0, 1, 1, 2]]] - fine.points[fine.cells[:, [1, 2, 3, 2, 3, 3]]]
        lengths = np.sort(np.linalg.norm(edges, axis=2), axis=1)
        shapes = np.unique(np.round(lengths / lengths[:, -1:], 6), axis=0)
        assert fine.n_cells == 8**times and len(shapes) <= 3, (times, len(shapes))
