"""What is inside a ResNet-18, and what changes when it is adapted to a new task?

Summarises torchvision's ResNet-18 state_dict (every tensor's name and shape, parameters per
stage, total), replaces the 1000-class ImageNet head with a --num-classes head, checks the new
output shape, and lists which parameters stay trainable when the backbone is frozen.
--weights imagenet loads torchvision's ImageNet weights (hub cache or download); --weights PATH
a saved state dict; the default inspects a randomly initialised network (same shapes).
Outputs in section4_transfer/runs/inspect_resnet/.
"""
from __future__ import annotations

import torch

from shared_utils.pytorch.models import count_parameters, freeze_backbone, load_pretrained, resnet18
from shared_utils import cli, runs, stats

STAGES = ("conv1", "bn1", "layer1", "layer2", "layer3", "layer4", "fc")


def main(argv=None):
    p = cli.parser(__doc__, trains=False)
    p.add_argument("--num-classes", type=cli.width, default=2, help="classes of the new head")
    p.add_argument("--weights", default="none", help="none, imagenet, or a path to a state dict")
    p.add_argument("--size", type=cli.bounded_int(32, 2048, " pixels"), default=224,
                   help="input side for the shape check")
    args = cli.parse(p, argv)
    torch.manual_seed(args.seed)
    model = resnet18(classes=1000, cifar_stem=False)
    loaded = load_pretrained(model, args.weights, skip_prefixes=()) if args.weights != "none" else None
    run = runs.RunDir(__file__, "inspect_resnet", args)      # after the weights loaded: no folder for a bad file
    state = model.state_dict()
    rows = [[name, "x".join(map(str, t.shape)) or "scalar", t.numel(), str(t.dtype).replace("torch.", "")]
            for name, t in state.items()]
    stats.write_table(["tensor", "shape", "entries", "dtype"], rows, run / "state_dict",
                      caption=f"ResNet-18 state_dict: {len(state)} tensors (parameters and BatchNorm buffers)")
    per_stage = {stage: sum(p.numel() for n, p in model.named_parameters() if n.split(".")[0] == stage)
                 for stage in STAGES}
    total = count_parameters(model)
    old_head = tuple(model.fc.weight.shape)
    model.fc = torch.nn.Linear(model.fc.in_features, args.num_classes)     # the new head
    with torch.no_grad():
        out_shape = tuple(model.eval()(torch.zeros(2, 3, args.size, args.size)).shape)
    if out_shape != (2, args.num_classes):
        raise AssertionError(f"new head gives {out_shape}")
    freeze_backbone(model)
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    for stage, n in per_stage.items():
        print(f"{stage:7s} {n:>10,d} parameters")
    print(f"total   {total:>10,d} parameters in {len(state)} state_dict tensors")
    print(f"head {old_head} -> {tuple(model.fc.weight.shape)}; output for 2 images of {args.size}px: {out_shape}")
    print(f"frozen backbone: trainable = {trainable} ({count_parameters(model, trainable_only=True):,} parameters)")
    return run.summary(weights=args.weights, loaded=loaded, parameters_per_stage=per_stage, total_parameters=total,
                       state_dict_tensors=len(state), old_head_shape=list(old_head),
                       new_head_shape=list(model.fc.weight.shape), output_shape=list(out_shape),
                       trainable_when_frozen=trainable,
                       trainable_parameters_when_frozen=count_parameters(model, trainable_only=True))


if __name__ == "__main__":
    cli.run(main)
