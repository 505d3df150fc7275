"""Does an autoencoder's encoder help a classifier that has few labels, and where does the help stop?

Part B of projects/representation_transfer (the README there has the findings). First the MLP autoencoder
of part A (bottleneck k = 32) is pretrained on all 55,000 training images, labels unused, once per seed.
Then five classifiers of one architecture (that encoder and a linear head to the 10 digits) train on a
class-balanced, seeded subset of 100, 1,000, 10,000 or all 55,000 labelled images:
  pretrained, frozen      the pretrained encoder fixed, only the head learns (a linear probe of the code);
  pretrained, fine-tuned  every weight learns, the encoder at a tenth of the head's rate;
  random, frozen          a random encoder fixed: what a linear head gets from random features;
  random, fine-tuned      as the fine-tuned one, from a random encoder (same rates);
  scratch                 a random encoder with every weight at the full rate: the supervised baseline.
Every run takes max(--epochs, --min-steps / steps per epoch) epochs, so a budget of 100 labels still gets
enough updates, and is scored on the test set as it ends: the 5,000 labelled validation images are only
watched (curves, steps to a target accuracy), never used to pick a checkpoint, which a budget of 100
labels could not afford. Outputs in projects/representation_transfer/runs/encoder_transfer/.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch

from projects.representation_transfer import reconstruction as autoencoders
from projects.representation_transfer.labels import budget_name, labels_arg, steps_cell
from projects.representation_transfer.models import EncoderClassifier, MLPAutoencoder
from shared_utils import cli, data, plots, runs, stats
from shared_utils.errors import UserError
from shared_utils.pytorch.checkpoint import load_torch
from shared_utils.pytorch.engine import TrainConfig, evaluate, fit
from shared_utils.pytorch.models import count_parameters
from shared_utils.pytorch.pipeline import loaders
from shared_utils.study import Axis, Grid, Study, StudyResult, grid, start

# ---- the recipe of every classifier; --epochs, --batch-size and --lr override it
HP = {"epochs": 20, "batch_size": 128, "lr": 1e-3, "optimizer": "adam", "weight_decay": 0.0, "schedule": "cosine",
      "code": 32, "encoder": "pretrained", "mode": "frozen", "labels": 0, "min_steps": 400, "pretrain_dir": ""}
CONDITIONS = {
    "pretrained, frozen": {"encoder": "pretrained", "mode": "frozen"},
    "pretrained, fine-tuned": {"encoder": "pretrained", "mode": "finetune"},
    "random, frozen": {"encoder": "random", "mode": "frozen"},
    "random, fine-tuned": {"encoder": "random", "mode": "finetune"},
    "scratch": {"encoder": "random", "mode": "scratch"},
}
ENCODER_LR_SCALE = 0.1      # fine-tuning: the encoder learns at a tenth of the head's rate
LABEL_BUDGETS = (100, 1000, 10_000, 0)   # 0 = every training label
TARGETS = (0.80, 0.90)      # validation accuracies whose first step is reported (training efficiency)
PRETRAIN = "mlp k=32"


def pretrained_encoder(config: dict) -> torch.nn.Module:
    """The encoder of this seed's pretrained autoencoder (its best checkpoint, by validation error)."""
    encoder = MLPAutoencoder(config["code"]).encoder
    if config["encoder"] == "pretrained":
        path = StudyResult.load(config["pretrain_dir"]).artifact(PRETRAIN, config["seed"], "best.pt")
        state = load_torch(path)
        weights = {k[len("encoder."):]: v for k, v in state.get("model", {}).items() if k.startswith("encoder.")}
        if not weights:
            raise UserError(f"{path} holds no autoencoder encoder; run the pretraining again (without --resume)")
        encoder.load_state_dict(weights)
    return encoder


