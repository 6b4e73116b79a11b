"""Write a list of RGB frames as MP4 (imageio-ffmpeg), falling back to GIF."""

from __future__ import annotations

import warnings
from pathlib import Path

import imageio.v2 as imageio
import numpy as np


def _even(frame: np.ndarray) -> np.ndarray:
    # H.264 with yuv420p needs even width and height.
    h, w = frame.shape[:2]
    return frame[: h - h % 2, : w - w % 2]


def write_animation(frames, path_stem: Path, fps: int = 20) -> Path:
    """Write ``frames`` to ``path_stem.mp4``; if ffmpeg is not available, to ``path_stem.gif``."""
    path_stem = Path(path_stem)
    try:
        path = path_stem.with_suffix(".mp4")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            imageio.mimsave(path, [_even(f) for f in frames], fps=fps, macro_block_size=1)
        return path
    except Exception as exc:  # ffmpeg missing or failing: GIF needs no external binary
        path = path_stem.with_suffix(".gif")
        imageio.mimsave(path, frames, duration=1.0 / fps)
        warnings.warn(f"MP4 writing failed ({exc}); wrote {path.name} instead", stacklevel=2)
        return path
