"""Which blocks of a network trained to tell how an image was rotated are worth reusing on CIFAR-10?

Part C of projects/representation_transfer (the README there has the findings). One BlockCNN (four blocks
of two 3x3 conv-BN-ReLU layers, 32/64/128/256 channels, 1.2M parameters) learns Gidaris et al.'s proxy
task on the CIFAR-10 training images, labels unused: the batch transform turns each image by 0, 90, 180 or
270 degrees and the label is the turn. Then its first k blocks (k = 1..4) go into a CIFAR-10 classifier:
  rotation, frozen      blocks 1..k fixed; a non-linear head (3 fully connected layers, as in the paper)
                        learns from block k's feature maps, computed once (stage "features");
  rotation, fine-tuned  the whole BlockCNN classifier learns, its first k blocks starting from the
                        pretrained ones and the rest random (Yosinski et al. 2014's transfer);
  random, frozen        the same head on the blocks of a random BlockCNN: what the architecture alone gives;
  scratch               the BlockCNN classifier from a random start: the supervised baseline.
Label budgets are class-balanced, seeded subsets of the 45,000 training images (5,000 are held out for
validation); the rotation pretraining sees all 50,000 training images, unlabelled. The cross-task control
(stage "crosstask") pretrains the same network with labels on classes 0-4 and transfers it, frozen and
fine-tuned, to classes 5-9 under a small label budget, next to the rotation-pretrained and random blocks.
Every classifier is scored on the test images as it ends (the validation images are only watched, as in
part B). Outputs in projects/representation_transfer/runs/rotation_transfer/.
"""
from __future__ import annotations

import functools
import math
from pathlib import Path

import numpy as np
import torch

from projects.representation_transfer.cifar_tasks import TASKS, load, task_splits
from projects.representation_transfer.labels import budget_name, labels_arg, steps_cell
from projects.representation_transfer.models import BlockCNN, ProbeHead
from shared_utils import cli, data, plots, runs, stats
from shared_utils.errors import UserError
from shared_utils.seed import seed_everything
from shared_utils.pytorch.checkpoint import load_torch
from shared_utils.pytorch.engine import TrainConfig, evaluate, fit
from shared_utils.pytorch.models import count_parameters
from shared_utils.pytorch.pipeline import AUGMENTATIONS, TensorLoader, all_rotations, rotation_prediction
from shared_utils.study import Axis, Grid, Study, StudyResult, grid, start

# ---- the classifiers' recipe (fine-tuned and scratch); --epochs, --batch-size and --lr override it
HP = {"epochs": 4, "batch_size": 128, "lr": 0.05, "optimizer": "sgd", "weight_decay": 5e-4, "schedule": "cosine",
      "width": 32, "min_steps": 400, "labels": 0, "k": 4, "source": "random", "mode": "scratch",
      "task": "cifar10", "source_dir": "", "features_dir": "", "hidden": 200}
# ---- the frozen probes' head: Adam on precomputed features
FROZEN_HP = {"epochs": 10, "lr": 1e-3, "optimizer": "adam", "weight_decay": 5e-4, "schedule": "cosine"}
# ---- the pretraining (rotation, or supervised on classes 0-4)
PRETRAIN_HP = {"epochs": 10, "batch_size": 128, "lr": 0.1, "optimizer": "sgd", "weight_decay": 5e-4,
               "schedule": "cosine", "warmup_epochs": 0.5, "width": 32, "pretext": "rotation", "task": "cifar10"}
PRETRAINS = {"rotation": {"pretext": "rotation", "task": "cifar10"},
             "supervised, classes 0-4": {"pretext": "classes", "task": "classes 0-4"}}
BLOCKS = (1, 2, 3, 4)
LABEL_BUDGETS = (1000, 5000, 0)       # 0 = all 45,000 training labels
CROSS_LABELS = 2500                   # classes 5-9: 500 labels per class
ROTATION_VAL = 1250                   # validation images whose four turns score the rotation task each epoch
TARGET = 0.5                          # validation accuracy whose first step is reported (training efficiency)
WATCHED = 1000                        # validation images scored after every epoch (curves and steps to TARGET)
# Gidaris et al. 2018, Table 1: CIFAR-10 accuracy of non-linear classifiers on frozen RotNet (NIN, 4 blocks)
GIDARIS_FROZEN = {1: 85.07, 2: 89.06, 3: 86.21, 4: 61.73}
GIDARIS_SUPERVISED = 92.80


