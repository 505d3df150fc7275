"""Shared test helpers: where the real data is, and how to run a script like a user does.

Two ways to run a script:
- :func:`run_script` calls the script's ``main`` in this process, exactly as its ``if __name__ == "__main__":
  cli.run(main)`` block does, with the command line, working folder and environment a user's run has, and
  returns its exit code and output. It skips only the interpreter's start-up and the imports (2-4 s for a
  PyTorch script here), so most script tests use it.
- :func:`spawn_script` starts a fresh interpreter, for what only a real process shows (the entry point itself,
  which modules a NumPy script imports, a kill midway).

Every test runs offline: the proxy variables point at a closed local port, so a download that a test
provokes fails in milliseconds, in this process and in every child process.
"""
from __future__ import annotations

import os

# Under pytest-xdist (-n N) each worker gets cores/N threads for BLAS, OpenMP and torch: N processes that each
# start as many threads as there are cores would oversubscribe the cores and slow every test down. Set before
# NumPy or torch is imported, and inherited by every process a test starts.
WORKERS = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
if WORKERS > 1:
    THREADS = str(max(1, (os.cpu_count() or 1) // WORKERS))
    for variable in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[variable] = THREADS

import ast
import contextlib
import importlib
import io
import subprocess
import sys
import traceback
from dataclasses import dataclass
from pathlib import Path

import pytest

from shared_utils.data import resolve_data_dir

REPO = Path(__file__).resolve().parents[1]
DATA_DIR = resolve_data_dir(None)
DATASET_MARKERS = {
    "mnist": DATA_DIR / "MNIST" / "raw",
    "cifar10": DATA_DIR / "cifar-10-batches-py",
    "polarity": DATA_DIR / "rt-polaritydata",
}
CLOSED_PORT = "http://127.0.0.1:9"
OFFLINE = {name: CLOSED_PORT for name in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy")}
os.environ.update(OFFLINE, NO_PROXY="", no_proxy="", MPLBACKEND="Agg")
# atomic writes without the fsync (shared_utils/atomic.py): the rename still protects every file from a kill,
# which the kill tests check; power-cut durability is not what a test can check, and costs ~8 ms a file
os.environ.setdefault("DL_FSYNC", "0")


def requires(dataset: str):
    """Mark a test that needs a real dataset; it skips with the reason when the files are absent."""
    folder = DATASET_MARKERS[dataset]
    skip = pytest.mark.skipif(not folder.is_dir(),
                              reason=f"{dataset} not found in {folder}; set DL_DATA_DIR to run it")

    def decorate(test):
        return skip(pytest.mark.real_data(test))

    return decorate


def sizes(*tiny: str, **expected):
    """Run one real-data test at two sizes: ``size`` is the flags ``tiny`` (added after ``--quick``) in the
    default tier, and no flags, the script's own ``--quick`` preset, in the slow tier. Keyword arguments are
    pairs (tiny value, quick value) the test reads from ``size.expect``: figures that follow the size."""
    def make(flags, pick):
        return Size(list(flags), {key: pair[pick] for key, pair in expected.items()})

    return pytest.mark.parametrize("size", [pytest.param(make(tiny, 0), id="tiny"),
                                            pytest.param(make((), 1), id="quick", marks=pytest.mark.slow)])


@dataclass
class Size:
    flags: list
    expect: dict


@pytest.fixture(scope="session")
def ray_cluster():
    """One local Ray instance with 2 CPUs for every test that uses Ray, started on first use and shut down
    (its processes with it) when the session ends."""
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    try:
        yield ray
    finally:
        ray.shutdown()


@dataclass
class ScriptResult:
    """What a finished script left: its exit code and what it printed (as subprocess.CompletedProcess)."""
    returncode: int
    stdout: str
    stderr: str


def module_of(script: str | Path) -> str:
    """The import name of a script in the repository: section3_cnn/train_mnist_numpy.py -> section3_cnn.train_mnist_numpy."""
    return Path(script).with_suffix("").as_posix().replace("/", ".")


def entry_point(script: str | Path) -> str:
    """The statement under the script's ``if __name__ == "__main__":`` block, as source text."""
    tree = ast.parse((REPO / script).read_text())
    for node in tree.body:
        if isinstance(node, ast.If) and ast.unparse(node.test) == "__name__ == '__main__'":
            return "\n".join(ast.unparse(statement) for statement in node.body)
    raise AssertionError(f"{script} has no __main__ block")


def run_script(script: str | Path, *args, cwd: Path | None = None, env_extra: dict | None = None) -> ScriptResult:
    """``python <script> args`` from ``cwd``, run in this process: ``cli.run(main, args)`` with ``sys.argv``,
    the working folder and ``env_extra`` set as that command would have them and put back afterwards. A
    ``SystemExit`` gives the exit code; an exception that escapes ``cli.run`` is printed as a traceback with
    exit code 1, as Python would."""
    from shared_utils import cli

    assert entry_point(script) in ("cli.run(main)", "run(main)"), f"{script}: run_script assumes cli.run(main)"
    module = importlib.import_module(module_of(script))
    argv = [str(a) for a in args]
    out, err = io.StringIO(), io.StringIO()
    saved_argv, saved_cwd, saved_env = sys.argv, os.getcwd(), dict(os.environ)
    try:
        sys.argv = [str(REPO / script), *argv]
        os.chdir(cwd or REPO)
        os.environ.update({k: str(v) for k, v in (env_extra or {}).items()})
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                cli.run(module.main, argv)
                code = 0
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
                if isinstance(exc.code, str):
                    err.write(exc.code + "\n")
            except Exception:      # what `python script.py` would print before exiting with 1
                traceback.print_exc(file=err)
                code = 1
    finally:
        sys.argv = saved_argv
        os.chdir(saved_cwd)
        for key in set(os.environ) - set(saved_env):       # put back only what changed: never an empty
            del os.environ[key]                              # environment, which a thread that starts a
        for key, value in saved_env.items():                 # process meanwhile would copy
            if os.environ.get(key) != value:
                os.environ[key] = value
    return ScriptResult(code, out.getvalue(), err.getvalue())


def spawn_script(script: str | Path, *args, cwd: Path | None = None, timeout: float = 600,
                 env_extra: dict | None = None) -> subprocess.CompletedProcess:
    """Run ``python <script> args`` in a fresh interpreter, as a user would, from ``cwd``."""
    env = dict(os.environ, **{k: str(v) for k, v in (env_extra or {}).items()})
    return subprocess.run([sys.executable, str(REPO / script), *map(str, args)], cwd=cwd or REPO,
                          capture_output=True, text=True, timeout=timeout, env=env)


def assert_user_error(result, *fragments: str) -> None:
    """Exit code 2, exactly one line on stderr containing each fragment, and no traceback."""
    assert result.returncode == 2, (result.returncode, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])


def folder_state(folder: Path) -> dict:
    """Every file's bytes, inode and modification time: an atomic rewrite with the same bytes still shows."""
    return {p: (p.read_bytes(), p.stat().st_ino, p.stat().st_mtime_ns) for p in folder.rglob("*") if p.is_file()}


def docs_module(stem: str):
    """A script under docs/ (outside every package: the quiz generator, the example study) imported by path, once
    per process, under the name ``docs_<stem>`` (registered first: dataclasses and workers look it up)."""
    import importlib.util

    name = f"docs_{stem}"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, REPO / "docs" / f"{stem}.py")
        sys.modules[name] = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(sys.modules[name])
    return sys.modules[name]



# fields that measure the clock or record the invocation, not the result: the only ones two runs of the same seed may
# differ in (wall times, throughput, memory, dates; the command line, paths and --resume; a manifest's per-trial
# status: a resumed study says "skipped" for what the first run finished)
CLOCK_FIELDS = {"seconds", "images_per_s", "train_seconds", "seconds_per_epoch", "wall_time_s", "wall_seconds",
                "peak_rss_mb", "started", "finished", "command", "run_dir", "resume", "status"}


def _without_clock(value, roots: tuple[str, ...]):
    if isinstance(value, dict):
        return {k: _without_clock(v, roots) for k, v in value.items() if k not in CLOCK_FIELDS}
    if isinstance(value, (list, tuple)):
        return [_without_clock(v, roots) for v in value]
    if isinstance(value, str):
        for root in roots:
            value = value.replace(root, "<out>")
    if hasattr(value, "tolist"):        # a tensor or an array: its numbers, exactly
        return value.tolist()
    return value


def run_folder_differences(a: Path, b: Path, clock_plots: tuple[str, ...] = ("dashboard.png",)) -> list[str]:
    """Every file that differs between two run folders of the same settings and seed, compared as a user reads it:
    JSON and checkpoints (.pt, .npz) by content, CSV by cell, both without the clock fields above; plots that draw
    the clock (``clock_plots``, by name) only by presence; everything else byte for byte. Empty when they agree."""
    import csv
    import json

    from shared_utils import runs

    def files(root):
        return {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}

    roots = (str(a), str(b))
    out = [f"only in {a}: {n}" for n in sorted(files(a) - files(b))]
    out += [f"only in {b}: {n}" for n in sorted(files(b) - files(a))]
    for name in sorted(files(a) & files(b)):
        x, y = a / name, b / name
        if x.name in clock_plots or x.name == "artifacts.json":   # (artifacts.json: hashes of clock-bearing files)
            continue
        if x.suffix == ".json":
            load = lambda p: _without_clock(json.loads(p.read_text()), roots)      # noqa: E731
        elif x.suffix == ".csv":
            def load(p):
                rows = list(csv.reader(p.read_text().splitlines()))
                keep = [i for i, h in enumerate(rows[0]) if h not in CLOCK_FIELDS] if rows else []
                return [[r[i] for i in keep if i < len(r)] for r in rows]
        elif x.suffix == ".pt":
            import torch
            load = lambda p: _without_clock(torch.load(p, weights_only=True, map_location="cpu"), roots)  # noqa: E731
        elif x.suffix == ".npz":
            load = lambda p: {k: v.tolist() for k, v in runs.load_npz(p).items()}  # noqa: E731
        else:
            load = Path.read_bytes
        if load(x) != load(y):
            out.append(f"differs: {name}")
    return out
