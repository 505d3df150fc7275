"""Every script, discovered (not listed by hand), meets the project's standard for bad input: exit code 2,
one line that names the flag or file, no traceback, nothing written.

The scripts are every file under section*/, benchmarks/ and projects/ with a ``__main__`` block, plus
``python -m shared_utils.report``; a script added tomorrow is swept the day it lands. CI runs the sampled
sweep below (every script with the families that need no data, the parser-only families on one script per
folder); ``HOSTILE_FULL=1 pytest tests/test_hostile_input.py`` runs every family on every script.

Each case runs the script's ``main`` in this process (``run_script``), one case at a time: the whole sweep
costs seconds rather than an interpreter and a PyTorch import per case. The exception is a NumPy script
asked for an accelerator: its answer ("NumPy-only, use --device cpu") depends on PyTorch not being loaded,
which only a fresh process shows, and such a process starts in a fraction of a second.
"""
from __future__ import annotations

import json
import os
import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.conftest import REPO, run_script, spawn_script

SCRIPTS = sorted(p.relative_to(REPO).as_posix() for folder in ("section1_mlp", "section2_optimization", "section3_cnn",
                                                                 "section4_transfer", "benchmarks", "projects")
                 for p in (REPO / folder).rglob("*.py") if '__name__ == "__main__"' in p.read_text())
FULL = os.environ.get("HOSTILE_FULL") == "1"


def flags_of(script: str) -> set[str]:
    """Which optional common flags a script has, read from its source (no interpreter start-up)."""
    text = (REPO / script).read_text()
    flags = set()
    if "trains=False" not in text:
        flags.add("--epochs")
    if "seeds=True" in text or "study_parser(" in text:
        flags.add("--seeds")
    if "add_study_flags" in text or "study_parser(" in text:
        flags.add("--workers")
    if re.search(r"mnist|cifar", text, re.IGNORECASE) and "data." in text or "load_cifar" in text or "load_mnist" in text \
            or "load_sentences" in text:
        flags.add("data")
    return flags


NUMPY_FOLDERS = ("section1_mlp", "section2_optimization", "section3_cnn")


def splits_mnist(script: str) -> bool:
    """Whether a (non-benchmark) script trains on MNIST with the project's validation split."""
    pattern = r"mnist_from_settings|load_mnist\(|autoencoders\.load|search import load"
    return not script.startswith("benchmarks") and re.search(pattern, (REPO / script).read_text()) is not None


def spawns(script: str, family: str) -> bool:
    """Whether a case needs a fresh interpreter: a NumPy script asked for an accelerator."""
    return family == "accelerator that is not here" and script.startswith(NUMPY_FOLDERS)


def run(script: str, args: list[str], cwd: Path, family: str):
    if script == "report":     # python -m shared_utils.report
        return run_script("shared_utils/report.py", *args, cwd=cwd)
    if spawns(script, family):
        return spawn_script(script, *args, cwd=cwd, timeout=300)
    return run_script(script, *args, cwd=cwd)


def meets_standard(result, fragment: str) -> str | None:
    """None if the run ended as the standard says, else what went wrong."""
    lines = result.stderr.strip().splitlines()
    if result.returncode != 2:
        return f"exit {result.returncode}: {result.stderr.strip()[-300:]}"
    if "Traceback" in result.stderr or len(lines) != 1:
        return f"{len(lines)} lines on stderr: {result.stderr.strip()[-300:]}"
    if not re.search(fragment, lines[0]):
        return f"message lacks {fragment!r}: {lines[0]}"
    return None


