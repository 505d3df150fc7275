"""The study runner: conditions x seeds -> trials, run serially, on a local process pool or on Ray.

    BASE = {"epochs": 5, "lr": 1e-3, "model": "cnn"}            # the script's hyper-parameter block
    CONDITIONS = {"mlp": {"model": "mlp"}, "cnn": {}}            # a name plus overrides of BASE

    def trial(config: dict) -> dict:                             # top level, so workers can import it
        run = RunDir(..., resume=config["resume"]) ...           # writes config["run_dir"]
        return run.summary(test_acc=...)

    study = Study("mlp_vs_cnn", trial, CONDITIONS, seeds=[0, 1, 2], out=out, base=BASE, resume=args.resume)
    result = study.run(backend="pool", workers=2)                # or "serial", or "ray" (address=...)
    result.report(metrics={"test_acc": "test accuracy (%)"}, scale=100)

Each trial is ``trial(config)`` on a plain dict: ``BASE`` updated by the condition's overrides, plus
``seed``, ``condition``, ``run_dir`` (``<out>/<study>/<condition>/seed_<n>``), ``resume`` and
``threads``. With ``resume=True`` a trial whose folder holds a ``summary.json`` made from the same
configuration is skipped, and an unfinished one is called with ``resume=True`` to continue from its
last checkpoint; a folder made from another configuration stops the study before anything runs. A finished
trial's files are fingerprinted (sha256, ``artifacts.json``); one that changed or went missing since (a
damaged checkpoint, another model's weights) stops the study with one line naming it, never skipped. A resumed
run over part of the grid (fewer conditions or seeds, the same settings) keeps the earlier run's finished trials in
the manifest, so the study reads back whole.
A trial that raises is recorded in ``manifest.json`` with its one-line error while the others go
on; :meth:`StudyResult.raise_for_failures` then ends the program with exit code 1.

Backends: ``serial`` runs in this process. ``pool`` runs ``workers`` processes, each limited to
``cores // workers`` BLAS and torch threads so they do not fight over cores (forked from a NumPy-only
parent, so they share the data it loaded; spawned once torch is loaded, whose thread pool a fork
would break). ``ray`` sends each
trial to a Ray cluster as a task with ``num_cpus``/``num_gpus`` set (``address="auto"`` or
``HOST:PORT``; none starts a local instance); run folders must then live under an ``out`` every node
can reach, and the summaries come back to this process, which writes the study's files. Given
``cost(config) -> float`` (an estimate such as the trial's FLOPs), trials start costliest first, so on a
pool the long ones overlap instead of the last of them running alone while the other workers idle.

:meth:`Study.halving` screens by successive halving: all conditions at the smallest budget, the best
``1/eta`` by a validation metric continue from their checkpoints to ``eta`` times the budget, and so on
(or, with ``restart=True``, train afresh at the larger budget); it runs on every backend because each
round is an ordinary :meth:`Study.run`.
"""
from __future__ import annotations

import contextlib
import itertools
import json
import os
import re
import shutil
import sys
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from shared_utils.atomic import atomic_write_bytes, atomic_write_json
from shared_utils import runs
from shared_utils.device import numpy_device
from shared_utils.errors import TrialsFailed, UserError  # noqa: F401  (TrialsFailed: scripts catch it here)
from shared_utils.seed import seed_everything

BACKENDS = ("serial", "pool", "ray")
TrialFn = Callable[[dict], dict]
# keys the runner adds to every trial's configuration (never part of a condition)
RUNNER_KEYS = ("seed", "condition", "run_dir", "resume", "threads")
# settings that change what a trial prints, never what it computes: --resume accepts a run made without them
DISPLAY_KEYS = ("quiet",)
MAX_CURVES, MAX_BARS = 10, 24   # the most conditions one overlaid-curves / bar figure stays readable with


def _writes() -> bool:
    """Under torchrun every rank runs the study (each trial is one data-parallel run); rank 0 writes."""
    return os.environ.get("RANK", "0") == "0"


def slug(name: str) -> str:
    """A folder name for a condition: 'batch norm' -> 'batch_norm', 'pretrained, frozen' -> 'pretrained_frozen'."""
    text = re.sub(r"[^A-Za-z0-9.+-]+", "_", name).strip("_")
    return text or "condition"


def trial_path(study_path: str | os.PathLike, condition: str, seed: int) -> Path:
    """The one rule for where a trial's run folder lives: ``<study>/<slug(condition)>/seed_<n>``."""
    return Path(study_path) / slug(condition) / f"seed_{int(seed)}"


# --------------------------------------------------------------------------- conditions as a grid
@dataclass
class Condition:
    """One cell of a study's grid: its axis levels (``{"method": "scratch", "labels": 100}``), the
    configuration keys it sets, and its name (what tables and legends show; the folder is ``slug(name)``)."""
    name: str
    levels: dict
    overrides: dict

    def __getitem__(self, axis: str) -> Any:
        return self.levels[axis]

    @property
    def folder(self) -> str:
        return slug(self.name)

    def matches(self, levels: Mapping[str, Any]) -> bool:
        return all(axis in self.levels and self.levels[axis] == value for axis, value in levels.items())

    def as_json(self) -> dict:
        return {"name": self.name, "folder": self.folder, "levels": self.levels, "overrides": self.overrides}


class Axis:
    """One axis of a grid. ``levels`` is a list of values (each sets the configuration key named like the
    axis) or ``{label: overrides}`` (named levels that set several keys, e.g. ``{"pretrained, frozen":
    {"encoder": "pretrained", "mode": "frozen"}}``). ``label(value)`` is how a plain value reads in a
    condition's name (default: a string as it is, a number as ``axis=value``)."""

    def __init__(self, levels: Sequence[Any] | Mapping[str, Mapping[str, Any]],
                 label: Callable[[Any], str] | None = None):
        self.named = isinstance(levels, Mapping)
        self.levels = ({str(k): dict(v) for k, v in levels.items()} if self.named else list(levels))
        self.label = label

    def expand(self, axis: str) -> list[tuple[Any, str, dict]]:
        """(level, its label in the condition's name, the configuration keys it sets) per level."""
        if self.named:
            return [(name, name, overrides) for name, overrides in self.levels.items()]
        label = self.label or (lambda v: v if isinstance(v, str) else f"{axis}={v}")
        return [(value, str(label(value)), {axis: value}) for value in self.levels]


