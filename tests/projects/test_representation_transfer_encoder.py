"""projects/representation_transfer/encoder_transfer.py: a quick run on real MNIST that pretrains, transfers
(frozen weights stay the pretrained ones, label budgets are class-balanced), reports; and bad input."""
import json

import pytest

from tests.conftest import assert_user_error, requires, run_script, sizes

torch = pytest.importorskip("torch")

SCRIPT = "projects/representation_transfer/encoder_transfer.py"


@requires("mnist")
@sizes("--limit-train", "1500", labels=(1250, 2500))
def test_quick_run_pretrains_transfers_and_keeps_a_frozen_encoder_fixed(tmp_path, size):
    result = run_script(SCRIPT, "--quick", *size.flags, "--quiet", "--out", tmp_path, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    root = tmp_path / "encoder_transfer"
    for name in ("accuracy_by_labels.md", "steps_to_90.md", "accuracy_vs_labels.png", "convergence.png"):
        assert (root / name).is_file(), name
    pretrained = torch.load(root / "pretrain" / "mlp_k_32" / "seed_0" / "best.pt", weights_only=True)["model"]
    frozen = torch.load(root / "transfer" / "pretrained_frozen_100_labels" / "seed_0" / "last.pt", weights_only=True)
    tuned = torch.load(root / "transfer" / "pretrained_fine-tuned_100_labels" / "seed_0" / "last.pt", weights_only=True)
    for key, value in frozen["model"].items():
        if key.startswith("encoder."):
            assert torch.equal(value, pretrained[key]), key          # loaded, then never moved
    assert any(not torch.equal(v, pretrained[k]) for k, v in tuned["model"].items() if k.startswith("encoder."))
    summary = json.loads((root / "transfer" / "pretrained_frozen_100_labels" / "seed_0" / "summary.json").read_text())
    assert summary["labels"] == 100 and summary["trainable"] == 32 * 10 + 10 and summary["steps"] >= 20
    scratch = json.loads((root / "transfer" / "scratch_all_labels" / "seed_0" / "summary.json").read_text())
    assert scratch["labels"] == size.expect["labels"] and scratch["test_acc"] > 0.5     # all labels, 2 epochs
    table = (root / "accuracy_by_labels.md").read_text()
    assert "missing" not in table and "| scratch |" in table


@pytest.mark.parametrize("args, fragment", [
    (["--labels", "5000"], "more than the 2,500 training images"),
    (["--labels", "5"], "--labels"),
])
def test_bad_input_exits_2_with_one_line(tmp_path, args, fragment):
    result = run_script(SCRIPT, "--quick", "--out", tmp_path / "out", *args, cwd=tmp_path)
    assert_user_error(result, fragment)
    assert not [p for p in tmp_path.rglob("*") if p.is_file()]
