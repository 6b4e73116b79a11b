"""``insr reproduce``: the paper's tables and figures by one command, with the classical
solvers beside ours (:func:`reproduce`, :mod:`insr.reproduce.report`)."""

from insr.reproduce.core import PROFILES, Context, Example, PaperRow
from insr.reproduce.runner import ReproduceError, all_examples, reproduce

__all__ = ["PROFILES", "Context", "Example", "PaperRow", "ReproduceError", "all_examples", "reproduce"]