class Grid:
    """Conditions as the product of named axes, in axis order (the last axis varies fastest); ``a + b``
    joins two grids (e.g. a baseline beside a sweep). A condition's name joins its levels' labels with ``sep`` (", ")."""

    def __init__(self, axes: Mapping[str, Axis | Sequence[Any] | Mapping[str, Mapping[str, Any]]], sep: str = ", "):
        self.axes = {name: a if isinstance(a, Axis) else Axis(a) for name, a in axes.items()}
        self.sep = sep
        self._conditions: list[Condition] | None = None

    def joined(self, sep: str) -> "Grid":
        """The same grid with its level labels joined by ``sep`` in condition names ("mlp k=2"); join before
        adding, filtering or renaming (those keep their conditions, not the labels they came from)."""
        if self._conditions is not None:
            raise ValueError("join a grid's labels before adding, filtering or renaming it")
        return Grid(self.axes, sep)

    def with_overrides(self, extra: Callable[[Condition], Mapping[str, Any]]) -> "Grid":
        """The same grid, each condition also setting ``extra(condition)`` (settings that depend on several
        axes at once, e.g. more epochs for a smaller label budget of one method)."""
        updated = Grid(self.axes, self.sep)
        updated._conditions = [Condition(c.name, c.levels, {**c.overrides, **extra(c)}) for c in self.conditions]
        return updated

    def named(self, pattern: str) -> "Grid":
        """The same grid with condition names from a pattern over the levels: ``"{model}, L={length}"``."""
        renamed = Grid(self.axes, self.sep)
        renamed._conditions = [Condition(pattern.format(**c.levels), c.levels, c.overrides) for c in self.conditions]
        return renamed

    @property
    def conditions(self) -> list[Condition]:
        if self._conditions is None:
            cells = itertools.product(*(a.expand(name) for name, a in self.axes.items()))
            self._conditions = [Condition(self.sep.join(label for _, label, _ in cell),
                                          {axis: level for axis, (level, _, _) in zip(self.axes, cell)},
                                          {k: v for _, _, overrides in cell for k, v in overrides.items()})
                                for cell in cells]
        return self._conditions

    def __add__(self, other: "Grid") -> "Grid":
        joined = Grid({})
        joined.axes = {**self.axes, **other.axes}
        joined._conditions = self.conditions + other.conditions
        return joined

    def find(self, **levels: Any) -> Condition:
        """The one condition with these axis levels (``g.find(budget=10_000, depth=2)``)."""
        found = [c for c in self.conditions if c.matches(levels)]
        if len(found) != 1:
            raise KeyError(f"{len(found)} conditions of the grid have the levels {levels}")
        return found[0]

    def where(self, keep: Callable[[Condition], bool]) -> "Grid":
        """The conditions ``keep`` accepts (e.g. ``lambda c: c.overrides["mode"] != "scratch"``)."""
        kept = Grid(self.axes, self.sep)
        kept._conditions = [c for c in self.conditions if keep(c)]
        return kept

    def __iter__(self):
        return iter(self.conditions)

    def __len__(self) -> int:
        return len(self.conditions)


def grid(**axes: Axis | Sequence[Any] | Mapping[str, Mapping[str, Any]]) -> Grid:
    """``grid(model=["mlp", "cnn"], lr=[1e-3, 1e-2])``: four conditions, each a dict of axis values."""
    return Grid(axes)


def as_grid(conditions: Grid | Mapping[str, Mapping[str, Any]]) -> Grid:
    """A grid as it is; named conditions ``{name: overrides}`` as a grid of one axis, ``condition``."""
    return conditions if isinstance(conditions, Grid) else grid(condition=conditions)


@dataclass
class Trial:
    condition: str
    seed: int
    config: dict
    path: Path


@dataclass
class TrialOutcome:
    trial: Trial
    status: str                      # done | skipped | failed
    summary: dict = field(default_factory=dict)
    error: str = ""
    seconds: float = 0.0             # wall time inside the worker


# --------------------------------------------------------------------------- a finished trial's files, fingerprinted
RECORDS = ("trial.json", "artifacts.json", "error.json")     # the runner's own files in a trial folder


def _sha256(path: Path) -> str:
    import hashlib

    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def record_artifacts(folder: Path) -> Path:
    """artifacts.json: the sha256 of every file a finished trial left in its folder (checkpoints, metrics,
    summary, figures), so a later --resume trusts the folder only while they are intact."""
    files = sorted(p for p in folder.rglob("*") if p.is_file() and p.name not in RECORDS and not p.name.startswith("."))
    return atomic_write_json(folder / "artifacts.json",
                             {"sha256": {p.relative_to(folder).as_posix(): _sha256(p) for p in files}})


def check_artifacts(folder: Path) -> bool:
    """Refuse (UserError, one line) a finished trial whose files changed or went missing since artifacts.json
    recorded them; False for a folder with no record (finished before records were kept, or unfinished)."""
    record = folder / "artifacts.json"
    if not record.is_file():
        return False
    try:
        expected = json.loads(record.read_text())["sha256"]
        if not isinstance(expected, dict):
            raise TypeError("sha256 is not a mapping")
    except (OSError, ValueError, KeyError, TypeError):
        raise UserError(f"{record} is damaged; delete {folder} and run again with --resume to redo that trial") \
            from None
    for name, digest in expected.items():
        path = folder / name
        if not path.is_file() or _sha256(path) != digest:
            what = "went missing" if not path.is_file() else "changed"
            raise UserError(f"{path} {what} after its trial finished (sha256 in {record.name} no longer matches); "
                            f"delete {folder} and run again with --resume to redo that trial")
    return True


# --------------------------------------------------------------------------- records kept beside the run folder
KEPT_SUFFIXES = (".json", ".jsonl", ".md", ".csv", ".txt")   # a trial's numbers, not its weights or figures


def save_records(study_path: str | os.PathLike, dest: str | os.PathLike) -> int:
    """Copy the study's manifest and each finished trial's records (its files ending in KEPT_SUFFIXES, but not
    artifacts.json: the copy holds no checkpoints for its hashes to vouch for) to ``dest``, laid out as the
    study folder is, each file written atomically. For a study spread over machines that do not keep their run
    folders: ``dest`` (a shared disk, a repository) outlives them, and ``restore_records`` puts the finished
    trials back. Returns how many trials it copied."""
    study_path, dest = Path(study_path), Path(dest)
    _check_records(study_path, dest)
    copied = 0
    for summary in sorted(study_path.glob("*/seed_*/summary.json")):
        folder = summary.parent
        for f in sorted(folder.rglob("*")):
            if f.is_file() and f.suffix in KEPT_SUFFIXES and f.name != "artifacts.json" and not f.name.startswith("."):
                atomic_write_bytes(dest / f.relative_to(study_path), f.read_bytes())
        copied += 1
    if (study_path / "manifest.json").is_file():
        atomic_write_bytes(dest / "manifest.json", (study_path / "manifest.json").read_bytes())
    return copied


def _check_records(study_path: Path, records: Path) -> None:
    here, there = study_path.resolve(), records.resolve()
    if here == there or here in there.parents or there in here.parents:
        raise UserError(f"--records {records.parent} overlaps the study's own folder {study_path}; give a folder "
                        "outside --out")


def restore_records(src: str | os.PathLike, study_path: str | os.PathLike) -> int:
    """Put back from ``src`` (written by ``save_records``) every finished trial ``study_path`` lacks: a trial
    folder of ``src`` with a summary.json whose counterpart here has none (absent, or a run that stopped), the
    latter replaced whole; and the manifest where there is none here, so trials of seeds or conditions this run
    does not cover still read back. A resumed study then skips them as finished. Returns how many it put back."""
    src, study_path = Path(src), Path(study_path)
    restored = 0
    for summary in sorted(src.glob("*/seed_*/summary.json")):
        here = study_path / summary.parent.relative_to(src)
        if (here / "summary.json").is_file():
            continue
        if here.exists():
            shutil.rmtree(here)                      # never a folder mixing two runs
        for f in sorted(summary.parent.rglob("*")):
            if f.is_file() and not f.name.startswith("."):
                atomic_write_bytes(here / f.relative_to(summary.parent), f.read_bytes())
        restored += 1
    if (src / "manifest.json").is_file() and not (study_path / "manifest.json").is_file():
        atomic_write_bytes(study_path / "manifest.json", (src / "manifest.json").read_bytes())
    return restored


