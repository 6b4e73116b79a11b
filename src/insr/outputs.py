"""Figures and animations written into a run directory after a run."""

from __future__ import annotations

from pathlib import Path


def write_outputs(cfg: dict, traj, run_dir: Path) -> list[Path]:
    """Steppers that know how to draw themselves provide ``write_outputs(traj, run_dir, cfg)``;
    1D fields get snapshots against the exact solution and an animation; 2D scalar fields get
    field and error images."""
    writer = getattr(traj.stepper, "write_outputs", None)
    if writer is not None:
        return writer(traj, run_dir, cfg)
    if traj.stepper.dim == 1:
        from insr.viz.plots1d import animate, plot_snapshots

        return [plot_snapshots(traj, cfg.get("plot_times") or None, Path(run_dir) / "snapshots.png"),
                animate(traj, Path(run_dir) / "animation")]
    if traj.stepper.dim == 2 and len(traj.stepper.channel_names) == 1:
        from insr.viz.plots2d import plot_snapshots_2d

        return [plot_snapshots_2d(traj, cfg.get("plot_times") or None, Path(run_dir) / "snapshots.png")]
    return []
