"""Run folders: where an experiment leaves its evidence, and the only place plots read from.

    run = runs.RunDir(__file__, "mnist_numpy", args)     # section3_cnn/runs/mnist_numpy/
    run.log(epoch=1, train_loss=0.31, train_acc=0.91, val_loss=0.12, val_acc=0.96, lr=0.01, seconds=8.2)
    run.save_checkpoint(model.state_dict(), "best.npz")
    run.summary(test_acc=0.991)

A run folder holds ``config.json`` (every argument, git commit, library versions, start
time), ``metrics.csv`` (a row per epoch, flushed as it goes), ``summary.json`` (final
and best figures, wall time), checkpoints and plots. Every file is written to a
temporary name and renamed, so an interrupted run never leaves a half-written one.
"""
from __future__ import annotations

import csv
import io
import json
import os
import platform
import subprocess
import sys
import time
import zipfile
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from shared_utils.atomic import atomic_write_bytes, atomic_write_json, atomic_write_text  # noqa: F401
from shared_utils.errors import UserError

METRIC_COLUMNS = ["epoch", "train_loss", "train_acc", "val_loss", "val_acc", "lr", "seconds"]


# --------------------------------------------------------------------------- checkpoints
def save_npz(path: str | os.PathLike, arrays: Mapping[str, np.ndarray]) -> Path:
    """Save named arrays as an uncompressed ``.npz`` (no pickled objects), atomically."""
    buffer = io.BytesIO()
    clean = {}
    for name, value in arrays.items():
        array = np.asarray(value)
        if array.dtype == object:
            raise TypeError(f"checkpoint entry {name!r} is an object array; only numeric arrays are saved")
        clean[name] = array
    np.savez(buffer, **clean)
    return atomic_write_bytes(path, buffer.getvalue())


