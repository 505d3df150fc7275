"""The study runner: same per-trial results on every backend, restart skips finished trials, a failing
trial is recorded while the others finish, bad specs stop before anything is written."""
import json
import subprocess
import sys
import time

import pytest

from shared_utils import cli
from shared_utils.errors import UserError
from shared_utils.study import Study, TrialsFailed, slug
from tests.conftest import REPO
from tests.shared_utils.study_trials import BASE, killed_study, logging_trial, numpy_trial, torch_trial

CONDITIONS = {"wide": {"hidden": 48}, "narrow": {"hidden": 8}}


def per_trial(result):
    return {(o.trial.condition, o.trial.seed): (o.summary["final_train_loss"], o.summary["final_val_acc"],
                                                o.summary["checksum"]) for o in result.outcomes}


def test_serial_and_pool_give_identical_trials(tmp_path):
    serial = Study("s", numpy_trial, CONDITIONS, [0, 1], tmp_path / "serial", base=BASE).run(quiet=True)
    pool = Study("s", numpy_trial, CONDITIONS, [0, 1], tmp_path / "pool", base=BASE).run("pool", workers=2, quiet=True)
    assert len(per_trial(serial)) == 4 and all(o.status == "done" for o in serial.outcomes)
    assert per_trial(serial) == per_trial(pool)
    accuracy = {k: v[1] for k, v in per_trial(serial).items()}          # real digits, 2 epochs; chance 0.1
    assert min(accuracy[("wide", s)] for s in (0, 1)) > 0.85 and min(accuracy.values()) > 0.6
    # each trial writes its own deterministic folder, with the configuration it ran with
    config = json.loads((tmp_path / "pool" / "s" / "narrow" / "seed_1" / "config.json").read_text())
    assert config["trial"]["hidden"] == 8 and config["trial"]["seed"] == 1 and config["trial"]["threads"] == 1
    manifest = json.loads((tmp_path / "pool" / "s" / "manifest.json").read_text())
    assert manifest["backend"] == "pool" and manifest["failed"] == 0 and len(manifest["trials"]) == 4


@pytest.mark.slow
def test_ray_gives_the_serial_trials_and_halves_on_ray_tasks(tmp_path, ray_cluster):
    serial = Study("s", numpy_trial, CONDITIONS, [0, 1], tmp_path / "serial", base=BASE).run(quiet=True)
    on_ray = Study("s", numpy_trial, CONDITIONS, [0, 1], tmp_path / "ray", base=BASE).run("ray", quiet=True)
    assert per_trial(serial) == per_trial(on_ray)
    manifest = json.loads((tmp_path / "ray" / "s" / "manifest.json").read_text())
    assert manifest["backend"] == "ray" and manifest["failed"] == 0 and len(manifest["trials"]) == 4
    # successive halving on Ray: each round is an ordinary run of Ray tasks that resume from checkpoints
    halving = Study("h", torch_trial, {"lr 0.1": {"lr": 0.1}, "lr 0.0003": {"lr": 3e-4}}, [0], tmp_path / "ray",
                    base={"epochs": 1, "lr": 0.1, "hidden": 32}, budget_key="epochs").halving(
                        [1, 2], metric="best_val_acc", backend="ray", quiet=True)
    assert halving.winner == "lr 0.1"
    assert (tmp_path / "ray" / "h" / "lr_0.1" / "seed_0" / "metrics.csv").read_text().count("\n") == 3
    assert ray_cluster.is_initialized()          # the study joined the session's cluster and left it running


