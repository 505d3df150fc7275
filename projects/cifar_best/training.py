"""The cifar_best trial: the search space's components, the check that a configuration names only known
ones, the final recipe (RECIPE), and the one trial every screening round, ablation row and final run goes through.

A configuration is a plain dict (a study trial's), so one function trains all of them:

    summary = train_trial({**START, "model": "resnet20", "seed": 0, "run_dir": ".../seed_0", ...})

Its keys, each a component of the recipe:
  model             fastnet | fastnet_small | fastnet_wide | resnet20 | resnet56 | wrn16_4
  whiten            FastNet's fixed patch-whitening stem (True) or a trainable conv stem (False)
  augment           a list of: flip (a fresh coin per image and epoch), altflip (alternating flip),
                    translate (reflect-pad 2, random crop), crop (zero-pad 4, random crop), cutout (8x8)
  label_smoothing, weight_decay
  optimizer, lr, momentum, nesterov, lookahead_steps (0: off), lookahead_alpha; with optimizer muon the
                    convolution filters train by Muon (muon_lr, muon_momentum) and the rest by SGD (lr, momentum)
  schedule          onecycle | cosine | linear (to zero) | none, after warmup_epochs of linear warm-up
  batch_size
  bn_momentum, bn_weight   FastNet's batch norm: running-average momentum; trainable scales or fixed at 1
  tta               none | flip | flip_translate (averaged predictions over 1, 2 or 6 views)
  ema_epochs        None, or the horizon of an exponential moving average of the weights in epochs
                    (decay = 1 - 1 / (ema_epochs x steps per epoch), so it means the same at any budget)
  curve_tta         the TTA of the every-epoch evaluation (default: tta), e.g. none where six views each epoch
                    would cost more than the curve is worth; the final test figure always uses tta
  report_all_tta    also score the test set with every TTA (the final recipe), not only none and the chosen one
  precision         auto (bfloat16 autocast + channels-last on a CPU where it is faster than float32:
                    AMX or AVX512-BF16 and a probe step, device.bf16_pays_on_cpu; float16 autocast +
                    channels-last on CUDA; else float32) | fp32
  epochs, plus the data settings (limit_train, val_size, test_subset, data_dir, data_seed) and device.

The selection metric is always validation accuracy on images carved from the training set; the test set
is scored once, at the end, with the weights the run ended with (the EMA's when it has one), never used to
pick anything. A run with ``val_size`` 0 (the final recipe, all 50,000 training images) scores the test set
after every epoch instead, for the time-to-accuracy curve, and still reports the last epoch's figure.
"""
from __future__ import annotations

from typing import Any, Mapping

import torch

from shared_utils import data, plots, runs
from shared_utils.study import start
from shared_utils.errors import UserError
from shared_utils.pytorch.device import precision_for
from shared_utils.pytorch.engine import TTA_VIEWS, SCHEDULES, TrainConfig, evaluate, fit, load_final
from shared_utils.pytorch.models import FastNet, build_model, count_parameters
from shared_utils.pytorch import pipeline
from shared_utils.pytorch.pipeline import AUGMENTATIONS

MODELS = {   # name -> (zoo name, keyword arguments)
    "fastnet": ("fastnet", {"widths": (64, 256, 256)}),
    "fastnet_small": ("fastnet", {"widths": (32, 128, 128)}),
    "fastnet_wide": ("fastnet", {"widths": (128, 384, 384)}),
    "resnet20": ("resnet", {"depth": 20}),
    "resnet56": ("resnet", {"depth": 56}),
    "wrn16_4": ("wrn", {"depth": 16, "widen": 4}),
}
AUGMENT = ("flip", "altflip", "translate", "crop", "cutout")
OPTIMIZERS = ("sgd", "adam", "adamw", "muon")
PRECISIONS = ("auto", "fp32")
CHOICES = {"model": tuple(MODELS), "optimizer": OPTIMIZERS, "schedule": SCHEDULES, "tta": tuple(TTA_VIEWS),
           "curve_tta": (None,) + tuple(TTA_VIEWS), "precision": PRECISIONS}
EVAL_BATCH = 1000

# ---- the recipe. Each line: the setting, then the screening result that chose it (screen_<group>/ranking.md,
# ---- 10,000-image subset, seed 0; see README.md for the table and what did not survive).
RECIPE = {
    "model": "fastnet",            # model: 65.2% val at 4 epochs vs fastnet_small 58.3, wrn16_4 53.8 (4.6x slower)
    "whiten": True,                # model: whitening 50.3% vs 37.2% without, at 2 epochs
    "augment": ["flip", "translate"],  # augment (16 ep): 79.3% vs altflip+translate 79.1, flip alone 77.7
    "optimizer": "sgd", "lr": 0.2, "momentum": 0.9, "nesterov": True,   # optimizer: lr 0.4 at batch 512 (66.0%)
    "lookahead_steps": 0, "lookahead_alpha": 0.5,                       # optimizer: lookahead 42.6% vs 50.3% (2 ep)
    "schedule": "linear", "warmup_epochs": 0.0,                         # schedule: no warm-up 67.2% vs 66.0%
    "label_smoothing": 0.2, "weight_decay": 5e-4,                       # regularise (16 ep): 79.6% vs 0.3: 79.5
    "batch_size": 256,             # batch: 256 at lr 0.2 (linear scaling of 0.4 at 512) 71.7% at 4 epochs
    "bn_momentum": 0.4, "bn_weight": True,                              # batchnorm: 61.3% = 0.1's 61.3 (2 ep): noise
    "tta": "flip_translate", "ema_epochs": None,                        # averaging: 72.5% vs flip 72.3 (4 ep); EMA lost
    "curve_tta": "none",           # the every-epoch curve: one view (cost, not accuracy: the final score uses tta)
    "epochs": 18,                  # full data: 16 epochs gave 90.17, 90.16% (6-view TTA) in 1,181-1,212 s, short of 90.6
    "precision": "auto", "report_all_tta": True,
}


