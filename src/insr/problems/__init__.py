"""PDEs: one module per problem."""

from insr.problems.advection import Advection1D
from insr.problems.allen_cahn import AllenCahn1D
from insr.problems.base import EvolutionProblem
from insr.problems.heat import Heat1D
from insr.problems.heat_periodic import Heat2DPeriodic

__all__ = ["EvolutionProblem", "Advection1D", "Heat1D", "Heat2DPeriodic", "AllenCahn1D"]
