"""Neural field families: small networks of space R^d → R^m."""

from insr.fields.siren import Siren

__all__ = ["Siren"]
