"""Write ``report.md`` and a self-contained ``report.html`` from the finished examples'
``result.json`` files: per example the table (ours, the paper's Adam loop, the classical
solver of the same memory and of the same error, the reference), the paper's numbers
beside them, error-versus-time and error-versus-memory curves, field images, the
configs; and the machine, package versions and git commit."""

from __future__ import annotations

import base64
import html
import json
import math
import platform
import subprocess
import sys
from pathlib import Path

from insr.io.checkpoint import atomic_write_text
from insr.reproduce.core import KINDS, fmt_s

KIND_LABEL = {"ours": "ours", "beyond": "ours, beyond the paper", "ours-adam": "ours, paper's Adam loop",
              "same-memory": "classical, same memory",
              "same-error": "classical, same error", "reference": "reference", "sweep": "sweep"}
TABLE_HEADER = ("method", "role", "error", "wall time", "state memory", "note")


def fmt_error(v) -> str:
    return "–" if v is None else f"{v:.3e}"


def fmt_seconds(s) -> str:
    return "–" if s is None else fmt_s(s)


def fmt_horizon(t) -> str:
    return f"t = {t:g}"


def same_horizon(a, b) -> bool:
    """Both horizons known and equal (to rounding of the accumulated time)."""
    return a is not None and b is not None and math.isclose(a, b, rel_tol=1e-6, abs_tol=1e-9)


def fmt_bytes(b) -> str:
    if b is None:
        return "–"
    if b < 10_000:
        return f"{b:,} B"
    if b < 10_000_000:
        return f"{b / 1e3:.1f} KB"
    return f"{b / 1e6:.1f} MB"


def table_rows(result: dict) -> list[list[str]]:
    """The example's table (sweep rows left out), ordered by role."""
    rows = [r for r in result["rows"] if r["kind"] != "sweep"]
    rows.sort(key=lambda r: KINDS.index(r["kind"]))
    out = []
    for r in rows:
        wall = fmt_seconds(r["wall_s"]) + (" (projected)" if r.get("projected") else "")
        out.append([r["method"], KIND_LABEL[r["kind"]], fmt_error(r["error"]), wall, fmt_bytes(r["state_bytes"]),
                    r.get("note", "")])
    return out


def paper_verdict(result: dict, ours: dict | None, p: dict) -> str | None:
    """Our error against the paper's ``p``, or why they are not compared: only in the
    full profile and at the same horizon (final time) does the report say meets / MISSES."""
    if p["kind"] != "ours" or p["error"] is None or not ours or ours["error"] is None:
        return None
    t_ours, t_paper = ours.get("t_final"), p.get("horizon")
    if t_ours is None or t_paper is None:
        return ("The horizon of our run or of the paper's number is not recorded, so no comparison with the paper's "
                "error is made.")
    if not same_horizon(t_ours, t_paper):
        return (f"The horizon differs (ours {fmt_horizon(t_ours)} vs the paper's {fmt_horizon(t_paper)}), so no "
                "comparison with the paper's error is made.")
    if result["profile"] != "full":
        return (f"Same horizon as the paper ({fmt_horizon(t_ours)}), but the {result['profile']} profile's reduced "
                "sizes are not the paper's setup, so no comparison with the paper's error is made.")
    ok = ours["error"] <= p["error"]
    whose = f"{p['method']}'s" if result.get("published_by") else "the paper's"
    return (f"Our error {ours['error']:.3e} {'meets' if ok else 'MISSES'} {whose} {p['error']:.3e} "
            f"(both at {fmt_horizon(t_ours)}).")


