"""PDEs: one module per problem."""

from insr.problems.advection import Advection1D
from insr.problems.base import EvolutionProblem
from insr.problems.heat import Heat1D

__all__ = ["EvolutionProblem", "Advection1D", "Heat1D"]