def trial(config: dict) -> dict:
    t = start(config)
    device, run = t.device, t.run
    ds = autoencoders.load(config)
    train = data.subset(ds.train, config["labels"] or None, mode="stratified", seed=config["seed"])
    model = EncoderClassifier(pretrained_encoder(config), config["code"])
    if config["mode"] == "frozen":
        for p in model.encoder.parameters():
            p.requires_grad = False
    batch = min(config["batch_size"], len(train))
    steps_per_epoch = math.ceil(len(train) / batch)
    epochs = max(config["epochs"], math.ceil(config["min_steps"] / steps_per_epoch))
    loader, val, test = loaders(ds, batch_size=batch, seed=t.seed, device=device, train=train)
    cfg = TrainConfig.from_config({**config, "epochs": epochs,
                                   "lr_scales": {"encoder.": ENCODER_LR_SCALE} if config["mode"] == "finetune" else None})
    history = fit(model, loader, val, cfg, device=device, run=run, quiet=config["quiet"], desc=config["condition"])
    scores = evaluate(model, test, device)                   # the model as it ends, not a val-picked one
    reached = {f"steps_to_{round(100 * t)}": next((row["epoch"] * steps_per_epoch for row in history
                                                    if row["val_acc"] >= t), None) for t in TARGETS}
    return run.summary(test_acc=scores["acc"], test_loss=scores["loss"], labels=len(train), epochs=epochs,
                       steps=epochs * steps_per_epoch, steps_per_epoch=steps_per_epoch,
                       trainable=count_parameters(model, trainable_only=True), **reached)


# --------------------------------------------------------------------------- the report
def conditions(args) -> Grid:
    """Every condition at every label budget: "pretrained, frozen, 100 labels"."""
    return grid(method=CONDITIONS, labels=Axis(args.labels, label=budget_name))


def report(root: Path, grid: Grid | None = None) -> dict:
    """accuracy_by_labels and steps_to_90 tables, accuracy_vs_labels.png, convergence.png, analysis.json:
    from the study's folder alone."""
    r = StudyResult.load(root / "transfer", grid)
    n, methods, budgets = len(r.seeds), r.levels("method"), r.levels("labels")
    names = [budget_name(b) for b in budgets]
    acc = {c.name: r.at("test_acc", 100, c) for c in r.conditions}
    cell = {(c["method"], c["labels"]): c.name for c in r.conditions}
    stats.write_table(["condition"] + names, [[m] + [stats.ci_cell(acc[cell[m, b]], n) for b in budgets]
                                              for m in methods], root / "accuracy_by_labels",
                      caption=f"Test accuracy (%), mean ± 95% CI over seeds {r.seeds}, scored at the last epoch")
    summaries = r.summaries()
    stats.write_table(["condition"] + names, [[m] + [steps_cell([s.get("steps_to_90") for s in summaries.get(
        cell[m, b], [])]) for b in budgets] for m in methods],
        root / "steps_to_90", caption="Optimizer steps until validation accuracy first reaches 90% (mean over the "
                                       "seeds that do; how many did)")
    series, bands, panels = {}, {}, []
    for m in methods:
        found = [(summaries[cell[m, b]][0]["labels"], acc[cell[m, b]]) for b in budgets if acc[cell[m, b]]]
        if found:
            series[m] = ([x for x, _ in found], [np.mean(v) for _, v in found])
            bands[m] = [stats.summarize(v).ci95 if len(v) > 1 else 0.0 for _, v in found]
    if series:
        plots.line_plot(series, root / "accuracy_vs_labels.png", bands=bands, logx=True,
                        title="Reusing an autoencoder's encoder: test accuracy against labels (mean, 95% CI)",
                        xlabel="labelled training images (log scale)", ylabel="test accuracy (%)")
    for b, name in zip(budgets, names):
        curves = {m: (epochs * summaries[c][0]["steps_per_epoch"], per_seed.mean(0))
                  for m in methods for c, (epochs, per_seed) in r.curves("val_acc", 100, method=m, labels=b).items()}
        if curves:
            panels.append({"series": curves, "title": name, "xlabel": "optimizer step", "markers": False,
                           "ylabel": "validation accuracy (%)", "logx": True})
    if panels:
        plots.line_panels(panels, root / "convergence.png", ncols=min(4, len(panels)),
                          title=f"Convergence by label budget (validation accuracy, mean over seeds {r.seeds})")
    out = {"accuracy": acc, "advantage": advantage({(c["method"], name): acc[c.name] for c in r.conditions
                                                    for b, name in zip(budgets, names) if c["labels"] == b}, names)}
    runs.atomic_write_json(root / "analysis.json", out)
    return out