def speed_verdicts(ours: dict | None, adam: dict | None) -> list[str]:
    """Ours against the projected Adam loop, per step (like with like: ours' mean seconds
    per step without the initial fit, Adam's projected seconds per step), then both over
    the steps ours ran.  Nothing when the rows lack the per-step times."""
    if not ours or not adam or not ours.get("per_step_s") or not adam.get("projected_step_s"):
        return []
    o, a = ours["per_step_s"], adam["projected_step_s"]
    loop = adam.get("loop", "the paper's Adam loop")
    how = ""
    if adam.get("per_iteration_s") and adam.get("solves_per_step"):
        how = (f" ({adam['per_iteration_s'] * 1e3:.3g} ms/iteration measured × {adam.get('iteration_cap', 20_000):,} "
               f"iterations per solve × {adam['solves_per_step']:.3g} solves/step)")
    n, first = ours.get("steps"), ours.get("per_step_from", 2)
    over = "" if n is None else (f"step {n}" if first >= n else f"steps {first}–{n}")
    out = [f"Per step, {loop} is projected at {fmt_seconds(a)}/step on this machine{how} against "
           f"Levenberg–Marquardt's measured {fmt_seconds(o)}/step (mean over {over or 'the steps'}, initial fit "
           f"excluded): Adam/ours = {a / o:.3g}× per step (projection)."]
    if n:
        t = f", {fmt_horizon(ours['t_final'])}" if ours.get("t_final") is not None else ""
        init = f"; {fmt_seconds(ours['init_s'])} of it the initial fit" if ours.get("init_s") is not None else ""
        steps = f"{n} step{'' if n == 1 else 's'}"
        out.append(f"Over the {steps} ours ran{t}, {loop} projects to {fmt_seconds(a * n)} (initial fit not "
                   f"included) against our measured {fmt_seconds(ours['wall_s'])} for the whole run{init}.")
    return out


def verdicts(result: dict) -> list[str]:
    """Plain statements comparing our rows with the paper's numbers and with the classical
    and Adam rows, from this report's values; every comparison is between equal horizons
    (or per step)."""
    by_kind = {}
    for r in result["rows"]:
        if not r.get("compares_with"):  # a row of another scheme is judged below, against its own
            by_kind.setdefault(r["kind"], r)
    out = []
    ours = by_kind.get("ours")
    for p in result["paper"]:
        v = paper_verdict(result, ours, p)
        if v:
            out.append(v)
    same = by_kind.get("same-memory")
    if ours and same and ours["error"] and same["error"]:  # both run over the same steps in this report
        ratio = same["error"] / ours["error"]
        if ratio >= 1:
            out.append(f"The classical solver of the same memory ({same['method']}) has {ratio:.3g}× our error.")
        else:
            out.append(f"The classical solver of the same memory ({same['method']}) is {1 / ratio:.3g}× MORE "
                       "accurate than ours.")
    out += speed_verdicts(ours, by_kind.get("ours-adam"))
    # a classical row run with the scheme of a "beyond the paper" row of ours names that row
    by_method = {r["method"]: r for r in result["rows"]}
    for r in result["rows"]:
        mine = by_method.get(r.get("compares_with"))
        if mine and mine["error"] and r["error"]:
            ratio = r["error"] / mine["error"]
            than = f"has {ratio:.3g}× the error of" if ratio >= 1 else f"is {1 / ratio:.3g}× MORE accurate than"
            out.append(f"Beyond the paper: {r['method']} {than} {mine['method']}.")
    return out


def curves(result: dict, out_dir: Path) -> list[Path]:
    """error-vs-wall-time and error-vs-memory plots of every row that belongs to a series."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    series = {}
    for r in result["rows"]:
        if r.get("series") and r["error"] and r["wall_s"] and r["state_bytes"]:
            series.setdefault(r["series"], []).append(r)
    if not series:
        return []
    paths = []
    for key, label, name in (("wall_s", "wall time [s]", "error_vs_time.png"),
                             ("state_bytes", "state memory [bytes]", "error_vs_memory.png")):
        fig, ax = plt.subplots(figsize=(5, 3.6))
        for s, rs in series.items():
            rs = sorted(rs, key=lambda r: r[key])
            ax.loglog([r[key] for r in rs], [r["error"] for r in rs], "o-", label=s)
        ax.set_xlabel(label)
        ax.set_ylabel("error")
        ax.set_title(f"{result['name']}: error vs {label.split(' [')[0]}", fontsize=9)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
        fig.tight_layout()
        p = out_dir / result["name"] / name
        fig.savefig(p, dpi=110)
        plt.close(fig)
        paths.append(p)
    return paths


def environment() -> dict:
    """Machine, versions and git commit (of the working tree this ran from, if any)."""
    import os

    import jax

    versions = {"python": sys.version.split()[0]}
    for mod in ("jax", "equinox", "optax", "numpy", "scipy", "meshio", "matplotlib"):
        try:
            versions[mod] = __import__(mod).__version__
        except Exception:  # a missing optional package is reported, not fatal
            versions[mod] = "not installed"
    from insr import __version__

    versions["insr"] = __version__
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10,
                                cwd=Path(__file__).parent).stdout.strip() or "unknown"
        dirty = subprocess.run(["git", "status", "--porcelain"], capture_output=True, text=True, timeout=10,
                               cwd=Path(__file__).parent).stdout.strip()
        commit += " (with uncommitted changes)" if dirty else ""
    except (OSError, subprocess.SubprocessError):
        commit = "unknown (not a git checkout)"
    return {"machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, {platform.system()}",
            "backend": jax.default_backend(), "versions": versions, "commit": commit}


def _md_table(header, rows) -> str:
    esc = lambda s: str(s).replace("|", "\\|")
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(esc(c) for c in r) + " |" for r in rows]
    return "\n".join(lines)


def _paper_rows(result):
    return [[p["method"], fmt_error(p["error"]), "–" if p.get("horizon") is None else fmt_horizon(p["horizon"]),
             p["wall"], p["memory"], p["hardware"]] for p in result["paper"]]


PAPER_HEADER = ("paper (Chen et al., ICML 2023)", "error", "horizon", "time", "memory", "hardware")


def _paper_header(res) -> tuple:
    """The quoted-numbers table's header, naming whose numbers they are."""
    return (res.get("published_by") or PAPER_HEADER[0], *PAPER_HEADER[1:])


