import math

import pytest

from shared_utils import stats


def test_summary_matches_hand_computed_values():
    s = stats.summarize([1.0, 2.0, 3.0])
    assert s.n == 3 and s.mean == 2.0 and s.std == 1.0
    # t_{0.975, 2} = 4.302653; half-width = 4.302653 * 1 / sqrt(3)
    assert s.ci95 == pytest.approx(4.302653 / math.sqrt(3), rel=1e-6)
    s5 = stats.summarize([0.90, 0.92, 0.91, 0.93, 0.89])
    assert s5.std == pytest.approx(0.0158113883, rel=1e-8)
    assert s5.ci95 == pytest.approx(2.776445 * 0.0158113883 / math.sqrt(5), rel=1e-6)


def test_single_value_has_no_interval():
    s = stats.summarize([0.5])
    assert s.std == 0.0 and math.isnan(s.ci95) and str(s) == "0.50"
    with pytest.raises(ValueError):
        stats.summarize([])


def test_comparison_table_written_as_markdown_and_csv(tmp_path):
    header, rows = stats.comparison_rows({"max": {"acc": [0.98, 0.99]}, "avg": {"acc": [0.97]}}, scale=100)
    assert header == ["method", "seeds", "acc"]
    assert rows[0][0] == "max" and rows[0][1] == "2" and rows[0][2].startswith("98.50 ± 0.71 [")
    assert rows[1][2] == "97.00"
    md, csv_path = stats.write_table(header, rows, tmp_path / "table", caption="Pooling")
    text = md.read_text().splitlines()
    assert text[0] == "Pooling" and text[2] == "| method | seeds | acc |" and text[3] == "|---|---|---|"
    assert csv_path.read_text().splitlines()[0] == "method,seeds,acc"


def test_bar_values_means_and_intervals():
    means, errors = stats.bar_values({"a": {"acc": [1.0, 2.0, 3.0]}, "b": {"acc": [5.0]}}, {"acc": "accuracy"})
    assert means == {"a": {"accuracy": 2.0}, "b": {"accuracy": 5.0}}
    assert errors["a"]["accuracy"] == pytest.approx(4.302653 / math.sqrt(3), rel=1e-6)
    assert errors["b"]["accuracy"] == 0.0


def test_write_comparison_writes_both_files_and_returns_the_text(tmp_path):
    text = stats.write_comparison({"max": {"acc": [98.0, 99.0]}}, tmp_path / "t", caption="c")
    assert text.splitlines()[0] == "method | seeds | acc" and text.splitlines()[1].startswith("max | 2 | 98.50 ± 0.71")
    assert (tmp_path / "t.md").read_text().startswith("c\n") and (tmp_path / "t.csv").is_file()


def test_ci_cell_says_missing_and_how_many_seeds_it_found():
    assert stats.ci_cell([], 3) == "missing"
    assert stats.ci_cell([98.0], 3) == "98.00 (n=1 of 3)"
    s = stats.summarize([97.0, 98.0, 99.0])
    assert stats.ci_cell([97.0, 98.0, 99.0], 3) == f"98.00 ± {s.ci95:.2f}" and abs(s.ci95 - 2.484) < 1e-3


def test_mean_ci_is_summarize_per_point_with_zero_band_for_one_seed():
    import numpy as np

    from shared_utils import stats

    curves = np.array([[1.0, 2.0, 4.0], [3.0, 2.0, 5.0], [2.0, 5.0, 9.0]])
    mean, half = stats.mean_ci(curves)
    for j in range(3):
        s = stats.summarize(curves[:, j])
        assert mean[j] == pytest.approx(s.mean) and half[j] == pytest.approx(s.ci95)
    one_mean, one_half = stats.mean_ci(curves[:1])
    assert one_mean.tolist() == [1.0, 2.0, 4.0] and one_half.tolist() == [0.0, 0.0, 0.0]
    empty_mean, _ = stats.mean_ci([])
    assert np.isnan(empty_mean)


def test_t_quantile_is_scipy_stats_t_ppf_and_tables_values():
    from scipy.stats import t

    for df in (1, 2, 3, 4, 9, 29, 200):
        assert stats.t_quantile_975(df) == pytest.approx(t.ppf(0.975, df), rel=1e-12)
    # printed tables: 12.706 for one degree of freedom, 2.776 for four, 2.045 for 29
    assert [round(stats.t_quantile_975(df), 3) for df in (1, 4, 29)] == [12.706, 2.776, 2.045]
