"""Outputs of an elastic run (:class:`~insr.elasticity.stepper.ElasticStepper`): per saved
step a PNG of the deformed body (2D: triangles coloured by the area ratio det F; 3D: the
shaded boundary surface), with the obstacles, and an animation of the frames; a ParaView
time series (``.vtu`` per step + ``.pvd``); in 3D a PLY of the deformed boundary surface
(:func:`write_elastic_outputs`).  (Moved here from :mod:`insr.elasticity.stepper`, which
re-exports :func:`write_elastic_outputs`.)

The stepper is used through ``rest`` (its mesh and boundary facets), ``contacts``, ``dim``
and ``deformed_nodes(state, t)``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from insr.io.paraview import write_pvd
from insr.physics.elastic_energy import PlaneContact, SphereContact

__all__ = ["write_elastic_outputs"]


def _pad3(a: np.ndarray) -> np.ndarray:
    a = np.asarray(a, np.float64)
    return a if a.shape[1] == 3 else np.column_stack([a, np.zeros(len(a))])


def _obstacle_artists_2d(ax, contacts, xlim, ylim):
    from matplotlib.patches import Circle, Polygon

    for c in contacts:
        if isinstance(c, SphereContact):
            ax.add_patch(Circle(c.center, c.radius, color="0.6", zorder=1))
        else:
            n = np.asarray(c.normal)
            # the obstacle {x : n.x < c}: clip a big square to that half-plane
            big = max(xlim[1] - xlim[0], ylim[1] - ylim[0]) * 4
            centre = np.array([np.mean(xlim), np.mean(ylim)])
            base = centre - (centre @ n - c.offset) * n  # closest point of the plane
            tang = np.array([-n[1], n[0]])
            poly = [base + big * tang, base - big * tang, base - big * tang - big * n, base + big * tang - big * n]
            ax.add_patch(Polygon(poly, closed=True, color="0.6", zorder=1))


def _frame_2d(stepper, x, t, lims):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    mesh = stepper.rest.mesh
    fig = Figure(figsize=(5, 5), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    (x0, x1), (y0, y1) = lims
    _obstacle_artists_2d(ax, stepper.contacts, (x0, x1), (y0, y1))
    X = mesh.points
    cells = mesh.cells
    # per-triangle area ratio J = det F_e (from the deformed nodes), as colour
    def area(P):
        a, b, c = P[cells[:, 0]], P[cells[:, 1]], P[cells[:, 2]]
        return 0.5 * ((b[:, 0] - a[:, 0]) * (c[:, 1] - a[:, 1]) - (b[:, 1] - a[:, 1]) * (c[:, 0] - a[:, 0]))

    J = area(x) / area(X)
    tpc = ax.tripcolor(x[:, 0], x[:, 1], cells, facecolors=J, cmap="coolwarm", vmin=0.8, vmax=1.2, zorder=2,
                       edgecolors="none")
    bnd = stepper.rest.boundary
    for e in bnd:
        ax.plot(x[e, 0], x[e, 1], color="k", lw=0.8, zorder=3)
    fig.colorbar(tpc, ax=ax, fraction=0.046, pad=0.04, label="area ratio det F")
    ax.set_xlim(x0, x1)
    ax.set_ylim(y0, y1)
    ax.set_aspect("equal")
    ax.set_title(f"t = {t:.3g}")
    fig.tight_layout()
    fig.canvas.draw()
    return fig, np.asarray(fig.canvas.buffer_rgba())[..., :3].copy()


def _frame_3d(stepper, x, t, lims):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from mpl_toolkits.mplot3d.art3d import Poly3DCollection

    fig = Figure(figsize=(6, 5), dpi=100)
    FigureCanvasAgg(fig)
    # obstacles first and no depth sorting between collections: the body is drawn over them
    ax = fig.add_subplot(1, 1, 1, projection="3d", computed_zorder=False)
    (x0, x1), (y0, y1), (z0, z1) = lims
    for c in stepper.contacts:
        if isinstance(c, PlaneContact) and abs(c.normal[2]) > 0.9:
            z = c.offset / c.normal[2]
            g = np.array([[x0, y0, z], [x1, y0, z], [x1, y1, z], [x0, y1, z]])
            ax.add_collection3d(Poly3DCollection([g], facecolors=(0.7, 0.7, 0.7, 0.6), edgecolors="none", zorder=1))
        elif isinstance(c, SphereContact):
            u, v = np.mgrid[0:2 * np.pi:24j, 0:np.pi:12j]
            ax.plot_surface(c.center[0] + c.radius * np.cos(u) * np.sin(v),
                            c.center[1] + c.radius * np.sin(u) * np.sin(v),
                            c.center[2] + c.radius * np.cos(v), color="0.6", alpha=0.6, linewidth=0, zorder=1)
    tri = x[stepper.rest.boundary]  # (k, 3, 3), outward oriented
    nrm = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    nrm /= np.maximum(np.linalg.norm(nrm, axis=1, keepdims=True), 1e-12)
    light = np.array([0.4, -0.5, 0.77])
    shade = 0.35 + 0.65 * np.clip(nrm @ (light / np.linalg.norm(light)), 0, 1)
    colors = np.column_stack([0.85 * shade, 0.55 * shade, 0.35 * shade, np.ones_like(shade)])
    ax.add_collection3d(Poly3DCollection(tri, facecolors=colors, edgecolors="none", zorder=2))
    ax.set_xlim(x0, x1)
    ax.set_ylim(y0, y1)
    ax.set_zlim(z0, z1)
    ax.set_box_aspect((x1 - x0, y1 - y0, z1 - z0))
    ax.view_init(elev=18, azim=-60)
    ax.set_title(f"t = {t:.3g}")
    fig.canvas.draw()
    return fig, np.asarray(fig.canvas.buffer_rgba())[..., :3].copy()


def _limits(stepper, xs):
    """Fixed axis limits over all frames: the deformed shapes plus a margin, widened to
    show sphere obstacles and the plane level."""
    allx = np.concatenate(xs)
    lo, hi = allx.min(0), allx.max(0)
    for c in stepper.contacts:
        if isinstance(c, SphereContact):
            ce = np.asarray(c.center)
            lo, hi = np.minimum(lo, ce - c.radius), np.maximum(hi, ce + c.radius)
        elif abs(max(c.normal, key=abs)) > 0.9:  # axis-aligned plane: include its level
            a = int(np.argmax(np.abs(c.normal)))
            level = c.offset / c.normal[a]
            lo[a], hi[a] = min(lo[a], level), max(hi[a], level)
    span = float(np.max(hi - lo))
    lo, hi = lo - 0.08 * span, hi + 0.08 * span
    if stepper.dim == 2:  # square window
        c, h = 0.5 * (lo + hi), 0.5 * float(np.max(hi - lo))
        lo, hi = c - h, c + h
    return tuple(zip(lo, hi))


def write_elastic_outputs(stepper, traj, run_dir: Path, output: dict | None = None) -> list[Path]:
    """See :meth:`~insr.elasticity.stepper.ElasticStepper.write_outputs`."""
    import meshio

    from insr.viz.animate import write_animation

    output = {"images": True, "paraview": True, "ply": True, **(output or {})}
    run_dir = Path(run_dir)
    mesh = stepper.rest.mesh
    X = mesh.points
    xs = [stepper.deformed_nodes(s, t).astype(np.float64) for s, t in zip(traj.states, traj.ts)]
    written: list[Path] = []
    if output["paraview"]:
        pv = run_dir / "paraview"
        pv.mkdir(parents=True, exist_ok=True)
        entries = []
        for step, t, x in zip(traj.steps, traj.ts, xs):
            name = f"step_{step:06d}.vtu"
            # Points at rest plus the displacement: ParaView's Warp By Vector (scale 1) then
            # shows the deformed body, moved once (deformed points would be moved twice).
            meshio.write(pv / name, meshio.Mesh(_pad3(X), [(mesh.cell_type, mesh.cells)],
                                                point_data={"displacement": _pad3(x - X),
                                                            "deformed_position": _pad3(x)}))
            entries.append((float(t), name))
        written.append(write_pvd(pv / "elastic.pvd", entries))
    if output["ply"] and stepper.dim == 3:
        pd = run_dir / "ply"
        pd.mkdir(parents=True, exist_ok=True)
        used = np.unique(stepper.rest.boundary)
        remap = -np.ones(len(X), np.int64)
        remap[used] = np.arange(len(used))
        for step, x in zip(traj.steps, xs):
            meshio.write(pd / f"surface_{step:06d}.ply",
                         meshio.Mesh(x[used], [("triangle", remap[stepper.rest.boundary].astype(np.int32))]),
                         binary=True)
        written.append(pd)
    if output["images"] and xs:
        fd = run_dir / "frames"
        fd.mkdir(parents=True, exist_ok=True)
        lims = _limits(stepper, xs)
        draw = _frame_2d if stepper.dim == 2 else _frame_3d
        frames = []
        for step, t, x in zip(traj.steps, traj.ts, xs):
            fig, rgb = draw(stepper, x, float(t), lims)
            path = fd / f"step_{step:06d}.png"
            fig.savefig(path)
            frames.append(rgb)
        written += [fd, path]
        if len(frames) > 1:
            written.append(write_animation(frames, run_dir / "animation", fps=8))
    return written