def _horizon_line(res) -> str:
    """Our horizon and the paper's, as the section states them."""
    ours = next((r for r in res["rows"] if r["kind"] == "ours"), None)
    paper = next((p.get("horizon") for p in res["paper"] if p["kind"] == "ours"), None)
    if not ours or ours.get("t_final") is None:
        return ""
    n = ours.get("steps")
    s = f"Horizon: ours {fmt_horizon(ours['t_final'])}" + ("" if n is None else f" ({n} step{'' if n == 1 else 's'})")
    if paper is not None:
        s += f", the paper's {fmt_horizon(paper)}" + ("" if same_horizon(paper, ours["t_final"]) else " (differs)")
    return s + "."


def write_report(out_dir: Path, results: list[dict], suite: dict) -> tuple[Path, Path]:
    """Write ``report.md`` and ``report.html`` in ``out_dir``; returns their paths."""
    out_dir = Path(out_dir)
    env = environment()
    md = [f"# insr reproduce — {suite['profile']} profile", ""]
    if suite["profile"] != "full":
        md += [f"> **{suite['profile'].upper()} PROFILE**: reduced steps and samples. The numbers are real runs but "
               "are not comparable with the paper's, which use the full horizons (run without `--quick`).", ""]
    md += [f"Command: `{suite['command']}`  ", f"Started: {suite['started']}  ",
           f"Machine: {env['machine']}, JAX backend {env['backend']}  ",
           "Versions: " + ", ".join(f"{k} {v}" for k, v in env["versions"].items()) + "  ",
           f"Git commit: {env['commit']}", "",
           "Every number below comes from a run recorded in this directory (`<example>/rows/*.json`, "
           "`<example>/<run>/metrics.csv`), except the rows quoted from the paper, which are labelled. Measured wall "
           "times include compilation and initial fits; 'projected' times multiply a measured per-iteration time by "
           "20,000 iterations per solve and by the steps our run took (no initial fit). Speed-ups are per step; our "
           "error is compared with the paper's only in the full profile at the paper's horizon.", ""]
    done = {r["name"] for r in results}
    missing = [n for n in suite["examples"] if n not in done]
    if missing:
        md += [f"Not finished yet: {', '.join(missing)} (rerun the same command to continue).", ""]
    html_parts = []
    for res in results:
        figs = curves(res, out_dir)
        md += [f"## {res['title']}", "", f"Error metric: {res['metric']}.  ",
               f"Sizes ({res['profile']}): `{json.dumps(res['sizes'])}`; took {fmt_seconds(res['wall_s'])}.  ",
               _horizon_line(res), "",
               _md_table(TABLE_HEADER, table_rows(res)), ""]
        if res["paper"]:
            md += [_md_table(_paper_header(res), _paper_rows(res)), ""]
        md += [f"- {v}" for v in verdicts(res)] + [""]
        images = [str(p.relative_to(out_dir)) for p in figs] + list(res.get("figures", []))
        md += [f"![{Path(p).stem}]({p})" for p in images]
        md += [f"- animation: [{Path(a).name}]({a})" for a in res.get("animations", [])]
        md += ["", f"Stand-alone benchmark: `{res['benchmark']}`; configs: "
               + ", ".join(f"`{res['name']}/{k}/config.json`" for k in res.get("configs", {})), ""]
        html_parts.append(_html_section(res, images, out_dir))
    md_path, html_path = out_dir / "report.md", out_dir / "report.html"
    atomic_write_text(md_path, "\n".join(md) + "\n")
    atomic_write_text(html_path, _html_page(suite, env, missing, html_parts))
    return md_path, html_path