def advantage(acc: dict[tuple[str, str], list[float]], budgets: list[str]) -> dict:
    """Per budget: the better pretrained condition against scratch, and whether their 95% intervals separate."""
    out = {}
    for b in budgets:
        pre = {c: acc[c, b] for c in ("pretrained, frozen", "pretrained, fine-tuned") if acc.get((c, b))}
        scratch = acc.get(("scratch", b), [])
        if not pre or len(scratch) < 2:
            continue
        best = max(pre, key=lambda c: np.mean(pre[c]))
        if len(pre[best]) < 2:
            continue
        a, s = stats.summarize(pre[best]), stats.summarize(scratch)
        out[b] = {"best_pretrained": best, "margin": a.mean - s.mean,
                  "separate": (a.mean - a.ci95 > s.mean + s.ci95) or (a.mean + a.ci95 < s.mean - s.ci95)}
    return out


def main(argv=None):
    p = cli.parser(__doc__, epochs=HP["epochs"], batch_size=HP["batch_size"], lr=HP["lr"], seeds=True,
                   quick={"epochs": 2, "limit_train": 3000, "labels": [100, 0], "min_steps": 20, "pretrain_epochs": 2})
    p.add_argument("--labels", type=labels_arg, nargs="+", default=list(LABEL_BUDGETS),
                   help="label budgets: counts of labelled training images, or 'all'")
    p.add_argument("--min-steps", type=cli.bounded_int(1, 10_000_000, " steps"), default=HP["min_steps"],
                   help="fewest optimizer steps any run takes (small budgets get more epochs)")
    p.add_argument("--pretrain-epochs", type=cli.bounded_int(1, 10_000, " epochs"), default=autoencoders.HP["epochs"])
    cli.add_study_flags(p)
    args = cli.parse(p, argv)
    out = runs.root(__file__, out=args.out)
    root = out / "encoder_transfer"
    settings = cli.data_settings(args)
    ds = autoencoders.load(settings)            # no data and no network: stop before any trial
    too_many = [b for b in args.labels if b > len(ds.train)]
    if too_many:
        raise UserError(f"--labels {too_many[0]:,} is more than the {len(ds.train):,} training images here; "
                        "give at most that, or 'all'")
    if args.report_only and not root.is_dir():
        raise UserError(f"no runs in {root}; run the study first (without --report-only)")
    if not args.report_only:
        backend = cli.study_backend(args)
        pre_base = {**autoencoders.HP, "family": "mlp", "code": HP["code"], "epochs": args.pretrain_epochs,
                    "batch_size": args.batch_size, **settings}
        pretraining = Study("pretrain", autoencoders.trial, {PRETRAIN: {}}, args.seeds, root, base=pre_base,
                            resume=args.resume)
        base = {**cli.hyperparameters(HP, args), "labels": 0, **settings, "pretrain_dir": str(root / "pretrain")}
        transfer = Study("transfer", trial, conditions(args), args.seeds, root, base=base, resume=args.resume,
                         cost=lambda c: (c["labels"] or 55_000) * c["epochs"] + c["min_steps"] * c["batch_size"])
        transfer.check()              # both studies' refusals before the pretraining writes anything
        pretraining.check().run(**backend).raise_for_failures()
        result = transfer.run(**backend)
        result.report({"test_acc": "test acc (%)", "trainable": "trainable parameters", "steps": "steps"},
                      scale={"test_acc": 100}, bar_ylabel="test accuracy (%)", bar_xlabel="condition",
                      caption=f"seeds {args.seeds}; mean ± std [95% CI]")
        result.raise_for_failures()
    analysis = report(root, conditions(args))
    print(f"tables and figures in {root}")
    return analysis


if __name__ == "__main__":
    cli.run(main)
