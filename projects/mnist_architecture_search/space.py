"""The architecture search's space: its parts, the optimizers and training recipes it compares, and each
part's grid of conditions. Condition names ("10k, depth 2", "SGD, relu", "cnn 25k", "MLP 200k, depth 2: shift
1px") come from the levels; code finds a condition by its levels (Grid.find), never by its name."""
from __future__ import annotations

import argparse

from shared_utils.study import Axis, Grid, grid

OPTIMIZERS = {   # each at its customary learning rate (the optimizer x activation study's rows)
    "SGD": {"optimizer": "sgd", "lr": 0.1, "momentum": 0.0},
    "SGD+momentum": {"optimizer": "sgd", "lr": 0.05, "momentum": 0.9},
    "Adam": {"optimizer": "adam", "lr": 1e-3},
    "AdamW": {"optimizer": "adamw", "lr": 1e-3, "weight_decay": 0.01},
}
# training choices at a fixed architecture (the recipe part): each a change to HP; "epochs_x" multiplies --epochs.
# The "base" recipe is HP itself, whose trials the depth_width and cnn parts already hold.
RECIPES = {
    "shift 1px": {"shift": 1},
    "shift 2px": {"shift": 2},
    "dropout 0.2": {"dropout": 0.2},
    "2x epochs": {"epochs_x": 2},
    "2x epochs, shift 1px": {"epochs_x": 2, "shift": 1},
    "2x epochs, shift 1px, dropout 0.1": {"epochs_x": 2, "shift": 1, "dropout": 0.1},
}
CNN_RECIPES = ("shift 1px", "2x epochs, shift 1px")    # the CNN has no dropout layer
PARTS = ("baseline", "depth_width", "optim_act", "cnn", "recipe")
TARGET_ACC = 0.98      # "epochs to 98%" on the validation set


# --------------------------------------------------------------------------- the four studies
def conditions(part: str, args) -> Grid:
    """Each part's grid of conditions. Their names ("10k, depth 2", "SGD, relu", "cnn 25k", "MLP 200k, depth 2:
    shift 1px") come from the levels; a report finds a condition by its levels (Grid.find), never by its name."""
    kilo = lambda prefix: (lambda b: f"{prefix}{b // 1000}k")   # noqa: E731
    if part == "baseline":
        return grid(family={"linear": {"family": "linear"}})
    if part == "depth_width":
        return grid(budget=Axis(args.budgets, label=kilo("")), depth=Axis(args.depths, label=lambda d: f"depth {d}"))
    if part == "optim_act":
        return grid(optimizer={o: OPTIMIZERS[o] for o in args.optimizers}, activation=args.activations).with_overrides(
            lambda c: {"budget": args.grid_budget, "depth": args.grid_depth})
    if part == "cnn":
        return grid(budget=Axis(args.budgets, label=kilo("cnn "))).with_overrides(lambda c: {"family": "cnn"})
    recipes = {}
    for name, change in RECIPES.items():       # "epochs_x" multiplies --epochs
        change = dict(change)
        if "epochs_x" in change:
            change["epochs"] = change.pop("epochs_x") * args.epochs
        recipes[name] = change
    mlp = {recipe_model("mlp", args): {"budget": args.recipe_budget, "depth": args.recipe_depth}}
    out = grid(model=mlp, recipe=recipes).joined(": ")
    for b in args.recipe_cnn_budgets:
        cnn = {recipe_model("cnn", args, b): {"family": "cnn", "budget": b}}
        out = out + grid(model=cnn, recipe={r: recipes[r] for r in CNN_RECIPES}).joined(": ")
    return out


def recipe_model(family: str, args, budget: int | None = None) -> str:
    if family == "mlp":
        return f"MLP {args.recipe_budget // 1000}k, depth {args.recipe_depth}"
    return f"CNN {budget // 1000}k"


def with_flags(args, **flags):
    """The parsed flags with some replaced (to name a condition of a grid the command line did not ask for)."""
    return argparse.Namespace(**{**vars(args), **flags})
