"""Per-step solvers for the least-squares problems of each time step."""

from insr.solvers.adam_plateau import AdamPlateau
from insr.solvers.lbfgs import LBFGS
from insr.solvers.levenberg_marquardt import LevenbergMarquardt, SolveStats
from insr.solvers.matrix_free import MatrixFreeLM
from insr.solvers.objective import Block, block_losses, loss_value, residual_vector, sample_blocks

__all__ = ["LevenbergMarquardt", "MatrixFreeLM", "AdamPlateau", "LBFGS", "SolveStats", "Block", "sample_blocks",
           "residual_vector", "loss_value", "block_losses"]
