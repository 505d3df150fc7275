"""The self-assessment quiz (docs/quiz.md), with an answer key computed by the repository's own code.

Every question names the script it is about; its answer is the return value of a function below that
calls that script's functions (or the shared engine and models), never a typed-in number. The script
renders the whole quiz, questions and key, into <out>/quiz/quiz.md; docs/quiz.md is that file, and
tests/projects/test_pytorch_mechanics.py fails when the two differ, so a change in the code that moves an
answer also moves the key. To refresh it:

    python docs/quiz.py --out /tmp/quiz && cp /tmp/quiz/quiz/quiz.md docs/quiz.md

It lives beside the page it writes (docs/), not in a project: it reads every part of the repository.
"""
from __future__ import annotations

import math
import tempfile
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch  # noqa: F401  (most answers run torch; --device is then checked against it, not as NumPy-only)

from shared_utils import cli, runs
from shared_utils.atomic import atomic_write_text


@dataclass(frozen=True)
class Question:
    title: str
    text: str
    where: str          # the script (repo-relative path) the question is about
    answer: Callable[[], str]


# ------------------------------------------------------------------ the answers, computed
def a_transpose_strides() -> str:
    from projects.pytorch_mechanics import tensors

    row = next(r for r in tensors.layouts() if r["tensor"] == "base.transpose(0, 1)")
    return (f"shape {row['shape']}, stride {row['stride']}, storage offset {row['offset']}; "
            f"contiguous: {row['contiguous']}; shares the base's storage: {row['shares_storage']}")


def a_which_copies() -> str:
    from projects.pytorch_mechanics import tensors

    f = tensors.contiguity()
    return (f"t.view(12) raises RuntimeError ('{tensors.CONTIGUITY_ERROR}'); t.contiguous().view(12) copies: "
            f"{f['contiguous_view_copies']}; t.reshape(12) copies: {f['reshape_of_transpose_copies']}; "
            f"base.reshape(12) copies: {f['reshape_of_contiguous_copies']}")


def a_broadcasting() -> str:
    from projects.pytorch_mechanics import tensors

    try:
        tensors.broadcast_shape((3, 4), (3,))
        second = "works"
    except ValueError as exc:
        second = f"fails: {exc}"
    return f"(5, 1, 4) with (3, 1): {tensors.broadcast_shape((5, 1, 4), (3, 1))}; (3, 4) with (3,): {second}"


def a_receptive_field() -> str:
    from section3_cnn import receptive_field as rf

    ours, vgg = rf.receptive_fields(rf.OUR_CNN)[-1], rf.receptive_fields(rf.VGG16)[-1]
    return f"our CNN: {ours['receptive_field']} px (jump {ours['jump']}); VGG-16: {vgg['receptive_field']} px"


def a_conv_output() -> str:
    from section3_cnn.conv_mechanics import conv2d_loops

    out = conv2d_loops(np.zeros((1, 1, 28, 28)), np.zeros((1, 1, 5, 5)), np.zeros(1), stride=2, padding=1)
    return f"{out.shape[2]} x {out.shape[3]} (floor((28 + 2*1 - 5) / 2) + 1)"


def a_mlp_parameters() -> str:
    from shared_utils.pytorch.models import MLP, count_parameters

    return f"{count_parameters(MLP(hidden=(256, 128), in_features=784, classes=10)):,}"


def a_resnet_parameters() -> str:
    from shared_utils.pytorch.models import build_model, count_parameters

    res, plain = count_parameters(build_model("resnet", depth=20)), count_parameters(build_model("plain", depth=20))
    return f"ResNet-20 {res:,}, Plain-20 {plain:,}: the shortcuts add {res - plain:,} parameters"


def a_dead_loss() -> str:
    import torch

    from projects.pytorch_mechanics import dying_relu

    model = dying_relu.build("negative", seed=0)
    x, y = torch.rand(64, 1, 28, 28), torch.randint(0, 10, (64,))
    loss = torch.nn.functional.cross_entropy(model(x), y)
    loss.backward()
    zero = all(float(layer.weight.grad.abs().max()) == 0.0 for layer in dying_relu.linears(model))
    return f"loss {loss.item():.4f} (ln 10 = {math.log(10):.4f}); every weight gradient exactly 0.0: {zero}"


def a_batchnorm_one_image() -> str:
    import torch

    from projects.pytorch_mechanics import modern_mlp

    error = modern_mlp.train_mode_error(modern_mlp.build(True, seed=0), torch.rand(1, 1, 28, 28))
    return f"ValueError: {error}"


