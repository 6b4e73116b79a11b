"""Package hygiene: every module imports on its own, the registry knows every scenario."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import insr
from insr import registry

# Each module is imported first, alone, in a forked child of a process that has loaded only
# the third-party libraries: an import cycle between two insr modules fails there whichever
# module is imported first (in one interpreter the second import would find the first
# module already loaded and hide the cycle).
_CHECK = textwrap.dedent("""
    import importlib, os, pkgutil, sys, traceback
    import jax, numpy, scipy, equinox, optax, matplotlib  # loaded once, shared by the forks
    import insr as _pkg
    names = [m.name for m in pkgutil.walk_packages(_pkg.__path__, "insr.")]
    for k in [k for k in sys.modules if k == "insr" or k.startswith("insr.")]:
        del sys.modules[k]
    failed = []
    for name in names:
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(r)
            try:
                importlib.import_module(name)
                code = 0
            except BaseException:
                os.write(w, traceback.format_exc().splitlines()[-1].encode())
                code = 1
            os._exit(code)
        os.close(w)
        msg = os.read(r, 4096).decode()
        os.close(r)
        if os.waitpid(pid, 0)[1] != 0:
            failed.append(f"{name}: {msg}")
    print(len(names), "modules")
    print("\\n".join(failed))
    sys.exit(1 if failed else 0)
""")


def test_every_module_imports_alone_in_a_fresh_interpreter():
    out = subprocess.run([sys.executable, "-c", _CHECK], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr[-2000:]
    assert int(out.stdout.split()[0]) > 40  # the walk found the package's modules


def test_registry_lists_every_builtin_scenario_with_a_builder():
    known = registry.scenarios()
    assert {"advection1d", "heat1d", "taylor_green", "two_vortices", "elastic_collide_2d",
            "elastic_stretch_2d", "elastic_drop_3d"} <= set(known)
    for name, s in known.items():
        assert s.name == name and s.defaults["scenario"] == name and callable(s.build)


def test_a_user_scenario_registers_and_is_found(monkeypatch):
    base = registry.get("heat1d")
    mine = registry.Scenario("my_heat", "my copy", {**base.defaults, "scenario": "my_heat"}, base.build)
    monkeypatch.setattr(registry, "_user", {})
    registry.register(mine)
    assert registry.get("my_heat") is mine
    assert insr.registry.scenarios()["my_heat"] is mine


_BLAS = textwrap.dedent("""
    import os
    import insr
    from threadpoolctl import threadpool_info
    from insr.blas import single_threaded_blas
    assert "OPENBLAS_NUM_THREADS" not in os.environ, "import insr changed the environment"
    with single_threaded_blas():
        inside = {i["filepath"]: i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"}
    after = {i["filepath"]: i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"}
    print(len(inside), max(inside.values()), max(after.values()))
""")


def test_import_leaves_the_environment_alone_and_runs_limit_blas_threads():
    env = {k: v for k, v in os.environ.items() if k not in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS",
                                                           "MKL_NUM_THREADS")}
    out = subprocess.run([sys.executable, "-c", _BLAS], capture_output=True, text=True, timeout=120, env=env)
    assert out.returncode == 0, out.stderr[-2000:]
    libs, inside, after = map(int, out.stdout.split())
    assert libs >= 1 and inside == 1
    if (os.cpu_count() or 1) > 1:
        assert after > 1  # restored to OpenBLAS's own default (one per core) afterwards


def test_every_scenarios_defaults_round_trip_through_the_written_toml():
    import tomllib

    from insr.config import to_toml

    for name, s in registry.scenarios().items():
        assert tomllib.loads(to_toml(s.defaults)) == s.defaults, name