# family -> (applies to a script?, arguments given a scratch folder, a pattern the one line must match)
FAMILIES = {
    "out under a file": (lambda s, f: True, lambda tmp: ["--out", str(tmp / "a_file" / "runs")], r"--out.*file"),
    "out is a file": (lambda s, f: True, lambda tmp: ["--out", str(tmp / "a_file")], r"--out"),
    "unknown flag": (lambda s, f: True, lambda tmp: ["--bogus"], r"unrecognized arguments: --bogus"),
    "seed out of range": (lambda s, f: True, lambda tmp: ["--seed", str(2**64)], r"--seed.*seed from 0"),
    "accelerator that is not here": (lambda s, f: True, lambda tmp: ["--device", "cuda"], r"--device"),
    "zero epochs": (lambda s, f: "--epochs" in f, lambda tmp: ["--epochs", "0"], r"--epochs.*positive integer"),
    "not-a-number learning rate": (lambda s, f: "--epochs" in f, lambda tmp: ["--lr", "nan"], r"--lr"),
    "repeated seeds": (lambda s, f: "--seeds" in f, lambda tmp: ["--seeds", "1", "1"], r"--seeds.*each seed once"),
    "zero workers": (lambda s, f: "--workers" in f, lambda tmp: ["--workers", "0"], r"--workers"),
    "address without ray": (lambda s, f: "--workers" in f, lambda tmp: ["--address", "auto"], r"--address"),
    "no data and no network": (lambda s, f: "data" in f, lambda tmp: ["--quick", "--data-dir", str(tmp / "nothing"),
                                                                      "--out", str(tmp / "out")],
                               r"not found in .*nothing|no checkpoint|could not be downloaded"),
    "a training subset no split can serve": (lambda s, f: "--epochs" in f and splits_mnist(s),
                                             lambda tmp: ["--quick", "--limit-train", "1", "--out", str(tmp / "out")],
                                             r"limit-train|validation|does not fit|too few"),
    "report with nothing to report": (lambda s, f: "--workers" in f,
                                      lambda tmp: ["--quick", "--report-only", "--out", str(tmp / "empty")],
                                      r"run the study first|run the .* first"),
}
SAMPLED = ("out under a file", "accelerator that is not here", "repeated seeds", "zero workers",
           "no data and no network", "report with nothing to report", "a training subset no split can serve")
# families whose check lives wholly in the shared parser (shared_utils.cli, unit-tested in tests/shared_utils): the
# sampled sweep runs them on one script per folder, which proves each folder's scripts reach that parser; the
# other sampled families depend on what each script does before or after parsing, so they run on every script
PARSER_ONLY = ("repeated seeds", "zero workers")
REPORT_FAMILIES = {
    "root is a file": (lambda tmp: [str(tmp / "a_file")], r"not a folder"),
    "output under a file": (lambda tmp: [str(tmp), "--output", str(tmp / "a_file" / "REPORT.md")], r"--output"),
    "unknown flag": (lambda tmp: ["--bogus"], r"unrecognized arguments"),
}


def sweep(cases, tmp_path):
    """Run (name, script, args, pattern) cases and return the failures: in-process cases one after another,
    the cases that need a fresh interpreter two at a time beside them."""
    def one(case):
        name, script, make_args, pattern = case
        scratch = tmp_path / f"{abs(hash((name, script)))}"
        scratch.mkdir()
        (scratch / "a_file").write_text("not a folder")
        result = run(script, make_args(scratch), scratch, name)
        problem = meets_standard(result, pattern)
        written = sorted(p.relative_to(scratch).as_posix() for p in scratch.rglob("*")
                         if p.is_file() and p.name != "a_file")     # (an empty --out folder is not a write)
        if problem is None and written:
            problem = f"wrote {written[:5]}"
        return None if problem is None else f"{script} [{name}]: {problem}"

    spawned = [c for c in cases if spawns(c[1], c[0])]
    with ThreadPoolExecutor(max_workers=2) as pool:      # fresh processes two at a time, beside the rest
        later = pool.map(one, spawned)
        failures = [one(c) for c in cases if c not in spawned]
        failures += list(later)
    return [f for f in failures if f]


def test_scripts_are_discovered():
    assert len(SCRIPTS) >= 28 and "section3_cnn/train_mnist_numpy.py" in SCRIPTS
    assert "benchmarks/study_backends.py" in SCRIPTS


@pytest.mark.parametrize("family", [f for f in FAMILIES if FULL or f in SAMPLED])
def test_every_script_refuses_bad_input_in_one_line_and_writes_nothing(family, tmp_path):
    import torch

    applies, make_args, pattern = FAMILIES[family]
    if family == "accelerator that is not here" and torch.cuda.is_available():
        pytest.skip("this machine has a CUDA GPU: --device cuda is valid here")
    cases = [(family, s, make_args, pattern) for s in SCRIPTS if applies(s, flags_of(s))]
    assert cases
    if family in PARSER_ONLY and not FULL:
        first: dict[str, tuple] = {}
        for case in cases:
            first.setdefault(case[1].split("/")[0], case)
        cases = list(first.values())
    failures = sweep(cases, tmp_path)
    assert not failures, "\n".join(failures)


@pytest.mark.parametrize("family", list(REPORT_FAMILIES))
def test_report_refuses_bad_input_in_one_line(family, tmp_path):
    make_args, pattern = REPORT_FAMILIES[family]
    failures = sweep([(family, "report", make_args, pattern)], tmp_path)
    assert not failures, "\n".join(failures)