# --------------------------------------------------------------------------- executing one trial
def _limit_threads(threads: int | None) -> None:
    """Cap BLAS/OpenMP and torch threads in this process (a pool or Ray worker)."""
    if not threads:
        return
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[var] = str(threads)
    try:
        from threadpoolctl import threadpool_limits

        threadpool_limits(threads)
    except ImportError:   # numpy without threadpoolctl: the environment variables still apply to new pools
        pass
    torch = sys.modules.get("torch")
    if torch is not None and torch.get_num_threads() != threads:
        torch.set_num_threads(threads)


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text}"[:300] if not isinstance(exc, UserError) else text[:300]


def execute(trial_fn: TrialFn, config: dict) -> tuple[str, dict, str, float]:
    """Run one trial and never raise (a worker's failure must not end the study): returns
    (status, summary, one-line error, seconds). Also writes the traceback to <run_dir>/error.txt."""
    _limit_threads(config.get("threads"))
    started = time.perf_counter()
    try:
        summary = trial_fn(dict(config))
        return "done", dict(summary or {}), "", time.perf_counter() - started
    except KeyboardInterrupt:
        raise
    except BaseException as exc:   # SystemExit from argparse inside a trial counts as a failure too
        run_dir = Path(config["run_dir"])
        try:
            run_dir.mkdir(parents=True, exist_ok=True)
            atomic_write_json(run_dir / "error.json", {"error": _one_line(exc), "traceback": traceback.format_exc()})
        except OSError:
            pass
        return "failed", {}, _one_line(exc), time.perf_counter() - started


def _pool_init(threads: int) -> None:
    _die_with_parent()
    _limit_threads(threads)


def _die_with_parent() -> None:
    """Ask Linux to end this worker when the process that started it dies (killed, or stopped by a session
    limit): otherwise an orphaned worker would finish its trial on cores nobody is waiting for."""
    import signal

    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        pr_set_pdeathsig = 1
        libc.prctl(pr_set_pdeathsig, signal.SIGTERM)
        if os.getppid() == 1:          # the parent died before the request took effect
            os._exit(1)
    except (OSError, AttributeError):  # not Linux: the pool's own shutdown is all there is
        pass


# --------------------------------------------------------------------------- a trial's first line
@dataclass
class TrialContext:
    """What :func:`start` hands a trial: its configuration, seed, device, run folder and a seeded NumPy RNG."""
    config: dict
    device: Any                     # a torch.device in a PyTorch trial, "cpu" in a NumPy one
    run: Any                        # the trial's shared_utils.runs.RunDir
    rng: np.random.Generator

    @property
    def seed(self) -> int:
        return int(self.config["seed"])

    @property
    def quiet(self) -> bool:
        return bool(self.config.get("quiet"))


def start(config: Mapping[str, Any], script_file: str | os.PathLike | None = None, *, deterministic: bool = False,
          **record: Any) -> TrialContext:
    """The first line of every trial: seeds Python, NumPy and (if loaded) torch with ``config["seed"]``,
    resolves ``config["device"]`` (torch's choice in a PyTorch trial; the CPU in a NumPy one, which never
    imports torch), opens the trial's run folder (resumed when the runner says so) and records the
    resolved configuration, the device and any ``record`` fields in its config.json. ``script_file`` names
    the script in that record (default: the calling module's file)."""
    rng = seed_everything(int(config["seed"]), deterministic=deterministic)
    if "torch" in sys.modules:
        from shared_utils.pytorch.device import resolve

        device = resolve(config.get("device") or "auto")
    else:
        device = numpy_device(config.get("device") or "auto")
    if script_file is None:
        script_file = sys._getframe(1).f_globals.get("__file__", "trial")
    run = runs.RunDir.for_trial(script_file, config, device=str(device), **record)
    return TrialContext(dict(config), device, run, rng)


