"""How much compression can MNIST take? Autoencoders against PCA at every bottleneck, and the data's
intrinsic dimension measured three ways.

Part A of projects/representation_transfer (the README there has the findings):
  autoencoders  MLP and convolutional autoencoders with a bottleneck of k numbers, k in 2..128, trained
                to reconstruct their input (mean squared error on [0, 1] pixels) on the study runner;
  pca           PCA at the same k, fitted on the same training images (scikit-learn): the linear baseline;
  intrinsic     PCA's 90/95/99% variance dimensions, TwoNN and the Levina-Bickel MLE on training images.
The error reported is Hinton & Salakhutdinov's (Science 2006): the squared error summed over the 784
pixels of a test image, averaged over the 10,000 test images (they give 3.00 for a deep autoencoder and
13.87 for PCA at k = 30). Outputs in projects/representation_transfer/runs/autoencoders/.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from projects.representation_transfer import intrinsic_dimension as idim
from projects.representation_transfer.reconstruction import HP, PIXELS, SHOWN, load, pixels01, trial
from projects.representation_transfer import figures
from shared_utils import cli, data, plots, runs, stats
from shared_utils.errors import UserError
from shared_utils.study import Axis, Grid, Study, StudyResult, grid

CODES = (2, 4, 8, 16, 32, 64, 128)
FAMILIES = {"mlp": "MLP autoencoder", "conv": "conv autoencoder"}
ID_SAMPLE = 10_000      # training images the neighbour estimators use (exact k-NN on all 55,000 is slow)


# --------------------------------------------------------------------------- the baselines
def pca_errors(ds: data.Dataset, codes: list[int]) -> dict[int, float]:
    """Mean over test images of the squared error summed over pixels, PCA fitted on the training images."""
    from sklearn.decomposition import PCA

    train, test = pixels01(ds.train.x), pixels01(ds.test.x)
    top = min(max(codes), train.shape[1], len(train))
    pca = PCA(n_components=top, svd_solver="full").fit(train)            # exact, not randomised
    centred = test - pca.mean_
    scores = centred @ pca.components_.T                                         # (N, top)
    out = {}
    for k in codes:
        rebuilt = scores[:, :k] @ pca.components_[:k]
        out[k] = float(((centred - rebuilt) ** 2).sum(axis=1).mean())
    return out


def pca_reconstructions(ds: data.Dataset, codes: list[int]) -> dict[int, np.ndarray]:
    from sklearn.decomposition import PCA

    train, shown = pixels01(ds.train.x), pixels01(ds.test.x[:SHOWN])
    pca = PCA(n_components=min(max(codes), train.shape[1]), svd_solver="full").fit(train)
    scores = (shown - pca.mean_) @ pca.components_.T
    return {k: (scores[:, :k] @ pca.components_[:k] + pca.mean_).clip(0, 1).reshape(-1, 1, 28, 28) for k in codes}


def intrinsic(ds: data.Dataset, seed: int) -> dict:
    x = pixels01(ds.train.x)
    sample = x[np.random.default_rng(seed).permutation(len(x))[:ID_SAMPLE]]
    distances = idim.neighbour_distances(sample, 20)
    return {"pca_dimensions": {f"{int(100 * f)}%": d for f, d in idim.pca_dimensions(x).items()},
            "two_nn": idim.two_nn(distances=distances), "levina_bickel_k10_20": idim.levina_bickel(distances=distances),
            "images": int(len(sample))}


def knee(codes: list[int], errors: list[float]) -> int:
    """The bottleneck where the curve of log error against log k bends most: the point farthest from the
    chord joining its two ends (after each end is scaled to [0, 1]); past it, doubling k buys little."""
    x, y = np.log2(codes), np.log(errors)
    x, y = (x - x[0]) / (x[-1] - x[0]), (y - y[-1]) / (y[0] - y[-1])
    distance = np.abs(x + y - 1) / np.sqrt(2)          # to the line from (0, 1) to (1, 0)
    return int(codes[int(np.argmax(distance))])


# --------------------------------------------------------------------------- the report
def report(root: Path, ds: data.Dataset, grid: Grid | None = None) -> dict:
    """error_by_code table, error_vs_code.png, reconstructions.png, code_2d.png and analysis.json, from the
    study's folder alone."""
    r = StudyResult.load(root, grid)
    families, codes, n = r.levels("family"), r.levels("code"), len(r.seeds)
    pca = runs.read_json(root / "pca.json") if (root / "pca.json").is_file() else {}
    sse = {f: {k: r.at("test_sse_per_image", family=f, code=k) for k in codes} for f in families}
    rows = [[k, f"{pca[str(k)]:.2f}" if str(k) in pca else "missing"] +
            [cell for f in families for cell in (stats.ci_cell(sse[f][k], n), f"{np.mean(sse[f][k]) / pca[str(k)]:.2f}"
                                                 if sse[f][k] and str(k) in pca else "-")] for k in codes]
    stats.write_table(["k", "PCA"] + [h for f in families for h in (FAMILIES[f], f"{FAMILIES[f]} / PCA")], rows,
                      root / "error_by_code", caption="Test reconstruction error: squared error summed over 784 pixels "
                      f"in [0, 1], mean over the test images; autoencoders mean ± 95% CI over seeds {r.seeds}")
    series = {"PCA": ([k for k in codes if str(k) in pca], [pca[str(k)] for k in codes if str(k) in pca])}
    bands = {}
    for f in families:
        ks = [k for k in codes if sse[f][k]]
        series[FAMILIES[f]] = (ks, [np.mean(sse[f][k]) for k in ks])
        bands[FAMILIES[f]] = [stats.summarize(sse[f][k]).ci95 if len(sse[f][k]) > 1 else 0.0 for k in ks]
    series = {name: xy for name, xy in series.items() if xy[0]}
    if series:
        plots.line_plot(series, root / "error_vs_code.png", bands=bands, logx=True, logy=True,
                        title="Reconstruction error against bottleneck size (MNIST test set)",
                        xlabel="code size k (numbers, log scale)",
                        ylabel="squared error per image (sum over pixels, log scale)")
    out = {"pca": pca, "autoencoders": sse,
           "knee": {FAMILIES[f]: knee(*map(list, series[FAMILIES[f]])) for f in families
                    if FAMILIES[f] in series and len(series[FAMILIES[f]][0]) >= 3}}
    outputs = {c.name: runs.load_npz(r.artifact(c, r.seeds[0], "outputs.npz")) for c in r.conditions
               if (r.trial_path(c, r.seeds[0]) / "outputs.npz").is_file()}
    reconstructions_figure(root, r, ds, outputs)
    panels = [(FAMILIES[f], outputs[c.name]["codes"], outputs[c.name]["labels"]) for f in families
              for c in r.select(family=f, code=2) if c.name in outputs]
    if panels:
        figures.scatter_by_class(panels, root / "code_2d.png", title="Two-number codes of the test digits",
                               xlabel="code 1", ylabel="code 2", legend_title="digit")
    if (root / "intrinsic_dimension.json").is_file():
        out["intrinsic_dimension"] = runs.read_json(root / "intrinsic_dimension.json")
    runs.atomic_write_json(root / "analysis.json", out)
    return out


