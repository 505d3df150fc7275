"""One page over every finished run: ``python -m shared_utils.report [ROOT] [--output FILE]``.

Writes a Markdown page (default ``ROOT/runs/REPORT.md``): first every study under ROOT (a folder
with the study runner's ``manifest.json``) with its comparison table (mean ± std [95% CI] per
condition), its trial count and failures, and its figures; then, newest first, every run (a folder
holding a ``summary.json``) with the command that made it, its summary figures and its plots,
linked relative to the page.
"""
from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Sequence

from shared_utils.cli import OneLineParser, run, writable_folder_problem
from shared_utils.errors import UserError
from shared_utils.atomic import atomic_write_text

SKIP_DIRS = {".git", ".venv", "venv", "__pycache__", "node_modules", ".pytest_cache", "data"}


def find_runs(root: Path, marker: str = "summary.json") -> list[Path]:
    found = []
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d not in SKIP_DIRS and not d.startswith("."))
        if marker in files:
            found.append(Path(folder))
    return found


def study_section(root: Path, output: Path) -> list[str]:
    """The studies' part of the page: each one's table and figures."""
    studies = find_runs(root, "manifest.json")
    if not studies:
        return []
    lines = [f"## Studies ({len(studies)})", ""]
    for folder in studies:
        manifest = _load(folder / "manifest.json")
        trials = manifest.get("trials", [])
        done = sum(t.get("status") != "failed" for t in trials)
        lines += [f"### {folder.relative_to(root).as_posix()}", "",
                  f"{done} of {len(trials)} trials finished ({manifest.get('failed', 0)} failed); conditions: "
                  f"{', '.join(map(str, manifest.get('conditions', [])))}; seeds {manifest.get('seeds')}; "
                  f"backend {manifest.get('backend')} x {manifest.get('workers')}, "
                  f"{manifest.get('wall_seconds', 0):.0f} s wall.", ""]
        for t in trials:
            if t.get("error"):
                lines.append(f"- failed: {t['condition']} seed {t['seed']}: {t['error']}")
        table = folder / "table.md"
        if table.is_file():
            lines += ["", table.read_text().strip(), ""]
        rel = os.path.relpath(folder, output.parent)
        for png in sorted(folder.glob("*.png")):
            lines += [f"![{png.stem}]({Path(rel, png.name).as_posix()})", ""]
    return lines


def _load(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return {}


def _cell(value) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, (dict, list)):
        return json.dumps(value)[:80]
    return str(value)


def build_report(root: Path, output: Path) -> tuple[Path, int]:
    runs = find_runs(root)
    entries = []
    for folder in runs:
        summary = _load(folder / "summary.json")
        config = _load(folder / "config.json")
        when = summary.get("finished") or config.get("started") or ""
        entries.append((when, folder, summary, config))
    entries.sort(key=lambda e: (e[0], str(e[1])), reverse=True)
    lines = [f"# Report: {len(entries)} run(s) under `{root.resolve().name}`", ""]
    lines += study_section(root, output)
    lines += ["## Runs", "", "Newest first. Each run's numbers come from its own `summary.json`; "
              "figures are the PNGs in its folder.", ""]
    for when, folder, summary, config in entries:
        rel = os.path.relpath(folder, output.parent)
        lines += [f"### {folder.relative_to(root).as_posix()}", ""]
        if config.get("command"):
            lines += [f"Command: `{config['command']}`  ", f"Commit: `{config.get('git_commit')}`  "]
        lines += [f"Finished: {when or 'unknown'}", ""]
        if summary:
            lines += ["| figure | value |", "|---|---|"]
            lines += [f"| {k} | {_cell(v)} |" for k, v in summary.items() if k != "finished"]
            lines.append("")
        for png in sorted(folder.glob("*.png")):
            link = Path(rel, png.name).as_posix()
            lines += [f"![{png.stem}]({link})", ""]
    atomic_write_text(output, "\n".join(lines))
    return output, len(entries)


def main(argv: Sequence[str] | None = None) -> Path:
    p = OneLineParser(description=__doc__.strip().splitlines()[0],
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("root", nargs="?", type=Path, default=Path("."), help="folder to search for runs")
    p.add_argument("--output", type=Path, default=None, help="page to write (default ROOT/runs/REPORT.md)")
    args = p.parse_args(argv)
    if not args.root.is_dir():
        raise UserError(f"{args.root} is not a folder; pass the repository or a runs/ folder")
    output = args.output or (args.root / "REPORT.md" if args.root.name == "runs" else args.root / "runs" / "REPORT.md")
    if output.is_dir():
        raise UserError(f"--output {output} is a folder; give a file name such as {output / 'REPORT.md'}")
    problem = writable_folder_problem(output.parent)
    if problem:
        raise UserError(f"--output {output}: {problem}; choose a file in a folder you can write to")
    path, count = build_report(args.root, output)
    print(f"wrote {path} ({count} runs)")
    return path


if __name__ == "__main__":
    run(main)
