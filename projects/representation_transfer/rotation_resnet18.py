"""Pretrain torchvision's ResNet-18 by rotation prediction on CIFAR-10 and export it for section 4.

Part D of projects/representation_transfer. The network is the one `section4_transfer/transfer_learning.py`
builds (ImageNet stem: 7x7/2 conv and max pool, kept at any input size), with a 4-way head: the batch
transform turns every training image (all 50,000, labels unused; crop and flip first) by 0, 90, 180 or
270 degrees and the turn is the target. Its final weights, without the head, are written as a plain,
weights-only state dict, runs/rotation_resnet18/rotation_resnet18.pt, which

    python section4_transfer/transfer_learning.py --weights projects/representation_transfer/runs/rotation_resnet18/rotation_resnet18.pt --resize 32

loads in place of ImageNet weights (ImageNet stays the default for users who are online). --resize must
match between the two: the features are learned at that input size.
"""
from __future__ import annotations

import numpy as np

from projects.representation_transfer.cifar_tasks import load
from shared_utils import cli, runs
from shared_utils.pytorch.checkpoint import save_torch
from shared_utils.pytorch.engine import TrainConfig, evaluate, fit
from shared_utils.pytorch.models import count_parameters, resnet18
from shared_utils.pytorch.pipeline import AUGMENTATIONS, TensorLoader, all_rotations, resize, rotation_prediction
from shared_utils.study import Study, start

HP = {"epochs": 6, "batch_size": 128, "lr": 0.1, "optimizer": "sgd", "weight_decay": 5e-4, "schedule": "cosine",
      "warmup_epochs": 0.5, "resize": 32}
EXPORT = "rotation_resnet18.pt"
ROTATION_VAL = 1250          # held-out training images whose four turns are watched each epoch


def trial(config: dict) -> dict:
    t = start(config)
    device, run = t.device, t.run
    ds = load(config)
    images = np.concatenate([ds.train.x, ds.val.x])            # every training image, unlabelled
    kw = dict(mean=ds.mean, std=ds.std, device=device)
    loader = TensorLoader(images, np.zeros(len(images), np.int64), batch_size=config["batch_size"], seed=config["seed"],
                          augment=[AUGMENTATIONS["crop"](), AUGMENTATIONS["flip"](), rotation_prediction(),
                                   resize(config["resize"])], **kw)
    val_x, val_y = all_rotations(ds.val.x[:ROTATION_VAL])      # seen in training: a training-set figure
    test_x, test_y = all_rotations(ds.test.x)
    evaluation = [resize(config["resize"])]
    val = TensorLoader(val_x, val_y, batch_size=250, shuffle=False, augment=evaluation, **kw)
    test = TensorLoader(test_x, test_y, batch_size=250, shuffle=False, augment=evaluation, **kw)
    model = resnet18(classes=4, cifar_stem=False)
    fit(model, loader, val, TrainConfig.from_config(config), device=device, run=run, quiet=config["quiet"],
        desc="ResNet-18, rotation")
    scores = evaluate(model, test, device)                     # the final weights: no checkpoint is picked
    backbone = {k: v.detach().cpu() for k, v in model.state_dict().items() if not k.startswith("fc.")}
    save_torch(run / EXPORT, backbone)
    return run.summary(test_acc=scores["acc"], test_loss=scores["loss"], images=len(images),
                       parameters=count_parameters(model), exported=len(backbone))


def main(argv=None):
    p = cli.parser(__doc__, epochs=HP["epochs"], batch_size=HP["batch_size"], lr=HP["lr"],
                   quick={"epochs": 1, "limit_train": 600, "val_size": 100, "test_subset": 100, "batch_size": 32})
    p.add_argument("--resize", type=cli.bounded_int(32, 224, " pixels"), default=HP["resize"],
                   help="input side during pretraining (use the same with transfer_learning.py)")
    p.add_argument("--val-size", type=cli.bounded_int(100, 40_000, " images"), default=5000,
                   help="training images whose turns are watched each epoch (they are trained on too)")
    cli.add_test_subset(p)
    cli.add_study_flags(p)
    args = cli.parse(p, argv)
    root = runs.root(__file__, out=args.out)
    settings = {**cli.data_settings(args), "data_seed": 0}
    load(settings)                                  # no data and no network: stop before the trial
    result = Study("rotation_resnet18", trial, {"rotation": {}}, [args.seed], root,
                   base={**cli.hyperparameters(HP, args), **settings}, resume=args.resume).run_or_load(args)
    result.raise_for_failures()
    summary = result.summaries()["rotation"][0]
    path = runs.atomic_write_bytes(result.path / EXPORT, (result.run_paths()["rotation"][0] / EXPORT).read_bytes())
    print(f"rotation accuracy on the test images' four turns: {100 * summary['test_acc']:.2f}%")
    print(f"weights for section4_transfer/transfer_learning.py --weights {path} --resize {args.resize}")
    return summary


if __name__ == "__main__":
    cli.run(main)
