"""Can a learned fixed-size vector act as a memory of a sequence, and is it a better one than a Bloom filter?

Part B of projects/sequence_models (the README there has the findings). Sequences of L tokens drawn uniformly
from a vocabulary of --vocab (default 128) are summarised by an encoder (RNN, CNN or attention pooling,
projects/sequence_models/memory.py) into d numbers. A query head that sees only those d numbers, a token X
and the question answers "did X appear?" or "did X and X+1 appear consecutively?" (8 questions per sequence,
half of each kind answered yes; half the "no" bigram answers have X and X+1 both present but apart).
Encoder and head train jointly on --train-size new sequences every epoch (never one seen twice) and are
scored on 10,000 held-out sequences, first with the summary as floats and then rounded to 8 bits per number,
so it costs 8 d bits.

For each (encoder, d, L) of the grid (--dims x --lengths, --seeds per cell) the study records the held-out
accuracy by query type; linear probes then read from the summaries the count of each of the tokens 0-31 and,
where it occurs once, its position (against the same probes on the untrained encoder). Baselines with the
same 8 d bits: a Bloom filter holding every token and every adjacent pair of the sequence, and one holding
the tokens and only the (X, X+1) pairs the questions can ask about; a bitmap of the tokens and of
the (X, X+1) pairs (2V - 1 bits) answers every query exactly.
Outputs in projects/sequence_models/runs/summaries/.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from projects.sequence_models import memory
from shared_utils import cli, plots, runs, stats
from shared_utils.atomic import atomic_write_json
from shared_utils.data import sequences as seq
from shared_utils.errors import UserError
from shared_utils.pytorch.engine import TrainConfig, binary, fit, load_best
from shared_utils.pytorch.models import count_parameters
from shared_utils.pytorch.pipeline import FreshLoader, TensorLoader
from shared_utils.study import Grid, Study, StudyResult, grid, slug, start

HP = {"epochs": 6, "batch_size": 256, "lr": 2e-3, "optimizer": "adam", "weight_decay": 0.0, "schedule": "cosine",
      "grad_clip": 1.0, "best_metric": "val_loss", "best_mode": "min", "encoder": "CNN", "d": 32, "length": 32,
      "vocab": 128, "queries": 8, "train_size": 32_000, "val_size": 2000, "test_size": 10_000}
DIMS = (4, 8, 16, 32, 64)
LENGTHS = (8, 16, 32, 64)
PROBE_TOKENS = 32                  # tokens whose count and position the probes read (0..31)
TEST_SEED_OFFSET = 2_000_003
BLOOM_HASH_SEEDS = 5               # hash functions per Bloom filter: its accuracy is their mean, with a 95% CI


def datasets(config: dict):
    """A sample of training sequences (for the quantiser's range, the Bloom filter's k), validation and the
    held-out test sequences (the same for every trial of a study)."""
    kw = dict(vocab=config["vocab"], length=config["length"], queries=config["queries"])
    train = seq.token_queries(5000, seed=config["seed"], **kw)
    val = seq.token_queries(config["val_size"], seed=config["seed"] + 500_000, **kw)
    test = seq.token_queries(config["test_size"], seed=config["data_seed"] + TEST_SEED_OFFSET, **kw)
    return train, val, test


def trial(config: dict) -> dict:
    t = start(config)
    device, run = t.device, t.run
    train, val, test = datasets(config)
    model = memory.SummaryQA(config["encoder"], config["vocab"], config["d"], config["length"], config["queries"])
    untrained = memory.SummaryQA(config["encoder"], config["vocab"], config["d"], config["length"], config["queries"])
    untrained.load_state_dict(model.state_dict())         # the probes' control: these weights before training
    def draw(n, seed):
        q = seq.token_queries(n, vocab=config["vocab"], length=config["length"], queries=config["queries"], seed=seed)
        return q.packed(), q.answer.astype(np.float32)

    # new sequences every epoch: nothing to memorise, the summary has to be learned
    loader = FreshLoader(draw, config["train_size"], batch_size=config["batch_size"], seed=config["seed"],
                         device=device)
    val_loader = TensorLoader(val.packed(), val.answer.astype(np.float32), batch_size=1000, shuffle=False,
                              device=device)
    fit(model, loader, val_loader, TrainConfig.from_config(config), device=device, run=run, quiet=config["quiet"],
        desc=config["condition"], loss_fn=binary())
    load_best(model, run, device)
    out = {"parameters": count_parameters(model)}
    out.update(score(model, test, device, "float"))
    z_train = summaries_of(model, train.tokens, device)
    model.quantizer = memory.Quantizer(torch.from_numpy(z_train.min(0)), torch.from_numpy(z_train.max(0))).to(device)
    out.update(score(model, test, device, "8bit"))
    model.quantizer = None
    probed = np.arange(min(PROBE_TOKENS, config["vocab"]))
    for label, net in (("trained", model), ("untrained", untrained.to(device))):
        z = summaries_of(net, test.tokens, device)
        out.update({f"{label}_{k}": v for k, v in memory.probe(z, test.tokens, config["vocab"], probed).items()})
    return run.summary(**out)


@torch.no_grad()
def summaries_of(model: memory.SummaryQA, tokens: np.ndarray, device, batch: int = 2000) -> np.ndarray:
    model.eval()
    return np.concatenate([model.summarize(torch.from_numpy(tokens[i:i + batch]).to(device)).cpu().numpy()
                           for i in range(0, len(tokens), batch)]).astype(np.float32)


@torch.no_grad()
def score(model: memory.SummaryQA, test: seq.TokenQueries, device, tag: str) -> dict:
    model.eval()
    packed = torch.from_numpy(test.packed())
    logits = torch.cat([model(packed[i:i + 2000].to(device)).cpu() for i in range(0, len(packed), 2000)]).numpy()
    right = (logits > 0) == test.answer.astype(bool)
    return {f"acc_{tag}": float(right.mean()), f"acc_appear_{tag}": float(right[test.qtype == 0].mean()),
            f"acc_bigram_{tag}": float(right[test.qtype == 1].mean())}


# --------------------------------------------------------------------------- the report
def conditions(args) -> Grid:
    """Every encoder at every length and summary size: "CNN, d=16, L=32"."""
    return grid(encoder=args.encoders, length=args.lengths, d=args.dims).named("{encoder}, d={d}, L={length}")


def bloom_table(args, base: dict) -> dict:
    """Bloom filter accuracy at 8 d bits for every (d, L), on the same held-out queries as the learned ones: the
    mean over BLOOM_HASH_SEEDS hash functions ("acc") and its 95% CI half-width ("acc_ci")."""
    out = {}
    for L in args.lengths:
        cfg = {**base, "length": L, "seed": args.seeds[0]}
        train, _, test = datasets(cfg)
        for d in args.dims:
            for variant in ("all", "successor"):
                r = memory.bloom_accuracy(train.tokens, test.tokens, test.query, test.qtype, test.answer,
                                          args.vocab, 8 * d, bigrams=variant, hash_seeds=BLOOM_HASH_SEEDS)
                out[f"{variant}, d={d}, L={L}"] = {**r, "acc_ci": float(stats.mean_ci(r["acc_per_hash"])[1])}
    return out


def along_d(r: StudyResult, encoder: str, length: int, dims, key: str, scale: float = 1.0
            ) -> tuple[list[float], list[float]]:
    """A summary figure's seed mean and 95% CI half-width at each d (NaN where no seed finished)."""
    cells = [stats.mean_ci(r.at(key, scale, encoder=encoder, d=d, length=length)) for d in dims]
    return [float(m) for m, _ in cells], [float(h) for _, h in cells]


