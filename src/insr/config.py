"""Run configurations: nested dicts of plain values, checked against a scenario's defaults.

A scenario's default config is the schema: every key a user may set appears in
it, and its value's type is the type the key takes.  ``RULES`` adds the allowed
values of keys that need more than a type (positive step sizes, names from a
list).  Errors are :class:`ConfigError` with the dotted key and what is allowed;
the CLI prints them as one line and exits with status 2.
"""

from __future__ import annotations

import copy
import json
import math
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any


class ConfigError(ValueError):
    """A configuration value or key is not allowed; the message names it."""


def _positive(v):
    return v > 0, "a number > 0"


def _nonneg(v):
    return v >= 0, "a number ≥ 0"


def _at_least(n):
    return lambda v: (v >= n, f"an integer ≥ {n}")


def _choice(*options):
    return lambda v: (v in options, "one of " + ", ".join(repr(o) for o in options))


def _open_unit(v):
    return 0 < v < 1, "a number in (0, 1)"


MAX_STEPS = 10_000_000  # one saved file per save_every steps; more than this is a typo, not a run


def _steps(v):
    return 0 <= v <= MAX_STEPS, f"an integer in [0, {MAX_STEPS:,}]"


def _finite_number(v) -> bool:
    return not isinstance(v, bool) and isinstance(v, (int, float)) and math.isfinite(v)


def _times(v):
    return (all(_finite_number(x) and x >= 0 for x in v),
            "a list of finite times ≥ 0 (numbers; each within [0, steps·dt])")


# The keys of a network table (insr.field_tables) and their ranges.
NETWORK_TABLES = ("field", "velocity", "pressure", "density")
NETWORK_KINDS = ("siren", "fourier", "grid")
_NETWORK_RULES: dict[str, Callable[[Any], tuple[bool, str]]] = {
    "width": _at_least(1),
    "depth": _at_least(0),
    "omega0": _positive,
    "kind": _choice(*NETWORK_KINDS),
    "grid_levels": _at_least(1),
    "grid_features": _at_least(1),
    "grid_base": _at_least(1),
    "grid_growth": lambda v: (v >= 1, "a number ≥ 1"),
    "grid_table": _at_least(1),
    "grid_interpolation": _choice("cubic", "linear"),
    "features": _at_least(1),
    "sigma": _positive,
    "encoding": _choice("gaussian", "axis"),
}

# Rules by the last component of the dotted key, or by the full dotted key.
RULES: dict[str, Callable[[Any], tuple[bool, str]]] = {
    "dt": _positive,
    "steps": _steps,
    "samples": _at_least(1),
    "boundary_samples": _at_least(1),
    "pressure_max_iters": _at_least(0),
    "pressure_samples": _at_least(0),
    "boundary_weight": _nonneg,
    "divergence_weight": _nonneg,
    "init_divergence_weight": _nonneg,
    "save_every": _at_least(1),
    # every network table (insr.field_tables): the single-field and elasticity scenarios' field,
    # the fluids' velocity, pressure and density
    **{f"{table}.{key}": rule for table in NETWORK_TABLES for key, rule in _NETWORK_RULES.items()},
    "integrator": _choice("explicit_euler", "implicit_euler", "midpoint", "heun", "ssprk3", "rk4", "gauss4",
                          "bdf2"),
    "solver": _choice("lm", "adam"),
    "sampling": _choice("uniform", "stratified", "jittered", "sobol", "halton"),
    "max_iters": _at_least(1),
    "jacobian_every": _at_least(1),
    "ftol": _nonneg,
    "gtol": _nonneg,
    "atol": _nonneg,
    "tau": _positive,
    "rtol": lambda v: (0 <= v < 1, "a number in [0, 1)"),
    "geodesic": _nonneg,
    "init.tolerance": _positive,
    "linear_dtype": _choice("float32", "float64"),
    "linear_solver": _choice("cholesky", "cg"),
    "cg_max_iters": _at_least(1),
    "cg_rtol": _open_unit,
    "cg_chunk": _at_least(1),
    "cg_precondition_every": _at_least(0),
    "cg_curvature_fraction": lambda v: (0 < v <= 1, "a number in (0, 1]"),
    "adam.lr": _positive,
    "adam.factor": _open_unit,
    "adam.patience": _at_least(0),
    "adam.min_lr": _nonneg,
    "adam.threshold": _nonneg,
    "precision": _choice("float32", "float64"),
    "contact_band.width": lambda v: (v >= 0, "a length ≥ 0 (0: uniform points)"),
    "contact_band.share": _open_unit,
    "contact_band.pool": _at_least(2),
    "contact_points.pool": _at_least(0),
    "contact_points.kept": _at_least(1),
    "momentum.points": _at_least(0),
    "penetration_alarm": lambda v: (v >= 0, "a fraction ≥ 0 of the body's smallest extent (0: off)"),
    "adaptive.share": lambda v: (0 <= v < 1, "a number in [0, 1) (0: uniform points)"),
    "adaptive.pool": _at_least(2),
    "adaptive.power": _positive,
    "plot_times": _times,
}