@pytest.mark.parametrize("backend, workers", [("serial", 1), ("pool", 1)])
def test_trials_start_costliest_first_and_report_in_condition_order(tmp_path, backend, workers):
    log = tmp_path / "started.log"
    conditions = {"small": {"size": 1}, "large": {"size": 9}, "medium": {"size": 4}}
    study = Study("c", logging_trial, conditions, [0, 1], tmp_path, base={"size": 0, "log": str(log)},
                  cost=lambda config: config["size"] * (1 + config["seed"]))
    result = study.run(backend, workers=workers, quiet=True)
    # costs: large 9/18, medium 4/8, small 1/2 -- started from the largest down
    assert log.read_text().split("\n")[:-1] == ["large 1", "large 0", "medium 1", "medium 0", "small 1", "small 0"]
    assert [(o.trial.condition, o.trial.seed) for o in result.outcomes] == \
        [("small", 0), ("small", 1), ("large", 0), ("large", 1), ("medium", 0), ("medium", 1)]
    unordered = tmp_path / "plain.log"
    Study("p", logging_trial, conditions, [0], tmp_path, base={"size": 0, "log": str(unordered)}).run(quiet=True)
    assert unordered.read_text().split("\n")[:-1] == ["small 0", "large 0", "medium 0"]


def test_a_failing_trial_is_recorded_and_the_others_finish(tmp_path):
    study = Study("f", numpy_trial, {"ok": {}, "broken": {"fail": True}}, [0, 1], tmp_path, base=BASE)
    result = study.run(quiet=True)
    status = {(o.trial.condition, o.trial.seed): o.status for o in result.outcomes}
    assert status == {("ok", 0): "done", ("ok", 1): "done", ("broken", 0): "failed", ("broken", 1): "failed"}
    manifest = json.loads((tmp_path / "f" / "manifest.json").read_text())
    assert manifest["failed"] == 2 and manifest["trials"][2]["error"] == "RuntimeError: planted failure"
    assert "Traceback" in json.loads((tmp_path / "f" / "broken" / "seed_0" / "error.json").read_text())["traceback"]
    with pytest.raises(TrialsFailed, match="2 of 4 trials failed"):
        result.raise_for_failures()
    table = result.report({"final_val_acc": "val acc (%)"}, scale=100, curves=("train_loss",))
    assert "| ok | 2 |" in (tmp_path / "f" / "table.md").read_text() and "broken" not in table