def report(root: Path, args, base: dict) -> dict:
    r = StudyResult.load(root / "grid", conditions(args))
    blooms = bloom_table(args, base)
    findings: dict = {"bloom": blooms, "learned_beats_bloom": {}}
    seeds = args.seeds
    colours = {enc: {"color": plots.PALETTE[i]} for i, enc in enumerate(memory.ENCODERS)}   # one per encoder
    # heat maps: accuracy (8-bit summary) against d and L, one per encoder
    for enc in args.encoders:
        grid = np.full((len(args.lengths), len(args.dims)), np.nan)
        notes = [["" for _ in args.dims] for _ in args.lengths]
        for i, L in enumerate(args.lengths):
            for j, d in enumerate(args.dims):
                v = r.at("acc_8bit", encoder=enc, d=d, length=L)
                if v:
                    grid[i, j] = 100 * np.mean(v)
                    notes[i][j] = stats.ci_cell([100 * x for x in v], len(seeds), digits=1)
        plots.annotated_heatmap(grid, [f"L={L}" for L in args.lengths], [f"d={d} ({8 * d} bits)" for d in args.dims],
                                root / f"heatmap_{slug(enc)}.png", xlabel="summary size d (8-bit numbers)",
                                ylabel="sequence length L", colorbar_label="held-out query accuracy (%)",
                                title=f"{enc} summary: accuracy on both queries by size and length "
                                      f"(V={args.vocab}; mean ± 95% CI over seeds {seeds})", annotations=notes)
    # accuracy vs bits, one panel per length, learned encoders against the Bloom filters
    panels = []
    for L in args.lengths:
        series, bands = {}, {}
        bits = [8 * d for d in args.dims]
        for enc in args.encoders:
            means, halves = along_d(r, enc, L, args.dims, "acc_8bit", 100)
            series[enc], bands[enc] = (bits, means), halves
        for variant, label in (("all", "Bloom (tokens + all pairs)"), ("successor", "Bloom (tokens + X,X+1 pairs)")):
            cells = [blooms[f"{variant}, d={d}, L={L}"] for d in args.dims]
            series[label], bands[label] = (bits, [100 * c["acc"] for c in cells]), [100 * c["acc_ci"] for c in cells]
        exact = 2 * args.vocab - 1     # a bit per token and a bit per (X, X+1) pair answers every query
        series[f"exact bitmaps ({exact} bits)"] = ([exact], [100.0])
        panels.append({"series": series, "bands": bands, "logx": True, "xticks": bits, "title": f"L = {L} tokens",
                       "xlabel": "memory (bits: 8 x d for a learned summary)", "ylabel": "held-out query accuracy (%)",
                       "styles": {**colours, "Bloom (tokens + all pairs)": {"linestyle": "--", "color": plots.PALETTE[3]},
                                  "Bloom (tokens + X,X+1 pairs)": {"linestyle": "--", "color": plots.PALETTE[4]},
                                  f"exact bitmaps ({exact} bits)": {"marker": "*", "markersize": 12,
                                                                    "color": "black", "linestyle": "none"}}})
        # the budgets at which the best learned encoder beats each Bloom filter (and by how much)
        for variant, label in (("all", "all pairs"), ("successor", "X,X+1 pairs")):
            wins = {}
            for j, d in enumerate(args.dims):
                best = max((series[e][1][j] for e in args.encoders if np.isfinite(series[e][1][j])), default=np.nan)
                bloom = 100 * blooms[f"{variant}, d={d}, L={L}"]["acc"]
                if np.isfinite(best) and best > bloom:
                    wins[8 * d] = round(best - bloom, 2)
            findings["learned_beats_bloom"][f"L={L}, Bloom {label}"] = wins
    plots.line_panels(panels, root / "accuracy_vs_bits.png", ncols=2,
                      title=f"Learned 8-bit summaries against Bloom filters of the same size (V={args.vocab}; "
                            f"band: 95% CI over seeds {seeds}; Bloom: over {BLOOM_HASH_SEEDS} hash functions)")
    # per query type and the probes, at the focus length
    L = args.focus_length if args.focus_length in args.lengths else args.lengths[len(args.lengths) // 2]
    panels = []
    for key, title in (("acc_appear_8bit", "did X appear?"), ("acc_bigram_8bit", "did X, X+1 appear consecutively?")):
        series, bands = {}, {}
        for enc in args.encoders:
            ms, hs = along_d(r, enc, L, args.dims, key, 100)
            series[enc], bands[enc] = (args.dims, ms), hs
        panels.append({"series": series, "bands": bands, "logx": True, "xticks": list(args.dims), "styles": colours,
                       "title": f"{title} (L={L})", "xlabel": "summary size d", "ylabel": "held-out accuracy (%)"})
    for key, title in (("count_r2", "count of X"), ("position_r2", "position of X (when it occurs once)")):
        series, bands, styles = {}, {}, {}
        for enc in args.encoders:
            colour = plots.PALETTE[memory.ENCODERS.index(enc)]
            for label in ("trained", "untrained"):
                ms, hs = along_d(r, enc, L, args.dims, f"{label}_{key}")
                series[f"{enc}, {label}"], bands[f"{enc}, {label}"] = (args.dims, ms), hs
                styles[f"{enc}, {label}"] = {"color": colour, **({"linestyle": ":"} if label == "untrained" else {})}
        panels.append({"series": series, "bands": bands, "styles": styles, "logx": True, "xticks": list(args.dims),
                       "title": f"linear probe: {title} (L={L})", "xlabel": "summary size d",
                       "ylabel": "held-out R² of the probe"})
    plots.line_panels(panels, root / "queries_and_probes.png", ncols=2,
                      title=f"What the summary answers and what a linear probe reads from it (V={args.vocab}, "
                            f"L={L}; band: 95% CI over seeds {seeds}; dotted: the same encoder untrained)")
    # one table of every cell
    rows = []
    for enc in args.encoders:
        for Lc in args.lengths:
            for d in args.dims:
                level = dict(encoder=enc, d=d, length=Lc)
                cells = [stats.ci_cell(r.at(k, 100, **level), len(seeds), 1)
                         for k in ("acc_float", "acc_8bit", "acc_appear_8bit", "acc_bigram_8bit")]
                cells += [stats.ci_cell(r.at(k, **level), len(seeds), 2)
                          for k in ("trained_count_r2", "trained_position_r2", "untrained_count_r2",
                                    "untrained_position_r2")]
                rows.append([enc, Lc, d, 8 * d] + cells + [stats.ci_cell(
                    [100 * a for a in blooms[f"{variant}, d={d}, L={Lc}"]["acc_per_hash"]], digits=1)
                    for variant in ("all", "successor")])
    stats.write_table(["encoder", "L", "d", "bits", "acc float (%)", "acc 8-bit (%)", "appear (%)", "bigram (%)",
                       "count R²", "position R²", "count R² untrained", "position R² untrained", "Bloom all pairs (%)",
                       "Bloom X,X+1 pairs (%)"], rows, root / "summaries",
                      caption=f"Held-out accuracy (10,000 sequences) and probes, mean ± 95% CI over seeds {seeds}; "
                              f"V={args.vocab}; Bloom filters with 8 d bits on the same queries, mean ± 95% CI over "
                              f"{BLOOM_HASH_SEEDS} hash functions")
    atomic_write_json(root / "findings.json", findings)
    return findings


def main(argv=None):
    p = cli.parser(__doc__, epochs=HP["epochs"], batch_size=HP["batch_size"], lr=HP["lr"], seeds=True,
                   quick={"epochs": 1, "train_size": 1024, "val_size": 100, "test_size": 500, "dims": [4, 16],
                          "lengths": [8], "encoders": ["CNN", "attention"]})
    p.add_argument("--vocab", type=int, default=HP["vocab"], help="tokens in the vocabulary (V)")
    p.add_argument("--dims", type=cli.bounded_int(1, 4096, " numbers"), nargs="+", default=list(DIMS),
                   help="summary sizes d")
    p.add_argument("--lengths", type=cli.bounded_int(2, 100_000, " tokens"), nargs="+", default=list(LENGTHS),
                   help="sequence lengths L")
    p.add_argument("--focus-length", type=cli.bounded_int(2, 100_000, " tokens"), default=16,
                   help="the length whose runs the per-query and probe figure shows")
    p.add_argument("--encoders", nargs="+", choices=memory.ENCODERS, default=list(memory.ENCODERS))
    p.add_argument("--train-size", type=cli.bounded_int(100, 10_000_000, " sequences"), default=HP["train_size"])
    p.add_argument("--val-size", type=cli.bounded_int(50, 1_000_000, " sequences"), default=HP["val_size"])
    p.add_argument("--test-size", type=cli.bounded_int(100, 1_000_000, " sequences"), default=HP["test_size"])
    cli.add_study_flags(p)
    args = cli.parse(p, argv)
    seq.check_token_settings(args.vocab, min(args.lengths))
    if args.vocab > 1_000_000:
        raise UserError(f"--vocab {args.vocab} is more than 1,000,000 tokens; choose a smaller vocabulary")
    root = runs.root(__file__, out=args.out) / "summaries"
    base = {**cli.hyperparameters(HP, args), **cli.data_settings(args), "vocab": args.vocab}
    if args.report_only and not (root / "grid").is_dir():
        raise UserError(f"no runs in {root}; run the study first (without --report-only)")
    if not args.report_only:
        cost = {"RNN": 3.0, "CNN": 1.0, "attention": 2.0}
        study = Study("grid", trial, conditions(args), args.seeds, root, base=base, resume=args.resume,
                      cost=lambda c: cost[c["encoder"]] * c["length"] * (1 + c["d"] / 64))
        result = study.run(**cli.study_backend(args))
        result.report({"acc_8bit": "acc 8-bit (%)", "acc_float": "acc float (%)"}, scale=100, bars=(),
                      curves=None)
        result.raise_for_failures()
    findings = report(root, args, base)
    print(json.dumps(findings["learned_beats_bloom"], indent=1))
    print(f"tables and figures in {root}")
    return findings


if __name__ == "__main__":
    cli.run(main)
