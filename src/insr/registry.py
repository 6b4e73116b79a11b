"""Scenario registry: a name → :class:`Scenario` (defaults + a builder).

A leaf module: it imports none of the physics.  The modules that define scenarios
(:data:`PROVIDERS`, each exposing a ``SCENARIOS`` list) are imported on the first lookup,
so every module of the package can be imported on its own, in any order.  A user adds a
scenario with :func:`register` (it then shows in ``insr list`` and runs with ``insr run``
from the same process, e.g. a script that calls :func:`insr.cli.main`).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass

from insr.config import ConfigError

__all__ = ["PROVIDERS", "Scenario", "get", "register", "scenarios"]

#: Modules whose ``SCENARIOS`` list holds the built-in scenarios, in listing order.
PROVIDERS = ("insr.scenarios", "insr.fluids.scenarios", "insr.elasticity.scenarios")


@dataclass(frozen=True)
class Scenario:
    """A named problem setup: ``defaults`` is the full config schema with the scenario's
    values; ``build(config)`` validates a config and returns the stepper."""

    name: str
    summary: str
    defaults: dict
    build: Callable[[dict], object]


_user: dict[str, Scenario] = {}


def register(scenario: Scenario) -> None:
    """Add (or replace) a user scenario under ``scenario.name``."""
    if not isinstance(scenario, Scenario):
        raise TypeError(f"register expects a Scenario, got {type(scenario).__name__}")
    _user[scenario.name] = scenario


def scenarios() -> dict[str, Scenario]:
    """Every scenario by name: the built-in ones, then those added by :func:`register`."""
    out: dict[str, Scenario] = {}
    for module in PROVIDERS:
        for s in importlib.import_module(module).SCENARIOS:
            out[s.name] = s
    out.update(_user)
    return out


def get(name: str) -> Scenario:
    """The scenario called ``name``; a :class:`~insr.config.ConfigError` listing the names otherwise."""
    known = scenarios()
    if name not in known:
        raise ConfigError(f"unknown scenario {name!r}; available: {', '.join(sorted(known))} (see `insr list`)")
    return known[name]
