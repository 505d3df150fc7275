"""projects/representation_transfer parts C and D: the rotation transform, the BlockCNN and its probe head,
quick runs on real CIFAR-10 (pretrain, features, frozen / fine-tuned / scratch transfer, the cross-task
control, the ResNet-18 export that section 4 loads) and bad input."""
import json

import numpy as np
import pytest

from tests.conftest import assert_user_error, requires, run_script

torch = pytest.importorskip("torch")

from projects.representation_transfer.models import BlockCNN, ProbeHead  # noqa: E402
from shared_utils.pytorch import pipeline as tp  # noqa: E402
from shared_utils.pytorch.models import resnet18  # noqa: E402

SCRIPT = "projects/representation_transfer/rotation_transfer.py"
EXPORT = "projects/representation_transfer/rotation_resnet18.py"


def test_rotate_quarters_turns_each_image_and_its_inverse_restores_it():
    x = torch.rand(40, 3, 6, 6)
    k = torch.arange(40) % 4
    out = tp.rotate_quarters(x, k)
    assert out.shape == x.shape
    for i in range(40):
        assert torch.equal(out[i], torch.rot90(x[i], int(k[i]), dims=(1, 2)))
    assert torch.equal(tp.rotate_quarters(out, -k), x)                    # exact inverse, no interpolation
    assert torch.equal(tp.rotate_quarters(tp.rotate_quarters(x, k), 4 - k), x)
    # a 90-degree turn moves the top-right pixel to the top-left (anticlockwise, as rot90)
    one = torch.zeros(1, 1, 3, 3)
    one[0, 0, 0, 2] = 1
    assert tp.rotate_quarters(one, torch.tensor([1]))[0, 0, 0, 0] == 1


def test_rotation_prediction_labels_are_the_turns_and_uniform():
    x = torch.rand(4000, 1, 4, 4)
    out, k = tp.rotation_prediction()(x, torch.zeros(4000, dtype=torch.long), torch.Generator().manual_seed(1))
    assert out.shape == x.shape and k.dtype == torch.long and k.shape == (4000,)
    assert torch.equal(tp.rotate_quarters(out, -k), x)                    # undoing the label's turn gives the input
    counts = torch.bincount(k, minlength=4).float() / 4000
    assert torch.all((counts - 0.25).abs() < 0.03)


def test_all_rotations_lays_out_four_turns_with_their_labels():
    x = torch.randint(0, 255, (5, 3, 8, 8), dtype=torch.uint8)
    turned, labels = tp.all_rotations(x.numpy())
    assert turned.shape == (20, 3, 8, 8) and turned.dtype == torch.uint8
    assert labels.tolist() == [0] * 5 + [1] * 5 + [2] * 5 + [3] * 5
    for r in range(4):
        assert torch.equal(turned[5 * r:5 * r + 5], torch.rot90(x, r, dims=(2, 3)))


def test_block_cnn_features_and_probe_head_shapes():
    model = BlockCNN(classes=4, width=8)
    x = torch.rand(2, 3, 32, 32)
    shapes = [tuple(model.features(x, k).shape) for k in (1, 2, 3, 4)]
    assert shapes == [(2, 8, 16, 16), (2, 16, 8, 8), (2, 32, 4, 4), (2, 64, 4, 4)]
    assert model(x).shape == (2, 4)
    with pytest.raises(ValueError):
        model.features(x, 5)
    head = ProbeHead(8 * 16 * 16, classes=10, hidden=20)
    assert head(model.features(x, 1).half()).shape == (2, 10)     # features stored as float16 still score
    assert sum(isinstance(m, torch.nn.Linear) for m in head.modules()) == 3


