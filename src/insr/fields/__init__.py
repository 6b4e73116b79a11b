"""Neural field families: small networks of space R^d → R^m."""

from insr.fields.divergence_free import DivergenceFree
from insr.fields.fourier import FourierFeatures
from insr.fields.multires_grid import MultiresGrid
from insr.fields.periodic import Periodic
from insr.fields.siren import Siren
from insr.fields.stack import Stack

__all__ = ["Siren", "FourierFeatures", "MultiresGrid", "Stack", "Periodic", "DivergenceFree"]