def check_config(config: Mapping[str, Any], where: str = "") -> None:
    """Raise a UserError naming the first unknown component in ``config`` (before anything trains)."""
    at = f" in {where}" if where else ""
    for key, allowed in CHOICES.items():
        if key in config and config[key] not in allowed:
            raise UserError(f"unknown {key} {config[key]!r}{at}; choose one of {', '.join(allowed)}")
    unknown = [a for a in config.get("augment", ()) if a not in AUGMENT]
    if unknown:
        raise UserError(f"unknown augmentation {unknown[0]!r}{at}; choose from {', '.join(AUGMENT)}")
    if config.get("ema_epochs") is not None and not float(config["ema_epochs"]) > 0:
        raise UserError(f"ema_epochs{at} must be positive (or None for no averaging), got {config['ema_epochs']}")


def resolve_precision(config: Mapping[str, Any], device: torch.device) -> str:
    """What ``precision`` means on this device: bf16 (a CPU where bfloat16 is faster), fp16 (CUDA) or fp32."""
    return precision_for(config.get("precision", "auto"), device)


def train_config(config: Mapping[str, Any], steps_per_epoch: int, precision: str) -> TrainConfig:
    """The engine's settings for a trial: the recipe's keys, EMA as a horizon in epochs, and autocast /
    channels-last wherever ``precision`` turned them on."""
    ema = config.get("ema_epochs")
    fast = precision != "fp32"
    return TrainConfig.from_config({
        **config, "ema_decay": None if ema is None else 1.0 - 1.0 / max(2.0, float(ema) * steps_per_epoch),
        "tta": config.get("curve_tta") or config.get("tta", "none"),
        "amp": fast, "channels_last": fast, "cpu_amp": precision == "bf16", "cpu_channels_last": fast})


def build(config: Mapping[str, Any]) -> torch.nn.Module:
    name, kwargs = MODELS[config["model"]]
    if name == "fastnet":
        kwargs = {**kwargs, "whiten": bool(config.get("whiten", True)),
                  "bn_momentum": float(config.get("bn_momentum", 0.1)), "bn_weight": bool(config.get("bn_weight", True))}
    return build_model(name, **kwargs)


def loaders(ds: data.Dataset, config: Mapping[str, Any], device: torch.device):
    augment = [AUGMENTATIONS[name]() if name != "altflip" else AUGMENTATIONS[name](config["seed"])
               for name in config.get("augment", ())]
    return pipeline.loaders(ds, batch_size=int(config["batch_size"]), seed=config["seed"], device=device,
                            eval_batch_size=EVAL_BATCH, augment=augment,
                            drop_last=len(ds.train) > int(config["batch_size"]))


def train_trial(config: dict, script_file: str = __file__) -> dict:
    """Train one configuration into ``config["run_dir"]`` (resuming when the trial says so) and return its
    summary: validation and test accuracy, the test accuracy with every TTA, seconds and images/s."""
    check_config(config)
    t = start(config, script_file)
    device, run = t.device, t.run
    ds = data.cifar10_from_settings(config)
    model = build(config)
    if isinstance(model, FastNet):   # whitening from the run's own training images, before any step
        sample = torch.from_numpy(ds.normalize(ds.train.x[:5000]))
        model.init_whitening(sample)
    train, val, test = loaders(ds, config, device)
    precision = resolve_precision(config, device)
    cfg = train_config(config, len(train), precision)
    title = f"{config['model']}: {config.get('condition', '')} (seed {config['seed']})"
    fit(model, train, val if val is not None else test, cfg, device=device, run=run,
        quiet=bool(config.get("quiet", True)), desc=title)
    load_final(model, run, device)   # the weights the run ended with (the EMA's when it has one)
    tta = config.get("tta", "none")
    views = TTA_VIEWS if config.get("report_all_tta") else dict.fromkeys(["none", tta])
    by_tta = {name: evaluate(model, test, device, tta=name, cfg=cfg)["acc"] for name in views}
    plots.learning_curves(run.path, title=title)
    metrics = runs.read_metrics(run.path)
    seconds = float(metrics["seconds"].sum())
    images = float((metrics["images_per_s"] * metrics["seconds"]).sum())
    return run.summary(test_acc=by_tta[tta], **{f"test_acc_tta_{k}": v for k, v in by_tta.items()},
                       val_is_test=val is None, precision=precision, parameters=count_parameters(model),
                       images_per_s=images / max(seconds, 1e-9),
                       train_images=len(ds.train), cpu=runs.cpu_name())
