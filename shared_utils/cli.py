"""The base command line every experiment script extends.

    p = cli.parser(__doc__, epochs=5, batch_size=64, lr=0.01)
    p.add_argument("--width", type=cli.positive_int, default=128)
    args = cli.parse(p, argv)

Every script gets ``--epochs --batch-size --lr --seed --device --data-dir --out
--limit-train --quick --quiet`` (and ``--seeds`` when ``seeds=True``). A bad value
ends the program with exit code 2 and one line naming the flag and what it accepts;
:func:`run` does the same for :class:`~shared_utils.errors.UserError` raised deeper down.
"""
from __future__ import annotations

import argparse
import math
import os
import sys
import tempfile
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

from shared_utils import device
from shared_utils.errors import TrialsFailed, UserError

DEVICES = ("auto", "cpu", "cuda", "mps")


# ---- value types: each raises ArgumentTypeError, which the parser turns into one line
def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def nonneg_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {value}")
    return value


SEED_LIMIT = 2**32   # NumPy's legacy seeding and torch's generators both take seeds below 2**32 here


def seed_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer seed, got {text!r}") from None
    if not 0 <= value < SEED_LIMIT:
        raise argparse.ArgumentTypeError(f"expected a seed from 0 to {SEED_LIMIT - 1}, got {value}")
    return value


def bounded_int(low: int, high: int, what: str = "") -> Callable[[str], int]:
    """An integer type in [low, high]: sizes that would otherwise exhaust memory (image side, width)."""
    def parse_value(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer from {low} to {high}, got {text!r}") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"expected an integer from {low} to {high}{what}, got {value}")
        return value
    parse_value.__name__ = f"integer in [{low}, {high}]"
    return parse_value


# sane upper bounds for sizes a user types: past them a run would only fail to allocate
width = bounded_int(1, 100_000, " units")           # hidden units of one layer
channels = bounded_int(1, 1024, " channels")
image_side = bounded_int(8, 2048, " pixels")       # an input side to resize to
depth = bounded_int(1, 1000, " layers")
points = bounded_int(1, 10_000_000, " points")


def nonneg_float(text: str) -> float:
    """A finite number >= 0 (noise levels, warm-up epochs)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {text!r}") from None
    if not (value >= 0 and math.isfinite(value)):
        raise argparse.ArgumentTypeError(f"expected a finite number >= 0, got {text}")
    return value


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from None
    if not value > 0 or not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a positive finite number, got {text}")
    return value


def unit_float(text: str) -> float:
    """A number in [0, 1): rates such as dropout, label noise or a validation fraction."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1), got {text!r}") from None
    if not 0.0 <= value < 1.0:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1), got {value}")
    return value


def existing_file(text: str) -> Path:
    path = Path(text).expanduser()
    if not path.is_file():
        raise argparse.ArgumentTypeError(f"no such file: {text}")
    return path


def existing_dir(text: str) -> Path:
    path = Path(text).expanduser()
    if not path.is_dir():
        raise argparse.ArgumentTypeError(f"no such directory: {text}")
    return path


class OneLineParser(argparse.ArgumentParser):
    """argparse prints usage plus the message; we print only the message and a hint."""

    def error(self, message: str) -> None:  # type: ignore[override]
        sys.stderr.write(f"{self.prog}: error: {message} (see --help)\n")
        sys.exit(2)


