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


def test_report_shows_each_study_table_failures_and_figures(tmp_path):
    from shared_utils.study import Study
    from tests.shared_utils.study_trials import BASE, numpy_trial

    result = Study("sweep", numpy_trial, {"wide": {"hidden": 48}, "broken": {"fail": True}}, [0, 1], tmp_path,
                   base=BASE).run(quiet=True)
    result.report({"final_val_acc": "val acc (%)"}, scale=100, curves=("train_loss",))
    text = report.main([str(tmp_path)]).read_text()
    assert text.index("## Studies (1)") < text.index("## Runs")
    assert "2 of 4 trials finished (2 failed)" in text
    assert "- failed: broken seed 0: RuntimeError: planted failure" in text
    assert "| wide | 2 |" in text and "](../sweep/bars.png)" in text
