"""Label budgets, shared by the transfer studies of this project: a budget is a count of labelled training
images (0 = every label), read from the command line as a count or 'all'."""
from __future__ import annotations

import numpy as np

from shared_utils import cli


def labels_arg(text: str) -> int:
    """A label budget: a positive count, or 'all' (stored as 0)."""
    if text == "all":
        return 0
    return cli.bounded_int(10, 10_000_000, " labels (or 'all')")(text)


def budget_name(labels: int) -> str:
    return "all labels" if labels == 0 else f"{labels:,} labels"


def steps_cell(values: list[int | None]) -> str:
    """A table cell for "steps until a target accuracy": the mean over the seeds that got there, and how many did."""
    if not values:
        return "missing"
    hit = [v for v in values if v is not None]
    return f"{np.mean(hit):,.0f} ({len(hit)} of {len(values)})" if hit else f"not reached (0 of {len(values)})"
