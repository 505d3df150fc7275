"""How much do the study runner's backends cost, and how much does a local pool buy?

Eight short trials of the pooling comparison (the NumPy CNN on 2,000 MNIST training images for one epoch,
scored on all 10,000 test images: 2 poolings x 4 seeds) run serially, on a local process pool of 2 and on a
local Ray instance with 2 CPUs, each into a fresh folder; the backends alternate for --repeats rounds and
medians are kept.

Reported per backend: wall seconds, the summed seconds the trials spent inside their own code, and the
overhead per trial = (workers x wall - summed trial seconds) / trials: the time a worker slot was not
running trial code (process start-up, imports, scheduling, waiting at the tail), per trial. Ray's own
start-up (ray.init) is timed separately: a cluster is started once, not per study.
Goals (issue 9): overhead under 1 s per trial on the pool and under 3 s on Ray; pool(2) at least 1.6x
faster than serial on these NumPy trials. Results in benchmarks/runs/study_backends.json.
"""
from __future__ import annotations

import os
import platform
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from section3_cnn.experiment import POOLING_HP as HP
from section3_cnn.experiment import pooling_trial as trial
from shared_utils import cli, runs
from shared_utils.study import Study


def one(backend: str, workers: int, base: dict, seeds: list[int], folder: Path) -> dict:
    study = Study("bench", trial, {"max": {"pool": "max"}, "avg": {"pool": "avg"}}, seeds, folder, base=base)
    result = study.run(backend, workers=workers, quiet=True)
    result.raise_for_failures()
    inside = sum(o.seconds for o in result.outcomes)
    n = len(result.outcomes)
    return {"wall_s": result.wall_seconds, "trial_s": inside, "trials": n,
            "overhead_per_trial_s": (workers * result.wall_seconds - inside) / n,
            "test_acc": {f"{o.trial.condition}/{o.trial.seed}": o.summary["test_acc"] for o in result.outcomes}}


def main(argv=None):
    # --quick: one round on 500 images a trial (the figures are then rough, the run takes seconds)
    p = cli.parser(__doc__, quick={"epochs": 1, "repeats": 1, "trials_limit": 500})
    p.add_argument("--repeats", type=cli.positive_int, default=2, help="rounds over the three backends")
    p.add_argument("--trials-limit", type=cli.positive_int, default=2000, help="MNIST training images per trial")
    p.add_argument("--no-ray", action="store_true", help="skip the Ray backend")
    args = cli.parse(p, argv)
    base = {**cli.hyperparameters(HP, args), "epochs": 1, **cli.data_settings(args), "limit_train": args.trials_limit,
            "quiet": True}
    seeds = [0, 1, 2, 3]
    from section3_cnn.experiment import load_mnist

    import argparse

    load_mnist(argparse.Namespace(**{**base, "seed": args.seed}))     # data present, before timing anything
    backends = [("serial", 1), ("pool", 2)] + ([] if args.no_ray else [("ray", 2)])
    ray_init_s = None
    if not args.no_ray:
        import ray

        started = time.perf_counter()
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
        ray_init_s = time.perf_counter() - started
    samples: dict[str, list[dict]] = {name: [] for name, _ in backends}
    scratch = Path(tempfile.mkdtemp(prefix="study_bench_"))
    try:
        for r in range(args.repeats):
            for name, workers in backends:
                folder = scratch / f"{name}_{r}"
                samples[name].append(one(name, workers, base, seeds, folder))
                s = samples[name][-1]
                print(f"round {r + 1} {name:6s}: {s['wall_s']:.1f} s wall, {s['trial_s']:.1f} s in trials, "
                      f"{s['overhead_per_trial_s']:.2f} s overhead per trial", flush=True)
                shutil.rmtree(folder)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
        if not args.no_ray:
            import ray

            ray.shutdown()
    medians = {name: {k: statistics.median(s[k] for s in per) for k in ("wall_s", "trial_s", "overhead_per_trial_s")}
               for name, per in samples.items()}
    same = all(s["test_acc"] == samples["serial"][0]["test_acc"] for per in samples.values() for s in per)
    result = {"machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "processor": platform.processor()},
              "trials": 8,
              "trial": "pooling_comparison trial (NumPy CNN, 2,000 MNIST training images, 1 epoch, 10,000 test images)",
              "repeats": args.repeats, "medians": medians, "ray_init_s": ray_init_s,
              "speedup_pool_vs_serial": medians["serial"]["wall_s"] / medians["pool"]["wall_s"],
              "identical_test_accuracy_on_every_backend": same, "samples": samples}
    if "ray" in medians:
        result["speedup_ray_vs_serial"] = medians["serial"]["wall_s"] / medians["ray"]["wall_s"]
    print(f"pool(2) vs serial: {result['speedup_pool_vs_serial']:.2f}x faster (goal >= 1.6); per-trial overhead "
          f"pool {medians['pool']['overhead_per_trial_s']:.2f} s (goal < 1)"
          + (f", Ray {medians['ray']['overhead_per_trial_s']:.2f} s (goal < 3); Ray start-up {ray_init_s:.1f} s; "
             f"Ray(2) vs serial {result['speedup_ray_vs_serial']:.2f}x" if "ray" in medians else ""))
    print(f"same test accuracy per trial on every backend: {same}")
    runs.atomic_write_json(runs.root(__file__, "study_backends.json", args.out), result)
    return result


if __name__ == "__main__":
    cli.run(main)