def _html_table(header, rows) -> str:
    h = "".join(f"<th>{html.escape(str(c))}</th>" for c in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><tr>{h}</tr>{body}</table>"


def _embed(path: Path) -> str:
    data = base64.b64encode(path.read_bytes()).decode()
    mime = "image/gif" if path.suffix == ".gif" else "image/png"
    return f'<img src="data:{mime};base64,{data}" alt="{html.escape(path.stem)}">'


def _html_section(res, images, out_dir) -> str:
    parts = [f"<h2>{html.escape(res['title'])}</h2>", f"<p><b>Error metric:</b> {html.escape(res['metric'])}. "
             f"Sizes ({res['profile']}): <code>{html.escape(json.dumps(res['sizes']))}</code>; took "
             f"{fmt_seconds(res['wall_s'])}. {html.escape(_horizon_line(res))}</p>",
             _html_table(TABLE_HEADER, table_rows(res))]
    if res["paper"]:
        parts.append(_html_table(_paper_header(res), _paper_rows(res)))
    parts.append("<ul>" + "".join(f"<li>{html.escape(v)}</li>" for v in verdicts(res)) + "</ul>")
    parts.append("<div>" + "".join(_embed(out_dir / p) for p in images if (out_dir / p).is_file()) + "</div>")
    for a in res.get("animations", []):
        if a.endswith(".gif") and (out_dir / a).is_file():
            parts.append(_embed(out_dir / a))
        else:
            parts.append(f'<p>animation: <a href="{html.escape(a)}">{html.escape(a)}</a></p>')
    cfgs = "".join(f"<details><summary>config of {html.escape(k)}</summary><pre>{html.escape(json.dumps(v, indent=1))}"
                   "</pre></details>" for k, v in res.get("configs", {}).items())
    parts.append(f"<p>Stand-alone benchmark: <code>{html.escape(res['benchmark'])}</code></p>{cfgs}")
    return "\n".join(parts)


def _html_page(suite, env, missing, sections) -> str:
    warn = ""
    if suite["profile"] != "full":
        warn = (f"<p class=warn><b>{suite['profile'].upper()} PROFILE</b>: reduced steps and samples; "
                "real runs, but not comparable with the paper's numbers.</p>")
    miss = f"<p>Not finished yet: {html.escape(', '.join(missing))}.</p>" if missing else ""
    versions = ", ".join(f"{k} {v}" for k, v in env["versions"].items())
    style = ("body{font-family:sans-serif;max-width:1100px;margin:auto}table{border-collapse:collapse;margin:8px 0}"
             "td,th{border:1px solid #bbb;padding:3px 6px;font-size:13px}img{max-width:48%;margin:4px}"
             ".warn{background:#fff3cd;padding:6px}")
    return (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>insr reproduce</title><style>{style}</style>"
            f"</head><body><h1>insr reproduce — {html.escape(suite['profile'])} profile</h1>{warn}"
            f"<p>Command: <code>{html.escape(suite['command'])}</code><br>Started: {html.escape(suite['started'])}"
            f"<br>Machine: {html.escape(env['machine'])}, JAX backend {html.escape(env['backend'])}<br>Versions: "
            f"{html.escape(versions)}<br>Git commit: {html.escape(env['commit'])}</p>"
            "<p>Every number comes from a run recorded next to this file, except the rows quoted from the paper. "
            "Measured wall times include compilation and initial fits; 'projected' times multiply a measured "
            "per-iteration time by 20,000 iterations per solve and by the steps our run took (no initial fit). "
            "Speed-ups are per step; our error is compared with the paper's only in the full profile at the paper's "
            f"horizon.</p>{miss}{''.join(sections)}</body></html>")
