"""The ``insr`` command line: run, resume, eval, reproduce, list.

Bad input (unknown scenario or key, bad values, missing run directories, points
of the wrong shape) prints one line ``insr: error: …`` and exits with status 2.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import math
import os
import shutil
import sys
import time
from pathlib import Path

import numpy as np

from insr import config as cfgmod
from insr.blas import single_threaded_blas
from insr.config import ConfigError
from insr.io.checkpoint import CheckpointError, atomic_write_text
from insr.simulate import SolveFailure

CONFIG_JSON = "config.json"
CONFIG_TOML = "config.toml"


class UsageError(Exception):
    """Bad command-line input; printed as one line, exit status 2."""


def resolve_config(target: str, overrides: list[str]) -> dict:
    """Defaults of the scenario named by ``target`` (or by the file's ``scenario`` key), then the file, then --set."""
    from insr import registry

    path, data = Path(target), {}
    if path.suffix in (".toml", ".json") or path.is_file():
        data = cfgmod.load_file(path)
        name = data.get("scenario")
        if not isinstance(name, str):
            raise ConfigError(f"config file {path} must name its scenario: scenario = \"<name>\" "
                              f"(one of {', '.join(sorted(registry.scenarios()))})")
        cfg = cfgmod.merge(registry.get(name).defaults, data)
    else:
        cfg = dict(registry.get(target).defaults)
    updates = cfgmod.parse_overrides(overrides)
    if "scenario" in updates:
        raise ConfigError("config key 'scenario' cannot be changed with --set; run that scenario instead")
    cfg = cfgmod.merge(cfg, updates)
    if "plot_times" in data or "plot_times" in updates:
        cfgmod.check_times_in_run(cfg)  # times the user chose (defaults may outlast a shortened run)
    return cfg


# --------------------------------------------------------------------------------------
# checks before a run starts: nothing is built and no directory is made until they pass
# --------------------------------------------------------------------------------------
MAX_PARAMS = 100_000_000  # per network; the paper's largest has ~14k
FALLBACK_MEMORY = 8 << 30


def _size(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if n < 1024 or unit == "PiB":
            return f"{n:.3g} {unit}"
        n /= 1024
    return f"{n:.3g} PiB"


def siren_params(in_dim: int, out_dim: int, width: int, depth: int) -> int:
    """Parameter count of :class:`insr.fields.Siren` (first layer, ``depth`` hidden layers, output)."""
    return in_dim * width + width + depth * (width * width + width) + width * out_dim + out_dim


def table_params(table: dict, in_dim: int, out_dim: int) -> int:
    """Parameter count of the network a config table builds: a SIREN, a Fourier-feature MLP
    (``kind = "fourier"``, whose first layer reads the 2·features embedding) or a multiresolution
    grid (``kind = "grid"``: its tables and MLP)."""
    w, depth = int(table["width"]), int(table["depth"])
    if table.get("kind", "siren") == "fourier":
        return siren_params(2 * int(table["features"]), out_dim, w, depth)
    if table.get("kind", "siren") == "grid":
        from insr.fields.multires_grid import multires_param_count

        return multires_param_count(in_dim, out_dim, w, depth, levels=int(table["grid_levels"]),
                                    features=int(table["grid_features"]), base=int(table["grid_base"]),
                                    growth=float(table["grid_growth"]), table_size=int(table["grid_table"]))
    return siren_params(in_dim, out_dim, w, depth)


def _networks(cfg: dict) -> list[tuple[str, int, int]]:
    """``(config table, in_dim, out_dim)`` of every SIREN the scenario of ``cfg`` builds."""
    nets = []
    if "field" in cfg:
        if "geometry" in cfg:  # elasticity: φ: R^d → R^d; a mesh file may be 2D or 3D (take 3)
            g = cfg["geometry"]
            d = len(g.get("lo") or ()) if g.get("shape") == "box" else 3
            d = d if d in (2, 3) else 3
        else:  # the field scenarios (heat1d, advection1d) are 1D scalar fields
            d = 1
        nets.append(("field", d, d))
    for name, dims in (("velocity", (2, 2)), ("pressure", (2, 1)), ("density", (2, 1))):
        if isinstance(cfg.get(name), dict) and "width" in cfg[name]:
            nets.append((name, *dims))
    return nets


def _memory_limit() -> int:
    try:
        return int(os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):
        return FALLBACK_MEMORY


def check_problem_size(cfg: dict) -> int:
    """Refuse networks too large to build or to solve (ConfigError naming the key); returns
    the total parameter count (the field state is 4 bytes per parameter)."""
    uses_lm = cfg.get("optimizer", "lm") == "lm"  # elasticity's optimizer; elsewhere the initial fit is LM
    ldt = 8 if "float64" in (cfg.get("lm", {}).get("linear_dtype"), cfg.get("init", {}).get("linear_dtype")) else 4
    points = max(int(cfg.get("samples", 1)), int(cfg.get("init_samples", 0)),
                 int(cfg.get("pressure_samples", 0))) + int(cfg.get("boundary_samples", 0))
    limit = _memory_limit()
    total = 0
    for name, d_in, d_out in _networks(cfg):
        w, depth = int(cfg[name]["width"]), int(cfg[name]["depth"])
        P = table_params(cfg[name], d_in, d_out)
        total += P
        what = f"config keys '{name}.width' = {w} and '{name}.depth' = {depth} make a network of {P:,} parameters"
        if cfg[name].get("kind", "siren") == "fourier":
            what = what.replace(" make", f" (with '{name}.features' = {cfg[name]['features']}) make")
        if P > MAX_PARAMS:
            raise ConfigError(f"{what}, more than the {MAX_PARAMS:,} allowed; lower {name}.width or {name}.depth")
        N = points * d_out
        if uses_lm and cfg.get("lm", {}).get("linear_solver", "cholesky") == "cg":
            chunk = int(cfg["lm"].get("cg_chunk", 256))
            need = 3 * chunk * d_out * P * ldt + 16 * P * ldt + 8 * 4 * points * w * (depth + 2)
            how = (f"its matrix-free Levenberg–Marquardt solve at {points:,} points needs about {_size(need)} "
                   f"(a {chunk}-point Jacobian chunk + the network's activations)")
        elif uses_lm:
            need = 3 * P * P * ldt + N * P * ldt
            how = (f"its Levenberg–Marquardt solve at {points:,} points needs about {_size(need)} "
                   f"(3 P×P normal matrices + the {N:,}×P Jacobian)")
        else:
            need = 4 * 4 * P + 8 * 4 * points * w * (depth + 2)
            how = f"its solve at {points:,} points needs about {_size(need)}"
        if need > limit:
            raise ConfigError(f"{what}; {how}, more than this machine's {_size(limit)} of memory; "
                              f"lower {name}.width / {name}.depth or samples (now {cfg.get('samples')})")
    return total


def _existing_ancestor(path: Path) -> Path:
    path = Path(os.path.abspath(path))
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def check_disk(cfg: dict, run_dir: Path, params: int) -> None:
    """Refuse a run whose saved fields (one file per save_every steps) cannot fit on the disk."""
    steps, every = int(cfg["steps"]), int(cfg.get("save_every", 1))
    files = steps // every + 2  # step 0, every save_every-th step, the last step; checkpoint.npz
    per_file = 4 * params + 1024  # the float32 weights (at least) + the .npz headers
    need = files * per_file
    where = _existing_ancestor(run_dir)
    try:
        usage = shutil.disk_usage(where)
    except OSError:
        return
    if usage.total == 0:  # a pseudo file system (/proc): no size to go by; mkdir will say what is wrong
        return
    free = usage.free
    if need > free:
        raise ConfigError(f"config keys 'steps' = {steps} and 'save_every' = {every} save {files:,} field files of "
                          f"at least {_size(per_file)}, about {_size(need)} in all, more than the {_size(free)} "
                          f"free on {where}; raise save_every or lower steps")


def check_out_dir(run_dir: Path) -> None:
    """``run_dir`` is a directory that exists or can be made (checked before anything is made)."""
    if run_dir.exists() and not run_dir.is_dir():
        raise UsageError(f"--out {run_dir} is an existing file, not a directory; choose another path")
    where = _existing_ancestor(run_dir)
    if not where.is_dir():
        raise UsageError(f"cannot create run directory {run_dir}: {where} is a file, not a directory")
    if not os.access(where, os.W_OK | os.X_OK):
        raise UsageError(f"cannot create run directory {run_dir}: {where} is not writable")


def _os_error(exc: OSError, doing: str) -> UsageError:
    where = f" {exc.filename}" if exc.filename else ""
    return UsageError(f"{doing}:{where}: {exc.strerror or exc}")


@contextlib.contextmanager
def _holding(run_dir: Path):
    """The run directory's lock for the duration (see :mod:`insr.io.lock`); a second run is
    refused, and failed file writes (disk full, permissions) are one-line errors."""
    from insr.io.lock import RunDirLockedError, run_dir_lock

    try:
        with run_dir_lock(run_dir):
            yield
    except RunDirLockedError as exc:
        raise UsageError(str(exc)) from None
    except OSError as exc:
        if exc.filename is None:
            raise
        raise _os_error(exc, f"cannot write in run directory {run_dir}") from None


def build_stepper(cfg: dict):
    """The scenario's stepper for ``cfg``; turns on 64-bit JAX first if the config asks for float64 solves."""
    import jax

    from insr import registry

    if cfgmod.needs_x64(cfg):
        jax.config.update("jax_enable_x64", True)  # the CLI is the edge where global JAX settings belong
    return registry.get(cfg["scenario"]).build(cfg)


def _execute(cfg: dict, run_dir: Path, *, resume: bool, quiet: bool, stepper=None) -> None:
    import jax

    from insr.outputs import write_outputs
    from insr.simulate import SaveAt, alarmed, simulate, summary_line

    stepper = build_stepper(cfg) if stepper is None else stepper
    if not quiet:
        print(f"insr: {cfg['scenario']} → {run_dir}  ({stepper.state_bytes()} bytes of field state, "
              f"{cfg['steps']} steps of dt={cfg['dt']})", file=sys.stderr)
    t0 = time.perf_counter()
    traj = simulate(stepper, dt=cfg["dt"], steps=cfg["steps"], key=jax.random.PRNGKey(cfg["seed"]),
                    saveat=SaveAt(cfg["save_every"]), run_dir=run_dir, resume=resume, progress=not quiet)
    outputs = write_outputs(cfg, traj, run_dir)
    if not quiet:
        last = traj.metrics[-1]
        summary = ", ".join(f"{k}={last[k]:.4g}" for k in ("mae", "rel_l2") if k in last)
        if "spacetime_rel_l2" in traj.summary:
            summary += f", space–time rel_l2={traj.summary['spacetime_rel_l2']:.4g}"
        final = f"; final {summary}" if summary else ""  # (elasticity has no exact solution to compare with)
        print(f"insr: finished in {time.perf_counter() - t0:.1f} s{final}", file=sys.stderr)
        print(f"insr: {summary_line(traj.summary)}", file=sys.stderr)
        for p in outputs:
            print(f"  {p}", file=sys.stderr)
    elif alarmed(traj.summary):
        # --quiet drops the progress and the summary, never a failure: a diverging fluid run
        # (93 of 100 steps missed, velocity MSE 5e-2) used to end here without a word
        print(f"insr: warning: {summary_line(traj.summary)}", file=sys.stderr)


def _missing_dirs(path: Path) -> list[Path]:
    """``path`` and those of its parents that do not exist yet, deepest first."""
    out = []
    while not path.exists() and path != path.parent:
        out.append(path)
        path = path.parent
    return out


def cmd_run(args) -> None:
    cfg = resolve_config(args.target, args.set or [])
    run_dir = Path(args.out) if args.out else Path("runs") / f"{cfg['scenario']}-{time.strftime('%Y%m%d-%H%M%S')}"
    check_out_dir(run_dir)
    check_disk(cfg, run_dir, check_problem_size(cfg))
    if (run_dir / "checkpoint.npz").exists() and not args.force:
        raise UsageError(f"{run_dir} already holds a run; use `insr resume {run_dir}` or pass --force to overwrite")
    made = _missing_dirs(run_dir)
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise _os_error(exc, f"cannot create run directory {run_dir}") from None
    try:
        # The builders check what the rules of insr.config cannot (combinations, meshes, a
        # network's own arguments); a config they refuse leaves no run directory behind.
        stepper = build_stepper(cfg)
    except BaseException:
        for d in made:  # deepest first; rmdir refuses a directory something else wrote into
            with contextlib.suppress(OSError):
                d.rmdir()
        raise
    with _holding(run_dir):
        if (run_dir / "checkpoint.npz").exists() and not args.force:  # again: another run may just have made it
            raise UsageError(f"{run_dir} already holds a run; use `insr resume {run_dir}` or pass --force "
                             "to overwrite")
        atomic_write_text(run_dir / CONFIG_JSON, json.dumps(cfg, indent=2))
        atomic_write_text(run_dir / CONFIG_TOML, cfgmod.to_toml(cfg))
        _execute(cfg, run_dir, resume=False, quiet=args.quiet, stepper=stepper)


def _load_run_config(run_dir: Path) -> dict:
    from insr import registry

    if not run_dir.is_dir():
        raise UsageError(f"run directory {run_dir} does not exist")
    path = run_dir / CONFIG_JSON
    if not path.is_file():
        raise UsageError(f"{run_dir} is not an insr run directory (no {CONFIG_JSON})")
    cfg = cfgmod.load_file(path)
    return cfgmod.merge(registry.get(cfg.get("scenario", "")).defaults, cfg)


def cmd_resume(args) -> None:
    run_dir = Path(args.run_dir)
    cfg = _load_run_config(run_dir)
    with _holding(run_dir):
        if not (run_dir / "checkpoint.npz").exists():
            raise UsageError(f"{run_dir} has no checkpoint.npz to resume from; start it again with `insr run`")
        _execute(cfg, run_dir, resume=True, quiet=args.quiet)


def _load_points(path: str) -> np.ndarray:
    """A numeric ``.npy`` array, read without unpickling; one-line errors that never suggest
    ``allow_pickle``."""
    try:
        points = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise UsageError(f"points file {path} does not exist") from None
    except IsADirectoryError:
        raise UsageError(f"points file {path} is a directory, not a .npy file") from None
    except (OSError, ValueError, EOFError) as exc:
        text = str(exc)
        if "Object arrays" in text:
            why = "it holds Python objects (dtype object), not numbers"
        elif "pickle" in text:
            why = "it is not a NumPy .npy file (write one with numpy.save)"
        else:
            why = f"{type(exc).__name__}: {text}"
        raise UsageError(f"cannot read points file {path}: {why}") from None
    if not isinstance(points, np.ndarray):  # an .npz archive
        points.close()
        raise UsageError(f"points file {path} is an .npz archive; give one array as a .npy file (numpy.save)")
    return points


def _domain_bounds(stepper):
    """``(lo, hi, what)`` of the stepper's domain, or None where it is not known."""
    for owner, what in ((getattr(getattr(stepper, "problem", None), "domain", None), "domain"),
                        (getattr(stepper, "domain", None), "domain"),
                        (getattr(stepper, "rest", None), "rest shape's bounding box")):
        lo, hi = getattr(owner, "lo", None), getattr(owner, "hi", None)
        if lo is not None and hi is not None and np.size(lo) == stepper.dim == np.size(hi):
            return np.asarray(lo, np.float64).ravel(), np.asarray(hi, np.float64).ravel(), what
    return None


def cmd_eval(args) -> None:
    from insr.io.checkpoint import atomic_write_bytes, load_state
    from insr.simulate import saved_steps

    if math.isnan(args.time):
        raise UsageError("--time must be a number (inf: the last saved step, -inf: the first), got nan")
    out = Path(args.out)
    if out.is_dir():
        raise UsageError(f"--out {out} is a directory; name the .npy file to write")
    if not out.parent.is_dir():
        raise UsageError(f"--out {out}: directory {out.parent} does not exist")
    run_dir = Path(args.run_dir)
    cfg = _load_run_config(run_dir)
    saved = saved_steps(run_dir)
    if not saved:
        raise UsageError(f"{run_dir} holds no saved fields (fields/step_*.npz)")
    points = _load_points(args.points)
    if np.iscomplexobj(points):
        raise UsageError(f"points must be real numbers, got a complex array ({points.dtype}) from {args.points}")
    stepper = build_stepper(cfg)
    d = stepper.dim
    if points.ndim == 1 and d == 1:
        points = points[:, None]
    if points.ndim != 2 or points.shape[1] != d or not np.issubdtype(points.dtype, np.number):
        raise UsageError(f"points must be a numeric array of shape (n, {d}) for {cfg['scenario']} "
                         f"(a {d}D domain), got shape {points.shape}")
    if not np.all(np.isfinite(points)):
        raise UsageError("points contain NaN or infinite values")
    bounds = _domain_bounds(stepper)
    if bounds is not None:
        lo, hi, what = bounds
        outside = int(np.count_nonzero(np.any((points < lo) | (points > hi), axis=1)))
        if outside:
            box = " × ".join(f"[{a:g}, {b:g}]" for a, b in zip(lo, hi))
            print(f"insr: warning: {outside} of {len(points)} points lie outside the {what} {box}; "
                  "the field is extrapolated there", file=sys.stderr)
    steps = np.array([s for s, _ in saved])
    times = steps * cfg["dt"]
    if math.isinf(args.time):
        i = len(steps) - 1 if args.time > 0 else 0
        which = "the last saved step" if args.time > 0 else "the first saved step"
    else:
        i = int(np.argmin(np.abs(times - args.time)))
        which = f"nearest saved to t={args.time}"
    state, meta = load_state(saved[i][1], stepper.state_template())
    values = np.asarray(stepper.evaluate(state, points.astype(np.float32), float(meta["t"])))
    buf = io.BytesIO()
    np.save(buf, values)
    try:
        atomic_write_bytes(out, buf.getvalue())  # exactly the name given (np.save would append .npy)
    except OSError as exc:
        raise _os_error(exc, f"cannot write --out {out}") from None
    print(f"insr: evaluated step {steps[i]} (t={float(meta['t']):.6g}, {which}) at "
          f"{len(points)} points; channels {', '.join(stepper.channel_names)} → {out}", file=sys.stderr)


def cmd_reproduce(args) -> None:
    from insr.reproduce import ReproduceError, reproduce

    profile = "tiny" if args.tiny else "quick" if args.quick else "full"
    out = Path(args.out or f"reproduce-{profile}")
    command = "insr " + " ".join(sys.argv[1:]) if sys.argv[1:] and sys.argv[1] == "reproduce" else "insr reproduce"
    try:
        reproduce(out, profile=profile, only=args.only, progress=not args.quiet, command=command)
    except ReproduceError as exc:
        raise UsageError(str(exc)) from None


def cmd_list(args) -> None:
    from insr import registry

    known = registry.scenarios()
    width = max(len(n) for n in known)
    for name, s in sorted(known.items()):
        print(f"{name:<{width}}  {s.summary}")


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, exit 2 (argparse prints usage too; keep it short)
        self.exit(2, f"insr: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="insr", description="Time-dependent PDEs with implicit neural spatial representations.")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)
    r = sub.add_parser("run", help="run a built-in scenario or a config file (TOML/JSON)")
    r.add_argument("target", help="scenario name (see `insr list`) or path to a config file")
    r.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a config value, e.g. steps=100")
    r.add_argument("--out", help="run directory (default runs/<scenario>-<time>)")
    r.add_argument("--force", action="store_true", help="overwrite an existing run directory")
    r.add_argument("--quiet", action="store_true", help="no progress bar or summary (steps that missed "
                   "their tolerance are still reported)")
    r.set_defaults(func=cmd_run)
    s = sub.add_parser("resume", help="continue a killed run from its last checkpoint")
    s.add_argument("run_dir")
    s.add_argument("--quiet", action="store_true")
    s.set_defaults(func=cmd_resume)
    e = sub.add_parser("eval", help="evaluate a saved field at arbitrary points")
    e.add_argument("run_dir")
    e.add_argument("--time", type=float, required=True,
                   help="time; the nearest saved step is used (inf: the last, --time=-inf: the first)")
    e.add_argument("--points", required=True, help=".npy file of shape (n, d)")
    e.add_argument("--out", required=True, help=".npy file to write, shape (n, channels)")
    e.set_defaults(func=cmd_eval)
    rp = sub.add_parser("reproduce", help="run the paper's examples with ours and the classical solvers; "
                                          "write report.md and report.html")
    rp.add_argument("--quick", action="store_true", help="reduced steps and samples (about 15 min on 2 cores)")
    rp.add_argument("--tiny", action="store_true", help=argparse.SUPPRESS)  # seconds-long smoke test
    rp.add_argument("--only", nargs="+", metavar="NAME", help="run only these examples")
    rp.add_argument("--out", help="output directory (default reproduce-full / reproduce-quick)")
    rp.add_argument("--quiet", action="store_true", help="no per-step progress bars")
    rp.set_defaults(func=cmd_reproduce)
    ls = sub.add_parser("list", help="list the built-in scenarios")
    ls.set_defaults(func=cmd_list)
    return p


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        with single_threaded_blas():  # see insr.blas: one OpenBLAS thread beside XLA's pool
            args.func(args)
    except (ConfigError, UsageError, CheckpointError, SolveFailure) as exc:
        print(f"insr: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\ninsr: interrupted; the last checkpoint is intact — continue with `insr resume RUN_DIR`",
              file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
