"""insr: time-dependent PDEs with implicit neural spatial representations.

Each field is a small neural network of space; time advances with classical
integrators by re-solving for the weights each step (Chen et al., ICML 2023).
"""

from insr.simulate import SaveAt, SolveFailure, Trajectory, simulate, solve

__all__ = ["simulate", "solve", "SaveAt", "Trajectory", "SolveFailure"]
__version__ = "0.1.0"
