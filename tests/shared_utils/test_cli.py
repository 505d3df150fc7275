import sys
from pathlib import Path

import pytest

from shared_utils import cli
from shared_utils.errors import UserError


def make():
    p = cli.parser("doc", epochs=3, seeds=True, quick={"epochs": 1, "limit_train": 100})
    p.add_argument("--ckpt", type=cli.existing_file, default=None)
    return p


def test_defaults_and_seeds():
    args = cli.parse(make(), [])
    assert args.epochs == 3 and args.seeds == [0] and args.device == "auto" and not args.quick
    args = cli.parse(make(), ["--seeds", "1", "2", "--lr", "0.5"])
    assert args.seeds == [1, 2] and args.lr == 0.5


def test_quick_preset_only_touches_defaults():
    args = cli.parse(make(), ["--quick"])
    assert args.epochs == 1 and args.limit_train == 100
    args = cli.parse(make(), ["--quick", "--epochs", "2"])
    assert args.epochs == 2 and args.limit_train == 100


@pytest.mark.parametrize("argv, fragment", [
    (["--epochs", "0"], "positive integer"),
    (["--batch-size", "-3"], "positive integer"),
    (["--lr", "abc"], "positive number"),
    (["--lr", "-1"], "positive finite"),
    (["--seed", "-1"], "seed from 0 to 4294967295"),
    (["--seed", str(2**64)], "seed from 0 to 4294967295"),
    (["--device", "tpu"], "invalid choice"),
    (["--ckpt", "/no/such/file.npz"], "no such file"),
    (["--bogus"], "unrecognized arguments"),
])
def test_bad_values_exit_2_with_one_line(argv, fragment, capsys):
    with pytest.raises(SystemExit) as excinfo:
        cli.parse(make(), argv)
    assert excinfo.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and fragment in err[0] and "--help" in err[0]


def test_data_dir_that_is_a_file_is_rejected(tmp_path, capsys):
    f = tmp_path / "file"
    f.write_text("x")
    with pytest.raises(SystemExit) as excinfo:
        cli.parse(make(), ["--data-dir", str(f)])
    assert excinfo.value.code == 2 and "not a directory" in capsys.readouterr().err


def test_run_turns_user_error_into_exit_2(capsys, monkeypatch):
    monkeypatch.setattr(sys, "argv", ["prog.py"])

    def main(argv):
        raise UserError("put the files in ./data")

    with pytest.raises(SystemExit) as excinfo:
        cli.run(main)
    assert excinfo.value.code == 2
    assert capsys.readouterr().err == "prog.py: error: put the files in ./data\n"


def make_with_seeds():
    p = cli.parser("test", seeds=True)
    return p


@pytest.mark.parametrize("argv, fragment", [
    (["--seeds", "0", "0"], "each seed once"),
    (["--seeds", "1", "2", "1"], "each seed once"),
])
def test_repeated_seeds_are_refused(argv, fragment, capsys):
    with pytest.raises(SystemExit) as excinfo:
        cli.parse(make_with_seeds(), argv)
    assert excinfo.value.code == 2 and fragment in capsys.readouterr().err


def test_out_under_a_file_or_on_a_read_only_place_is_refused_before_any_work(tmp_path, capsys):
    f = tmp_path / "file"
    f.write_text("x")
    for out, fragment in ((f, "is a file"), (f / "sub" / "dir", "inside"), (Path("/proc/no_runs_here"), "")):
        with pytest.raises(SystemExit) as excinfo:
            cli.parse(make(), ["--out", str(out)])
        err = capsys.readouterr().err.strip().splitlines()
        assert excinfo.value.code == 2 and len(err) == 1 and "--out" in err[0] and fragment in err[0], err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]         # nothing was created
    assert cli.parse(make(), ["--out", str(tmp_path / "new" / "deeper")]).out == tmp_path / "new" / "deeper"
    assert list((tmp_path / "new" / "deeper").iterdir()) == []            # the probe is gone


def test_numpy_scripts_refuse_an_accelerator_at_parse_time(capsys, monkeypatch):
    monkeypatch.delitem(sys.modules, "torch", raising=False)
    with pytest.raises(SystemExit) as excinfo:
        cli.parse(make(), ["--device", "cuda"])
    assert excinfo.value.code == 2 and "NumPy-only" in capsys.readouterr().err


def test_float_and_bounded_types():
    import argparse

    for bad in ("-1", "nan", "inf", "x"):
        with pytest.raises(argparse.ArgumentTypeError):
            cli.nonneg_float(bad)
    assert cli.nonneg_float("0") == 0.0 and cli.nonneg_float("2.5") == 2.5
    size = cli.bounded_int(8, 1024, " pixels")
    assert size("224") == 224
    for bad in ("0", "1000000", "2.5"):
        with pytest.raises(argparse.ArgumentTypeError):
            size(bad)


def test_disk_errors_and_memory_errors_become_one_line(capsys, monkeypatch):
    monkeypatch.setattr(sys, "argv", ["prog.py"])

    def full_disk(argv):
        raise OSError(28, "No space left on device", "/runs/x/last.pt")

    def huge(argv):
        raise MemoryError()

    for main, fragment in ((full_disk, "cannot read or write /runs/x/last.pt (No space left on device)"),
                           (huge, "not enough memory")):
        with pytest.raises(SystemExit) as excinfo:
            cli.run(main)
        err = capsys.readouterr().err.strip().splitlines()
        assert excinfo.value.code == 2 and len(err) == 1 and fragment in err[0], err
