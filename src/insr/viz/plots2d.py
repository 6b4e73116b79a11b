"""Figures of 2D scalar field runs: the field and its error against the exact (or reference)
solution at several times, on a grid, with colour bars and labelled axes."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from insr.viz.plots1d import distinct_steps  # noqa: E402


def plot_snapshots_2d(traj, times, path: Path, n: int = 128) -> Path:
    """Top row: u at the saved steps nearest ``times``; bottom row (when an exact or reference
    solution is known): |u − u_ref| on the same n² grid, each panel with its own colour bar."""
    stepper = traj.stepper
    dom = stepper.problem.domain
    axes_1d = [np.linspace(lo, hi, n) for lo, hi in zip(dom.lo, dom.hi)]
    gx, gy = np.meshgrid(*axes_1d, indexing="ij")
    pts = np.stack([gx.ravel(), gy.ravel()], axis=-1)
    steps = distinct_steps(traj, times)
    has_target = stepper.target(pts[:1], traj.ts[0]) is not None
    rows = 2 if has_target else 1
    fig, axs = plt.subplots(rows, len(steps), figsize=(3.2 * len(steps), 2.9 * rows), squeeze=False)
    extent = (dom.lo[0], dom.hi[0], dom.lo[1], dom.hi[1])
    for j, i in enumerate(steps):
        t = traj.ts[i]
        u = stepper.evaluate(traj.states[i], pts, t)[:, 0].reshape(n, n)
        panels = [(u, f"u, t = {t:.3g}", "viridis")]
        if has_target:
            err = np.abs(u - stepper.target(pts, t)[:, 0].reshape(n, n))
            panels.append((err, f"|u − u_ref|, t = {t:.3g}", "magma"))
        for r, (img, title, cmap) in enumerate(panels):
            ax = axs[r, j]
            im = ax.imshow(img.T, origin="lower", extent=extent, cmap=cmap, aspect="equal")
            fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04, format="%.1e" if r else None)
            ax.set_title(title, fontsize=9)
            ax.set_xlabel("x")
            ax.set_ylabel("y")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