def checkpoint_blocks(path: Path, k: int) -> dict:
    """The tensors of blocks 1..k of a BlockCNN checkpoint (a pretraining's last.pt: its final weights)."""
    state = load_torch(path)
    model = state.get("model", state) if isinstance(state, dict) else {}
    prefixes = tuple(f"blocks.{i}." for i in range(k))
    weights = {name: value for name, value in model.items() if name.startswith(prefixes)}
    if not any(name.startswith(f"blocks.{k - 1}.") for name in weights):
        raise UserError(f"{path} holds no block {k} of a BlockCNN; run the pretraining again (without --resume)")
    return weights


def source_checkpoint(config: dict) -> Path:
    """The final weights (last.pt) of the pretraining a trial names as its source."""
    return StudyResult.load(config["source_dir"]).artifact(config["source"], config["pretrain_seed"], "last.pt")


def source_model(config: dict, classes: int) -> BlockCNN:
    """A BlockCNN whose blocks come from the named source: a pretraining's final weights, or the random
    initialisation of the pretraining seed (the same random blocks for every trial)."""
    torch.manual_seed(config["pretrain_seed"])
    model = BlockCNN(classes=classes, width=config["width"])
    if config["source"] != "random":
        model.load_state_dict(checkpoint_blocks(source_checkpoint(config), len(model.blocks)), strict=False)
    return model


# --------------------------------------------------------------------------- stage 1: pretraining
def pretrain(config: dict) -> dict:
    t = start(config)
    device, run = t.device, t.run
    ds = load(config)
    train, val, test = task_splits(ds, config["task"])
    kw = dict(mean=ds.mean, std=ds.std, device=device)
    augment = [AUGMENTATIONS["crop"](), AUGMENTATIONS["flip"]()]
    if config["pretext"] == "rotation":       # the labels are thrown away: the turn is the target
        model = BlockCNN(classes=4, width=config["width"])
        images = np.concatenate([train.x, val.x])     # every training image, the held-out ones too (unlabelled)
        loader = TensorLoader(images, np.zeros(len(images), np.int64), batch_size=config["batch_size"],
                              seed=config["seed"], augment=augment + [rotation_prediction()], **kw)
        val_x, val_y = all_rotations(val.x[:ROTATION_VAL])      # seen in training: a training-set figure
        test_x, test_y = all_rotations(test.x)
    else:
        model = BlockCNN(classes=TASKS[config["task"]][1] - TASKS[config["task"]][0], width=config["width"])
        loader = TensorLoader(train.x, train.y, batch_size=config["batch_size"], seed=config["seed"],
                              augment=augment, **kw)
        val_x, val_y, test_x, test_y = val.x, val.y, test.x, test.y
    val_loader = TensorLoader(val_x, val_y, batch_size=500, shuffle=False, **kw)
    fit(model, loader, val_loader, TrainConfig.from_config(config), device=device, run=run, quiet=config["quiet"],
        desc=config["condition"])
    # the final weights are the pretrained ones (no checkpoint is picked); the test images' four turns score them
    scores = evaluate(model, TensorLoader(test_x, test_y, batch_size=500, shuffle=False, **kw), device)
    return run.summary(test_acc=scores["acc"], test_loss=scores["loss"], images=len(loader.labels),
                       parameters=count_parameters(model))


# --------------------------------------------------------------------------- stage 2: frozen features
def features(config: dict) -> dict:
    """Block 1..4 feature maps of a source's frozen blocks (eval mode, no augmentation) for the task's
    train, validation and test images, saved once (float16) for every frozen probe that reads them."""
    t = start(config)
    device, run = t.device, t.run
    ds = load(config)
    splits = {"train": ds.train, "val": ds.val, "test": ds.test}
    model = source_model(config, classes=10).to(device).eval()     # every class: probes pick theirs
    mean = torch.tensor(ds.mean, device=device).view(1, -1, 1, 1)
    std = torch.tensor(ds.std, device=device).view(1, -1, 1, 1)
    arrays = {}
    with torch.no_grad():
        for name, split in splits.items():
            out = {k: [] for k in BLOCKS}
            for i in range(0, len(split), 500):
                x = (torch.as_tensor(split.x[i:i + 500], device=device).float() / 255 - mean) / std
                for k, block in zip(BLOCKS, model.blocks):
                    x = block(x)
                    out[k].append(torch.flatten(x, 1).half().cpu().numpy())
            for k in BLOCKS:
                arrays[f"{name}_{k}"] = np.concatenate(out[k])
            arrays[f"{name}_y"] = split.y
    runs.save_npz(run / "features.npz", arrays)
    return run.summary(dims={k: int(arrays[f"train_{k}"].shape[1]) for k in BLOCKS}, images=len(splits["train"]))