@pytest.mark.slow
@requires("cifar10")
def test_quick_run_pretrains_transfers_and_keeps_frozen_features_fixed(tmp_path):
    from projects.representation_transfer import rotation_transfer as rt

    result = run_script(SCRIPT, "--quick", "--quiet", "--out", tmp_path, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    root = tmp_path / "rotation_transfer"
    for name in ("accuracy_by_block.md", "accuracy_vs_block.png", "convergence.png", "crosstask_by_block.md",
                 "crosstask_vs_block.png", "filters.png", "steps_to_50.md", "analysis.json"):
        assert (root / name).is_file(), name
    rotation = json.loads((root / "pretrain" / "rotation" / "seed_0" / "summary.json").read_text())
    assert rotation["images"] == 800                       # train and validation images, unlabelled
    assert 0.25 < rotation["test_acc"] <= 1.0               # four turns of every test image
    # the saved block-1 features are the rotation checkpoint's block 1 applied to the normalised images
    state = torch.load(root / "pretrain" / "rotation" / "seed_0" / "last.pt", weights_only=True)["model"]
    model = BlockCNN(classes=4)
    model.load_state_dict(state)
    feats = np.load(root / "features" / "rotation" / "seed_0" / "features.npz")
    ds = rt.load({"val_size": 200, "limit_train": 800, "test_subset": 300, "quiet": True})
    mean, std = torch.tensor(ds.mean).view(1, 3, 1, 1), torch.tensor(ds.std).view(1, 3, 1, 1)
    with torch.no_grad():
        x = (torch.as_tensor(ds.train.x[:8]).float() / 255 - mean) / std
        expected = torch.flatten(model.eval().features(x, 1), 1).numpy()
    assert feats["train_1"].shape == (600, 32 * 16 * 16)
    np.testing.assert_allclose(feats["train_1"][:8].astype(np.float32), expected, rtol=1e-2, atol=1e-2)
    np.testing.assert_array_equal(feats["train_y"], ds.train.y)
    frozen = json.loads((root / "transfer" / "rotation_frozen_k_1_100_labels" / "seed_0" / "summary.json").read_text())
    assert frozen["labels"] == 100 and frozen["trainable"] == sum(
        p.numel() for p in ProbeHead(32 * 16 * 16, 10).parameters())
    tuned = json.loads((root / "transfer" / "rotation_fine-tuned_k_4_100_labels" / "seed_0" / "summary.json").read_text())
    assert tuned["labels"] == 100 and tuned["trainable"] == sum(p.numel() for p in BlockCNN().parameters())
    cross = json.loads((root / "crosstask" / "supervised_0-4_frozen_k_4_50_labels" / "seed_0" / "summary.json")
                       .read_text())
    assert cross["labels"] == 50
    analysis = json.loads((root / "analysis.json").read_text())
    goals = analysis["goals"]["100 labels"]
    assert set(analysis["goals"]) == {"100 labels"} and goals["frozen_peak_k"] in (1, 4)
    assert goals["finetune_k4"]["k"] == 4 and isinstance(goals["finetune_k4"]["separate"], bool)
    assert "missing" not in (root / "accuracy_by_block.md").read_text()


def test_checkpoint_blocks_takes_only_the_first_k_blocks(tmp_path):
    from projects.representation_transfer.rotation_transfer import checkpoint_blocks
    from shared_utils.errors import UserError

    torch.save({"model": BlockCNN(classes=4, width=8).state_dict()}, tmp_path / "last.pt")
    two = checkpoint_blocks(tmp_path / "last.pt", 2)
    assert {k.split(".")[1] for k in two} == {"0", "1"} and not any(k.startswith("fc.") for k in two)
    target = BlockCNN(classes=10, width=8)
    before = {k: v.clone() for k, v in target.state_dict().items()}
    target.load_state_dict(two, strict=False)
    after = target.state_dict()
    assert all(torch.equal(after[k], two[k]) for k in two)
    assert all(torch.equal(after[k], before[k]) for k in after if k not in two)     # blocks 3, 4 and fc untouched
    torch.save({"model": resnet18(classes=4).state_dict()}, tmp_path / "other.pt")
    with pytest.raises(UserError, match="no block 2 of a BlockCNN"):
        checkpoint_blocks(tmp_path / "other.pt", 2)


@pytest.mark.parametrize("args, fragment", [
    (["--labels", "5000"], "more than the 600 training images"),
    (["--cross-labels", "900"], "--cross-labels 900"),
    (["--blocks", "5"], "--blocks"),
])
def test_bad_input_exits_2_with_one_line(tmp_path, args, fragment):
    result = run_script(SCRIPT, "--quick", "--out", tmp_path / "out", *args, cwd=tmp_path)
    assert_user_error(result, fragment)
    assert not [p for p in tmp_path.rglob("*") if p.is_file()]


@requires("cifar10")
def test_rotation_resnet18_exports_weights_that_section4_loads(tmp_path):
    from shared_utils.pytorch.models import load_pretrained

    result = run_script(EXPORT, "--quick", "--quiet", "--out", tmp_path, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    path = tmp_path / "rotation_resnet18" / "rotation_resnet18.pt"
    state = torch.load(path, weights_only=True)
    assert isinstance(state, dict) and all(isinstance(v, torch.Tensor) for v in state.values())
    assert not any(k.startswith("fc.") for k in state) and len(state) == 120
    model = resnet18(cifar_stem=False)
    loaded = load_pretrained(model, str(path))
    assert loaded["loaded"] == 120 and sorted(loaded["missing"]) == ["fc.bias", "fc.weight"]
    assert torch.equal(model.state_dict()["layer4.1.conv2.weight"], state["layer4.1.conv2.weight"])
    summary = json.loads((tmp_path / "rotation_resnet18" / "rotation" / "seed_0" / "summary.json").read_text())
    assert summary["images"] == 600 and summary["exported"] == 120


@pytest.mark.parametrize("make, fragment", [
    (lambda: BlockCNN(classes=4).state_dict(), "none of its tensors belong to a ResNet-18"),
    (lambda: resnet18(classes=4, cifar_stem=True).state_dict(), "shapes do not fit"),
])
def test_transfer_learning_rejects_weights_of_another_architecture(tmp_path, make, fragment):
    torch.save(make(), tmp_path / "other.pt")
    result = run_script("section4_transfer/transfer_learning.py", "--quick", "--weights", tmp_path / "other.pt",
                        "--out", tmp_path / "out", cwd=tmp_path)
    assert_user_error(result, fragment)
    assert not (tmp_path / "out" / "transfer_learning").exists()


def test_achromatic_share_of_filters():
    from projects.representation_transfer.rotation_transfer import achromatic_share

    grey = np.repeat(np.random.default_rng(0).normal(size=(8, 1, 3, 3)), 3, axis=1)      # same in R, G and B
    opponent = grey * np.array([1.0, -1.0, 0.0]).reshape(1, 3, 1, 1)                     # R minus G: no grey part
    assert achromatic_share(grey) == pytest.approx(1.0)
    assert achromatic_share(opponent) == pytest.approx(0.0, abs=1e-12)
    random = np.random.default_rng(1).normal(size=(4000, 3, 3, 3))
    assert achromatic_share(random) == pytest.approx(1 / 3, abs=0.02)