def a_label_smoothing() -> str:
    import torch

    logits = torch.zeros(1, 10, requires_grad=True)   # the uniform prediction, p = 0.1 each
    torch.nn.functional.cross_entropy(logits, torch.tensor([3]), label_smoothing=0.2).backward()
    target = 0.1 - logits.grad[0]                      # d(loss)/d(logits) = p - target
    return f"true class {target[3].item():.2f}, each other class {target[0].item():.2f}"


def _one_step(optimizer: str, weight_decay: float, lr: float) -> float:
    """A weight of 1.0 whose loss gradient is 0, after one step of the engine's optimizer."""
    import torch

    from shared_utils.pytorch.engine import TrainConfig, make_optimizer

    model = torch.nn.Linear(1, 1, bias=False)
    with torch.no_grad():
        model.weight.fill_(1.0)
    opt = make_optimizer(model, TrainConfig(optimizer=optimizer, lr=lr, momentum=0.0, weight_decay=weight_decay))
    model.weight.grad = torch.zeros_like(model.weight)
    opt.step()
    return float(model.weight.detach())


def a_sgd_weight_decay() -> str:
    return f"{_one_step('sgd', 5e-4, 0.1):.6f} (= 1 - 0.1 x 5e-4)"


def a_adam_vs_adamw() -> str:
    return (f"Adam with weight_decay (L2 in the gradient): {_one_step('adam', 0.01, 1e-3):.6f}; "
            f"AdamW (decoupled): {_one_step('adamw', 0.01, 1e-3):.6f}")


def _halving_trial(config: dict) -> dict:
    """A stand-in trial for the halving question: its score is its condition's number plus its budget."""
    return {"score": float(config["quality"]) + config["epochs"]}


def a_successive_halving() -> str:
    from shared_utils.study import Study

    with tempfile.TemporaryDirectory() as out:
        conditions = {f"c{i}": {"quality": i} for i in range(8)}
        study = Study("halving", _halving_trial, conditions, [0], out, base={"quality": 0, "epochs": 1},
                      budget_key="epochs")
        result = study.halving([1, 2, 4], metric="score", eta=2, quiet=True)
        per_round = [len(r["scores"]) for r in result.rounds]
    return f"trials per round {per_round}, {sum(per_round)} in all; winner {result.winner}"


def a_cusum() -> str:
    from projects.sequence_models import detectors

    s = detectors.cusum(np.array([[-1.0, 2.0, -3.0, 1.0, 1.0, 1.0]]))
    alarm = int(detectors.first_alarm(s, 2.5)[0])
    return f"S = {[round(float(v), 1) for v in s[0]]}; first step with S > 2.5: t = {alarm}"


def a_attention_identical_keys() -> str:
    import torch

    from projects.attention_transformers.attention import scaled_dot_product_attention

    q, k = torch.randn(1, 2, 8, generator=torch.Generator().manual_seed(0)), torch.ones(1, 4, 8)
    v = torch.arange(4.0).view(1, 4, 1)
    out, weights = scaled_dot_product_attention(q, k, v)
    return (f"weights {[round(float(w), 2) for w in weights[0, 0]]} for every query; output "
            f"{float(out[0, 0, 0]):.2f}, the mean of the values")


