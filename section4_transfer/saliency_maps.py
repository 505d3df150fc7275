"""Which pixels drive a CIFAR-10 CNN's prediction? Vanilla gradient saliency and SmoothGrad.

For a trained small CNN (a checkpoint from mlp_vs_cnn.py), the saliency of an image is the
largest absolute gradient of the class score over the colour channels at each pixel. SmoothGrad
(Smilkov et al. 2017) averages that map over --samples copies of the image with Gaussian noise
(std --noise of the pixel range), which removes much of the speckle. Correct predictions use the
true class, mistakes the predicted one. Outputs in section4_transfer/runs/saliency/.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from shared_utils.pytorch.models import SmallCNN
from shared_utils.pytorch import device as devices
from shared_utils import cli, data, plots, runs
from shared_utils.errors import UserError
from shared_utils.pytorch.checkpoint import load_torch

DEFAULT_CKPT = Path(__file__).resolve().parent / "runs" / "mlp_vs_cnn" / "CNN" / "seed_0" / "best.pt"
MAKE_ONE = "python section4_transfer/mlp_vs_cnn.py"


def gradient_saliency(model, x: torch.Tensor, classes: torch.Tensor) -> torch.Tensor:
    """max over channels of |d score_class / d x|: (N, C, H, W) -> (N, H, W)."""
    x = x.clone().requires_grad_(True)
    scores = model(x).gather(1, classes[:, None]).sum()
    (grad,) = torch.autograd.grad(scores, x)
    return grad.abs().amax(dim=1)


def smoothgrad(model, x, classes, *, samples: int, noise: float, generator: torch.Generator) -> torch.Tensor:
    """Mean of gradient_saliency over noisy copies; noise std in normalised-input units."""
    total = torch.zeros(x.shape[0], x.shape[2], x.shape[3])
    for _ in range(samples):
        noisy = x + torch.randn(x.shape, generator=generator) * noise
        total += gradient_saliency(model, noisy, classes)
    return total / samples


def main(argv=None):
    p = cli.parser(__doc__, trains=False)
    p.add_argument("--ckpt", type=Path, default=DEFAULT_CKPT, help="best.pt of the CNN from mlp_vs_cnn.py")
    p.add_argument("--count", type=cli.positive_int, default=5, help="correct and wrong examples each")
    p.add_argument("--samples", type=cli.positive_int, default=25, help="SmoothGrad noisy samples")
    p.add_argument("--noise", type=cli.positive_float, default=0.15, help="SmoothGrad noise, share of pixel range")
    args = cli.parse(p, argv)
    devices.resolve(args.device)   # an absent accelerator is refused; saliency itself runs on the CPU
    if not args.ckpt.is_file():
        raise UserError(f"no checkpoint at {args.ckpt}; make one with `{MAKE_ONE}` or pass --ckpt PATH")
    model = SmallCNN()
    state = load_torch(args.ckpt)
    try:
        if not isinstance(state, dict) or not isinstance(state.get("model"), dict):
            raise TypeError("no 'model' state dict inside")
        model.load_state_dict(state["model"])
    except (KeyError, RuntimeError, TypeError, ValueError) as exc:
        raise UserError(f"{args.ckpt} is not a small-CNN checkpoint ({type(exc).__name__}); "
                        f"make one with `{MAKE_ONE}`") from None
    model.eval()
    ds = data.cifar10(args.data_dir, limit=100, quiet=args.quiet)
    x = torch.from_numpy(ds.normalize(ds.test.x[:1000]))
    y = torch.from_numpy(ds.test.y[:1000])
    with torch.no_grad():
        pred = model(x).argmax(1)
    correct = torch.nonzero(pred == y).flatten()[:args.count]
    wrong = torch.nonzero(pred != y).flatten()[:args.count]
    chosen = torch.cat([correct, wrong])
    target = torch.where(pred[chosen] == y[chosen], y[chosen], pred[chosen])
    vanilla = gradient_saliency(model, x[chosen], target)
    # noise std is given on the [0, 1] pixel scale; convert to normalised units (mean std over channels)
    noise = args.noise / float(np.mean(ds.std))
    smooth = smoothgrad(model, x[chosen], target, samples=args.samples, noise=noise,
                        generator=torch.Generator().manual_seed(args.seed))
    run = runs.RunDir(__file__, "saliency", args, checkpoint=str(args.ckpt))
    images = ds.test.x[chosen.numpy()]
    titles = [f"{'ok' if pred[i] == y[i] else 'WRONG'}: {ds.classes[y[i]]} -> {ds.classes[pred[i]]}"
              for i in chosen.tolist()]
    for name, heat in (("vanilla", vanilla), ("smoothgrad", smooth)):
        plots.heatmap_overlay(images, heat.numpy(), run / f"{name}.png", titles=titles, ncols=args.count,
                              title=f"{'Vanilla gradient' if name == 'vanilla' else 'SmoothGrad'} saliency: "
                                    "correct (first row) and wrong predictions",
                              heat_label="saliency (normalised per image)")

    def speckle(h):  # mean absolute difference between neighbouring pixels, relative to the mean
        h = h / h.flatten(1).max(1).values[:, None, None]
        return float(((h[:, 1:] - h[:, :-1]).abs().mean() / h.mean()).item())

    summary = run.summary(accuracy_first_1000=float((pred == y).float().mean()), shown=len(chosen),
                          speckle_vanilla=speckle(vanilla), speckle_smoothgrad=speckle(smooth))
    print(f"accuracy on the first 1000 test images {summary['accuracy_first_1000']:.3f}; neighbour-to-neighbour "
          f"variation {summary['speckle_vanilla']:.2f} (vanilla) vs {summary['speckle_smoothgrad']:.2f} (SmoothGrad)")
    return summary


if __name__ == "__main__":
    cli.run(main)
