"""Figures and animations of 1D runs: the field at several times against the exact solution."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from insr.viz.animate import write_animation  # noqa: E402


def _curves(traj, x, t):
    i = traj.nearest(t)
    ts = traj.ts[i]
    u = traj.stepper.evaluate(traj.states[i], x, ts)[:, 0]
    ue = traj.stepper.target(x, ts)
    ue = None if ue is None else ue[:, 0]
    return ts, u, ue


def _target_name(traj) -> str:
    return "exact" if traj.stepper.problem.has_exact else "reference"


def distinct_steps(traj, times) -> list[int]:
    """Indices of the saved steps nearest ``times`` (first and last if none), each once, in order."""
    return sorted({traj.nearest(t) for t in (times or [traj.ts[0], traj.ts[-1]])})


def plot_snapshots(traj, times, path: Path, n: int = 1000) -> Path:
    """One panel, the field at the saved steps nearest ``times`` (solid) and the exact solution
    (dashed); times that map to the same saved step (e.g. beyond a shortened run) are drawn once."""
    dom = traj.stepper.problem.domain
    x = np.linspace(dom.lo[0], dom.hi[0], n, dtype=np.float32)[:, None]
    fig, ax = plt.subplots(figsize=(7, 3.5))
    for i in distinct_steps(traj, times):
        ts, u, ue = _curves(traj, x, traj.ts[i])
        line, = ax.plot(x[:, 0], u, lw=1.6, label=f"insr t={ts:.3g}")
        if ue is not None:
            ax.plot(x[:, 0], ue, "--", color=line.get_color(), lw=1.0, label=f"{_target_name(traj)} t={ts:.3g}")
    ax.set_xlabel("x")
    ax.set_ylabel("u")
    ax.legend(fontsize=7, ncol=2)
    ax.set_title(f"neural field (solid) vs {_target_name(traj)} (dashed)")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def animate(traj, path_stem: Path, n: int = 600, fps: int = 20) -> Path:
    """An MP4 (GIF if ffmpeg is missing) of the field over the saved steps."""
    dom = traj.stepper.problem.domain
    x = np.linspace(dom.lo[0], dom.hi[0], n, dtype=np.float32)[:, None]
    fig, ax = plt.subplots(figsize=(6, 3), dpi=80)
    frames = []
    curves = [_curves(traj, x, t) for t in traj.ts]
    lo = min(min(u.min(), ue.min() if ue is not None else u.min()) for _, u, ue in curves)
    hi = max(max(u.max(), ue.max() if ue is not None else u.max()) for _, u, ue in curves)
    pad = 0.05 * (hi - lo + 1e-12)
    for ts, u, ue in curves:
        ax.clear()
        if ue is not None:
            ax.plot(x[:, 0], ue, "k--", lw=1.0, label="exact")
        ax.plot(x[:, 0], u, lw=1.6, label="insr")
        ax.set_ylim(lo - pad, hi + pad)
        ax.set_title(f"t = {ts:.3f}")
        ax.legend(loc="upper right", fontsize=7)
        fig.canvas.draw()
        frames.append(np.asarray(fig.canvas.buffer_rgba())[..., :3].copy())
    plt.close(fig)
    return write_animation(frames, path_stem, fps=fps)
