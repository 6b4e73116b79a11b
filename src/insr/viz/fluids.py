"""Figures, animations and ParaView files of a neural fluid run (:class:`insr.fluids.FluidStepper`)."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def field_images(stepper, state, resolution: int = 128) -> dict:
    """Vorticity ω = ∂ₓv − ∂ᵧu, speed |u| (and density) on the ``resolution``² cell
    centres of the domain, as arrays indexed ``[ix, iy]``."""
    pts = stepper.domain.cell_centres(resolution)
    u, _, w = stepper.diagnostics(state, pts)
    shape = (resolution, resolution)
    out = {"vorticity": w.reshape(shape), "speed": np.linalg.norm(u, axis=1).reshape(shape)}
    if stepper.has_density:
        out["density"] = stepper.evaluate(state, pts)[:, 3].reshape(shape)
    return out


_PANELS = {"vorticity": ("RdBu_r", "vorticity ω"), "speed": ("viridis", "speed |u|"),
           "density": ("magma", "density ρ")}


def _limits(images: list[dict]) -> dict:
    lim = {}
    for name in images[0]:
        hi = max(float(np.max(np.abs(im[name]))) for im in images) or 1.0
        lim[name] = (-hi, hi) if name == "vorticity" else (min(0.0, min(float(im[name].min()) for im in images)), hi)
    return lim


def _draw(axes, images: dict, limits: dict, extent, title_suffix: str = "", colorbars: bool = True):
    """One panel per field, axes in the domain's (nondimensional) units, a colour bar each
    (drawn once: the panels of an animation keep theirs and only their images change)."""
    for ax, (name, img) in zip(axes, images.items()):
        cmap, label = _PANELS[name]
        for im in ax.images:
            im.remove()
        artist = ax.imshow(img.T, origin="lower", extent=extent, cmap=cmap, vmin=limits[name][0],
                           vmax=limits[name][1], interpolation="nearest")
        ax.set_title(label + title_suffix, fontsize=9)
        ax.set_xlabel("x", fontsize=8)
        ax.set_ylabel("y", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.locator_params(nbins=4)  # labels that do not run into each other
        if colorbars:
            ax.figure.colorbar(artist, ax=ax, fraction=0.046, pad=0.04).ax.tick_params(labelsize=7)


def write_fluid_paraview(stepper, traj, run_dir: Path, *, resolution: int = 128) -> Path:
    """``paraview/fluid.pvd``: one ``.vti`` image per saved step on ``resolution``² nodes
    spanning the domain, with ``velocity`` (u, v, 0), ``pressure``, ``vorticity``,
    ``divergence`` (and ``density``)."""
    from insr.io.paraview import write_image_data, write_pvd

    d = stepper.domain
    axes = [np.linspace(d.lo[i], d.hi[i], resolution) for i in range(2)]
    gx, gy = np.meshgrid(*axes, indexing="ij")
    pts = np.stack([gx.ravel(), gy.ravel()], axis=1).astype(np.float32)
    shape = (resolution, resolution)
    pv = Path(run_dir) / "paraview"
    pv.mkdir(parents=True, exist_ok=True)
    entries = []
    for step, t, state in zip(traj.steps, traj.ts, traj.states):
        u, div, vort = stepper.diagnostics(state, pts)
        vals = stepper.evaluate(state, pts)
        data = {"velocity": u.reshape(shape + (2,)), "pressure": vals[:, 2].reshape(shape),
                "vorticity": vort.reshape(shape), "divergence": div.reshape(shape)}
        if stepper.has_density:
            data["density"] = vals[:, 3].reshape(shape)
        name = f"step_{step:06d}.vti"
        write_image_data(pv / name, d.lo, d.hi, shape, data)
        entries.append((float(t), name))
    return write_pvd(pv / "fluid.pvd", entries)


def write_fluid_outputs(stepper, traj, run_dir: Path, plot_times=None, *, resolution: int = 128,
                        fps: int = 10) -> list[Path]:
    """``snapshots.png`` (one row per time in ``plot_times``, nearest saved step; first and
    last saved steps by default; columns vorticity, speed[, density]),
    ``animation.mp4`` (GIF without ffmpeg) over all saved steps, same colour limits, and
    the ParaView series ``paraview/fluid.pvd`` (:func:`write_fluid_paraview`)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from insr.viz.animate import write_animation
    from insr.viz.plots1d import distinct_steps

    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    if not traj.states:
        return []
    images = [field_images(stepper, s, resolution) for s in traj.states]
    limits = _limits(images)
    d = stepper.domain
    extent = (d.lo[0], d.hi[0], d.lo[1], d.hi[1])
    ncol = len(images[0])

    rows = distinct_steps(traj, plot_times)
    fig, axes = plt.subplots(len(rows), ncol, figsize=(3.6 * ncol, 3.2 * len(rows)), squeeze=False)
    for r, i in enumerate(rows):
        _draw(axes[r], images[i], limits, extent, f", t = {traj.ts[i]:.3g}")
    fig.tight_layout()
    snap = run_dir / "snapshots.png"
    fig.savefig(snap, dpi=100)
    plt.close(fig)

    fig, axes = plt.subplots(1, ncol, figsize=(3.6 * ncol, 3.4), dpi=80, squeeze=False)
    frames = []
    for i, img in enumerate(images):
        _draw(axes[0], img, limits, extent, f", t = {traj.ts[i]:.3g}", colorbars=i == 0)
        if i == 0:
            fig.tight_layout()
        fig.canvas.draw()
        frames.append(np.asarray(fig.canvas.buffer_rgba())[..., :3].copy())
    plt.close(fig)
    return [snap, write_animation(frames, run_dir / "animation", fps=fps),
            write_fluid_paraview(stepper, traj, run_dir, resolution=resolution)]