def parser(doc: str | None, *, epochs: int = 5, batch_size: int = 64, lr: float = 0.01,
           seed: int = 0, seeds: bool = False, quick: dict[str, Any] | None = None, trains: bool = True,
           ) -> argparse.ArgumentParser:
    """Return a parser with the flags every script has.

    ``quick`` holds the ``--quick`` preset (for example ``{"epochs": 1, "limit_train": 2000}``):
    values that :func:`parse` applies when ``--quick`` is given, for flags the user left
    at their defaults. ``trains=False`` is for scripts that train nothing (they inspect or explain a
    checkpoint): they get no ``--epochs --batch-size --lr``.
    """
    description = (doc or "").strip()
    p = OneLineParser(description=description,
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    g = p.add_argument_group("common flags")
    if trains:
        g.add_argument("--epochs", type=positive_int, default=epochs, help="passes over the training set")
        g.add_argument("--batch-size", type=positive_int, default=batch_size, help="examples per update")
        g.add_argument("--lr", type=positive_float, default=lr, help="learning rate")
    g.add_argument("--seed", type=seed_int, default=seed, help="seed for weights, shuffling and subsets")
    if seeds:
        g.add_argument("--seeds", type=seed_int, nargs="+", default=None,
                       help="run once per seed and report mean ± std (default: just --seed)")
    g.add_argument("--device", choices=DEVICES, default="auto",
                   help="where PyTorch runs; NumPy code always runs on the CPU")
    g.add_argument("--data-dir", type=Path, default=None,
                   help="dataset folder (default: $DL_DATA_DIR, else ./data)")
    g.add_argument("--out", type=Path, default=None,
                   help="folder for run outputs (default: runs/ beside the script)")
    g.add_argument("--limit-train", type=positive_int, default=None,
                   help="use only this many training examples (a validation split, where there is one, is held "
                        "out of them)")
    g.add_argument("--quick", action="store_true",
                   help="seconds-long preset (tiny subset, one epoch) for smoke tests")
    g.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(_quick_preset=dict(quick or ({"epochs": 1} if trains else {})))
    return p


def parse(p: argparse.ArgumentParser, argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Parse and validate; apply the ``--quick`` preset; fill ``args.seeds``."""
    args = p.parse_args(argv)
    preset = args.__dict__.pop("_quick_preset", {})
    if args.quick:
        for key, value in preset.items():
            if getattr(args, key, None) == p.get_default(key):
                setattr(args, key, value)
    if hasattr(args, "seeds") and not args.seeds:
        args.seeds = [args.seed]
    if hasattr(args, "seeds") and len(set(args.seeds)) != len(args.seeds):
        p.error(f"argument --seeds: each seed once (a repeated seed would count the same run twice), got "
                f"{' '.join(map(str, args.seeds))}")
    if args.data_dir is not None and args.data_dir.exists() and not args.data_dir.is_dir():
        p.error(f"argument --data-dir: not a directory: {args.data_dir}")
    if getattr(args, "address", None) is not None and args.backend != "ray":
        p.error("argument --address: --address is for --backend ray; drop it or add --backend ray")
    if getattr(args, "backend", None) == "serial" and args.workers > 1:
        p.error("argument --workers: --backend serial runs one trial at a time; use --backend pool or ray")
    problem = device.problem(args.device)
    if problem:
        p.error(f"argument --device: {problem}")
    problem = (writable_folder_problem(args.out) if args.out is not None
               else writable_folder_problem(default_out(), create=False))
    if problem:
        p.error(f"argument --out: {problem}; choose a folder you can write to with --out")
    if getattr(args, "records", None) is not None:
        problem = writable_folder_problem(Path(args.records), create=False)
        if problem:
            p.error(f"argument --records: {problem}; choose a folder you can write to with --records")
    return args


def hyperparameters(block: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    """A script's hyper-parameter block with the command line's value for every key that is also a flag
    (--epochs, --lr, --batch-size, --hidden ...): the configuration its trials run with."""
    return {key: getattr(args, key, value) for key, value in block.items()}


def data_settings(args: argparse.Namespace) -> dict[str, Any]:
    """The data and device flags as plain values a study trial's configuration can carry. ``data_seed``
    is --seed: it picks subsets and validation splits, the same images for every trial of a study."""
    settings = {"data_dir": str(args.data_dir) if args.data_dir else None, "limit_train": args.limit_train,
                "data_seed": args.seed, "device": args.device, "quiet": args.quiet}
    for key in ("val_size", "test_subset"):
        if hasattr(args, key):
            settings[key] = getattr(args, key)
    return settings


def default_out() -> Path:
    """Where a script writes without --out: runs/ beside it."""
    script = Path(sys.argv[0]) if sys.argv and sys.argv[0] not in ("", "-c", "-m") else Path.cwd() / "script"
    return script.resolve().parent / "runs"


def writable_folder_problem(folder: Path, create: bool = True) -> str | None:
    """Why nothing can be written under ``folder`` (a file in the way, no permission, a read-only or
    virtual file system), or None. Runs before any work starts: it creates the folder (as the run would)
    and a probe inside it, which it removes again; a folder that cannot be created is left as it was."""
    folder = Path(folder).expanduser()
    probe = folder
    while not probe.exists() and probe.parent != probe:
        probe = probe.parent
    if probe.exists() and not probe.is_dir():
        return (f"{folder} is a file, not a folder" if probe == folder else
                f"{folder} would be inside {probe}, which is a file")
    if not create:   # the default runs/ beside a script: check, but make nothing until a run does
        return None if os.access(probe, os.W_OK | os.X_OK) else f"{probe} is not writable"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        os.rmdir(tempfile.mkdtemp(dir=folder, prefix=".write-probe-"))
    except OSError as exc:
        return f"cannot write in {folder} ({exc.strerror or type(exc).__name__})"
    return None


def add_test_subset(p: argparse.ArgumentParser) -> None:
    """``--test-subset N``: score on N of the test images (MNIST's first N; CIFAR-10's a seeded random N, the
    same for every trial of a study). Quick presets use it: scoring the whole test set would cost more than
    their one short epoch of training."""
    p.add_argument("--test-subset", type=positive_int, default=None,
                   help="score on this many test images (default: all of them)")


def add_precision(p: argparse.ArgumentParser) -> None:
    """``--precision auto|fp32`` for the PyTorch CIFAR-10 trainers (shared_utils.pytorch.device.precision_for)."""
    p.add_argument("--precision", choices=("auto", "fp32"), default="auto",
                   help="auto: float16 autocast on CUDA; on a CPU, bfloat16 autocast where a one-second probe finds "
                        "it faster than float32 (it needs AMX or AVX512-BF16 units, and those alone are not "
                        "always enough), else float32; fp32: float32 everywhere")


def add_study_flags(p: argparse.ArgumentParser) -> None:
    """``--workers --backend --address --resume --report-only --records``: how a comparison's trials run, or that
    they do not, and where their records are kept besides (shared_utils.study)."""
    g = p.add_argument_group("study runner")
    g.add_argument("--workers", type=positive_int, default=1,
                   help="trials at a time: local processes (--backend pool) or Ray tasks' CPU share")
    g.add_argument("--backend", choices=("serial", "pool", "ray"), default=None,
                   help="where trials run (default: serial for --workers 1, else pool)")
    g.add_argument("--address", default=None,
                   help="Ray cluster to join with --backend ray: auto or HOST:PORT (default: start a local one)")
    g.add_argument("--resume", action="store_true",
                   help="skip finished trials and continue unfinished ones from their last checkpoint")
    g.add_argument("--report-only", action="store_true",
                   help="train nothing: redraw the tables and figures from the study's folder")
    g.add_argument("--records", default=None, metavar="DIR",
                   help="also keep each finished trial's records (its JSON, no checkpoints) in DIR/<study> as it "
                        "finishes; with --resume, first take back the finished trials found there (a study spread "
                        "over machines that do not keep their run folders); with --report-only, copy them there")


def study_backend(args: argparse.Namespace) -> dict:
    """The keyword arguments of Study.run from the parsed study flags."""
    backend = args.backend or ("serial" if args.workers == 1 else "pool")
    return {"backend": backend, "workers": args.workers, "address": args.address, "quiet": args.quiet,
            "records": getattr(args, "records", None)}


def run(main: Callable[[Sequence[str] | None], Any], argv: Sequence[str] | None = None) -> Any:
    """Call ``main(argv)``; a UserError becomes exit code 2 with one line on stderr, failed study
    trials exit code 1 with one line (their errors are in the study's manifest)."""
    prog = Path(sys.argv[0]).name if sys.argv and sys.argv[0] else "error"
    try:
        return main(argv)
    except UserError as exc:
        sys.stderr.write(f"{prog}: error: {exc}\n")
        sys.exit(2)
    except TrialsFailed as exc:
        sys.stderr.write(f"{prog}: {exc}\n")
        sys.exit(1)
    except MemoryError:
        sys.stderr.write(f"{prog}: error: not enough memory for these settings; lower --batch-size or the "
                         "sizes asked for\n")
        sys.exit(2)
    except OSError as exc:   # the disk filled up, a folder vanished or turned read-only mid-run
        where = f" {exc.filename}" if getattr(exc, "filename", None) else ""
        sys.stderr.write(f"{prog}: error: cannot read or write{where} ({exc.strerror or type(exc).__name__}); "
                         "check the folder and the free space, then run again\n")
        sys.exit(2)
    except KeyboardInterrupt:
        sys.stderr.write(f"{prog}: interrupted\n")
        sys.exit(130)


def progress(iterable: Iterable, *, quiet: bool = False, **kwargs: Any):
    """A tqdm bar, silent with --quiet or when stderr is not a terminal (CI, pipes)."""
    from tqdm.auto import tqdm

    disable = quiet or not sys.stderr.isatty() or os.environ.get("CI") == "true"
    return tqdm(iterable, disable=disable, leave=False, dynamic_ncols=True, **kwargs)
