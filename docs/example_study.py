"""Does label smoothing help a small MLP on MNIST? (The example study of docs/architecture.md.)"""
from shared_utils import cli, data, runs
from shared_utils.pytorch.engine import TrainConfig, evaluate, fit
from shared_utils.pytorch.models import MLP
from shared_utils.pytorch.pipeline import loaders
from shared_utils.study import Study, StudyResult, start

HP = {"epochs": 3, "batch_size": 128, "lr": 1e-3, "optimizer": "adam", "label_smoothing": 0.0}


def trial(config: dict) -> dict:                   # top level: pool and Ray workers import it by name
    t = start(config)                              # seeds, device, run folder, the resolved config recorded
    train, val, test = loaders(data.mnist_from_settings(config), batch_size=config["batch_size"],
                               seed=t.seed, device=t.device)
    model = MLP(hidden=(128,), in_features=784, classes=10)
    fit(model, train, val, TrainConfig.from_config(config), device=t.device, run=t.run, quiet=t.quiet)
    return t.run.summary(test_acc=evaluate(model, test, t.device)["acc"])


def main(argv=None):
    p = cli.parser(__doc__, epochs=HP["epochs"], batch_size=HP["batch_size"], lr=HP["lr"], seeds=True)
    cli.add_study_flags(p)                         # --workers --backend --address --resume --report-only
    args = cli.parse(p, argv)
    study = Study("smoothing", trial, Study.grid(label_smoothing=[0.0, 0.1, 0.2]), args.seeds,
                  runs.root(__file__, out=args.out), base={**cli.hyperparameters(HP, args), **cli.data_settings(args)},
                  resume=args.resume)
    study.run_or_load(args).raise_for_failures()
    table = StudyResult.load(study.path).table("test_acc", 100)   # read back from the folder alone
    print(table)
    return table


if __name__ == "__main__":
    cli.run(main)
