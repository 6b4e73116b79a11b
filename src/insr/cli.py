"""The ``insr`` command line: run, resume, eval, reproduce, list.

Bad input (unknown scenario or key, bad values, missing run directories, points
of the wrong shape) prints one line ``insr: error: …`` and exits with status 2.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from insr import config as cfgmod
from insr.config import ConfigError
from insr.io.checkpoint import CheckpointError, atomic_write_text

CONFIG_JSON = "config.json"
CONFIG_TOML = "config.toml"


class UsageError(Exception):
    """Bad command-line input; printed as one line, exit status 2."""


def resolve_config(target: str, overrides: list[str]) -> dict:
    """Defaults of the scenario named by ``target`` (or by the file's ``scenario`` key), then the file, then --set."""
    from insr import scenarios

    path = Path(target)
    if path.suffix in (".toml", ".json") or path.is_file():
        data = cfgmod.load_file(path)
        name = data.get("scenario")
        if not isinstance(name, str):
            raise ConfigError(f"config file {path} must name its scenario: scenario = \"<name>\" "
                              f"(one of {', '.join(sorted(scenarios.SCENARIOS))})")
        cfg = cfgmod.merge(scenarios.get(name).defaults, data)
    else:
        cfg = dict(scenarios.get(target).defaults)
    updates = cfgmod.parse_overrides(overrides)
    if "scenario" in updates:
        raise ConfigError("config key 'scenario' cannot be changed with --set; run that scenario instead")
    return cfgmod.merge(cfg, updates)


def build_stepper(cfg: dict):
    """The scenario's stepper for ``cfg``; turns on 64-bit JAX first if the config asks for float64 solves."""
    import jax

    from insr import scenarios

    if "float64" in (cfg.get("lm", {}).get("linear_dtype"), cfg.get("init", {}).get("linear_dtype")):
        jax.config.update("jax_enable_x64", True)  # the CLI is the edge where global JAX settings belong
    return scenarios.get(cfg["scenario"]).build(cfg)


def _execute(cfg: dict, run_dir: Path, *, resume: bool, quiet: bool) -> None:
    import jax

    from insr.outputs import write_outputs
    from insr.simulate import SaveAt, simulate

    stepper = build_stepper(cfg)
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
        print(f"insr: finished in {time.perf_counter() - t0:.1f} s; final {summary}", file=sys.stderr)
        for p in outputs:
            print(f"  {p}", file=sys.stderr)


def cmd_run(args) -> None:
    cfg = resolve_config(args.target, args.set or [])
    run_dir = Path(args.out) if args.out else Path("runs") / f"{cfg['scenario']}-{time.strftime('%Y%m%d-%H%M%S')}"
    if (run_dir / "checkpoint.npz").exists() and not args.force:
        raise UsageError(f"{run_dir} already holds a run; use `insr resume {run_dir}` or pass --force to overwrite")
    run_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(run_dir / CONFIG_JSON, json.dumps(cfg, indent=2))
    atomic_write_text(run_dir / CONFIG_TOML, cfgmod.to_toml(cfg))
    _execute(cfg, run_dir, resume=False, quiet=args.quiet)


def _load_run_config(run_dir: Path) -> dict:
    from insr import scenarios

    if not run_dir.is_dir():
        raise UsageError(f"run directory {run_dir} does not exist")
    path = run_dir / CONFIG_JSON
    if not path.is_file():
        raise UsageError(f"{run_dir} is not an insr run directory (no {CONFIG_JSON})")
    cfg = cfgmod.load_file(path)
    return cfgmod.merge(scenarios.get(cfg.get("scenario", "")).defaults, cfg)


def cmd_resume(args) -> None:
    run_dir = Path(args.run_dir)
    cfg = _load_run_config(run_dir)
    if not (run_dir / "checkpoint.npz").exists():
        raise UsageError(f"{run_dir} has no checkpoint.npz to resume from; start it again with `insr run`")
    _execute(cfg, run_dir, resume=True, quiet=args.quiet)


def cmd_eval(args) -> None:
    from insr.io.checkpoint import load_state
    from insr.simulate import saved_steps

    run_dir = Path(args.run_dir)
    cfg = _load_run_config(run_dir)
    saved = saved_steps(run_dir)
    if not saved:
        raise UsageError(f"{run_dir} holds no saved fields (fields/step_*.npz)")
    try:
        points = np.load(args.points)
    except (OSError, ValueError) as exc:
        raise UsageError(f"cannot read points file {args.points}: {exc}") from None
    stepper = build_stepper(cfg)
    d = stepper.dim
    if points.ndim == 1 and d == 1:
        points = points[:, None]
    if points.ndim != 2 or points.shape[1] != d or not np.issubdtype(points.dtype, np.number):
        raise UsageError(f"points must be a numeric array of shape (n, {d}) for {cfg['scenario']} "
                         f"(a {d}D domain), got shape {points.shape}")
    if not np.all(np.isfinite(points)):
        raise UsageError("points contain NaN or infinite values")
    steps = np.array([s for s, _ in saved])
    times = steps * cfg["dt"]
    i = int(np.argmin(np.abs(times - args.time)))
    state, meta = load_state(saved[i][1], stepper.state_template())
    values = stepper.evaluate(state, points.astype(np.float32), float(meta["t"]))
    np.save(args.out, values)
    print(f"insr: evaluated step {steps[i]} (t={float(meta['t']):.6g}, nearest saved to t={args.time}) at "
          f"{len(points)} points; channels {', '.join(stepper.channel_names)} → {args.out}", file=sys.stderr)


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
    from insr import scenarios

    width = max(len(n) for n in scenarios.SCENARIOS)
    for name, s in sorted(scenarios.SCENARIOS.items()):
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
    r.add_argument("--quiet", action="store_true", help="no progress bar or summary")
    r.set_defaults(func=cmd_run)
    s = sub.add_parser("resume", help="continue a killed run from its last checkpoint")
    s.add_argument("run_dir")
    s.add_argument("--quiet", action="store_true")
    s.set_defaults(func=cmd_resume)
    e = sub.add_parser("eval", help="evaluate a saved field at arbitrary points")
    e.add_argument("run_dir")
    e.add_argument("--time", type=float, required=True, help="time; the nearest saved step is used")
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
        args.func(args)
    except (ConfigError, UsageError, CheckpointError) as exc:
        print(f"insr: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\ninsr: interrupted; the last checkpoint is intact — continue with `insr resume RUN_DIR`",
              file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
