"""A one-line progress bar over time steps: step, t, loss, solver iterations, ETA."""

from __future__ import annotations

import sys
import time


def _fmt_seconds(s: float) -> str:
    s = int(round(s))
    h, rem = divmod(s, 3600)
    m, sec = divmod(rem, 60)
    return f"{h}:{m:02d}:{sec:02d}" if h else f"{m:d}:{sec:02d}"


class ProgressBar:
    """Writes ``\\r``-updated status lines to a stream (stderr by default)."""

    def __init__(self, total: int, *, start: int = 0, stream=None, width: int = 24, label: str = "insr"):
        self.total, self.start, self.width, self.label = total, start, width, label
        self.stream = stream or sys.stderr
        self.t0 = time.perf_counter()

    def update(self, step: int, t: float, info: dict, summary: dict | None = None) -> None:
        done = step - self.start
        elapsed = time.perf_counter() - self.t0
        eta = elapsed / done * (self.total - step) if done > 0 else float("nan")
        frac = step / self.total if self.total else 1.0
        bar = "#" * int(self.width * frac) + "-" * (self.width - int(self.width * frac))
        loss = info.get("loss", float("nan"))
        its = info.get("iterations", "")
        eta_s = _fmt_seconds(eta) if eta == eta else "?"
        # A flagged step (a loss jump) and the steps that missed their tolerance so far
        # are shown on the line itself: they must not go unseen until the end.
        flag = f" !{info['flag']}" if info.get("flag") else ""
        missed = f" missed={summary['missed_tolerance']}" if summary and summary.get("missed_tolerance") else ""
        self.stream.write(f"\r{self.label} [{bar}] step {step}/{self.total} t={t:.4g} loss={loss:.3e} "
                          f"it={its}{missed}{flag} ETA {eta_s}   ")
        if flag:
            self.stream.write("\n")  # keep the flagged step's line on screen
        self.stream.flush()

    def close(self) -> None:
        self.stream.write(f"\n{self.label}: done in {_fmt_seconds(time.perf_counter() - self.t0)}\n")
        self.stream.flush()