def test_a_killed_study_skips_finished_trials_when_started_again(tmp_path):
    script = [sys.executable, str(REPO / "tests" / "shared_utils" / "study_trials.py"), str(tmp_path)]
    proc = subprocess.Popen(script, cwd=REPO)
    root = tmp_path / "killed"
    deadline = time.time() + 60
    while len(list(root.glob("*/seed_*/summary.json"))) < 2 and time.time() < deadline:
        time.sleep(0.05)
    proc.kill()
    proc.wait()
    finished = sorted(p.parent for p in root.glob("*/seed_*/summary.json"))
    assert 2 <= len(finished) < 6
    out = subprocess.run(script + ["--resume"], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stdout.strip() == "complete", out.stderr
    for folder in finished:     # called once: before the kill, never again
        assert len((folder / "invocations.log").read_text().split()) == 1, folder
    assert len(list(root.glob("*/seed_*/summary.json"))) == 6
    manifest = json.loads((root / "manifest.json").read_text())
    assert sum(t["status"] == "skipped" for t in manifest["trials"]) == len(finished)
    assert not list(tmp_path.rglob("*.tmp"))          # no half-written file survives the kill and the restart
    # every trial ends with the numbers an uninterrupted study gets
    killed_study(tmp_path / "straight", sleep=0.0).run(quiet=True).raise_for_failures()   # (no pause: same numbers)

    def numbers(folder):
        keys = ("final_train_loss", "final_val_acc", "best_val_acc", "checksum", "val_acc_model")
        return {p.parent.relative_to(folder).as_posix(): {k: json.loads(p.read_text())[k] for k in keys}
                for p in folder.glob("*/seed_*/summary.json")}
    assert numbers(root) == numbers(tmp_path / "straight" / "killed")


def test_records_outlive_the_run_folder_and_a_resume_elsewhere_takes_them_back(tmp_path):
    """--records: each finished trial's JSON (no checkpoints) is kept outside the run folder; a study resumed on
    a machine without that folder trains only what the records lack, and reads back whole."""
    records = tmp_path / "records"
    first = Study("s", numpy_trial, CONDITIONS, [0], tmp_path / "machine1", base=BASE).run(quiet=True, records=records)
    kept = records / "s"
    assert sorted(p.parent.relative_to(kept).as_posix() for p in kept.glob("*/seed_*/summary.json")) == \
        ["narrow/seed_0", "wide/seed_0"] and (kept / "manifest.json").is_file()
    assert list((tmp_path / "machine1").rglob("*.npz"))            # the run folder has weights, the records none
    kept_files = [p for p in kept.rglob("*") if p.is_file()]
    assert {p.suffix for p in kept_files} <= {".json", ".jsonl", ".csv"} and "artifacts.json" not in {p.name for p in kept_files}
    second = Study("s", numpy_trial, CONDITIONS, [0, 1], tmp_path / "machine2", base=BASE, resume=True).run(
        quiet=True, records=records)
    folder = tmp_path / "machine2" / "s"
    for c in CONDITIONS:      # seed 0 taken back, not trained again (the trial logs every call); seed 1 trained
        assert not (folder / c / "seed_0" / "invocations.log").exists()
        assert len((folder / c / "seed_1" / "invocations.log").read_text().split()) == 1
    assert {k: v for k, v in per_trial(second).items() if k[1] == 0} == per_trial(first)
    assert {(o.trial.seed, o.status) for o in second.outcomes} == {(0, "skipped"), (1, "done")}
    assert len(list(kept.glob("*/seed_*/summary.json"))) == 4
    with pytest.raises(UserError, match="overlaps the study's own folder"):
        Study("s", numpy_trial, CONDITIONS, [0], tmp_path / "machine2", base=BASE).run(quiet=True,
                                                                                   records=tmp_path / "machine2")


def test_adopt_takes_another_studys_finished_run_instead_of_training_it_again(tmp_path):
    """A condition that is another study's run as it is (an ablation's reference): adopt copies that run's
    records in, a resumed run skips it and reads it back; a run made with other settings is refused."""
    elsewhere = Study("other", numpy_trial, {"ref": {}}, [0], tmp_path / "a", base=BASE).run(quiet=True)
    source = tmp_path / "a" / "other" / "ref" / "seed_0"
    made_with = {**BASE, "seed": 0, "condition": "ref"}
    study = Study("s", numpy_trial, {"reference": {}, "narrow": {"hidden": 8}}, [0], tmp_path / "b", base=BASE,
                  resume=True)
    with pytest.raises(UserError, match=r"other settings \(lr\)"):
        study.adopt("reference", 0, source, {**made_with, "lr": 0.5})
    assert not (study.path / "reference").exists()                   # refused: nothing written
    with pytest.raises(UserError, match="no finished run"):
        study.adopt("reference", 0, tmp_path / "nowhere", made_with)
    assert study.adopt("reference", 0, source, made_with)
    assert not study.adopt("reference", 0, source, made_with)         # finished already: left alone
    result = study.run(quiet=True)
    folder = study.path / "reference" / "seed_0"
    assert not (folder / "invocations.log").exists() and not list(folder.rglob("*.npz"))   # not trained; no weights
    assert {(o.trial.condition, o.status) for o in result.outcomes} == {("reference", "skipped"), ("narrow", "done")}
    adopted = next(o for o in result.outcomes if o.trial.condition == "reference").summary
    assert adopted["adopted_from"] == str(source)
    assert adopted["final_val_acc"] == elsewhere.outcomes[0].summary["final_val_acc"]
    assert json.loads((folder / "trial.json").read_text())["condition"] == "reference"


def test_resume_sweeps_a_write_cut_off_inside_a_finished_trial(tmp_path):
    # the kill test's rare case, made certain: killed after a trial's summary.json, inside its artifacts.json
    # write; the trial is skipped on --resume (its folder never reopened), so the runner sweeps the temp file
    Study("k", numpy_trial, {"a": {}}, [0], tmp_path, base=BASE).run(quiet=True)
    folder = tmp_path / "k" / "a" / "seed_0"
    (folder / "artifacts.json").unlink()
    cut = [folder / ".artifacts.json.x1y2.tmp", folder / "checkpoints" / ".model.npz.x3y4.tmp"]
    for stale in cut:
        stale.parent.mkdir(exist_ok=True)
        stale.write_text("{\"sha2")
    again = Study("k", numpy_trial, {"a": {}}, [0], tmp_path, base=BASE, resume=True).run(quiet=True)
    assert [o.status for o in again.outcomes] == ["skipped"]
    assert not list(tmp_path.rglob("*.tmp")) and (folder / "artifacts.json").is_file()


def test_resume_refuses_a_folder_made_with_other_settings(tmp_path):
    Study("r", numpy_trial, {"a": {}}, [0], tmp_path, base=BASE).run(quiet=True)
    with pytest.raises(UserError, match=r"other settings \(lr\)"):
        Study("r", numpy_trial, {"a": {}}, [0], tmp_path, base=dict(BASE, lr=0.5), resume=True).run(quiet=True)
    # --quiet changes what a trial prints, not what it computes: a quiet resume skips the finished trial
    Study("q", numpy_trial, {"a": {}}, [0], tmp_path, base=dict(BASE, quiet=False)).run(quiet=True)
    again = Study("q", numpy_trial, {"a": {}}, [0], tmp_path, base=dict(BASE, quiet=True), resume=True).run(quiet=True)
    assert [o.status for o in again.outcomes] == ["skipped"]


@pytest.mark.parametrize("make, message", [
    (lambda out: Study("x", numpy_trial, {"a": {"hiden": 3}}, [0], out, base=BASE), "unknown key(s) hiden"),
    (lambda out: Study("x", numpy_trial, {"a": {"seed": 3}}, [0], out, base=dict(BASE, seed=1)), "runner sets"),
    (lambda out: Study("x", numpy_trial, {"a b": {}, "a_b": {}}, [0], out, base=BASE), "share the folder"),
    (lambda out: Study("x", numpy_trial, {"a": {}}, [0, 0], out, base=BASE), "seeds repeat"),
    (lambda out: Study("x", lambda c: {}, {"a": {}}, [0], out, base=BASE), "module level"),
])
def test_bad_specs_stop_before_writing_anything(tmp_path, make, message):
    with pytest.raises(UserError, match=message.replace("(", r"\(").replace(")", r"\)")):
        make(tmp_path).run(quiet=True)
    assert not any(tmp_path.iterdir())


def test_bad_runner_flags_and_an_unreachable_ray_cluster(tmp_path):
    study = Study("x", numpy_trial, {"a": {}}, [0], tmp_path, base=BASE)
    with pytest.raises(UserError, match="at least 1"):
        study.run(workers=0, quiet=True)
    with pytest.raises(UserError, match="--address is for --backend ray"):
        study.run(address="auto", quiet=True)
    pytest.importorskip("ray")
    with pytest.raises(UserError, match="cannot reach a Ray cluster at 127.0.0.1:9"):
        study.run("ray", address="127.0.0.1:9", quiet=True)
    assert not any(tmp_path.iterdir())
    p = cli.parser("x")
    cli.add_study_flags(p)
    with pytest.raises(SystemExit) as exit_info:
        cli.parse(p, ["--workers", "0"])
    assert exit_info.value.code == 2


def test_successive_halving_keeps_the_best_and_continues_from_checkpoints(tmp_path):
    pytest.importorskip("torch")
    conditions = {"lr 0.3": {"lr": 0.3}, "lr 0.1": {"lr": 0.1}, "lr 0.01": {"lr": 0.01}, "lr 0.0003": {"lr": 3e-4}}
    study = Study("h", torch_trial, conditions, [0], tmp_path, base={"epochs": 1, "lr": 0.1, "hidden": 32},
                  budget_key="epochs")
    result = study.halving([1, 2, 4], metric="best_val_acc", eta=2, quiet=True)
    rounds = json.loads((tmp_path / "h" / "halving.json").read_text())["rounds"]
    assert [len(r["scores"]) for r in rounds] == [4, 2, 1]
    assert "lr 0.0003" not in rounds[0]["kept"]                      # the tiny step size is cut first
    winner = tmp_path / "h" / slug(result.winner) / "seed_0"
    epochs = [int(e) for e in (winner / "metrics.csv").read_text().split()[1:] for e in [e.split(",")[0]]]
    assert epochs == [1, 2, 3, 4]                                      # continued, never restarted
    loser = tmp_path / "h" / slug(rounds[0]["ranked"][-1]) / "seed_0"
    assert len((loser / "metrics.csv").read_text().split()) == 2      # header + its one epoch
    assert "*" in (tmp_path / "h" / "halving.md").read_text()


def test_successive_halving_with_restart_trains_each_round_afresh(tmp_path):
    pytest.importorskip("torch")
    conditions = {"lr 0.1": {"lr": 0.1}, "lr 0.0003": {"lr": 3e-4}}
    study = Study("hr", torch_trial, conditions, [0], tmp_path, base={"epochs": 1, "lr": 0.1, "hidden": 32},
                  budget_key="epochs")
    result = study.halving([1, 2], metric="best_val_acc", eta=2, quiet=True, restart=True)
    winner = tmp_path / "hr" / slug(result.winner) / "seed_0"
    assert json.loads((winner / "trial.json").read_text())["epochs"] == 2
    epochs = [int(line.split(",")[0]) for line in (winner / "metrics.csv").read_text().split()[1:]]
    assert epochs == [1, 2]
    # a whole 2-epoch run: the same figure as a study that asked for 2 epochs from the start
    alone = Study("alone", torch_trial, {result.winner: conditions[result.winner]}, [0], tmp_path,
                  base={"epochs": 2, "lr": 0.1, "hidden": 32}, budget_key="epochs").run(quiet=True)
    assert alone.scores("best_val_acc")[result.winner] == pytest.approx(result.rounds[-1]["scores"][result.winner])


def test_a_fresh_run_clears_the_old_one_and_foreign_folders_are_refused(tmp_path):
    Study("c", numpy_trial, {"a": {}}, [0], tmp_path, base=BASE).run(quiet=True)
    folder = tmp_path / "c" / "a" / "seed_0"
    (folder / "leftover.txt").write_text("from the old run")
    result = Study("c", numpy_trial, {"a": {}}, [0], tmp_path, base=dict(BASE, fail=True)).run(quiet=True)
    assert result.failures and not (folder / "summary.json").exists() and not (folder / "leftover.txt").exists()
    foreign = tmp_path / "d" / "a" / "seed_0"
    foreign.mkdir(parents=True)
    (foreign / "notes.txt").write_text("mine")
    with pytest.raises(UserError, match="not written by the study runner"):
        Study("d", numpy_trial, {"a": {}}, [0], tmp_path, base=BASE).run(quiet=True)
    assert (foreign / "notes.txt").read_text() == "mine"


@pytest.mark.parametrize("flags, message", [
    (["--workers", "0"], "--workers"),
    (["--address", "auto"], "--address is for --backend ray"),
    (["--backend", "ray", "--address", "127.0.0.1:9"], "cannot reach a Ray cluster at 127.0.0.1:9"),
    (["--backend", "cluster"], "--backend"),
    (["--backend", "serial", "--workers", "2"], "one trial at a time"),
])
def test_a_study_script_refuses_bad_runner_flags_with_one_line_and_writes_nothing(tmp_path, flags, message):
    from tests.conftest import assert_user_error, run_script

    pytest.importorskip("ray")
    result = run_script("section1_mlp/softmax_regression.py", "--quick", "--quiet", "--out", tmp_path / "out", *flags,
                        cwd=tmp_path)
    assert_user_error(result, message)
    assert not [f for f in (tmp_path / "out").rglob("*") if f.is_file()] if (tmp_path / "out").exists() else True


def test_records_that_cannot_be_written_or_overlap_the_run_folder_are_refused_with_one_line(tmp_path):
    from tests.conftest import assert_user_error, run_script

    (tmp_path / "taken").write_text("a file where the records' folder would go")
    for flags, message in ((["--records", "taken/kept"], "argument --records: taken/kept would be inside taken"),
                           (["--records", "out"], "overlaps the study's own folder")):
        result = run_script("section1_mlp/softmax_regression.py", "--quick", "--quiet", "--out", tmp_path / "out",
                            *flags, cwd=tmp_path)
        assert_user_error(result, message)
        assert not [f for f in tmp_path.rglob("*") if f.is_file() and f.name != "taken"]


def test_bar_axis_zooms_only_when_every_bar_is_far_from_zero():
    from shared_utils.study import _bar_range

    ylim, zoomed = _bar_range({"max": {"acc": 98.95}, "avg": {"acc": 99.15}}, {"max": {"acc": 0.48}, "avg": {"acc": 0.27}})
    assert zoomed and ylim[0] < 98.47 and ylim[1] > 99.43 and ylim[0] > 90     # both intervals visible, zoomed in
    assert _bar_range({"a": {"gap": 46.7}, "b": {"gap": 1.3}}, {"a": {"gap": 0.7}, "b": {"gap": 0.9}}) == (None, False)


@pytest.mark.slow
def test_successive_halving_on_the_local_pool(tmp_path):
    pytest.importorskip("torch")
    study = Study("hp", torch_trial, {"lr 0.1": {"lr": 0.1}, "lr 0.0003": {"lr": 3e-4}}, [0], tmp_path,
                  base={"epochs": 1, "lr": 0.1, "hidden": 32}, budget_key="epochs")
    result = study.halving([1, 2], metric="best_val_acc", backend="pool", workers=2, quiet=True)
    assert result.winner == "lr 0.1"
    assert (tmp_path / "hp" / "lr_0.1" / "seed_0" / "metrics.csv").read_text().count("\n") == 3   # header + 2 epochs
    assert json.loads((tmp_path / "hp" / "manifest.json").read_text())["backend"] == "pool"


def test_pool_workers_end_when_the_study_process_is_killed(tmp_path):
    import signal

    script = [sys.executable, str(REPO / "tests" / "shared_utils" / "study_trials.py"), str(tmp_path), "--pool"]
    proc = subprocess.Popen(script, cwd=REPO)
    deadline = time.time() + 60
    workers = []
    while time.time() < deadline and len(workers) < 2:
        time.sleep(0.2)
        out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(proc.pid)], capture_output=True, text=True).stdout
        workers = [int(p) for p in out.split()]
    assert len(workers) >= 2, "the pool never started"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    deadline = time.time() + 20
    while time.time() < deadline and any(_alive(p) for p in workers):
        time.sleep(0.2)
    assert not any(_alive(p) for p in workers), "orphaned pool workers kept running"