QUESTIONS = [
    Question("Strides of a transpose",
             "`base = torch.arange(12.).reshape(3, 4)` has stride (4, 1). What are the shape, stride and storage "
             "offset of `base.transpose(0, 1)`, is it contiguous, and does it copy the data?",
             "projects/pytorch_mechanics/tensors.py", a_transpose_strides),
    Question("Which fix copies",
             "With `t = base.transpose(0, 1)`, what does `t.view(12)` do, and which of `t.contiguous().view(12)`, "
             "`t.reshape(12)` and `base.reshape(12)` copy the 12 numbers?",
             "projects/pytorch_mechanics/tensors.py", a_which_copies),
    Question("Broadcasting",
             "What shape does a (5, 1, 4) tensor plus a (3, 1) tensor give, and what happens with (3, 4) plus (3,)?",
             "projects/pytorch_mechanics/tensors.py", a_broadcasting),
    Question("Receptive field",
             "How many input pixels wide is the receptive field of one unit after our MNIST CNN's last pooling "
             "layer (3x3 conv, 2x2 pool, 3x3 conv, 2x2 pool), and after VGG-16's last pooling layer?",
             "section3_cnn/receptive_field.py", a_receptive_field),
    Question("Convolution output size",
             "A 28x28 image through a 5x5 convolution with stride 2 and padding 1: what size is the output?",
             "section3_cnn/conv_mechanics.py", a_conv_output),
    Question("Parameters of an MLP",
             "How many parameters (weights and biases) does the 784-256-128-10 MLP have?",
             "projects/pytorch_mechanics/manual_loop.py", a_mlp_parameters),
    Question("What a shortcut costs",
             "How many parameters do ResNet-20 and its plain twin (the same layers without shortcuts) have?",
             "section4_transfer/resnet_vs_plain.py", a_resnet_parameters),
    Question("The dead network's loss",
             "Every weight of a 784-128-64-10 ReLU MLP is negative, every bias zero, and the inputs are pixels in "
             "[0, 1]. What is the cross-entropy on a batch, and what are the weight gradients?",
             "projects/pytorch_mechanics/dying_relu.py", a_dead_loss),
    Question("One image in train mode",
             "What happens when a single image (batch size 1) goes through an MLP with BatchNorm1d in train mode?",
             "projects/pytorch_mechanics/modern_mlp.py", a_batchnorm_one_image),
    Question("Label smoothing",
             "With label smoothing 0.2 over 10 classes, what target probability does cross-entropy give the true "
             "class and each other class?",
             "projects/cifar_best/recipe.py", a_label_smoothing),
    Question("Weight decay in SGD",
             "SGD with learning rate 0.1 and weight decay 5e-4 (no momentum): a weight of 1.0 has a loss gradient "
             "of 0. What is it after one step?",
             "shared_utils/pytorch/engine.py", a_sgd_weight_decay),
    Question("Weight decay vs L2 in Adam",
             "The same weight (1.0, loss gradient 0) after one step of Adam with `weight_decay=0.01` and of AdamW "
             "with `weight_decay=0.01`, both at learning rate 1e-3?",
             "shared_utils/pytorch/engine.py", a_adam_vs_adamw),
    Question("Successive halving",
             "Eight conditions, eta = 2, budgets of 1, 2 and 4 epochs: how many trials run in each round and in "
             "all?", "projects/cifar_best/screen.py", a_successive_halving),
    Question("CUSUM",
             "Page's CUSUM, S_t = max(0, S_(t-1) + l_t), on the log-likelihood ratios l = (-1, 2, -3, 1, 1, 1): "
             "what is S after each step, and at which step (counting from 0) does it first exceed h = 2.5?",
             "projects/sequence_models/detectors.py", a_cusum),
    Question("Attention with identical keys",
             "Scaled dot-product attention over 4 keys that are all the same vector, with values 0, 1, 2, 3: what "
             "are the attention weights and the output, whatever the query?",
             "projects/attention_transformers/attention.py", a_attention_identical_keys),
]


def render() -> str:
    """docs/quiz.md: the questions (each linked to its script), then the key computed now."""
    lines = ["# Self-assessment quiz", "",
             "Fifteen questions on the studies in this repository. Every answer in the key below is computed by",
             "a function in [docs/quiz.py](quiz.py) that runs",
             "the repository's own code; a test re-computes the key and fails if this page disagrees with it.",
             "Try each question before reading its answer; the linked script shows the mechanism.", "",
             "## Questions", ""]
    for i, q in enumerate(QUESTIONS, 1):
        lines += [f"{i}. **{q.title}.** {q.text} ([{q.where.split('/')[-1]}](../{q.where}))", ""]
    lines += ["## Answer key", "",
              "<!-- generated by: python docs/quiz.py; do not edit by hand -->", ""]
    for i, q in enumerate(QUESTIONS, 1):
        lines.append(f"{i}. {q.answer()}")
    return "\n".join(lines) + "\n"


def answer_key(text: str) -> list[str]:
    """The numbered answers of a rendered quiz (the lines after '## Answer key')."""
    key = text.split("## Answer key", 1)[1]
    return [line.split(". ", 1)[1] for line in key.splitlines() if line[:1].isdigit()]


def main(argv=None):
    p = cli.parser(__doc__, trains=False)
    args = cli.parse(p, argv)
    text = render()
    path = atomic_write_text(runs.root(__file__, "quiz", out=args.out) / "quiz.md", text)
    if not args.quiet:
        print(text.split("## Answer key", 1)[1].strip())
    print(f"quiz written to {path}")
    return text


if __name__ == "__main__":
    cli.run(main)