def _check_value(key: str, value, default):
    """Coerce ``value`` to the type of ``default`` and apply the rules for ``key``."""
    kind = type(default)
    if kind is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"config key '{key}' must be true or false, got {value!r}")
    elif kind is int:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or (
                isinstance(value, float) and not value.is_integer()):
            raise ConfigError(f"config key '{key}' must be an integer, got {value!r}")
        value = int(value)
    elif kind is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise ConfigError(f"config key '{key}' must be a finite number, got {value!r}")
        value = float(value)
    elif kind is str:
        if not isinstance(value, str):
            raise ConfigError(f"config key '{key}' must be a string, got {value!r}")
    elif kind is list:
        if not isinstance(value, list):
            raise ConfigError(f"config key '{key}' must be a list, got {value!r}")
    rule = RULES.get(key) or RULES.get(key.rsplit(".", 1)[-1])
    if rule is not None:
        ok, allowed = rule(value)
        if not ok:
            raise ConfigError(f"config key '{key}' must be {allowed}, got {value!r}")
    return value


def check_times_in_run(cfg: dict, key: str = "plot_times") -> None:
    """``cfg[key]`` (a list of times) lies within the run's [0, steps·dt]; ConfigError otherwise."""
    times, steps, dt = cfg.get(key), cfg.get("steps"), cfg.get("dt")
    if not times or not isinstance(steps, int) or not isinstance(dt, (int, float)):
        return
    end = steps * dt
    outside = [t for t in times if not (_finite_number(t) and -1e-12 <= t <= end * (1 + 1e-9) + 1e-12)]
    if outside:
        raise ConfigError(f"config key '{key}' must be a list of times within [0, steps·dt] = [0, {end:g}] "
                          f"(steps={steps}, dt={dt:g}), got {times!r}")


def merge(defaults: dict, updates: dict, prefix: str = "") -> dict:
    """``defaults`` updated by ``updates``; unknown keys and bad values raise ConfigError."""
    out = copy.deepcopy(defaults)
    for key, value in updates.items():
        dotted = f"{prefix}{key}"
        if key not in defaults:
            allowed = ", ".join(sorted(defaults))
            where = f"in '{prefix[:-1]}'" if prefix else "at the top level"
            raise ConfigError(f"unknown config key '{dotted}'; allowed keys {where}: {allowed}")
        if isinstance(defaults[key], dict):
            if not isinstance(value, dict):
                raise ConfigError(f"config key '{dotted}' is a table; set its entries, e.g. '{dotted}.<name>=…'")
            out[key] = merge(defaults[key], value, dotted + ".")
        else:
            out[key] = _check_value(dotted, value, defaults[key])
    return out


def parse_value(text: str):
    """Parse a ``--set`` value as TOML (numbers, booleans, lists, quoted strings), else a bare string."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def parse_overrides(items: list[str]) -> dict:
    """``["a.b=1", "c=x"]`` → ``{"a": {"b": 1}, "c": "x"}``."""
    out: dict = {}
    for item in items:
        if "=" not in item:
            raise ConfigError(f"--set expects key=value, got {item!r}")
        key, text = item.split("=", 1)
        key = key.strip()
        if not key:
            raise ConfigError(f"--set expects key=value, got {item!r}")
        node = out
        parts = key.split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"--set: '{key}' conflicts with another --set")
        node[parts[-1]] = parse_value(text.strip())
    return out


def load_file(path: Path) -> dict:
    """Read a TOML or JSON config file."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {path} does not exist")
    try:
        if path.suffix == ".json":
            return json.loads(path.read_text())
        return tomllib.loads(path.read_text())
    except (tomllib.TOMLDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(f"config file {path} is not valid {path.suffix[1:].upper()}: {exc}") from None


def to_toml(config: dict) -> str:
    """A nested dict of plain values as TOML text (tomli-w: top-level keys first, then tables)."""
    import tomli_w

    return tomli_w.dumps(config)


def needs_x64(cfg: dict) -> bool:
    """Whether a resolved config asks for 64-bit JAX: a float64 field (``field.precision``) or
    float64 normal equations (``lm.linear_dtype`` / ``init.linear_dtype``)."""
    return "float64" in (cfg.get("lm", {}).get("linear_dtype"), cfg.get("init", {}).get("linear_dtype"),
                         cfg.get("field", {}).get("precision"))