def _alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split()[2] != "Z"     # a zombie has ended, it only waits to be reaped
    except FileNotFoundError:
        return False


def test_a_grid_study_reads_back_from_its_folder_alone(tmp_path):
    """Conditions are dicts of axis levels; the folder holds everything a report needs: no trial function."""
    from shared_utils.study import Axis, StudyResult, grid

    g = grid(hidden=Axis([8, 48], label=lambda h: f"{h} units"), lr={"slow": {"lr": 0.01}, "fast": {"lr": 0.05}})
    assert [c.name for c in g] == ["8 units, slow", "8 units, fast", "48 units, slow", "48 units, fast"]
    assert g.conditions[1].levels == {"hidden": 8, "lr": "fast"} and g.conditions[1].overrides == {"hidden": 8, "lr": 0.05}
    ran = Study("g", numpy_trial, g, [0, 1], tmp_path, base=BASE).run(quiet=True)
    loaded = StudyResult.load(tmp_path / "g")
    assert [c.levels for c in loaded.conditions] == [c.levels for c in g]
    assert loaded.values("final_val_acc") == ran.values("final_val_acc") and loaded.seeds == [0, 1]
    assert loaded.at("final_val_acc", 100, hidden=48, lr="fast") == [100 * v for v in ran.values("final_val_acc")["48 units, fast"]]
    table = loaded.table("final_val_acc", 100, lr="fast")
    assert [(r["hidden"], r["n"]) for r in table] == [(8, 2), (48, 2)]
    assert all(r["ci_low"] <= r["mean"] <= r["ci_high"] for r in table) and table[1]["mean"] > 85
    assert "| hidden | lr | n | mean | ci_low | ci_high |" in str(table)
    curves = loaded.curves("val_acc", hidden=8)
    assert set(curves) == {"8 units, slow", "8 units, fast"}
    epochs, per_seed = curves["8 units, slow"]
    assert list(epochs) == [1, 2] and per_seed.shape == (2, 2)
    log = loaded.artifact({"hidden": 8, "lr": "slow"}, 1, "invocations.log")
    assert log == tmp_path / "g" / "8_units_slow" / "seed_1" / "invocations.log"
    with pytest.raises(UserError, match="does not exist"):
        loaded.artifact("8 units, slow", 1, "best.pt")
    with pytest.raises(UserError, match="2 conditions match"):
        loaded.condition(hidden=8)
    # a trial that never finished (stopped mid-run) is left out, not read as a result
    (tmp_path / "g" / "48_units_fast" / "seed_0" / "summary.json").unlink()
    assert len(StudyResult.load(tmp_path / "g").at("final_val_acc", hidden=48, lr="fast")) == 1


