"""When do attention and position matter? Reverse a sequence with a transformer, an LSTM and a bag of embeddings.

Part B of projects/attention_transformers (the README there has the findings). Each example is L tokens drawn
uniformly from --vocab (default 16), a separator and L blanks; at the blanks the model writes the tokens
backwards (shared_utils/data/sequences.reversal_task). The answer at blank j sits at input position L - 1 - j:
a transformer can fetch it with one attention head if it knows positions; a left-to-right LSTM has read
every token before it answers, so it lacks only memory (L log2(V) bits to hold); a bag of embeddings and a
transformer without positional encoding cannot tell the blanks apart and so must give every blank the same
answer.

Models (projects/attention_transformers/attention.py), each with --budget weights (+-5%): the pre-LN
transformer (2 layers, 4 heads, FFN width 2 dim) with sinusoidal, learned or no positions; a one-layer LSTM; a
bag of embeddings (a per-token MLP, averaged). Every model trains on --train-size new examples per epoch
(never one seen twice), Adam with a cosine schedule and gradient clipping, for --epochs; the checkpoint with
the best validation token accuracy is scored on 10,000 held-out examples: token accuracy, whole-sequence
accuracy and accuracy by output position. Conditions: every model at every --lengths, --seeds per condition.
Figures: validation curves, accuracy by position, and the trained transformers' attention maps on a
held-out example. Outputs in projects/attention_transformers/runs/reversal/.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn

from projects.attention_transformers import attention as att
from projects.attention_transformers import figures
from shared_utils import cli, plots, runs, stats
from shared_utils.atomic import atomic_write_json
from shared_utils.data import sequences as seq
from shared_utils.errors import UserError
from shared_utils.pytorch.engine import TrainConfig, fit, load_best
from shared_utils.pytorch.models import count_parameters, width_for_budget
from shared_utils.pytorch.pipeline import FreshLoader, TensorLoader
from shared_utils.study import Grid, Study, StudyResult, grid, start

HP = {"epochs": 8, "batch_size": 64, "lr": 1e-3, "optimizer": "adam", "weight_decay": 0.0, "schedule": "cosine",
      "grad_clip": 1.0, "best_metric": "val_acc", "model": "transformer", "length": 16, "vocab": 16,
      "budget": 70_000, "train_size": 20_000, "val_size": 2000, "test_size": 10_000}
MODELS = ("transformer", "transformer, learned positions", "transformer, no positions", "LSTM", "bag of embeddings")
POSITIONS = {"transformer": "sinusoidal", "transformer, learned positions": "learned",
             "transformer, no positions": "none"}
# the recurrent and bag models train at 3x the transformer's learning rate (the pilot's better setting for each)
LR_SCALE = {"LSTM": 3.0, "bag of embeddings": 3.0}
HEADS, LAYERS = 4, 2
TEST_SEED_OFFSET = 3_000_017


class Tagger(nn.Module):
    """An encoder (N, T) -> (N, T, dim) read at the last ``answers`` positions by one linear layer:
    logits (N, vocab, answers), the layout F.cross_entropy takes for one class per position."""

    def __init__(self, encoder: nn.Module, dim: int, vocab: int, answers: int):
        super().__init__()
        self.encoder, self.answers = encoder, answers
        self.head = nn.Linear(dim, vocab)

    def forward(self, tokens):
        return self.head(self.encoder(tokens)[:, -self.answers:]).transpose(1, 2)


def build(model: str, vocab: int, length: int, width: int) -> Tagger:
    tokens, span = vocab + 2, 2 * length + 1          # + separator and blank
    if model in POSITIONS:
        dim = HEADS * width                           # the width is per head, so every dim splits into heads
        encoder = att.TransformerEncoder(tokens, dim, HEADS, 2 * dim, LAYERS, max_len=span,
                                         positions=POSITIONS[model])
    elif model == "LSTM":
        dim, encoder = width, att.LSTMEncoder(tokens, width)
    elif model == "bag of embeddings":
        dim, encoder = width, att.BagEncoder(tokens, width, 2 * width)
    else:
        raise ValueError(f"unknown model {model!r}; choose from {MODELS}")
    return Tagger(encoder, dim, vocab, length)


def sized(model: str, vocab: int, length: int, budget: int) -> Tagger:
    """The model whose width puts its parameter count closest to ``budget``."""
    width = width_for_budget(lambda w: build(model, vocab, length, w), budget, low=1, high=2048)
    return build(model, vocab, length, width)


def trial(config: dict) -> dict:
    t = start(config)
    device, run = t.device, t.run
    vocab, length = config["vocab"], config["length"]
    model = sized(config["model"], vocab, length, config["budget"])
    loader = FreshLoader(lambda n, s: seq.reversal_task(n, vocab=vocab, length=length, seed=s), config["train_size"],
                         batch_size=config["batch_size"], seed=config["seed"], device=device)
    vx, vy = seq.reversal_task(config["val_size"], vocab=vocab, length=length, seed=[config["seed"], 10**6])
    fit(model, loader, TensorLoader(vx, vy, batch_size=1000, shuffle=False, device=device),
        TrainConfig.from_config(config), device=device, run=run, quiet=config["quiet"], desc=config["condition"])
    load_best(model, run, device)
    tx, ty = seq.reversal_task(config["test_size"], vocab=vocab, length=length,
                               seed=config["data_seed"] + TEST_SEED_OFFSET)
    predicted = predict(model, tx, device)
    right = predicted == ty
    arrays = {"position_acc": right.mean(0)}
    if config["model"] in POSITIONS:     # the attention of every layer and head on the first held-out example
        model.eval()
        with torch.no_grad():
            model(torch.from_numpy(tx[:1]).to(device))
        arrays["attention"] = np.stack([w[0].cpu().numpy() for w in model.encoder.attention_maps()])
        arrays["example"] = tx[0]
        arrays["example_predicted"] = predicted[0]
    runs.save_npz(run / "evidence.npz", arrays)
    return run.summary(parameters=count_parameters(model), test_token_acc=float(right.mean()),
                       test_sequence_acc=float(right.all(1).mean()))


@torch.no_grad()
def predict(model: nn.Module, tokens: np.ndarray, device, batch: int = 1000) -> np.ndarray:
    model.eval()
    return np.concatenate([model(torch.from_numpy(tokens[i:i + batch]).to(device)).argmax(1).cpu().numpy()
                           for i in range(0, len(tokens), batch)])


# --------------------------------------------------------------------------- the report
def conditions(args) -> Grid:
    """Every model at every length, each model at its own learning rate: "transformer, L=16"."""
    models = {m: {"model": m, "lr": args.lr * LR_SCALE.get(m, 1.0)} for m in args.models}
    return grid(length=args.lengths, model=models).named("{model}, L={length}")


def token_label(t: int, vocab: int) -> str:
    return "|" if t == vocab else ("_" if t == vocab + 1 else str(t))


def report(root: Path, grid: Grid | None = None) -> dict:
    """findings.json and the figures, written beside the study's table in <out>/reversal/, from its folder alone."""
    r = StudyResult.load(root / "reversal", grid)
    study_root, lengths, seeds, vocab = r.path, r.levels("length"), r.seeds, r.base["vocab"]
    findings: dict = {"accuracy": {}, "transformer_minus": {}}
    acc: dict[str, dict[str, list[float]]] = {}
    for L in lengths:
        for c in r.select(length=L):
            acc[c.name] = {k: r.at(k, 100, c) for k in ("test_token_acc", "test_sequence_acc")}
            findings["accuracy"][c.name] = {k: stats.ci_cell(v, len(seeds), 2) for k, v in acc[c.name].items()}
        for c in r.select(length=L):
            a, b = next((acc[x.name]["test_token_acc"] for x in r.select(length=L, model="transformer")), None), \
                acc[c.name]["test_token_acc"]
            if c["model"] != "transformer" and a is not None and len(a) == len(b) and len(a) > 1:   # paired by seed
                findings["transformer_minus"][c.name] = stats.ci_cell(np.subtract(a, b), len(seeds), 2)
    # accuracy by output position, one panel per length
    panels = []
    for L in lengths:
        series, bands = {}, {}
        for c in r.select(length=L):
            curves = [runs.load_npz(p / "evidence.npz")["position_acc"] * 100 for p in r.run_paths().get(c.name, [])
                      if (p / "evidence.npz").exists()]
            if curves:
                mean, half = stats.mean_ci(np.stack(curves))
                series[c["model"]], bands[c["model"]] = (list(range(1, L + 1)), list(mean)), list(half)
        panels.append({"series": series, "bands": bands, "title": f"L = {L} tokens (V = {vocab})",
                       "xlabel": "output position j (answer = input token L + 1 - j; j = L is the first read)",
                       "ylabel": "held-out token accuracy (%)"})
    plots.line_panels(panels, study_root / "accuracy_by_position.png", ncols=2,
                      title=f"Reversal: accuracy at each output position (10,000 held-out sequences; "
                            f"band: 95% CI over seeds {seeds})")
    # attention maps of the first seed's transformers at the longest length
    L = max(lengths)
    maps = []
    for c in r.select(length=L):
        if c["model"] not in POSITIONS or not (r.trial_path(c, seeds[0]) / "evidence.npz").exists():
            continue
        ev = runs.load_npz(r.artifact(c, seeds[0], "evidence.npz"))
        labels = [token_label(int(t), vocab) for t in ev["example"]]
        for layer, w in enumerate(ev["attention"], 1):
            maps.append({"weights": w.mean(0), "queries": labels, "keys": labels,
                         "title": f"{c['model']}: layer {layer} (mean of {len(w)} heads)"})
    if maps:
        figures.attention_maps(maps, study_root / "attention_maps.png", ncols=2,
                             title=f"Attention on one held-out sequence (L={L}, seed {seeds[0]}; "
                                   f"'|' separator, '_' blank: rows L+2.. are the answers)")
    atomic_write_json(study_root / "findings.json", findings)
    return findings