@functools.lru_cache(maxsize=2)
def _load_features(path: str, k: int, task: str) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Block k's features of the task's classes (labels renumbered from 0), read from the features stage
    (only those arrays: the file holds every block). Remembered per process for the next probe."""
    low, high = TASKS[task]
    out = {}
    try:
        with np.load(path, allow_pickle=False) as file:
            for split in ("train", "val", "test"):
                y = file[f"{split}_y"]
                keep = np.flatnonzero((y >= low) & (y < high))
                out[split] = (file[f"{split}_{k}"][keep], y[keep] - low)
    except FileNotFoundError:
        raise UserError(f"{path} does not exist; run the features stage again (without --resume)") from None
    except (ValueError, OSError, KeyError, EOFError) as exc:
        raise UserError(f"{path} is corrupt or not this study's features ({exc}); run it again without --resume") \
            from None
    return out


# --------------------------------------------------------------------------- stage 3: transfer
def transfer(config: dict) -> dict:
    t = start(config)
    device, run = t.device, t.run
    if config["mode"] == "frozen":
        path = StudyResult.load(config["features_dir"]).trial_path(config["source"], config["pretrain_seed"]) / "features.npz"
        feats = _load_features(str(path), config["k"], config["task"])
        (train_x, train_y), (val_x, val_y), (test_x, test_y) = feats["train"], feats["val"], feats["test"]
        picked = data.subset(data.Split(np.arange(len(train_y)), train_y), config["labels"] or None,
                             mode="stratified", seed=config["seed"]).x
        train_x, train_y = train_x[picked], train_y[picked]
        model = ProbeHead(train_x.shape[1], classes=int(train_y.max()) + 1, hidden=config["hidden"])
        augment, kw = [], {}
    else:
        ds = load(config)
        train, val, test = task_splits(ds, config["task"])
        train = data.subset(train, config["labels"] or None, mode="stratified", seed=config["seed"])
        (train_x, train_y), (val_x, val_y), (test_x, test_y) = (train.x, train.y), (val.x, val.y), (test.x, test.y)
        classes = int(train_y.max()) + 1
        if config["mode"] == "finetune":     # blocks 1..k from the source, the rest and the head fresh
            seed_everything(config["seed"])
            model = BlockCNN(classes=classes, width=config["width"])
            model.load_state_dict(checkpoint_blocks(source_checkpoint(config), config["k"]), strict=False)
        else:
            model = BlockCNN(classes=classes, width=config["width"])
        augment, kw = [AUGMENTATIONS["crop"](), AUGMENTATIONS["flip"]()], dict(mean=ds.mean, std=ds.std)
    val_x, val_y = val_x[:WATCHED], val_y[:WATCHED]       # only watched: a small budget runs many short epochs
    batch = min(config["batch_size"], len(train_y))
    steps_per_epoch = math.ceil(len(train_y) / batch)
    epochs = max(config["epochs"], math.ceil(config["min_steps"] / steps_per_epoch))
    loader = TensorLoader(train_x, train_y, batch_size=batch, seed=config["seed"], augment=augment, device=device, **kw)
    val = TensorLoader(val_x, val_y, batch_size=500, shuffle=False, device=device, **kw)
    test = TensorLoader(test_x, test_y, batch_size=500, shuffle=False, device=device, **kw)
    history = fit(model, loader, val, TrainConfig.from_config({**config, "epochs": epochs}), device=device, run=run,
                  quiet=config["quiet"], desc=config["condition"])
    scores = evaluate(model, test, device)                  # the model as it ends, not a val-picked one
    reached = next((row["epoch"] * steps_per_epoch for row in history if row["val_acc"] >= TARGET), None)
    return run.summary(test_acc=scores["acc"], test_loss=scores["loss"], labels=len(train_y), epochs=epochs,
                       steps=epochs * steps_per_epoch, steps_per_epoch=steps_per_epoch,
                       trainable=count_parameters(model, trainable_only=True), **{f"steps_to_{round(100 * TARGET)}": reached})


# --------------------------------------------------------------------------- the studies' conditions
FAMILIES = {   # the conditions drawn against k, and the source and mode each means
    "rotation, frozen": {"source": "rotation", "mode": "frozen"},
    "rotation, fine-tuned": {"source": "rotation", "mode": "finetune"},
    "random, frozen": {"source": "random", "mode": "frozen"},
}
CROSS_FAMILIES = {
    "supervised 0-4, frozen": {"source": "supervised, classes 0-4", "mode": "frozen"},
    "supervised 0-4, fine-tuned": {"source": "supervised, classes 0-4", "mode": "finetune"},
    "rotation, frozen": {"source": "rotation", "mode": "frozen"},
    "random, frozen": {"source": "random", "mode": "frozen"},
}


def _grid(families: dict, budgets, blocks, task: str) -> Grid:
    """Per budget, every family at every k, then the scratch baseline: "rotation, frozen, k=1, 1,000 labels"."""
    named = {f: {**(FROZEN_HP if c["mode"] == "frozen" else {}), **c, "task": task} for f, c in families.items()}
    scratch = {"scratch": {"source": "random", "mode": "scratch", "k": 4, "task": task}}
    out = None
    for b in budgets:
        labels = Axis([b], label=budget_name)
        part = grid(family=named, k=Axis(blocks, label=lambda k: f"k={k}"), labels=labels) + \
            grid(family=scratch, labels=labels)
        out = part if out is None else out + part
    return out


def transfer_conditions(args, modes=("frozen", "finetune", "scratch")) -> Grid:
    return _grid(FAMILIES, args.labels, args.blocks, "cifar10").where(lambda c: c.overrides["mode"] in modes)


def cross_conditions(args, modes=("frozen", "finetune", "scratch")) -> Grid:
    return _grid(CROSS_FAMILIES, [args.cross_labels], args.blocks, "classes 5-9").where(
        lambda c: c.overrides["mode"] in modes)


def trial_cost(config: dict) -> float:
    """Fine-tuning and scratch runs (whole-network steps) first; the frozen probes, cheap, grouped by
    source and block so that a worker reuses the features it read last."""
    images = max((config["labels"] or 45_000) * config["epochs"], config["min_steps"] * config["batch_size"])
    if config["mode"] != "frozen":
        return 1e9 + images
    return 1e6 * (10 * len(config["source"]) + config["k"]) + images / 1e3


# --------------------------------------------------------------------------- the report
def _mean_band(values: list[float]) -> tuple[float, float]:
    return float(np.mean(values)), (stats.summarize(values).ci95 if len(values) > 1 else 0.0)


def block_panels(r: StudyResult, *, anchor: bool) -> list[dict]:
    """A panel per label budget: test accuracy against k for each family, scratch as a dashed line."""
    families = [f for f in r.levels("family") if f != "scratch"]
    colour = {family: plots.PALETTE[i % len(plots.PALETTE)] for i, family in enumerate(families)}
    blocks, panels = r.levels("k"), []
    for b in r.levels("labels"):
        series, bands, styles = {}, {}, {}
        for family in families:
            styles[family] = {"color": colour[family]}            # one colour per condition in every panel
            points = [(k, v) for k in blocks if (v := r.at("test_acc", 100, family=family, k=k, labels=b))]
            if points:
                series[family] = ([k for k, _ in points], [_mean_band(v)[0] for _, v in points])
                bands[family] = [_mean_band(v)[1] for _, v in points]
        scratch = r.at("test_acc", 100, family="scratch", labels=b)
        if scratch:
            m, h = _mean_band(scratch)
            series["scratch (whole net)"] = ([min(blocks), max(blocks)], [m, m])
            bands["scratch (whole net)"] = [h, h]
            styles["scratch (whole net)"] = {"linestyle": "--", "color": "black", "marker": None}
        if anchor and b == 0:
            series["Gidaris et al., frozen (NIN)"] = (list(GIDARIS_FROZEN), list(GIDARIS_FROZEN.values()))
            styles["Gidaris et al., frozen (NIN)"] = {"linestyle": ":", "color": "grey"}
        if series:
            panels.append({"series": series, "bands": bands, "styles": styles, "title": budget_name(b),
                           "xticks": list(blocks), "xlabel": "blocks transferred, k", "ylabel": "test accuracy (%)"})
    return panels


def block_table(r: StudyResult, out: Path, caption: str, anchor: bool) -> None:
    blocks, n, rows = r.levels("k"), len(r.seeds), []
    for b in r.levels("labels"):
        for i, family in enumerate(f for f in r.levels("family") if f != "scratch"):
            cells = [stats.ci_cell(r.at("test_acc", 100, family=family, k=k, labels=b), n) for k in blocks]
            scratch = stats.ci_cell(r.at("test_acc", 100, family="scratch", labels=b), n) if i == 0 else ""
            rows.append([budget_name(b), family] + cells + [scratch])
        if anchor and b == 0:
            rows.append([budget_name(b), "Gidaris et al. 2018, frozen (NIN)"] +
                        [f"{GIDARIS_FROZEN[k]:.2f}" if k in GIDARIS_FROZEN else "" for k in blocks] +
                        [f"{GIDARIS_SUPERVISED:.2f}"])
    stats.write_table(["labels", "condition"] + [f"k = {k}" for k in blocks] + ["scratch"], rows, out, caption=caption)


def goals(r: StudyResult) -> dict:
    """Per budget: where the frozen rotation probe peaks and whether block 4 falls below the peak beyond the
    95% intervals; at each budget, fine-tuned (k = 4 and the best k) against scratch."""
    out, blocks = {}, r.levels("k")
    for b in r.levels("labels"):
        frozen = {k: r.at("test_acc", 100, family="rotation, frozen", k=k, labels=b) for k in blocks}
        entry: dict = {}
        if all(frozen.values()):
            means = {k: float(np.mean(v)) for k, v in frozen.items()}
            peak, last = max(means, key=means.get), max(blocks)
            entry["frozen_peak_k"] = peak
            entry["frozen_means"] = means
            if peak != last and len(frozen[peak]) > 1 and len(frozen[last]) > 1:
                a, z = stats.summarize(frozen[peak]), stats.summarize(frozen[last])
                entry["last_block_drop"] = a.mean - z.mean
                entry["drop_outside_ci"] = bool(a.mean - a.ci95 > z.mean + z.ci95)
            entry["shape_held"] = peak != last
        scratch = r.at("test_acc", 100, family="scratch", labels=b)
        tuned = {k: v for k in blocks if (v := r.at("test_acc", 100, family="rotation, fine-tuned", k=k, labels=b))}
        if scratch and tuned:
            best = max(tuned, key=lambda k: np.mean(tuned[k]))
            s = stats.summarize(scratch)
            for label, k in (("k4", max(blocks)), ("best", best)):
                if k in tuned:
                    t = stats.summarize(tuned[k])
                    entry[f"finetune_{label}"] = {"k": k, "margin": t.mean - s.mean,
                                                  "separate": bool(t.mean - t.ci95 > s.mean + s.ci95)}
        out[budget_name(b)] = entry
    return out


def convergence(r: StudyResult) -> list[dict]:
    """A panel per budget: validation accuracy by optimizer step of the fine-tuned runs and scratch."""
    panels, summaries = [], r.summaries()
    for b in r.levels("labels"):
        curves = {}
        for c in r.select(labels=b):
            if "fine-tuned" in c["family"] or c["family"] == "scratch":
                for name, (epochs, per_seed) in r.curves("val_acc", 100, **c.levels).items():
                    curves[name.replace(f", {budget_name(b)}", "")] = (
                        epochs * summaries[name][0]["steps_per_epoch"], per_seed.mean(0))
        if curves:
            panels.append({"series": curves, "title": budget_name(b), "xlabel": "optimizer step", "markers": False,
                           "ylabel": "validation accuracy (%)"})
    return panels


def filters_figure(pre: StudyResult | None, seed: int, out: Path) -> dict[str, float]:
    """The first convolution's 32 filters (3x3 RGB, each scaled to its own range) of every pretraining,
    next to the random initialisation."""
    rows, titles = [], []
    torch.manual_seed(seed)
    weights = {"random init": BlockCNN(width=PRETRAIN_HP["width"]).blocks[0][0].weight.detach().numpy()}
    for c in pre.conditions if pre else []:
        if (pre.trial_path(c, seed) / "last.pt").is_file():
            weights[c.name] = load_torch(pre.artifact(c, seed, "last.pt"))["model"]["blocks.0.0.weight"].numpy()
    if len(weights) < 2:
        return {}
    for name, w in weights.items():
        for i, f in enumerate(w[:16]):
            f = (f - f.min()) / max(float(f.max() - f.min()), 1e-12)
            rows.append(np.kron(np.moveaxis(f, 0, -1), np.ones((4, 4, 1))) * 255)
            titles.append(f"{name} #{i + 1}" if i == 0 else f"#{i + 1}")
    plots.image_grid(np.stack(rows).astype(np.uint8), out, ncols=16, titles=titles, colorbar_label=None,
                     title="First-layer filters (3x3 RGB, each scaled to its own range): random, rotation, supervised")
    return {name: achromatic_share(w) for name, w in weights.items()}


def achromatic_share(w: np.ndarray) -> float:
    """The mean share of a filter's energy that is the same in R, G and B (a grey-level pattern): 1/3 on
    average for random filters, 1 for filters blind to colour."""
    grey = w.mean(axis=1, keepdims=True)
    return float(np.mean(3 * (grey ** 2).sum(axis=(1, 2, 3)) / (w ** 2).sum(axis=(1, 2, 3))))


def report(root: Path, grids: dict[str, Grid] | None = None) -> dict:
    """Tables, figures and analysis.json from the study's folders alone (each stage that has run)."""
    analysis: dict = {}
    if (root / "transfer" / "manifest.json").is_file():
        r = StudyResult.load(root / "transfer", (grids or {}).get("transfer"))
        block_table(r, root / "accuracy_by_block", f"CIFAR-10 test accuracy (%), mean ± 95% CI over seeds {r.seeds}, "
                    "scored at the last epoch", anchor=True)
        panels = block_panels(r, anchor=True)
        if panels:
            plots.line_panels(panels, root / "accuracy_vs_block.png", ncols=min(3, len(panels)),
                              title="Rotation-pretrained blocks on CIFAR-10: test accuracy vs blocks transferred "
                                    "(mean, 95% CI)")
        conv = convergence(r)
        if conv:
            plots.line_panels(conv, root / "convergence.png", ncols=min(3, len(conv)),
                              title=f"Fine-tuned vs scratch: validation accuracy by step (mean over seeds {r.seeds})")
        steps = [[name, steps_cell([s.get("steps_to_50") for s in per])]
                 for name, per in r.summaries().items() if per and "frozen" not in name]
        stats.write_table(["condition", "steps to 50% validation accuracy"], steps, root / "steps_to_50",
                          caption="Optimizer steps until validation accuracy first reaches 50% (mean over the seeds "
                                  "that do; how many did)")
        analysis.update(accuracy={c.name: r.at("test_acc", 100, c) for c in r.conditions}, goals=goals(r))
    if (root / "crosstask" / "manifest.json").is_file():
        r = StudyResult.load(root / "crosstask", (grids or {}).get("crosstask"))
        (budget,) = r.levels("labels")
        block_table(r, root / "crosstask_by_block", f"Classes 5-9 (5-way) test accuracy (%), {budget_name(budget)}, "
                    f"mean ± 95% CI over seeds {r.seeds}", anchor=False)
        panels = block_panels(r, anchor=False)
        if panels:
            panels[0]["title"] = f"classes 5-9, {budget_name(budget)}"
            plots.line_panels(panels, root / "crosstask_vs_block.png", ncols=1,
                              title="Cross-task transfer: blocks from classes 0-4 (supervised) or rotation")
        analysis["crosstask"] = {c.name: r.at("test_acc", 100, c) for c in r.conditions}
    pre = StudyResult.load(root / "pretrain") if (root / "pretrain" / "manifest.json").is_file() else None
    seed = pre.seeds[0] if pre else 0
    for name, paths in (pre.run_paths() if pre else {}).items():
        plots.learning_curves(paths[0], title=f"Pretraining: {name}")
    analysis["pretrain"] = {name: {"test_acc": s[0]["test_acc"], "images": s[0].get("images")}
                            for name, s in (pre.summaries() if pre else {}).items()}
    analysis["filters_achromatic_share"] = filters_figure(pre, seed, root / "filters.png")
    runs.atomic_write_json(root / "analysis.json", analysis)
    return analysis