def test_loading_refuses_a_folder_that_is_not_a_study(tmp_path):
    from shared_utils.study import StudyResult

    with pytest.raises(UserError, match="manifest.json is missing"):
        StudyResult.load(tmp_path)
    (tmp_path / "manifest.json").write_text('{"study": "x", "trials": [{"condition": "a"}]}')
    with pytest.raises(UserError, match="not a study manifest"):
        StudyResult.load(tmp_path)
    (tmp_path / "manifest.json").write_text(json.dumps({"study": "x", "conditions": ["a"], "seeds": [0], "trials": [
        {"condition": "a", "seed": 0, "status": "done", "run_dir": "../../etc"}]}))
    with pytest.raises(UserError, match="points outside the study"):
        StudyResult.load(tmp_path)


def test_a_folder_from_before_the_grid_reads_back_with_the_scripts_grid(tmp_path):
    """Manifests written before they recorded the grid (no "grid" section) still read back: the levels come
    from the script's grid for the same flags, matched by condition name."""
    from shared_utils.study import StudyResult, grid

    g = grid(hidden=[8, 48])
    Study("old", numpy_trial, g, [0], tmp_path, base=BASE).run(quiet=True)
    manifest = json.loads((tmp_path / "old" / "manifest.json").read_text())
    del manifest["grid"]
    (tmp_path / "old" / "manifest.json").write_text(json.dumps(manifest))
    bare = StudyResult.load(tmp_path / "old")
    assert [c.levels for c in bare.conditions] == [{"condition": "hidden=8"}, {"condition": "hidden=48"}]
    known = StudyResult.load(tmp_path / "old", grid=g)
    assert [c.levels for c in known.conditions] == [{"hidden": 8}, {"hidden": 48}]
    assert known.at("final_val_acc", hidden=48) == bare.values("final_val_acc")["hidden=48"]


