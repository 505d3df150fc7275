"""The example study of docs/architecture.md runs a grid on real MNIST, and its table reads back from the folder."""
import pytest

from tests.conftest import REPO, docs_module, requires

pytest.importorskip("torch")


def example():
    return docs_module("example_study")


@requires("mnist")
def test_the_example_study_runs_its_grid_and_reads_its_table_back(tmp_path, capsys):
    flags = ["--limit-train", "1200", "--epochs", "1", "--seeds", "0", "1", "--quiet", "--out", str(tmp_path)]
    table = example().main(flags)
    assert [(row["label_smoothing"], row["n"]) for row in table] == [(0.0, 2), (0.1, 2), (0.2, 2)]
    assert all(40 < row["mean"] < 100 and row["ci_low"] <= row["mean"] <= row["ci_high"] for row in table)
    assert "| label_smoothing | n | mean | ci_low | ci_high |" in capsys.readouterr().out
    again = example().main(flags + ["--report-only"])          # no training: the same table from the folder
    assert again == table


def test_the_guide_shows_the_example_as_it_is():
    guide = (REPO / "docs" / "architecture.md").read_text()
    shown = guide.split("```python\n", 1)[1].split("```", 1)[0]
    assert shown == (REPO / "docs" / "example_study.py").read_text()
