"""The autoencoder trial of this project: an MLP or convolutional autoencoder with a bottleneck of k numbers
trained to reconstruct MNIST digits (mean squared error on [0, 1] pixels). Part A's study sweeps it over k
(autoencoders.py); part B pretrains the encoder it transfers with it (encoder_transfer.py)."""
from __future__ import annotations

import numpy as np
import torch

from projects.representation_transfer.models import ConvAutoencoder, MLPAutoencoder
from shared_utils import data, plots, runs
from shared_utils.pytorch.engine import TrainConfig, evaluate, fit, load_best, regression
from shared_utils.pytorch.models import count_parameters
from shared_utils.pytorch.pipeline import loaders, reconstruction
from shared_utils.study import start

# ---- the one recipe every autoencoder trains with; --epochs, --batch-size and --lr override it
HP = {"epochs": 20, "batch_size": 128, "lr": 1e-3, "optimizer": "adam", "weight_decay": 0.0, "schedule": "cosine",
      "family": "mlp", "code": 32}
PIXELS = 784
SHOWN = 10              # test digits whose reconstructions every trial saves, the same ones at every k


def load(config: dict) -> data.Dataset:
    return data.mnist_from_settings(config)


def build(family: str, code: int) -> torch.nn.Module:
    return MLPAutoencoder(code) if family == "mlp" else ConvAutoencoder(code)


def pixels01(x: np.ndarray) -> np.ndarray:
    """(N, 1, 28, 28) uint8 -> (N, 784) float64 in [0, 1]: the scale the error is measured on."""
    return x.reshape(len(x), -1).astype(np.float64) / 255.0


def trial(config: dict) -> dict:
    t = start(config, __file__)
    device, run = t.device, t.run
    ds = load(config)
    model = build(config["family"], config["code"])
    train, val, test = loaders(ds, batch_size=config["batch_size"], seed=t.seed, device=device,
                               eval_augment=[reconstruction()])
    cfg = TrainConfig.from_config({**config, "best_metric": "val_loss", "best_mode": "min"})
    fit(model, train, val, cfg, device=device, run=run, quiet=config["quiet"], desc=config["condition"],
        loss_fn=regression())
    load_best(model, run, device)
    mse = evaluate(model, test, device, loss_fn=regression())["mse"]
    # the same test digits' reconstructions, and the code of every test image (the 2-D scatter)
    model.eval()
    with torch.no_grad():
        x, _ = test.batch(torch.arange(len(ds.test)))
        codes = torch.cat([model.encoder(x[i:i + 1000].to(device)).cpu() for i in range(0, len(x), 1000)])
        shown = model(x[:SHOWN].to(device)).cpu().numpy()
    runs.save_npz(run.path / "outputs.npz", {"reconstructions": shown.astype(np.float32),
                                             "codes": codes.numpy().astype(np.float32),
                                             "labels": ds.test.y.astype(np.int64)})
    plots.learning_curves(run.path, title=f"{config['condition']} (seed {config['seed']})",
                          loss_label="mean squared error per pixel", logy=True)
    return run.summary(test_sse_per_image=mse * PIXELS, test_mse=mse, parameters=count_parameters(model))
