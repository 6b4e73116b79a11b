"""A ``field`` config table → a network: the CLI edge's one map from family names to classes.

``kind`` = ``"siren"`` (omega0, fast_sine: :class:`~insr.fields.Siren`), ``"fourier"``
(features, sigma, encoding: :class:`~insr.fields.FourierFeatures`) or ``"grid"`` (grid_levels,
grid_features, grid_base, grid_growth, grid_table, grid_interpolation:
:class:`~insr.fields.MultiresGrid`, on the box [lo, hi] its caller gives); width, depth and
precision apply to all (the MLP after the encoding).  Every network table of the built-in
scenarios (``field`` in :mod:`insr.scenarios` and :mod:`insr.elasticity.scenarios`;
``velocity``, ``pressure``, ``density`` in :mod:`insr.fluids.scenarios`) carries all of these
keys, so ``--set field.kind=...`` works the same everywhere; the values' ranges are checked by
:data:`insr.config.RULES` (``NETWORK_TABLES``).
"""

from __future__ import annotations

from collections.abc import Sequence

from insr.config import NETWORK_KINDS, ConfigError
from insr.fields import FourierFeatures, MultiresGrid, Siren

__all__ = ["FIELD_KIND_DEFAULTS", "network_from_table"]

# The family and its own settings (the SIREN's omega0 / fast_sine are per scenario).
FIELD_KIND_DEFAULTS = {"kind": "siren", "features": 32, "sigma": 1.0, "encoding": "gaussian",
                       "grid_levels": 8, "grid_features": 2, "grid_base": 8, "grid_growth": 1.5, "grid_table": 4096,
                       "grid_interpolation": "cubic"}


def network_from_table(table: dict, in_dim: int, out_dim: int, *, key, lo: Sequence[float],
                       hi: Sequence[float], name: str = "field"):
    """The network R^in_dim → R^out_dim of the config table ``table`` (named ``name`` in
    errors).  ``lo``/``hi``: the box the inputs lie in (a grid's extent; the other families
    ignore it).  A value the class refuses raises :class:`ConfigError` naming the table."""
    kind = table.get("kind", "siren")
    if kind not in NETWORK_KINDS:  # a table that did not come through insr.config.merge
        raise ConfigError(f"config key '{name}.kind' must be one of {', '.join(map(repr, NETWORK_KINDS))}, "
                          f"got {kind!r}")
    dtype = table.get("precision", "float32")
    try:
        if kind == "grid":
            return MultiresGrid(in_dim, out_dim, table["width"], table["depth"], lo=lo, hi=hi,
                                levels=table["grid_levels"], features=table["grid_features"],
                                base=table["grid_base"], growth=table["grid_growth"], table_size=table["grid_table"],
                                interpolation=table["grid_interpolation"], dtype=dtype, key=key)
        if kind == "fourier":
            return FourierFeatures(in_dim, out_dim, table["width"], table["depth"], features=table["features"],
                                   sigma=table["sigma"], encoding=table["encoding"], dtype=dtype, key=key)
        return Siren(in_dim, out_dim, table["width"], table["depth"], omega0=table["omega0"],
                     fast_sine=table["fast_sine"], dtype=dtype, key=key)
    except ValueError as exc:
        raise ConfigError(f"config table '{name}': {exc}") from None