def main(argv=None):
    p = cli.parser(__doc__, epochs=HP["epochs"], batch_size=HP["batch_size"], lr=HP["lr"], seeds=True,
                   quick={"epochs": 1, "train_size": 512, "val_size": 100, "test_size": 200, "lengths": [6],
                          "budget": 6000})
    p.add_argument("--vocab", type=cli.bounded_int(2, 100_000, " tokens"), default=HP["vocab"],
                   help="tokens in the vocabulary (V)")
    p.add_argument("--lengths", type=cli.bounded_int(2, 512, " tokens"), nargs="+", default=[16, 32],
                   help="sequence lengths L (each a condition)")
    p.add_argument("--models", nargs="+", choices=MODELS, default=list(MODELS))
    p.add_argument("--budget", type=cli.bounded_int(500, 100_000_000, " weights"), default=HP["budget"],
                   help="parameters per model (each model's width is set to come closest)")
    p.add_argument("--train-size", type=cli.bounded_int(64, 10_000_000, " sequences"), default=HP["train_size"],
                   help="new training sequences per epoch")
    p.add_argument("--val-size", type=cli.bounded_int(10, 1_000_000, " sequences"), default=HP["val_size"])
    p.add_argument("--test-size", type=cli.bounded_int(10, 1_000_000, " sequences"), default=HP["test_size"])
    cli.add_study_flags(p)
    args = cli.parse(p, argv)
    if args.batch_size > args.train_size:
        raise UserError(f"--batch-size {args.batch_size} is larger than --train-size {args.train_size}")
    root = runs.root(__file__, out=args.out)
    base = {**cli.hyperparameters(HP, args), **cli.data_settings(args)}
    if args.report_only and not (root / "reversal").is_dir():
        raise UserError(f"no runs in {root / 'reversal'}; run the study first (without --report-only)")
    if not args.report_only:
        cost = {"LSTM": 1.0, "bag of embeddings": 0.2}
        study = Study("reversal", trial, conditions(args), args.seeds, root, base=base, resume=args.resume,
                      cost=lambda c: cost.get(c["model"], 2.5) * c["length"])
        result = study.run(**cli.study_backend(args))
        result.report({"test_token_acc": "token accuracy (%)", "test_sequence_acc": "sequence accuracy (%)",
                       "parameters": "parameters"}, scale={"test_token_acc": 100, "test_sequence_acc": 100},
                      bars=("token accuracy (%)",), curves=("train_loss", "val_acc"),
                      caption=f"Reversal, V={args.vocab}: 10,000 held-out sequences; seeds {args.seeds}; "
                              f"mean ± std [95% CI]")
        result.raise_for_failures()
    findings = report(root, conditions(args))
    print(json.dumps(findings, indent=1))
    print(f"tables and figures in {root / 'reversal'}")
    return findings


if __name__ == "__main__":
    cli.run(main)
