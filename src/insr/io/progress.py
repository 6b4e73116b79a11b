"""A progress bar over time steps (tqdm): step, t, loss, solver iterations, missed steps, ETA.

A flagged step (a loss jump) is also written as a line of its own above the bar, so it stays
on screen after the bar moves on.
"""

from __future__ import annotations

import sys

from tqdm.auto import tqdm


class ProgressBar:
    """Progress over ``total`` steps, starting at ``start`` (a resumed run), on ``stream``
    (stderr by default)."""

    def __init__(self, total: int, *, start: int = 0, stream=None, label: str = "insr"):
        self.label = label
        self.stream = stream or sys.stderr
        self._bar = tqdm(total=total, initial=start, file=self.stream, desc=label, unit="step",
                         dynamic_ncols=True, leave=True)

    def update(self, step: int, t: float, info: dict, summary: dict | None = None) -> None:
        loss = info.get("loss", float("nan"))
        its = info.get("iterations", "")
        # The steps that missed their tolerance so far are shown on the bar itself: they
        # must not go unseen until the end.
        missed = f" missed={summary['missed_tolerance']}" if summary and summary.get("missed_tolerance") else ""
        flag = info.get("flag") or ""
        self._bar.set_postfix_str(f"t={t:.4g} loss={loss:.3e} it={its}{missed}{' !' + flag if flag else ''}",
                                  refresh=False)
        self._bar.update(step - self._bar.n)
        if flag:
            self._bar.write(f"{self.label}: step {step} (t={t:.4g}) !{flag}: loss={loss:.3e}{missed}",
                            file=self.stream)

    def close(self) -> None:
        self._bar.close()
