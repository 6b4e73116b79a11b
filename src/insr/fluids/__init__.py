"""2D incompressible fluids (Euler / Navier–Stokes) with neural velocity, pressure and density fields.

See :class:`insr.fluids.stepper.FluidStepper` for the equations and the splitting; the
built-in scenarios (``taylor_green``, ``two_vortices``) are in :mod:`insr.fluids.scenarios`.
"""

from insr.fluids.stepper import (
    FLUID_INITIAL_FIT,
    FLUID_SUBSTEP,
    ChorinScheme,
    FluidStepper,
    hard_wall_mask,
    outward_normal,
    pressure_blocks,
)

__all__ = ["ChorinScheme", "FluidStepper", "FLUID_SUBSTEP", "FLUID_INITIAL_FIT", "pressure_blocks", "hard_wall_mask",
           "outward_normal"]
