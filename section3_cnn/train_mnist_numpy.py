"""How accurate and how fast can a CNN written in NumPy be on MNIST?

Conv(3x3, 12) -> MaxPool(2) -> ReLU -> Conv(3x3, 24) -> MaxPool(2) -> ReLU -> FC(128) -> ReLU -> FC(10)
(max pooling before ReLU is the same function as after it, on a quarter of the values), trained on the full
MNIST training set (55,000 images; 5,000 held out for validation) with Adam, a cosine learning-rate decay,
batches of 64 split across two processes and random 1-pixel shifts, then scored on the 10,000 test images with
the best validation checkpoint, its class probabilities averaged over each image and its four 1-pixel shifts
(test-time augmentation; --no-tta scores the images alone). Everything is NumPy: section 3's im2col
convolutions on section 2's layers, optimizer, training loop and DataParallel. Writes
section3_cnn/runs/mnist_numpy/: metrics.csv, curves.png, best.npz (weights plus architecture; loads without
pickle) and summary.json.
"""
from __future__ import annotations

from section3_cnn.experiment import RECIPE, load_mnist, train_cnn
from section3_cnn.model import POOLS
from shared_utils import cli, runs
from shared_utils.seed import seed_everything


def main(argv=None):
    p = cli.parser(__doc__, epochs=RECIPE["epochs"], batch_size=RECIPE["batch_size"], lr=RECIPE["lr"],
                   quick={"epochs": 1, "limit_train": 3000, "test_subset": 2000})
    p.add_argument("--pool", choices=sorted(POOLS), default="max")
    cli.add_test_subset(p)
    p.add_argument("--channels", type=cli.channels, nargs=2, default=list(RECIPE["channels"]), metavar=("C1", "C2"))
    p.add_argument("--hidden", type=cli.width, default=RECIPE["hidden"])
    p.add_argument("--dropout", type=cli.unit_float, default=0.0, help="dropout before the last layer")
    p.add_argument("--shift", type=int, choices=range(0, 5), default=RECIPE["shift"], metavar="{0..4}",
                   help="augment: shift each training image by up to this many pixels")
    p.add_argument("--label-smoothing", type=cli.unit_float, default=0.0,
                   help="train against (1 - s) * one-hot + s / 10 targets, as torch's cross_entropy")
    p.add_argument("--no-tta", dest="tta", action="store_false", default=RECIPE["tta"],
                   help="score the test set on the images alone, without averaging over their 1-pixel shifts")
    p.add_argument("--threads", type=cli.positive_int, default=RECIPE["threads"],
                   help="split each batch across this many threads; results depend on it, not on the machine")
    p.add_argument("--backend", choices=("process", "thread"), default=RECIPE["backend"],
                   help="run the extra shards in worker processes (no GIL) or threads: the same results")
    p.add_argument("--experiment", default="mnist_numpy", help="run folder name under runs/")
    args = cli.parse(p, argv)
    seed_everything(args.seed)
    ds = load_mnist(args)
    run = runs.RunDir(__file__, args.experiment, args)
    summary = train_cnn(args, ds, run, seed=args.seed, pool=args.pool, channels=tuple(args.channels),
                        hidden=args.hidden, dropout=args.dropout, shift=args.shift,
                        threads=args.threads, backend=args.backend, label_smoothing=args.label_smoothing, tta=args.tta)
    single = f", {summary['test_acc_single_view']:.4f} without" if args.tta else ""
    print(f"test accuracy {summary['test_acc']:.4f}{' with test-time shifts' if args.tta else ''}{single} "
          f"(best epoch {summary['best_epoch']}), "
          f"{summary['seconds_per_epoch']:.1f} s/epoch, {summary['wall_time_s']:.0f} s in all -> {run.path}")
    return summary


if __name__ == "__main__":
    cli.run(main)