# --------------------------------------------------------------------------- main
PARTS = ("pretrain", "features", "transfer", "crosstask")


def main(argv=None):
    p = cli.parser(__doc__, epochs=HP["epochs"], batch_size=HP["batch_size"], lr=HP["lr"], seeds=True,
                   quick={"epochs": 1, "limit_train": 800, "val_size": 200, "test_subset": 300, "labels": [100],
                          "cross_labels": 50, "min_steps": 5, "pretrain_epochs": 1, "batch_size": 64,
                          "blocks": [1, 4]})
    p.add_argument("--labels", type=labels_arg, nargs="+", default=list(LABEL_BUDGETS),
                   help="label budgets of the CIFAR-10 transfer: counts of labelled training images, or 'all'")
    p.add_argument("--cross-labels", type=labels_arg, default=CROSS_LABELS,
                   help="label budget of the cross-task control (classes 5-9), or 'all'")
    p.add_argument("--blocks", type=cli.bounded_int(1, 4, " blocks"), nargs="+", default=list(BLOCKS),
                   help="numbers of pretrained blocks to transfer (k)")
    p.add_argument("--parts", choices=PARTS, nargs="+", default=list(PARTS), help="stages to run")
    p.add_argument("--modes", choices=("frozen", "finetune", "scratch"), nargs="+",
                   default=["frozen", "finetune", "scratch"],
                   help="which transfer conditions to run (the report shows every one it finds)")
    p.add_argument("--min-steps", type=cli.bounded_int(1, 10_000_000, " steps"), default=HP["min_steps"],
                   help="fewest optimizer steps any classifier takes (small budgets get more epochs)")
    p.add_argument("--pretrain-epochs", type=cli.bounded_int(1, 10_000, " epochs"), default=PRETRAIN_HP["epochs"])
    p.add_argument("--pretrain-seed", type=cli.seed_int, default=0, help="seed of the one pretraining of each kind")
    p.add_argument("--val-size", type=cli.bounded_int(100, 40_000, " images"), default=5000,
                   help="training images held out for validation")
    cli.add_test_subset(p)
    cli.add_study_flags(p)
    args = cli.parse(p, argv)
    args.blocks = sorted(set(args.blocks))
    root = runs.root(__file__, out=args.out) / "rotation_transfer"
    settings = {**cli.data_settings(args), "data_seed": 0, "pretrain_seed": args.pretrain_seed}
    ds = load(settings)                         # no data and no network: stop before any trial
    low_classes = len(task_splits(ds, "classes 5-9")[0])
    for flag, budget, pool in (("--labels", max(args.labels), len(ds.train)),
                               ("--cross-labels", args.cross_labels, low_classes)):
        if budget > pool:
            raise UserError(f"{flag} {budget:,} is more than the {pool:,} training images it can draw from here; "
                            "give at most that, or 'all'")
    if args.report_only:
        if not root.is_dir():
            raise UserError(f"no runs in {root}; run the study first (without --report-only)")
    else:
        backend = cli.study_backend(args)
        pre_base = {**PRETRAIN_HP, "epochs": args.pretrain_epochs, "batch_size": args.batch_size, **settings}
        base = {**cli.hyperparameters(HP, args), **settings, "width": PRETRAIN_HP["width"],
                "source_dir": str(root / "pretrain"), "features_dir": str(root / "features")}
        sources = {name: {"source": name} for name in ("rotation", "random", "supervised, classes 0-4")}
        stages = {   # every stage asked for is checked before the first one writes anything
            "pretrain": Study("pretrain", pretrain, PRETRAINS, [args.pretrain_seed], root, base=pre_base,
                              resume=args.resume, cost=lambda c: c["epochs"] * (2 if c["pretext"] == "rotation" else 1)),
            "features": Study("features", features, sources, [args.pretrain_seed], root, base=base, resume=args.resume),
            **{part: Study(part, transfer, conditions(args, args.modes), args.seeds, root, base=base,
                           resume=args.resume, cost=trial_cost)
               for part, conditions in (("transfer", transfer_conditions), ("crosstask", cross_conditions))}}
        stages = {part: study.check() for part, study in stages.items() if part in args.parts}
        for study in stages.values():
            study.run(**backend).raise_for_failures()
    analysis = report(root, {"transfer": transfer_conditions(args), "crosstask": cross_conditions(args)})
    print(f"tables and figures in {root}")
    return analysis


if __name__ == "__main__":
    cli.run(main)