def load_npz(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Load a ``.npz`` checkpoint with ``allow_pickle=False``; a bad file is a UserError."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"checkpoint {path} does not exist")
    try:
        with np.load(path, allow_pickle=False) as archive:
            return {name: archive[name] for name in archive.files}
    except (ValueError, OSError, zipfile.BadZipFile, EOFError) as exc:
        raise UserError(f"checkpoint {path} is corrupt or not a NumPy .npz file ({exc})") from None


# --------------------------------------------------------------------------- provenance
def git_commit(start: str | os.PathLike | None = None) -> str | None:
    """The HEAD commit of the repository holding ``start`` (``+dirty`` if it has changes)."""
    cwd = Path(start).resolve().parent if start else Path.cwd()
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True,
                             text=True, timeout=5, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=cwd,
                               capture_output=True, text=True, timeout=5).stdout.strip()
        return sha + ("+dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return None


def library_versions() -> dict[str, str | None]:
    """Versions from package metadata, without importing torch."""
    versions: dict[str, str | None] = {"python": platform.python_version()}
    for name in ("numpy", "torch", "torchvision", "scipy", "matplotlib"):
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def root(script_file: str | os.PathLike, experiment: str = "", out: str | os.PathLike | None = None) -> Path:
    """``<out>/<experiment>`` if ``--out`` was given, else ``<script folder>/runs/<experiment>``. The
    experiment name must stay inside that folder: no absolute path, no ``..``."""
    base = Path(out) if out is not None else Path(script_file).resolve().parent / "runs"
    if not experiment:
        return base
    name = Path(experiment)
    if name.is_absolute() or ".." in name.parts:
        raise UserError(f"run name {experiment!r} would leave {base}; use a plain name such as 'my_run'")
    return base / name


# --------------------------------------------------------------------------- the run folder
def _column_order(row: dict) -> list[str]:
    """metrics.csv columns: the standard ones in their usual order, then any others as given."""
    return [c for c in METRIC_COLUMNS if c in row] + [c for c in row if c not in METRIC_COLUMNS]


def peak_rss_mb() -> float | None:
    """This process's peak resident memory so far, in MB: VmHWM on Linux. (getrusage's ru_maxrss is no
    substitute there: it keeps the size of the process that forked this one, which it had before exec.)"""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    except (OSError, ValueError, IndexError):
        pass
    try:
        import resource

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return round(peak / (1024 * 1024 if sys.platform == "darwin" else 1024), 1)   # bytes on macOS
    except (ImportError, OSError):
        return None


def cpu_name() -> str:
    """The CPU's model name as Linux reports it (platform.processor() is often empty), else platform's guess."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def cpu_features() -> list[str]:
    """The vector extensions that decide how fast this CPU trains (Linux flags): AVX2, AVX-512, and the
    bfloat16 units (AVX512-BF16, AMX) that can make bfloat16 autocast several times faster than float32."""
    wanted = ("avx2", "avx512f", "avx512_bf16", "amx_bf16")
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
                return [f for f in wanted if f in flags]
    except OSError:
        pass
    return []


def blas_kernels() -> list[str]:
    """The BLAS libraries this process has loaded and the kernel each picked for this CPU (threadpoolctl), e.g.
    "openblas 0.3.31, Haswell kernels, 2 threads": the same NumPy code runs other kernels on another CPU."""
    from threadpoolctl import threadpool_info

    return [f"{i.get('internal_api', i.get('prefix', '?'))} {i.get('version') or ''}".rstrip()
            + (f", {i['architecture']} kernels" if i.get("architecture") else "") + f", {i.get('num_threads')} threads"
            for i in threadpool_info() if i.get("user_api") == "blas"]


# environment variables that choose BLAS kernels or threads for every process that inherits them: some machines
# set OPENBLAS_CORETYPE for older OpenBLAS builds, which then runs an older CPU's kernels in a current NumPy
BLAS_SETTINGS = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS",
                 "MKL_NUM_THREADS", "MKL_ENABLE_INSTRUCTIONS")


def blas_settings() -> dict[str, str]:
    """The BLAS-related environment variables set for this process (BLAS_SETTINGS), by name."""
    return {name: os.environ[name] for name in BLAS_SETTINGS if name in os.environ}


class RunDir:
    """One run's folder: config, per-epoch metrics, summary, checkpoints, plots."""

    def __init__(self, script_file: str | os.PathLike, experiment: str, args: Any = None, *,
                 resume: bool = False, path: str | os.PathLike | None = None, **extra_config: Any):
        out = getattr(args, "out", None) if args is not None else None
        self.path = Path(path) if path is not None else root(script_file, experiment, out)
        # under torchrun every rank builds the RunDir, and only rank 0 writes it
        self.writes = os.environ.get("RANK", "0") == "0"
        self.resume = resume     # the engine continues from this folder's last.pt when set
        self.started = time.perf_counter()
        self._columns: list[str] | None = None
        self.config = {
            "script": str(Path(script_file).resolve().name),
            "experiment": experiment,
            "args": dict(vars(args)) if args is not None else {},
            "git_commit": git_commit(script_file),
            "versions": library_versions(),
            "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "cpu": cpu_name(),
                        "cpu_features": cpu_features()},
            "started": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "command": " ".join([Path(sys.argv[0]).name] + sys.argv[1:]) if sys.argv else "",
            **extra_config,
        }
        if not self.writes:
            return
        self.path.mkdir(parents=True, exist_ok=True)
        for stale in self.path.glob(".*.tmp"):   # a temp file of a writer killed mid-write (SIGKILL)
            stale.unlink(missing_ok=True)
        if not resume:
            self._clear_previous_run()
        atomic_write_json(self.path / "config.json", self.config)
        if resume and self.metrics_path.exists():
            with open(self.metrics_path, newline="") as f:
                self._columns = next(csv.reader(f), None)

    def _clear_previous_run(self) -> None:
        """A fresh run never mixes with an old one in the same folder: its files (and its TensorBoard
        folder) go before the new run writes anything; other subfolders are other runs and stay."""
        old = [f for f in self.path.iterdir() if f.is_file() and f.name != "trial.json"]  # the runner's record stays
        if (self.path / "summary.json").exists() or (self.path / "config.json").exists():
            sys.stderr.write(f"note: replacing the earlier run in {self.path} (give --out another folder to "
                             "keep it)\n")
        for f in old:
            f.unlink(missing_ok=True)
        tensorboard = self.path / "tensorboard"
        if tensorboard.is_dir():
            import shutil

            shutil.rmtree(tensorboard)

    @classmethod
    def for_trial(cls, script_file: str | os.PathLike, config: Mapping[str, Any], args: Any = None,
                  **extra_config: Any) -> "RunDir":
        """The run folder of one study trial: ``config["run_dir"]``, resumed if ``config["resume"]``;
        config.json records the trial's whole configuration (the hyper-parameters it ran with)."""
        return cls(script_file, str(config.get("condition", "")), args, resume=bool(config.get("resume")),
                   path=config["run_dir"], trial=dict(config), **extra_config)

    def update_config(self, **fields: Any) -> None:
        """Add resolved settings to config.json (the engine records its TrainConfig, model and device)."""
        self.config.update(fields)
        if self.writes:
            atomic_write_json(self.path / "config.json", self.config)

    @property
    def metrics_path(self) -> Path:
        return self.path / "metrics.csv"

    def __truediv__(self, name: str) -> Path:
        return self.path / name

    def log(self, **row: Any) -> None:
        """Append one row to metrics.csv and flush, so a crash keeps every finished epoch."""
        if not self.writes:
            return
        if self._columns is None:
            self._columns = _column_order(row)
            with open(self.metrics_path, "w", newline="") as f:
                csv.writer(f, lineterminator="\n").writerow(self._columns)
        unknown = set(row) - set(self._columns)
        if unknown:
            raise ValueError(f"metrics.csv has no column(s) {sorted(unknown)}; log them from the first row")
        with open(self.metrics_path, "a", newline="") as f:
            csv.writer(f, lineterminator="\n").writerow([_format(row.get(c)) for c in self._columns])
            f.flush()

    def replace_metrics(self, rows: list[dict]) -> None:
        """Rewrite metrics.csv (atomically) as exactly these rows: on resume, the checkpoint's history
        is the truth, so a row logged by an epoch whose checkpoint was never written goes away."""
        if not self.writes:
            return
        self._columns = None
        if not rows:
            self.metrics_path.unlink(missing_ok=True)
            return
        self._columns = _column_order(rows[0])
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(self._columns)
        writer.writerows([_format(row.get(c)) for c in self._columns] for row in rows)
        atomic_write_text(self.metrics_path, buffer.getvalue())

    def summary(self, **fields: Any) -> dict:
        """Write summary.json: the fields given, the best/final figures from metrics.csv, the summed
        per-epoch training seconds, and this invocation's wall time (a resumed run counts only its part)."""
        summary: dict[str, Any] = {}
        if self.metrics_path.exists():
            metrics = read_metrics(self.path)
            for key in ("val_acc", "train_acc"):
                if key in metrics and np.isfinite(metrics[key]).any():
                    best = int(np.nanargmax(metrics[key]))
                    summary[f"best_{key}"] = float(metrics[key][best])
                    summary[f"best_{key}_epoch"] = int(metrics["epoch"][best]) if "epoch" in metrics else best + 1
            for key in metrics:   # every logged metric (train_mse, val_loss ...) and the learning rate
                if key not in ("epoch", "seconds", "images_per_s") and len(metrics[key]):
                    summary[f"final_{key}"] = float(metrics[key][-1])
            summary["epochs"] = int(len(metrics.get("epoch", [])))
            if "seconds" in metrics:   # every epoch's training time, across resumed invocations
                summary["train_seconds"] = round(float(np.nansum(metrics["seconds"])), 3)
        summary.update(fields)
        summary["wall_time_s"] = round(time.perf_counter() - self.started, 3)
        summary["peak_rss_mb"] = peak_rss_mb()
        summary["finished"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
        if self.writes:
            atomic_write_json(self.path / "summary.json", summary)
        return summary

    def save_checkpoint(self, state: Any, name: str = "best.npz") -> Path:
        """NumPy state (a mapping of arrays, or an object with ``state_dict()``) -> ``.npz``."""
        if hasattr(state, "state_dict"):
            state = state.state_dict()
        return save_npz(self.path / name, state)


def _format(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, (float, np.floating)):
        return f"{float(value):.6g}"
    return value


# --------------------------------------------------------------------------- reading back
def read_metrics(run_path: str | os.PathLike) -> dict[str, np.ndarray]:
    """metrics.csv -> {column: float array}; empty cells become NaN."""
    path = Path(run_path)
    path = path / "metrics.csv" if path.is_dir() else path
    if not path.is_file():
        raise UserError(f"no metrics.csv in {path.parent}; run the experiment first")
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows:
        return {}
    return {key: np.array([float(r[key]) if r[key] not in ("", None) else np.nan for r in rows])
            for key in rows[0]}


def read_json(path: str | os.PathLike) -> dict:
    path = Path(path)
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise UserError(f"{path} does not exist; run the experiment first") from None
    except json.JSONDecodeError as exc:
        raise UserError(f"{path} is not valid JSON ({exc})") from None


def read_summary(run_path: str | os.PathLike) -> dict:
    return read_json(Path(run_path) / "summary.json")
