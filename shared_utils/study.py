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
last checkpoint; a folder made from another configuration stops the study before anything runs.
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

from shared_utils.atomic import atomic_write_json
from shared_utils.errors import UserError

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


class TrialsFailed(Exception):
    """Some trials failed; each one's error is in the study's manifest.json."""


def slug(name: str) -> str:
    """A folder name for a condition: 'batch norm' -> 'batch_norm', 'pretrained, frozen' -> 'pretrained_frozen'."""
    text = re.sub(r"[^A-Za-z0-9.+-]+", "_", name).strip("_")
    return text or "condition"


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


# --------------------------------------------------------------------------- the study
class Study:
    def __init__(self, name: str, trial_fn: TrialFn, conditions: Mapping[str, Mapping[str, Any]],
                 seeds: Sequence[int], out: str | os.PathLike, *, base: Mapping[str, Any] | None = None,
                 resume: bool = False, budget_key: str | None = None,
                 cost: Callable[[dict], float] | None = None, restart_on_budget: bool = False):
        self.name, self.trial_fn = name, trial_fn
        self.conditions = {str(k): dict(v) for k, v in conditions.items()}
        self.seeds = [int(s) for s in seeds]
        self.out = Path(out)
        self.base = dict(base or {})
        self.resume = resume
        self.budget_key = budget_key     # the one key successive halving may raise between rounds
        self.cost = cost                 # a trial's estimated cost (e.g. its FLOPs): the costliest start first
        self.restart_on_budget = restart_on_budget   # a new budget trains afresh instead of continuing
        self._validate()

    @property
    def path(self) -> Path:
        return self.out / self.name

    def _validate(self) -> None:
        if not self.conditions:
            raise UserError(f"study {self.name}: no conditions to run")
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
                path = self.path / slug(name) / f"seed_{seed}"
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
            summary_path = trial.path / "summary.json"
            same_budget = not self.budget_key or old.get(self.budget_key) == trial.config.get(self.budget_key)
            if summary_path.exists() and same_budget:
                try:
                    summary = json.loads(summary_path.read_text())
                except (OSError, json.JSONDecodeError):
                    to_run.append(trial)
                    continue
                skipped.append(TrialOutcome(trial, "skipped", summary))
            else:
                if not same_budget and self.restart_on_budget:
                    trial.config["_fresh"] = True
                to_run.append(trial)
        return to_run, skipped

    # ----------------------------------------------------------------- running
    def run(self, backend: str = "serial", workers: int = 1, address: str | None = None, *,
            cpus_per_trial: int | None = None, gpus_per_trial: float = 0.0, quiet: bool = False) -> "StudyResult":
        if backend not in BACKENDS:
            raise UserError(f"unknown backend {backend!r}; choose {', '.join(BACKENDS)}")
        if workers < 1:
            raise UserError(f"--workers must be at least 1, got {workers}")
        if address is not None and backend != "ray":
            raise UserError("--address is for --backend ray; drop it or add --backend ray")
        if int(os.environ.get("WORLD_SIZE", "1")) > 1 and (backend != "serial" or workers != 1):
            raise UserError("under torchrun each trial is already spread over the ranks; drop --workers/--backend")
        trials = self.trials()
        to_run, skipped = self._plan(trials)
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
        ordered = [by_key[(t.condition, t.seed)] for t in trials]
        result = StudyResult(self, ordered, backend=backend, workers=workers, wall_seconds=time.perf_counter() - started)
        result.write_manifest()
        return result

    def _outcome(self, trial: Trial, executed: tuple, quiet: bool) -> TrialOutcome:
        status, summary, error, seconds = executed
        outcome = TrialOutcome(trial, status, summary, error, seconds)
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
        for i, budget in enumerate(budgets):
            sub = Study(self.name, self.trial_fn, {c: self.conditions[c] for c in survivors}, self.seeds, self.out,
                        base={**self.base, self.budget_key: budget}, resume=self.resume or i > 0,
                        budget_key=self.budget_key, cost=self.cost, restart_on_budget=restart)
            last = sub.run(backend=backend, workers=workers, address=address, quiet=quiet, **run_kwargs)
            scores = last.scores(metric)
            ranked = sorted(scores, key=lambda c: scores[c], reverse=mode == "max")
            keep = ranked[:max(1, len(ranked) // eta)] if i < len(budgets) - 1 else ranked[:1]
            rounds.append({"round": i + 1, "budget": budget, "scores": scores, "ranked": ranked, "kept": keep,
                           "failed": [o.trial.condition for o in last.outcomes if o.status == "failed"]})
            survivors = keep
        result = HalvingResult(self, rounds, last, metric, mode)
        result.write()
        return result


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
class StudyResult:
    def __init__(self, study: Study, outcomes: list[TrialOutcome], *, backend: str, workers: int, wall_seconds: float):
        self.study, self.outcomes = study, outcomes
        self.backend, self.workers, self.wall_seconds = backend, workers, wall_seconds

    @property
    def path(self) -> Path:
        return self.study.path

    @property
    def failures(self) -> list[TrialOutcome]:
        return [o for o in self.outcomes if o.status == "failed"]

    def summaries(self) -> dict[str, list[dict]]:
        """{condition: [summary per finished seed]} in the study's order."""
        out: dict[str, list[dict]] = {}
        for o in self.outcomes:
            if o.status != "failed":
                out.setdefault(o.trial.condition, []).append(o.summary)
        return out

    def values(self, key: str, scale: float = 1.0) -> dict[str, list[float]]:
        return {c: [scale * float(s[key]) for s in per if s.get(key) is not None]
                for c, per in self.summaries().items()}

    def scores(self, key: str) -> dict[str, float]:
        """Seed-mean of a summary figure per condition (conditions with no value are left out)."""
        return {c: sum(v) / len(v) for c, v in self.values(key).items() if v}

    def run_paths(self) -> dict[str, list[Path]]:
        out: dict[str, list[Path]] = {}
        for o in self.outcomes:
            if o.status != "failed":
                out.setdefault(o.trial.condition, []).append(o.trial.path)
        return out

    def write_manifest(self) -> Path | None:
        if not _writes():
            return None
        trials = [{"condition": o.trial.condition, "seed": o.trial.seed, "status": o.status,
                   "run_dir": os.path.relpath(o.trial.path, self.path), "seconds": round(o.seconds, 3),
                   **({"error": o.error} if o.error else {})} for o in self.outcomes]
        return atomic_write_json(self.path / "manifest.json", {
            "study": self.study.name, "backend": self.backend, "workers": self.workers,
            "conditions": list(self.study.conditions), "seeds": self.study.seeds, "base": self.study.base,
            "overrides": self.study.conditions, "wall_seconds": round(self.wall_seconds, 3),
            "failed": len(self.failures), "trials": trials})

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
        seeds = self.study.seeds
        text = stats.write_comparison(table, self.path / "table", digits=digits, caption=caption or
                                      f"{self.study.name}: seeds {seeds}; mean ± std [95% CI]")
        bar_keys = list(bars) if bars is not None else list(metrics.values())[:1]
        if bar_keys and len(table) <= MAX_BARS:
            means, errors = stats.bar_values({c: v for c, v in table.items() if all(k in v for k in bar_keys)},
                                             {k: k for k in bar_keys})
            if means:
                ylim, zoomed = _bar_range(means, errors)
                title = bar_title or (f"{self.study.name.replace('_', ' ')}: {bar_ylabel or bar_keys[0]} by "
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
                                     title=curve_title or f"{self.study.name.replace('_', ' ')}: curves (mean ± std over seeds)")
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