# --------------------------------------------------------------------------- the study
class Study:
    grid = staticmethod(grid)     # Study.grid(model=[...], lr=[...])

    def __init__(self, name: str, trial_fn: TrialFn, conditions: Grid | Mapping[str, Mapping[str, Any]],
                 seeds: Sequence[int], out: str | os.PathLike, *, base: Mapping[str, Any] | None = None,
                 resume: bool = False, budget_key: str | None = None,
                 cost: Callable[[dict], float] | None = None, restart_on_budget: bool = False):
        self.name, self.trial_fn = name, trial_fn
        self.grid = as_grid(conditions)
        self.conditions = {c.name: dict(c.overrides) for c in self.grid}
        self.seeds = [int(s) for s in seeds]
        self.out = Path(out)
        self.base = dict(base or {})
        self.resume = resume
        self.budget_key = budget_key     # the one key successive halving may raise between rounds
        self.cost = cost                 # a trial's estimated cost (e.g. its FLOPs): the costliest start first
        self.restart_on_budget = restart_on_budget   # a new budget trains afresh instead of continuing
        self._verified: set[Path] = set()   # finished trials whose files check() already hashed
        self._records: Path | None = None   # where run(records=...) keeps the finished trials' records
        self._validate()

    @property
    def path(self) -> Path:
        return self.out / self.name

    def load(self) -> "StudyResult":
        """This study's results read back from its folder (what ``--report-only`` draws from)."""
        return StudyResult.load(self.path)

    def check(self) -> "Study":
        """Every refusal a run would make (a folder from another configuration, a damaged finished trial, a
        folder the runner did not write), made now and writing nothing: a script that writes files of its own,
        or runs several studies in a row, checks them all first."""
        self._plan(self.trials())
        return self

    def run_or_load(self, args: Any) -> "StudyResult":
        """What a study script does with its parsed flags: with ``--report-only`` read the results already in
        the folder, else run the trials (``--workers --backend --address``; ``--resume`` is the study's)."""
        if getattr(args, "report_only", False):
            if getattr(args, "records", None) and _writes():
                save_records(self.path, Path(args.records) / self.name)
            return self.load()
        from shared_utils import cli

        return self.run(**cli.study_backend(args))

    def adopt(self, condition: str, seed: int, source: str | os.PathLike, made_with: Mapping[str, Any]) -> bool:
        """Take a finished run of another study as this study's trial (``condition``, ``seed``) instead of
        training it again: for a condition that is another script's run as it is (an ablation's reference,
        say). ``source`` is that run's trial folder, or the records save_records kept of it; ``made_with`` the
        configuration its own study recorded (its trial.json): a run made with anything else, or unfinished,
        is refused. Copies its records (KEPT_SUFFIXES files, not its weights), writes this study's trial.json
        and names the source in the summary (``adopted_from``). False, and nothing written, where this study's
        trial has finished already; an unfinished one is replaced whole. A resumed run then skips the trial."""
        source = Path(source)
        trial = next((t for t in self.trials() if t.condition == condition and t.seed == int(seed)), None)
        if trial is None:
            raise UserError(f"study {self.name} has no trial {condition!r} seed {seed} to take a run for")
        if (trial.path / "summary.json").is_file() or not _writes():
            return False
        try:
            recorded = json.loads((source / "trial.json").read_text())
            summary = json.loads((source / "summary.json").read_text())
        except FileNotFoundError:
            raise UserError(f"{source} holds no finished run (trial.json and summary.json); give the trial folder "
                            "of a finished run") from None
        except (OSError, json.JSONDecodeError) as exc:
            raise UserError(f"{source}: unreadable run records ({_one_line(exc)})") from None
        expected = self._identity(made_with)
        if recorded != expected:
            keys = sorted(k for k in set(recorded) | set(expected) if recorded.get(k) != expected.get(k))
            raise UserError(f"{source} was made with other settings ({', '.join(keys[:5])}) than {condition!r} "
                            f"seed {seed} trains with; train it instead (leave the run out)")
        with _exclusive(self.path):                   # not while a run of this study writes into it
            if trial.path.exists():
                shutil.rmtree(trial.path)             # never a folder mixing two runs
            atomic_write_json(trial.path / "trial.json", self._identity(trial.config))
            for f in sorted(source.rglob("*")):
                if (f.is_file() and f.suffix in KEPT_SUFFIXES and f.name not in (*RECORDS, "summary.json")
                        and not f.name.startswith(".")):
                    atomic_write_bytes(trial.path / f.relative_to(source), f.read_bytes())
            # last: a summary is what makes a trial finished, so a copy cut off part-way is trained again
            atomic_write_json(trial.path / "summary.json", {**summary, "adopted_from": str(source)})
        return True

    def _validate(self) -> None:
        if not self.conditions:
            raise UserError(f"study {self.name}: no conditions to run")
        if len(self.conditions) != len(self.grid):
            names = [c.name for c in self.grid]
            twice = next(n for n in names if names.count(n) > 1)
            raise UserError(f"study {self.name}: the condition {twice!r} appears twice in the grid")
        if not self.seeds:
            raise UserError(f"study {self.name}: no seeds to run")
        if len(set(self.seeds)) != len(self.seeds):
            raise UserError(f"study {self.name}: seeds repeat ({self.seeds}); give each seed once")
        slugs: dict[str, str] = {}
        for name, overrides in self.conditions.items():
            unknown = sorted(set(overrides) - set(self.base))
            if unknown:
                raise UserError(f"condition {name!r} sets unknown key(s) {', '.join(unknown)}; "
                                f"known: {', '.join(sorted(self.base)) or '(none)'}")
            reserved = sorted(set(overrides) & set(RUNNER_KEYS))
            if reserved:
                raise UserError(f"condition {name!r} sets {', '.join(reserved)}, which the study runner sets")
            if slug(name) in slugs:
                raise UserError(f"conditions {slugs[slug(name)]!r} and {name!r} would share the folder {slug(name)}")
            slugs[slug(name)] = name
        if callable(self.trial_fn) and getattr(self.trial_fn, "__qualname__", "").count("<locals>"):
            raise UserError(f"study {self.name}: the trial function must be defined at module level "
                            "(workers import it by name)")

    def trials(self) -> list[Trial]:
        out = []
        for name, overrides in self.conditions.items():
            for seed in self.seeds:
                path = trial_path(self.path, name, seed)
                config = {**self.base, **overrides, "seed": seed, "condition": name, "run_dir": str(path),
                          "resume": self.resume}
                out.append(Trial(name, seed, config, path))
        return out

    # ----------------------------------------------------------------- planning: skip, resume, refuse
    def _identity(self, config: Mapping[str, Any], *, with_budget: bool = True) -> dict:
        drop = {"resume", "threads", "run_dir", *DISPLAY_KEYS} | (
            {self.budget_key} if self.budget_key and not with_budget else set())
        return json.loads(json.dumps({k: v for k, v in config.items() if k not in drop}, default=str))

    def _plan(self, trials: list[Trial]) -> tuple[list[Trial], list[TrialOutcome]]:
        """Which trials run and which are already done; refuses a folder made from another configuration."""
        to_run, skipped = [], []
        for trial in trials:
            record = trial.path / "trial.json"
            if trial.path.exists() and not record.exists() and any(trial.path.iterdir()):
                raise UserError(f"{trial.path} exists and was not written by the study runner; "
                                "use another --out or move it away")
            if not record.exists() or not self.resume:
                trial.config["_fresh"] = True    # an old run in this folder is cleared before the trial
                to_run.append(trial)
                continue
            try:
                old = json.loads(record.read_text())
            except (OSError, json.JSONDecodeError):
                raise UserError(f"{record} is unreadable; delete that run folder or start without --resume") from None
            now = self._identity(trial.config, with_budget=False)
            before = {k: v for k, v in old.items() if k != self.budget_key and k not in DISPLAY_KEYS}
            if before != now:
                keys = sorted(k for k in set(before) | set(now) if before.get(k) != now.get(k))
                raise UserError(f"{trial.path} was made with other settings ({', '.join(keys[:5])}); "
                                "use another --out, or start without --resume")
            # skipped or continued only while its files are intact (hashed once per Study: check() then run())
            recorded = trial.path in self._verified or check_artifacts(trial.path)
            if recorded:
                self._verified.add(trial.path)
            summary_path = trial.path / "summary.json"
            same_budget = not self.budget_key or old.get(self.budget_key) == trial.config.get(self.budget_key)
            if summary_path.exists() and same_budget:
                try:
                    summary = json.loads(summary_path.read_text())
                except (OSError, json.JSONDecodeError):
                    to_run.append(trial)
                    continue
                skipped.append(TrialOutcome(trial, "skipped", summary, error="" if recorded else "unrecorded"))
            else:
                if not same_budget and self.restart_on_budget:
                    trial.config["_fresh"] = True
                to_run.append(trial)
        return to_run, skipped

    # ----------------------------------------------------------------- running
    def run(self, backend: str = "serial", workers: int = 1, address: str | None = None, *,
            cpus_per_trial: int | None = None, gpus_per_trial: float = 0.0, quiet: bool = False,
            records: str | os.PathLike | None = None) -> "StudyResult":
        """Run the trials that are not done (see the module docstring), holding the study folder's lock: a second
        run into the same folder meanwhile refuses with one line instead of mixing its trials in. With
        ``records`` (a folder), each finished trial's records are also kept in ``records/<study>`` as it
        finishes (``save_records``), and a resumed run first takes back the finished trials found there
        (``restore_records``)."""
        if backend not in BACKENDS:
            raise UserError(f"unknown backend {backend!r}; choose {', '.join(BACKENDS)}")
        if workers < 1:
            raise UserError(f"--workers must be at least 1, got {workers}")
        if address is not None and backend != "ray":
            raise UserError("--address is for --backend ray; drop it or add --backend ray")
        if int(os.environ.get("WORLD_SIZE", "1")) > 1 and (backend != "serial" or workers != 1):
            raise UserError("under torchrun each trial is already spread over the ranks; drop --workers/--backend")
        if backend == "ray" and address not in (None, "auto"):
            _probe(address)      # an unreachable cluster is refused before the folder is touched
        self._records = Path(records) / self.name if records is not None else None
        if self._records is not None:
            _check_records(self.path, self._records)
        with _exclusive(self.path):
            if self._records is not None and self.resume and self._records.is_dir() and _writes():
                restored = restore_records(self._records, self.path)
                if restored and not quiet:
                    print(f"[{self.name}] {restored} finished trial(s) taken back from {self._records}", flush=True)
            result = self._run(backend, workers, address, cpus_per_trial=cpus_per_trial,
                               gpus_per_trial=gpus_per_trial, quiet=quiet)
            if self._records is not None and _writes():
                save_records(self.path, self._records)
            return result

    def _kept_from_before(self, trials: list[Trial]) -> tuple[list[TrialOutcome], list[Condition], list[int]]:
        """With --resume, the finished trials an earlier run of this study (same settings) left in the folder that
        this run does not cover, a narrower grid or fewer seeds: they stay in the manifest, so the study reads back
        whole (a grid on 1 seed, then --resume with 3 seeds on one length). Returns them, the conditions of both
        runs (in the earlier run's order) and the seeds only they have."""
        mine = {c.name: c for c in self.grid}
        if not (self.resume and (self.path / "manifest.json").is_file()):
            return [], list(self.grid), []
        try:
            before = StudyResult.load(self.path)
        except UserError:
            return [], list(self.grid), []

        def settings(base):      # what the trials were run with (not how they printed)
            return json.loads(json.dumps({k: v for k, v in base.items() if k not in DISPLAY_KEYS}, default=str))

        if settings(before.base) != settings(self.base):
            return [], list(self.grid), []
        covered = {(t.condition, t.seed) for t in trials}
        kept = [o for o in before.outcomes if (o.trial.condition, o.trial.seed) not in covered
                and o.status in ("done", "skipped") and (o.trial.path / "summary.json").is_file()]
        held = {o.trial.condition for o in kept}
        # the earlier run's order, this run's conditions in their places, then this run's new ones
        order = [mine.get(c.name, c) for c in before.conditions if c.name in mine or c.name in held]
        order += [c for c in self.grid if c not in order]
        seeds = sorted({o.trial.seed for o in kept} - set(self.seeds))
        return kept, order, seeds

    def _run(self, backend: str, workers: int, address: str | None, *, cpus_per_trial: int | None,
             gpus_per_trial: float, quiet: bool) -> "StudyResult":
        trials = self.trials()
        to_run, skipped = self._plan(trials)      # every refusal happens here, before anything is written
        kept, conditions, kept_seeds = self._kept_from_before(trials)
        whole = dict(conditions=conditions, seeds=list(self.seeds) + kept_seeds)
        self._verified.clear()                    # a later run hashes again
        if _writes() and self.path.is_dir():
            # a write cut off by a kill (the manifest, a trial's artifacts.json after its summary): never a file
            # of record; a finished trial is skipped without opening its folder, so it is swept here
            for stale in self.path.rglob(".*.tmp"):
                stale.unlink(missing_ok=True)
        for outcome in skipped:                   # finished before records were kept: fingerprinted from now on
            if outcome.error == "unrecorded":
                outcome.error = ""
                if _writes():
                    record_artifacts(outcome.trial.path)
        if self.cost is not None:
            # longest first: on a pool the long trials overlap, instead of the last one running alone at the end
            to_run.sort(key=lambda t: -float(self.cost(t.config)))
        cores = os.cpu_count() or 1
        threads = cpus_per_trial or max(1, cores // workers)
        started = time.perf_counter()
        ray_started = False
        if backend == "ray":
            ray_started = _ray_connect(address, workers)
        try:
            for trial in to_run:     # record what each folder is for before any trial writes into it
                trial.config["threads"] = threads if backend != "serial" else None
                fresh = trial.config.pop("_fresh", False)
                if _writes():
                    if fresh and trial.path.exists():
                        shutil.rmtree(trial.path)    # never a folder mixing two runs
                    atomic_write_json(trial.path / "trial.json", self._identity(trial.config))
                    (trial.path / "error.json").unlink(missing_ok=True)
                    (trial.path / "artifacts.json").unlink(missing_ok=True)   # written again when it finishes
            if _writes() and to_run:   # the plan, so a stopped study can still be read back (and resumed)
                pending = {(t.condition, t.seed) for t in to_run}
                StudyResult(self, [o for o in skipped] + [TrialOutcome(t, "pending") for t in trials
                                                          if (t.condition, t.seed) in pending] + kept,
                            backend=backend, workers=workers, wall_seconds=0.0, **whole).write_manifest()
            if backend == "serial":
                outcomes = [self._outcome(t, execute(self.trial_fn, t.config), quiet) for t in to_run]
            elif backend == "pool":
                outcomes = self._run_pool(to_run, workers, threads, quiet)
            else:
                outcomes = self._run_ray(to_run, threads, gpus_per_trial, quiet)
        finally:
            if ray_started:
                import ray

                ray.shutdown()
        by_key = {(o.trial.condition, o.trial.seed): o for o in outcomes + skipped}
        ordered = [by_key[(t.condition, t.seed)] for t in trials] + kept
        result = StudyResult(self, ordered, backend=backend, workers=workers, wall_seconds=time.perf_counter() - started,
                             **whole)
        result.write_manifest()
        return result

    def _outcome(self, trial: Trial, executed: tuple, quiet: bool) -> TrialOutcome:
        status, summary, error, seconds = executed
        outcome = TrialOutcome(trial, status, summary, error, seconds)
        if status == "done" and _writes() and trial.path.is_dir():
            record_artifacts(trial.path)
            if self._records is not None:
                save_records(self.path, self._records)      # kept as each trial finishes, not only at the end
        if not quiet:
            note = f"failed: {error}" if status == "failed" else f"{seconds:.1f} s"
            print(f"[{self.name}] {trial.condition} seed {trial.seed}: {note}", flush=True)
        return outcome

    def _run_pool(self, trials: list[Trial], workers: int, threads: int, quiet: bool) -> list[TrialOutcome]:
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor, as_completed

        if not trials:
            return []
        # NumPy-only parents fork: workers start at once and share the data the parent already loaded
        # (copy-on-write). Once torch is loaded, spawn: its OpenMP pool does not survive a fork.
        method = "fork" if "torch" not in sys.modules and "fork" in mp.get_all_start_methods() else "spawn"
        with ProcessPoolExecutor(max_workers=min(workers, len(trials)), mp_context=mp.get_context(method),
                                 initializer=_pool_init, initargs=(threads,)) as pool:
            futures = {pool.submit(execute, self.trial_fn, t.config): t for t in trials}
            outcomes = []
            for future in as_completed(futures):
                trial = futures[future]
                try:
                    executed = future.result()
                except Exception as exc:   # the worker process itself died (out of memory, killed)
                    executed = ("failed", {}, f"worker died: {_one_line(exc)}", 0.0)
                outcomes.append(self._outcome(trial, executed, quiet))
        return outcomes

    def _run_ray(self, trials: list[Trial], threads: int, gpus: float, quiet: bool) -> list[TrialOutcome]:
        import ray

        remote = ray.remote(num_cpus=threads, num_gpus=gpus, max_retries=0)(execute)
        pending = {remote.remote(self.trial_fn, t.config): t for t in trials}
        outcomes = []
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1)
            trial = pending.pop(done[0])
            try:
                executed = ray.get(done[0])
            except Exception as exc:   # the task's worker died
                executed = ("failed", {}, f"ray task died: {_one_line(exc)}", 0.0)
            outcomes.append(self._outcome(trial, executed, quiet))
        return outcomes

    # ----------------------------------------------------------------- successive halving
    def halving(self, budgets: Sequence[int], *, metric: str, mode: str = "max", eta: int = 2,
                backend: str = "serial", workers: int = 1, address: str | None = None,
                quiet: bool = False, restart: bool = False, **run_kwargs: Any) -> "HalvingResult":
        """Successive halving over ``budgets`` (e.g. epochs 2, 4, 8): after each round keep the best
        ``max(1, n // eta)`` conditions by the seed-mean of summary ``metric``; survivors continue
        from their checkpoints (their trial must resume, as engine runs do). With ``restart`` they train
        afresh at the new budget instead, so each round's score is that of a whole run at its budget (what
        a learning-rate schedule that spans the budget needs: continued, a decayed schedule restarts)."""
        if not self.budget_key:
            raise UserError("successive halving needs the study's budget_key (e.g. 'epochs')")
        if list(budgets) != sorted(set(budgets)) or not budgets:
            raise UserError(f"halving budgets must increase, got {list(budgets)}")
        if eta < 2:
            raise UserError(f"eta must be at least 2, got {eta}")
        if mode not in ("max", "min"):
            raise UserError(f"mode must be max or min, got {mode!r}")
        survivors = list(self.conditions)
        rounds = []
        last = None
        latest: dict[tuple[str, int], TrialOutcome] = {}     # each trial as its last round left it
        started = time.perf_counter()
        for i, budget in enumerate(budgets):
            kept = self.grid.where(lambda c: c.name in survivors)
            sub = Study(self.name, self.trial_fn, kept, self.seeds, self.out,
                        base={**self.base, self.budget_key: budget}, resume=self.resume or i > 0,
                        budget_key=self.budget_key, cost=self.cost, restart_on_budget=restart)
            last = sub.run(backend=backend, workers=workers, address=address, quiet=quiet, **run_kwargs)
            latest.update({(o.trial.condition, o.trial.seed): o for o in last.outcomes})
            scores = last.scores(metric)
            ranked = sorted(scores, key=lambda c: scores[c], reverse=mode == "max")
            keep = ranked[:max(1, len(ranked) // eta)] if i < len(budgets) - 1 else ranked[:1]
            rounds.append({"round": i + 1, "budget": budget, "scores": scores, "ranked": ranked, "kept": keep,
                           "failed": [o.trial.condition for o in last.outcomes if o.status == "failed"]})
            survivors = keep
        # the folder's manifest then lists every condition, each at the last round it reached, so the whole
        # screen reads back with StudyResult.load (a round's own manifest holds only its survivors)
        StudyResult(self, [latest[t.condition, t.seed] for t in self.trials() if (t.condition, t.seed) in latest],
                    backend=backend, workers=workers, wall_seconds=time.perf_counter() - started).write_manifest()
        result = HalvingResult(self, rounds, last, metric, mode)
        result.write()
        return result


@contextlib.contextmanager
def _exclusive(folder: Path):
    """An exclusive lock on the study folder itself (flock on the directory: no lock file is left behind, and
    the lock goes with the process that held it, however it ended). Only the writing rank locks."""
    try:
        import fcntl
    except ImportError:      # not POSIX: no lock, as before
        yield
        return
    if not _writes():
        yield
        return
    folder.mkdir(parents=True, exist_ok=True)
    fd = os.open(folder, os.O_RDONLY)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise UserError(f"another run is writing {folder} right now; wait for it to finish, or give this one "
                            "another --out") from None
        yield
    finally:
        os.close(fd)


def _ray_connect(address: str | None, workers: int) -> bool:
    """Connect to (or start) Ray; returns True if this call started it. An unreachable address is a UserError."""
    try:
        import ray
    except ImportError:
        raise UserError("--backend ray needs the ray package: pip install -r requirements.txt") from None
    if ray.is_initialized():
        return False
    if address not in (None, "auto"):
        _probe(address)   # Ray itself retries an unreachable address for minutes
    try:
        if address is None:
            ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
        else:
            ray.init(address=address, log_to_driver=False, logging_level="ERROR")
    except Exception as exc:   # ConnectionError, ValueError for a malformed address, timeouts
        raise UserError(f"cannot reach a Ray cluster at {address or 'a local instance'} ({_one_line(exc)[:150]}); "
                        "start one with `ray start --head`, or drop --address to start a local one") from None
    return True


def _probe(address: str, timeout: float = 3.0) -> None:
    import socket

    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        raise UserError(f"--address {address!r} is not auto or HOST:PORT (e.g. 10.0.0.5:6379)")
    try:
        with socket.create_connection((host, int(port)), timeout=timeout):
            pass
    except OSError as exc:
        raise UserError(f"cannot reach a Ray cluster at {address} ({exc.strerror or type(exc).__name__}); "
                        "start one with `ray start --head`, or drop --address to start a local one") from None


# --------------------------------------------------------------------------- results
class Table(list):
    """Rows (dicts) of a per-condition summary: the condition's axes, then n, mean, ci_low, ci_high.
    Prints as a Markdown table (``cells()`` gives the formatted rows for ``stats.write_table``)."""

    def __init__(self, rows: Sequence[dict], *, digits: int = 2, caption: str = ""):
        super().__init__(rows)
        self.digits, self.caption = digits, caption

    @property
    def header(self) -> list[str]:
        return list(dict.fromkeys(k for row in self for k in row))

    STATS = ("mean", "ci_low", "ci_high")

    def cells(self) -> list[list[str]]:
        def cell(key, v):
            if key in self.STATS and isinstance(v, float):
                return "" if v != v else f"{v:.{self.digits}f}"   # NaN: one seed has no interval
            return str(v)
        return [[cell(k, row.get(k, "")) for k in self.header] for row in self]

    def __str__(self) -> str:
        lines = [self.header, ["---"] * len(self.header)] + self.cells()
        return "\n".join(([self.caption, ""] if self.caption else []) + ["| " + " | ".join(r) + " |" for r in lines])


class StudyResult:
    """A study's trials and their results: made by :meth:`Study.run`, or read back from the study's folder
    alone with :meth:`load` (no trial function needed)::

        r = StudyResult.load("projects/x/runs/smoothing")
        r.conditions                         # [Condition(name='0.1', levels={'smoothing': 0.1}, ...), ...]
        r.table("test_acc", scale=100)       # rows: the condition's axes, n, mean, ci_low, ci_high
        r.curves("val_acc")                  # {condition name: (epochs, seeds x epochs array)}
        r.artifact({"smoothing": 0.1}, 0, "best.pt")
    """

    def __init__(self, study: Study | None, outcomes: list[TrialOutcome], *, backend: str, workers: int,
                 wall_seconds: float, name: str | None = None, path: str | os.PathLike | None = None,
                 conditions: Sequence[Condition] | None = None, seeds: Sequence[int] | None = None,
                 base: Mapping[str, Any] | None = None):
        self.study, self.outcomes = study, outcomes
        self.backend, self.workers, self.wall_seconds = backend, workers, wall_seconds
        self.name = name if study is None else study.name
        self._path = Path(path) if study is None else study.path
        self.conditions: list[Condition] = list(conditions if conditions is not None else study.grid)
        self.seeds = [int(x) for x in (seeds if seeds is not None else study.seeds)]
        self.base = dict(base or {}) if study is None else study.base

    @classmethod
    def load(cls, path: str | os.PathLike, grid: Grid | None = None) -> "StudyResult":
        """Read a study back from its folder: its manifest.json, each trial's summary.json and files. A trial
        that failed, or never wrote its summary (the run was stopped), is left out of the figures. A folder
        written before manifests recorded the grid gets its conditions' levels from ``grid`` (the script's own
        grid for the same flags), matched by name."""
        path = Path(path)
        if not (path / "manifest.json").is_file():
            raise UserError(f"no study in {path} (its manifest.json is missing); run the study first")
        manifest = runs.read_json(path / "manifest.json")
        try:
            if "grid" in manifest:
                conditions = [Condition(c["name"], dict(c["levels"]), dict(c["overrides"]))
                              for c in manifest["grid"]["conditions"]]
            else:   # written before manifests recorded the grid: the levels come from ``grid``, else the name
                overrides, known = manifest.get("overrides", {}), {c.name: c for c in (grid or [])}
                conditions = [known.get(n) or Condition(n, {"condition": n}, dict(overrides.get(n, {})))
                              for n in manifest["conditions"]]
            outcomes = []
            for t in manifest["trials"]:
                run_dir = (path / t["run_dir"]).resolve()
                if path.resolve() not in run_dir.parents:
                    raise UserError(f"{path / 'manifest.json'} points outside the study ({t['run_dir']}); "
                                    "it is not a manifest this project wrote")
                trial = Trial(str(t["condition"]), int(t["seed"]), {}, path / t["run_dir"])
                summary, status = {}, str(t["status"])
                if status != "failed":
                    if (trial.path / "summary.json").is_file():
                        summary = runs.read_summary(trial.path)
                    else:
                        status = "missing"
                outcomes.append(TrialOutcome(trial, status, summary, str(t.get("error", "")),
                                             float(t.get("seconds", 0.0))))
            return cls(None, outcomes, backend=str(manifest.get("backend", "")), workers=int(manifest.get("workers", 1)),
                       wall_seconds=float(manifest.get("wall_seconds", 0.0)), name=str(manifest["study"]), path=path,
                       conditions=conditions, seeds=manifest["seeds"], base=manifest.get("base", {}))
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise UserError(f"{path / 'manifest.json'} is not a study manifest this project wrote "
                            f"({type(exc).__name__}: {exc}); run the study again") from None

    @property
    def path(self) -> Path:
        return self._path

    @property
    def failures(self) -> list[TrialOutcome]:
        return [o for o in self.outcomes if o.status == "failed"]

    def _finished(self, seeds: Sequence[int] | None = None) -> list[TrialOutcome]:
        return [o for o in self.outcomes if o.status not in ("failed", "missing")
                and (seeds is None or o.trial.seed in seeds)]

    # ----------------------------------------------------------------- finding conditions and files
    def condition(self, which: str | Mapping[str, Any] | Condition | None = None, **levels: Any) -> Condition:
        """The one condition named ``which``, or whose axis levels match (``method="scratch", labels=100``)."""
        if isinstance(which, Condition):
            return which
        if isinstance(which, str):
            found = [c for c in self.conditions if c.name == which]
        else:
            wanted = {**(which or {}), **levels}
            found = [c for c in self.conditions if c.matches(wanted)]
        if len(found) != 1:
            what = which if isinstance(which, str) else {**(which or {}), **levels}
            raise UserError(f"study {self.name}: {len(found)} conditions match {what!r}; "
                            f"known: {', '.join(c.name for c in self.conditions)}")
        return found[0]

    def only(self, names: Sequence[str]) -> "StudyResult":
        """The same study restricted to the named conditions (e.g. the last round of a successive halving)."""
        keep = set(names)
        return StudyResult(None, [o for o in self.outcomes if o.trial.condition in keep], backend=self.backend,
                           workers=self.workers, wall_seconds=self.wall_seconds, name=self.name, path=self.path,
                           conditions=[c for c in self.conditions if c.name in keep], seeds=self.seeds, base=self.base)

    def levels(self, axis: str) -> list:
        """The levels of one axis, in grid order (``r.levels("labels")`` -> ``[100, 1000, 0]``)."""
        return list(dict.fromkeys(c.levels[axis] for c in self.conditions if axis in c.levels))

    def select(self, **levels: Any) -> list[Condition]:
        """The conditions whose axis levels match, in grid order."""
        return [c for c in self.conditions if c.matches(levels)]

    def trial_path(self, condition: str | Mapping[str, Any] | Condition, seed: int) -> Path:
        return trial_path(self.path, self.condition(condition).name, seed)

    def artifact(self, condition: str | Mapping[str, Any] | Condition, seed: int, name: str) -> Path:
        """A file a trial left in its run folder (a checkpoint, an array): a UserError if it is not there."""
        path = self.trial_path(condition, seed) / name
        if not path.is_file():
            raise UserError(f"{path} does not exist; run the study (again) to make it")
        return path

    # ----------------------------------------------------------------- reading results
    def summaries(self, seeds: Sequence[int] | None = None) -> dict[str, list[dict]]:
        """{condition: [summary per finished seed]} in the study's order (only ``seeds``, if given)."""
        out: dict[str, list[dict]] = {}
        for o in self._finished(seeds):
            out.setdefault(o.trial.condition, []).append(o.summary)
        return out

    def values(self, key: str, scale: float = 1.0, **levels: Any) -> dict[str, list[float]]:
        """{condition: [summary figure per finished seed] * scale}, for the conditions matching ``levels``."""
        names = {c.name for c in self.select(**levels)}
        return {c: [scale * float(s[key]) for s in per if s.get(key) is not None]
                for c, per in self.summaries().items() if c in names}

    def at(self, key: str, scale: float = 1.0, which: str | Mapping[str, Any] | Condition | None = None,
           **levels: Any) -> list[float]:
        """One condition's per-seed values of a summary figure: ``r.at("test_acc", 100, labels=100, ...)``;
        empty if no condition matches (a report's "missing" cell), an error if several do."""
        if which is None and not self.select(**levels):
            return []
        return self.values(key, scale).get(self.condition(which, **levels).name, [])

    def scores(self, key: str) -> dict[str, float]:
        """Seed-mean of a summary figure per condition (conditions with no value are left out)."""
        return {c: sum(v) / len(v) for c, v in self.values(key).items() if v}

    def run_paths(self, seeds: Sequence[int] | None = None) -> dict[str, list[Path]]:
        """{condition: [run folder per finished seed]} in the study's order (only ``seeds``, if given)."""
        out: dict[str, list[Path]] = {}
        for o in self._finished(seeds):
            out.setdefault(o.trial.condition, []).append(o.trial.path)
        return out

    def table(self, key: str, scale: float = 1.0, *, digits: int = 2, **levels: Any) -> Table:
        """Mean and 95% CI of a summary figure per condition: a row per condition with its axis levels."""
        from shared_utils import stats

        values = self.values(key, scale, **levels)
        rows = []
        for c in self.select(**levels):
            v = values.get(c.name, [])
            s = stats.summarize(v) if v else None
            half = s.ci95 if s and s.n > 1 else float("nan")
            rows.append({**c.levels, "n": len(v), "mean": s.mean if s else float("nan"),
                         "ci_low": s.mean - half if s else float("nan"), "ci_high": s.mean + half if s else float("nan")})
        return Table(rows, digits=digits, caption=f"{self.name}: {key} x {scale:g}, mean and 95% CI over seeds")

    def curves(self, key: str, scale: float = 1.0, **levels: Any) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """Per condition, a metric of metrics.csv over epochs: (epochs, array seeds x epochs), cut to the
        shortest finished seed's length."""
        out = {}
        for c in self.select(**levels):
            logs = [runs.read_metrics(p) for p in self.run_paths().get(c.name, []) if (p / "metrics.csv").is_file()]
            logs = [m for m in logs if key in m]
            if logs:
                n = min(len(m[key]) for m in logs)
                x = logs[0]["epoch"][:n] if "epoch" in logs[0] else np.arange(1, n + 1)
                out[c.name] = (x, scale * np.stack([m[key][:n] for m in logs]))
        return out

    def write_manifest(self) -> Path | None:
        if not _writes():
            return None
        trials = [{"condition": o.trial.condition, "seed": o.trial.seed, "status": o.status,
                   "run_dir": os.path.relpath(o.trial.path, self.path), "seconds": round(o.seconds, 3),
                   **({"error": o.error} if o.error else {})} for o in self.outcomes]
        return atomic_write_json(self.path / "manifest.json", {
            "study": self.name, "backend": self.backend, "workers": self.workers,
            "conditions": [c.name for c in self.conditions], "seeds": self.seeds, "base": self.base,
            "overrides": {c.name: c.overrides for c in self.conditions},
            "grid": {"axes": list(dict.fromkeys(a for c in self.conditions for a in c.levels)),
                     "conditions": [c.as_json() for c in self.conditions]},
            "wall_seconds": round(self.wall_seconds, 3), "failed": len(self.failures), "trials": trials})

    def report(self, metrics: Mapping[str, str], *, scale: Mapping[str, float] | float = 1.0, caption: str = "",
               bars: Sequence[str] | None = None, bar_title: str | None = None, bar_ylabel: str = "",
               bar_xlabel: str = "condition", curves: Sequence[str] | None = ("train_loss", "val_acc"),
               curve_title: str | None = None, logy: Sequence[str] = (), digits: int = 2,
               extra: Mapping[str, Mapping[str, Sequence[float]]] | None = None) -> str:
        """table.md/.csv (mean ± std [95% CI] per condition), bars.png with 95% CIs, curves.png; returns the table.

        ``metrics`` maps summary keys to column labels; ``scale`` multiplies them (100 for percent), one
        number or per key. ``extra`` adds per-seed columns computed by the script ({condition: {label: values}}).
        """
        from shared_utils import plots, stats

        if not _writes():
            return ""

        def factor(key):
            return scale.get(key, 1.0) if isinstance(scale, Mapping) else scale

        table: dict[str, dict[str, list[float]]] = {}
        for key, label in metrics.items():
            for condition, values in self.values(key, factor(key)).items():
                table.setdefault(condition, {})[label] = values
        for condition, columns in (extra or {}).items():
            table.setdefault(condition, {}).update({k: list(v) for k, v in columns.items()})
        if not table:
            return ""
        seeds = self.seeds
        text = stats.write_comparison(table, self.path / "table", digits=digits, caption=caption or
                                      f"{self.name}: seeds {seeds}; mean ± std [95% CI]")
        bar_keys = list(bars) if bars is not None else list(metrics.values())[:1]
        if bar_keys and len(table) <= MAX_BARS:
            means, errors = stats.bar_values({c: v for c, v in table.items() if all(k in v for k in bar_keys)},
                                             {k: k for k in bar_keys})
            if means:
                ylim, zoomed = _bar_range(means, errors)
                title = bar_title or (f"{self.name.replace('_', ' ')}: {bar_ylabel or bar_keys[0]} by "
                                      f"{bar_xlabel}, mean and 95% CI over {len(seeds)} seed(s)")
                plots.grouped_bars(means, self.path / "bars.png", errors=errors, xlabel=bar_xlabel, ylim=ylim,
                                   ylabel=(bar_ylabel or bar_keys[0]) + (" (axis zoomed)" if zoomed else ""),
                                   title=title)
        if curves:
            paths = {c: [p for p in ps if (p / "metrics.csv").exists()] for c, ps in self.run_paths().items()}
            paths = {c: ps for c, ps in paths.items() if ps}
            # past MAX_CURVES overlaid conditions nobody can read the figure: such a study draws its own
            if paths and len(paths) <= MAX_CURVES:
                plots.compare_curves(paths, self.path / "curves.png", metrics=tuple(curves), logy=tuple(logy),
                                     title=curve_title or f"{self.name.replace('_', ' ')}: curves (mean ± std over seeds)")
        return text

    def finish(self, table: str = "") -> None:
        """The end of a study script: print its table (rank 0 writes one; the others get ""), then exit
        with code 1 through :class:`TrialsFailed` if any trial failed."""
        if table:
            print(table)
        self.raise_for_failures()

    def raise_for_failures(self) -> None:
        if self.failures:
            first = self.failures[0]
            raise TrialsFailed(f"{len(self.failures)} of {len(self.outcomes)} trials failed (see "
                               f"{self.path / 'manifest.json'}); first: {first.trial.condition} seed "
                               f"{first.trial.seed}: {first.error}")


def _bar_range(means: Mapping[str, Mapping[str, float]], errors: Mapping[str, Mapping[str, float]]):
    """A y-range that shows the differences: bars of 98.9 and 99.2 drawn from 0 look identical. When every
    bar's lower end sits above half the tallest top, zoom to the bars and their intervals (the axis label
    says so); otherwise start at 0."""
    lows = [m - errors[c].get(k, 0.0) for c, per in means.items() for k, m in per.items()]
    highs = [m + errors[c].get(k, 0.0) for c, per in means.items() for k, m in per.items()]
    lo, hi = min(lows), max(highs)
    if lo > 0 and lo > 0.5 * hi:
        pad = max(0.25 * (hi - lo), 0.01 * hi)
        return (lo - pad, hi + pad), True
    return None, False


class HalvingResult:
    def __init__(self, study: Study, rounds: list[dict], last: StudyResult, metric: str, mode: str):
        self.study, self.rounds, self.last, self.metric, self.mode = study, rounds, last, metric, mode

    @property
    def winner(self) -> str:
        return self.rounds[-1]["kept"][0]

    def write(self) -> None:
        from shared_utils import stats

        if not _writes():
            return
        atomic_write_json(self.study.path / "halving.json", {"metric": self.metric, "mode": self.mode,
                                                              "budget_key": self.study.budget_key,
                                                              "rounds": self.rounds})
        conditions = list(self.study.conditions)
        header = ["condition"] + [f"round {r['round']} ({self.study.budget_key} {r['budget']})" for r in self.rounds]
        rows = []
        for c in sorted(conditions, key=lambda c: -max((i for i, r in enumerate(self.rounds) if c in r["scores"]),
                                                        default=-1)):
            rows.append([c] + [f"{r['scores'][c]:.4g}" + (" *" if c in r["kept"] else "") if c in r["scores"] else ""
                               for r in self.rounds])
        stats.write_table(header, rows, self.study.path / "halving",
                          caption=f"Successive halving on {self.metric} ({self.mode}); * = advanced (last round: "
                                  "the winner)")
