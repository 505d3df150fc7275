import sys

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
    (["--seed", "-1"], "integer >= 0"),
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
