"""Aggregating over seeds: mean, sample standard deviation and a 95% confidence interval.

The interval is Student's t: ``mean ± t_{0.975, n-1} * std / sqrt(n)``, the honest one
for the three to five seeds a CPU budget allows (a normal 1.96 would be too narrow).
"""
from __future__ import annotations

import csv
import io
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from shared_utils.atomic import atomic_write_text


@dataclass(frozen=True)
class Summary:
    n: int
    mean: float
    std: float        # sample standard deviation (ddof=1); 0 for a single value
    ci95: float       # half-width of the 95% t-interval; nan for a single value

    def __str__(self) -> str:
        return format_mean_std(self)


def t_quantile_975(df: int) -> float:
    """Student's t 0.975 quantile with ``df`` degrees of freedom (12.71 for 1, 2.78 for 4): scipy.special's
    inverse t distribution, the same number as scipy.stats.t.ppf without importing scipy.stats (0.9 s)."""
    from scipy.special import stdtrit

    return float(stdtrit(df, 0.975))


def summarize(values: Sequence[float]) -> Summary:
    x = np.asarray(values, dtype=float)
    if x.size == 0:
        raise ValueError("summarize() needs at least one value")
    n = int(x.size)
    mean = float(x.mean())
    if n == 1:
        return Summary(1, mean, 0.0, float("nan"))
    std = float(x.std(ddof=1))
    return Summary(n, mean, std, float(t_quantile_975(n - 1) * std / math.sqrt(n)))


def mean_ci(values) -> tuple[np.ndarray, np.ndarray]:
    """Mean and 95% t-interval half-width over the first axis of per-seed values (n, ...): a curve and its band.
    One seed gives a zero half-width; no values give NaN."""
    v = np.asarray(values, dtype=float)
    if v.shape[0] == 0:
        return np.full(v.shape[1:], np.nan), np.zeros(v.shape[1:])
    if v.shape[0] == 1:
        return v[0], np.zeros_like(v[0])
    return v.mean(0), t_quantile_975(v.shape[0] - 1) * v.std(0, ddof=1) / math.sqrt(v.shape[0])


def format_mean_std(s: Summary, digits: int = 2, scale: float = 1.0) -> str:
    if s.n == 1:
        return f"{s.mean * scale:.{digits}f}"
    return f"{s.mean * scale:.{digits}f} ± {s.std * scale:.{digits}f}"


def ci_cell(values: Sequence[float], expected: int | None = None, digits: int = 2) -> str:
    """A table cell: 'mean ± 95% CI half-width' (the mean alone for one value), 'missing' for none, and
    '(n=k of m)' when fewer than the ``expected`` seeds were found."""
    if len(values) == 0:
        return "missing"
    s = summarize(values)
    text = f"{s.mean:.{digits}f}" if s.n == 1 else f"{s.mean:.{digits}f} ± {s.ci95:.{digits}f}"
    return text + (f" (n={s.n} of {expected})" if expected and s.n < expected else "")


def comparison_rows(results: Mapping[str, Mapping[str, Sequence[float]]], *, scale: float = 1.0,
                    digits: int = 2) -> tuple[list[str], list[list[str]]]:
    """``{method: {metric: [per-seed values]}}`` -> header and rows of 'mean ± std [lo, hi]' cells."""
    metrics = list(dict.fromkeys(m for per in results.values() for m in per))
    header = ["method", "seeds"] + metrics
    rows = []
    for method, per in results.items():
        cells = [method, str(max(len(v) for v in per.values()))]
        for metric in metrics:
            if metric not in per:
                cells.append("")
                continue
            s = summarize(per[metric])
            if s.std == 0 and all(float(v).is_integer() for v in per[metric]):
                cells.append(f"{int(s.mean * scale):,}")   # counts such as parameters: no decimals
                continue
            cell = format_mean_std(s, digits, scale)
            if s.n > 1:
                cell += f" [{(s.mean - s.ci95) * scale:.{digits}f}, {(s.mean + s.ci95) * scale:.{digits}f}]"
            cells.append(cell)
        rows.append(cells)
    return header, rows


def write_comparison(results: Mapping[str, Mapping[str, Sequence[float]]], out_stem: str | os.PathLike, *,
                     caption: str, scale: float = 1.0, digits: int = 2) -> str:
    """comparison_rows + write_table (``<stem>.md`` and ``.csv``); returns the table as text lines
    (``method | seeds | ...``) for the console."""
    header, rows = comparison_rows(results, scale=scale, digits=digits)
    write_table(header, rows, out_stem, caption=caption)
    return "\n".join(" | ".join(map(str, r)) for r in [header] + rows)


def write_table(header: Sequence[str], rows: Sequence[Sequence[object]], out_stem: str | os.PathLike,
                *, caption: str = "") -> tuple[Path, Path]:
    """Write the same table as ``<stem>.md`` (for reading) and ``<stem>.csv`` (for tools)."""
    stem = Path(out_stem)
    md = []
    if caption:
        md += [caption, ""]
    cell = lambda v: str(v).replace("|", "\\|")  # noqa: E731  (a literal pipe would split the cell)
    md.append("| " + " | ".join(map(cell, header)) + " |")
    md.append("|" + "|".join("---" for _ in header) + "|")
    md += ["| " + " | ".join(map(cell, r)) + " |" for r in rows]
    md_path = atomic_write_text(stem.with_suffix(".md"), "\n".join(md) + "\n")
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(header)
    writer.writerows(rows)
    csv_path = atomic_write_text(stem.with_suffix(".csv"), buffer.getvalue())
    return md_path, csv_path


def bar_values(results: Mapping[str, Mapping[str, Sequence[float]]], metrics: Mapping[str, str]
               ) -> tuple[dict[str, dict[str, float]], dict[str, dict[str, float]]]:
    """``{method: {metric: [per-seed values]}}`` -> (means, 95% CI half-widths) for plots.grouped_bars.

    ``metrics`` maps each result key to its bar label; a single seed gets no error bar (0).
    """
    means: dict[str, dict[str, float]] = {}
    errors: dict[str, dict[str, float]] = {}
    for method, per in results.items():
        for key, label in metrics.items():
            s = summarize(per[key])
            means.setdefault(method, {})[label] = s.mean
            errors.setdefault(method, {})[label] = 0.0 if s.n == 1 else s.ci95
    return means, errors
