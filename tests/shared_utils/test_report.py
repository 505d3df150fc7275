import argparse
import time

from shared_utils import plots, report, runs


def test_report_lists_runs_newest_first_with_plots(tmp_path, capsys):
    for name, acc in (("section_a/runs/old", 0.5), ("section_b/runs/new", 0.9)):
        run = runs.RunDir(__file__, name, argparse.Namespace(out=tmp_path))
        run.log(epoch=1, train_loss=1.0, val_acc=acc)
        plots.learning_curves(run.path)
        run.summary(test_acc=acc)
        time.sleep(1.1)  # summary timestamps have one-second resolution
    path = report.main([str(tmp_path)])
    assert path == tmp_path / "runs" / "REPORT.md"
    text = path.read_text()
    assert text.startswith("# Report: 2 run(s)")
    assert text.index("section_b/runs/new") < text.index("section_a/runs/old")
    assert "| test_acc | 0.9 |" in text
    assert "](../section_b/runs/new/curves.png)" in text
    assert "wrote" in capsys.readouterr().out


def test_report_on_missing_root_is_a_user_error(tmp_path):
    import pytest
    from shared_utils.errors import UserError
    with pytest.raises(UserError, match="is not a folder"):
        report.main([str(tmp_path / "nope")])