@pytest.mark.parametrize("damage", ["garbage", "truncated", "removed", "another trial's"])
def test_resume_refuses_a_finished_trial_whose_files_changed(tmp_path, damage):
    """A finished trial is skipped only while the files it left are the ones it wrote (sha256 in artifacts.json)."""
    study = lambda: Study("d", numpy_trial, CONDITIONS, [0], tmp_path, base=BASE, resume=True)   # noqa: E731
    study().run(quiet=True)
    target, other = tmp_path / "d" / "wide" / "seed_0" / "best.npz", tmp_path / "d" / "narrow" / "seed_0" / "best.npz"
    assert sorted(json.loads((target.parent / "artifacts.json").read_text())["sha256"]) == [
        "best.npz", "config.json", "invocations.log", "metrics.csv", "summary.json"]
    again = study().run(quiet=True)                   # intact: skipped, nothing runs again
    assert [o.status for o in again.outcomes] == ["skipped", "skipped"]
    if damage == "garbage":
        target.write_bytes(b"not a checkpoint")
    elif damage == "truncated":
        target.write_bytes(target.read_bytes()[:100])
    elif damage == "removed":
        target.unlink()
    else:
        target.write_bytes(other.read_bytes())
    before = sorted((p.relative_to(tmp_path), p.stat().st_mtime_ns) for p in tmp_path.rglob("*") if p.is_file())
    with pytest.raises(UserError, match=r"best.npz (changed|went missing) after its trial finished.*delete .*seed_0"):
        study().run(quiet=True)
    after = sorted((p.relative_to(tmp_path), p.stat().st_mtime_ns) for p in tmp_path.rglob("*") if p.is_file())
    assert after == before                            # refused before anything was written
    assert (tmp_path / "d" / "wide" / "seed_0" / "invocations.log").read_text().count("\n") == 1


