"""Neural elastodynamics (Chen et al., ICML 2023, Sec. 5.3)."""

from insr.elasticity.stepper import (
    DIRICHLET_MODES,
    ENERGIES,
    LBFGS,
    ElasticStepper,
    Material,
    PlaneHandle,
    RestShape,
    VariationalEulerScheme,
)

__all__ = ["ElasticStepper", "VariationalEulerScheme", "Material",
           "RestShape", "PlaneHandle", "LBFGS", "ENERGIES", "DIRICHLET_MODES"]