# A typo'd batch size, then a damaged checkpoint: the scripts the issue found crashing on the batch, plus the first
# training script of each folder (HOSTILE_FULL=1: every training script). One quick run per script serves both.
HUGE_BATCH_NAMED = ("benchmarks/cifar_precision.py", "benchmarks/study_backends.py",
                    "projects/sequence_models/summaries.py", "projects/sequence_models/change_points.py",
                    "projects/pytorch_mechanics/dying_relu.py")
QUICK_SECONDS = 300     # the slowest quick preset (cifar_best/ablation) takes 84 s alone, past 120 s beside other slow tests
HUGE_BATCH = ("--quick", "--quiet", "--batch-size", "1000000000")


def huge_batch_runs(tmp_path_factory):
    """script -> (result or None when it timed out, seconds, its --out folder), each run a fresh process, so a kill
    by the kernel or an allocator's crash shows as what it is."""
    import subprocess
    import time

    trains = [s for s in SCRIPTS if "--epochs" in flags_of(s)]
    first: dict[str, str] = {}
    for s in trains:
        first.setdefault(s.rsplit("/", 1)[0], s)
    runs = {}
    for script in (trains if FULL else sorted(set(HUGE_BATCH_NAMED) | set(first.values()))):
        scratch = tmp_path_factory.mktemp(script.replace("/", "_").removesuffix(".py"))
        started = time.perf_counter()
        try:
            result = spawn_script(script, *HUGE_BATCH, "--out", scratch / "out", cwd=scratch, timeout=QUICK_SECONDS)
        except subprocess.TimeoutExpired:
            result = None
        runs[script] = (result, time.perf_counter() - started, scratch)
        print(f"{script}: exit {result and result.returncode} in {runs[script][1]:.1f} s")   # (shown with -s)
    return runs


@pytest.mark.slow
def test_a_huge_batch_stays_quick_and_a_damaged_checkpoint_is_refused_on_resume(tmp_path_factory):
    """One test, so that one process makes the quick runs both checks read (pytest-xdist would run a shared
    fixture once per worker)."""
    runs = huge_batch_runs(tmp_path_factory)
    failures = quick_with_a_huge_batch(runs) + damaged_checkpoint_refused(runs)
    assert not failures, "\n".join(failures)


def quick_with_a_huge_batch(quick_runs: dict) -> list[str]:
    """``--quick --batch-size 1000000000``: the batch is clipped to the data and the run ends in the time of a quick
    run, or the script refuses the flag in one line (exit 2) before it allocates anything."""
    failures = []
    for script, (result, seconds, _) in quick_runs.items():
        if result is None:
            failures.append(f"{script}: still running after {QUICK_SECONDS} s")
            continue
        lines = result.stderr.strip().splitlines()
        refused = (result.returncode == 2 and len(lines) == 1 and "--batch-size" in lines[0]
                   and "not enough memory" not in lines[0])
        if result.returncode != 0 and not refused:
            failures.append(f"{script}: exit {result.returncode} after {seconds:.0f} s: {result.stderr.strip()[-300:]}")
    return failures


def damaged_checkpoint_refused(quick_runs: dict) -> list[str]:
    """Every study script whose quick run above finished: garbage over one finished trial's checkpoint (or, with
    none, its metrics), then the same command with --resume: exit 2, one line naming the file, no byte changed."""
    failures = []
    studies = [s for s, (result, _, _) in quick_runs.items()
               if result is not None and result.returncode == 0 and "--workers" in flags_of(s)]
    if len(studies) < 4:
        failures.append(f"only {len(studies)} study scripts finished their quick run: {studies}")
    for script in studies:
        scratch = quick_runs[script][2]
        records = sorted((scratch / "out").rglob("artifacts.json"))
        if not records:
            failures.append(f"{script}: no finished trial recorded its files")
            continue
        names = list(json.loads(records[0].read_text())["sha256"])
        target = next((n for n in names if n.endswith((".pt", ".npz"))), "metrics.csv" if "metrics.csv" in names
                      else names[0])
        (records[0].parent / target).write_bytes(b"\x80\x04\x95 garbage, or a pickle that runs code")
        before = {p: p.read_bytes() for p in scratch.rglob("*") if p.is_file()}
        result = spawn_script(script, *HUGE_BATCH, "--out", scratch / "out", "--resume", cwd=scratch, timeout=300)
        problem = meets_standard(result, re.escape(target) + r".*changed after its trial finished")
        after = {p: p.read_bytes() for p in scratch.rglob("*") if p.is_file()}
        changed = sorted(str(p.relative_to(scratch)) for p in set(before) | set(after) if before.get(p) != after.get(p))
        if problem is None and changed:
            problem = f"wrote {changed[:3]}"
        if problem:
            failures.append(f"{script}: {problem}")
    return failures