def test_a_second_run_into_a_folder_being_written_refuses_and_writes_nothing(tmp_path):
    """While one run holds a study folder (here: its lock taken as a running study takes it), a second run into
    the same folder refuses with one line; once the first is done, the second runs."""
    import fcntl
    import os

    folder = tmp_path / "s"
    folder.mkdir()
    held = os.open(folder, os.O_RDONLY)
    fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
    try:
        with pytest.raises(UserError, match="another run is writing .* right now"):
            Study("s", numpy_trial, CONDITIONS, [0], tmp_path, base=BASE).run(quiet=True)
        assert not any(p.is_file() for p in folder.rglob("*"))
    finally:
        os.close(held)
    result = Study("s", numpy_trial, CONDITIONS, [0], tmp_path, base=BASE).run(quiet=True)
    assert [o.status for o in result.outcomes] == ["done", "done"]


def test_a_grid_joins_its_labels_before_it_is_combined():
    from shared_utils.study import grid

    assert [c.name for c in grid(a=["x"], b=["y"]).joined(" ")] == ["x y"]
    with pytest.raises(ValueError, match="before adding, filtering or renaming"):
        grid(a=["x", "z"]).where(lambda c: c["a"] == "x").joined(" ")


def test_a_resume_on_part_of_the_grid_keeps_the_rest_of_the_study(tmp_path):
    """The sequence study's pattern: the whole grid on seed 0, then --resume with 3 seeds on one axis level. The
    manifest keeps every finished trial of the first run (in its order), so the study reads back whole; a fresh
    run or one with other settings does not carry trials over."""
    from shared_utils.study import Axis, StudyResult, grid

    g = grid(hidden=Axis([8, 16, 48]), lr={"slow": {"lr": 0.01}, "fast": {"lr": 0.05}})
    Study("g", numpy_trial, g, [0], tmp_path, base=BASE).run(quiet=True)
    part = grid(hidden=Axis([16]), lr={"slow": {"lr": 0.01}, "fast": {"lr": 0.05}})
    ran = Study("g", numpy_trial, part, [0, 1], tmp_path, base={**BASE, "quiet": True}, resume=True).run(quiet=True)
    loaded = StudyResult.load(tmp_path / "g")
    assert [c.name for c in loaded.conditions] == [c.name for c in g] == [c.name for c in ran.conditions]
    assert loaded.seeds == [0, 1]
    assert [len(loaded.at("final_val_acc", hidden=h, lr="fast")) for h in (8, 16, 48)] == [1, 2, 1]
    statuses = {(t["condition"], t["seed"]): t["status"]
                for t in json.loads((tmp_path / "g" / "manifest.json").read_text())["trials"]}
    assert statuses[("hidden=16, slow", 0)] == "skipped" and statuses[("hidden=16, slow", 1)] == "done"
    assert statuses[("hidden=8, fast", 0)] == "done" and len(statuses) == 8
    # other settings: what the earlier run left is not this study's, and stays out of the manifest
    other = Study("g", numpy_trial, grid(hidden=Axis([24])), [0], tmp_path, base={**BASE, "epochs": 1},
                  resume=True).run(quiet=True)
    assert [c.name for c in other.conditions] == ["hidden=24"] and len(other.outcomes) == 1