def reconstructions_figure(root: Path, r: StudyResult, ds: data.Dataset, outputs: dict) -> None:
    """Rows: the original test digits, then PCA and each autoencoder at every k (the first seed)."""
    images, titles = [ds.test.x[:SHOWN].astype(np.float32) / 255.0], ["original"]
    pca = pca_reconstructions(ds, r.levels("code"))
    for k in r.levels("code"):
        images.append(pca[k])
        titles.append(f"PCA k={k}")
        for c in r.select(code=k):
            if c.name in outputs:
                images.append(outputs[c.name]["reconstructions"])
                titles.append(c.name)
    labels = [t if i == 0 else "" for t in titles for i in range(SHOWN)]  # each row named at its first digit
    plots.image_grid(np.concatenate(images), root / "reconstructions.png", ncols=SHOWN, titles=labels,
                     title="The same test digits reconstructed at every bottleneck size", colorbar_label="pixel value (0-1)")


def conditions(families: list[str], codes: list[int]) -> Grid:
    """Every family at every bottleneck: conditions named "mlp k=32"."""
    return grid(family=families, code=Axis(codes, label=lambda k: f"k={k}")).joined(" ")


def main(argv=None):
    p = cli.parser(__doc__, epochs=HP["epochs"], batch_size=HP["batch_size"], lr=HP["lr"], seeds=True,
                   quick={"epochs": 2, "limit_train": 3000, "codes": [2, 32]})
    p.add_argument("--codes", type=cli.bounded_int(1, PIXELS, " numbers (at most the 784 pixels)"), nargs="+",
                   default=list(CODES), help="bottleneck sizes k")
    p.add_argument("--families", nargs="+", choices=list(FAMILIES), default=list(FAMILIES))
    cli.add_study_flags(p)
    args = cli.parse(p, argv)
    out = runs.root(__file__, out=args.out)
    root = out / "autoencoders"              # the study's folder: trials, tables and figures
    base = {**cli.hyperparameters(HP, args), **cli.data_settings(args)}
    ds = load(base)                          # no data and no network: stop before any trial
    if args.report_only and not root.is_dir():
        raise UserError(f"no runs in {root}; run the study first (without --report-only)")
    if not args.report_only:
        if max(args.codes) > len(ds.train):
            raise UserError(f"k={max(args.codes)} needs at least that many training images; have {len(ds.train)}")
        study = Study("autoencoders", trial, conditions(args.families, args.codes), args.seeds, out, base=base,
                      resume=args.resume, cost=lambda c: c["epochs"] * (4 if c["family"] == "conv" else 1)).check()
        runs.atomic_write_json(root / "pca.json", {str(k): v for k, v in pca_errors(ds, list(args.codes)).items()})
        runs.atomic_write_json(root / "intrinsic_dimension.json", intrinsic(ds, args.seed))
        result = study.run(**cli.study_backend(args))
        result.report({"test_sse_per_image": "test error per image", "parameters": "parameters",
                       "train_seconds": "train seconds"}, bar_ylabel="squared error per image", bar_xlabel="model",
                      caption=f"{args.epochs} epochs, seeds {args.seeds}; mean ± std [95% CI]", curves=("train_loss", "val_loss"))
    analysis = report(root, ds, conditions(args.families, args.codes))
    print(f"tables and figures in {root}")
    return analysis


if __name__ == "__main__":
    cli.run(main)
