"""Every section 4 script runs with --quick on real CIFAR-10 images and writes its outputs."""
import json
import signal
import subprocess
import sys
import time

import pytest

from shared_utils import runs
from tests.conftest import REPO, assert_user_error, requires, run_folder_differences, run_script, sizes

pytest.importorskip("torch")


def script(name, tmp_path, *args, expect=0):
    result = run_script(f"section4_transfer/{name}", "--quiet", "--out", tmp_path, *args, cwd=tmp_path)
    assert result.returncode == expect, result.stderr
    return result


@requires("cifar10")
def test_mlp_vs_cnn_then_saliency(tmp_path):
    script("mlp_vs_cnn.py", tmp_path, "--quick")
    root = tmp_path / "mlp_vs_cnn"
    assert (root / "curves.png").is_file() and "| CNN | 1 |" in (root / "table.md").read_text()
    for name in ("MLP", "CNN"):
        s = runs.read_summary(root / name / "seed_0")
        assert s["test_acc"] > 0.15 and (root / name / "seed_0" / "dashboard.png").is_file()  # chance 0.10
        config = json.loads((root / name / "seed_0" / "config.json").read_text())
        assert config["train"]["optimizer"] == "adam" and config["train"]["lr"] == 1e-3   # resolved, recorded
    assert runs.read_summary(root / "CNN" / "seed_0")["parameters"] > runs.read_summary(root / "MLP" / "seed_0")["parameters"] / 10
    script("saliency_maps.py", tmp_path, "--ckpt", root / "CNN" / "seed_0" / "best.pt", "--samples", "3", "--count", "2")
    s = runs.read_summary(tmp_path / "saliency")
    assert s["speckle_smoothgrad"] < s["speckle_vanilla"]  # averaging over noise smooths the map
    assert (tmp_path / "saliency" / "vanilla.png").is_file() and (tmp_path / "saliency" / "smoothgrad.png").is_file()


def test_saliency_without_checkpoint_names_the_command(tmp_path):
    result = run_script("section4_transfer/saliency_maps.py", "--ckpt", tmp_path / "none.pt", cwd=tmp_path)
    assert_user_error(result, "no checkpoint", "python section4_transfer/mlp_vs_cnn.py")


@requires("cifar10")
@sizes("--limit-train", "96", "--val-size", "32", "--test-subset", "64")
def test_resnet_vs_plain_records_gradient_flow(tmp_path, size):
    script("resnet_vs_plain.py", tmp_path, "--quick", *size.flags)
    root = tmp_path / "resnet_vs_plain"
    ratio = {}
    for name in ("Plain-8", "Plain-56", "ResNet-8", "ResNet-56"):
        norms = (root / name / "seed_0" / "grad_norms.csv").read_text().splitlines()
        assert norms[0] == "step,first_conv_grad_norm" and len(norms) > 1
        snapshots = json.loads((root / name / "seed_0" / "grad_snapshots.json").read_text())
        depth = int(name.split("-")[1])
        assert all(len(v) == depth - 1 for v in snapshots.values())   # every conv layer (fc excluded)
        first_step = snapshots["1"]
        ratio[name] = first_step[0] / first_step[-1]     # input-side over output-side gradient norm
    # the claim the quick run can show: without shortcuts, 56 layers make the first step's gradient
    # blow up toward the input (hundreds to thousands of times the last layer's); with them it stays
    # within about ten times
    assert ratio["Plain-56"] > 20 * ratio["ResNet-56"], ratio
    assert ratio["ResNet-56"] < 50, ratio
    for png in ("curves.png", "first_conv_grad_norm.png", "layer_grad_norms.png", "bars.png"):
        assert (root / png).is_file(), png
    # --resume skips the finished trials and leaves their gradient-flow records as they were
    before = {p: p.read_bytes() for p in root.glob("*/seed_0/grad_*")}
    script("resnet_vs_plain.py", tmp_path, "--quick", *size.flags, "--resume")
    assert len(before) == 8 and all(p.read_bytes() == b for p, b in before.items())
    assert "skipped" in (root / "manifest.json").read_text()


def test_resnet_vs_plain_rejects_bad_depths(tmp_path):
    result = run_script("section4_transfer/resnet_vs_plain.py", "--depths", "20", "21", cwd=tmp_path)
    assert_user_error(result, "6n+2")


@requires("cifar10")
def test_transfer_learning_offline_error_and_weights_from_a_file(tmp_path):
    import torch

    from shared_utils.pytorch.models import resnet18

    result = run_script("section4_transfer/transfer_learning.py", "--quick", "--data-dir", tmp_path / "nothing",
                        cwd=tmp_path, env_extra={"TORCH_HOME": str(tmp_path / "hub"),
                                                 "HTTPS_PROXY": "http://127.0.0.1:9", "https_proxy": "http://127.0.0.1:9"})
    assert_user_error(result, "--weights PATH", "--weights none")
    torch.manual_seed(0)
    torch.save(resnet18(classes=1000, cifar_stem=False).state_dict(), tmp_path / "backbone.pt")
    script("transfer_learning.py", tmp_path, "--quick", "--weights", tmp_path / "backbone.pt")
    root = tmp_path / "transfer_learning"
    frozen = runs.read_summary(root / "pretrained_frozen_backbone" / "seed_0")
    full = runs.read_summary(root / "pretrained_fine-tune_all" / "seed_0")
    assert frozen["trainable_parameters"] == 512 * 10 + 10 and full["trainable_parameters"] > 11_000_000
    assert frozen["loaded"]["loaded"] == 120          # every backbone tensor but the replaced head
    # frozen means frozen: after training, every backbone tensor (BatchNorm statistics included) is the loaded one
    from shared_utils.pytorch.checkpoint import load_torch

    trained = load_torch(root / "pretrained_frozen_backbone" / "seed_0" / "best.pt")["model"]
    backbone = torch.load(tmp_path / "backbone.pt", weights_only=True)
    shared = [k for k in trained if k in backbone and not k.startswith("fc.")]
    assert len(shared) >= 100 and all(torch.equal(trained[k], backbone[k]) for k in shared)
    tuned = load_torch(root / "pretrained_fine-tune_all" / "seed_0" / "best.pt")["model"]
    assert not torch.equal(tuned["conv1.weight"], backbone["conv1.weight"])   # fine-tuning moved them
    assert (root / "table.md").is_file() and (root / "curves.png").is_file()


def test_inspect_resnet(tmp_path):
    result = script("inspect_resnet.py", tmp_path, "--num-classes", "2", "--size", "64")
    s = runs.read_summary(tmp_path / "inspect_resnet")
    assert s["total_parameters"] == 11_689_512 and s["state_dict_tensors"] == 122
    assert s["output_shape"] == [2, 2] and s["trainable_when_frozen"] == ["fc.weight", "fc.bias"]
    assert s["parameters_per_stage"]["layer4"] == 8_393_728 and "fc.weight" in (tmp_path / "inspect_resnet" / "state_dict.md").read_text()
    assert "trainable" in result.stdout


@requires("cifar10")
def test_augmentation_and_regularization_studies(tmp_path):
    script("augmentation_study.py", tmp_path, "--quick", "--conditions", "combined")
    root = tmp_path / "augmentation"
    for png in ("examples.png", "bars.png", "curves.png"):
        assert (root / png).is_file(), png
    assert "| combined | 1 |" in (root / "table.md").read_text()
    script("regularization_study.py", tmp_path, "--quick", "--conditions", "all combined")
    root = tmp_path / "regularization"
    assert (root / "bars.png").is_file() and "| all combined | 1 |" in (root / "table.md").read_text()


def test_a_resumed_trial_cuts_its_gradient_records_back_to_the_checkpoint(tmp_path):
    """Rows appended after the checkpoint a trial resumes from (an interrupted epoch) are dropped, so the resumed
    run records each step once; a fresh trial starts empty; new steps are appended as they come."""
    import torch

    from section4_transfer.resnet_vs_plain import GradientRecorder

    (tmp_path / "grad_norms.csv").write_text("step,first_conv_grad_norm\r\n" +
                                             "".join(f"{s},0.{s}\r\n" for s in range(1, 7)))
    (tmp_path / "grad_snapshots.json").write_text('{"2": [1.0], "6": [2.0]}')
    recorder = GradientRecorder([2, 6], tmp_path, resume_step=4)
    assert sorted(recorder.first_conv) == [1, 2, 3, 4] and list(recorder.snapshots) == ["2"]
    assert (tmp_path / "grad_norms.csv").read_text().count("\n") == 1 + 4
    model = torch.nn.Sequential(torch.nn.Conv2d(1, 1, 3))
    model(torch.ones(1, 1, 4, 4)).sum().backward()
    recorder(5, model)
    assert (tmp_path / "grad_norms.csv").read_text().splitlines()[-1].startswith("5,")
    assert GradientRecorder([2], tmp_path).first_conv == {}
    assert (tmp_path / "grad_norms.csv").read_text().count("\n") == 1


@pytest.mark.slow
@requires("cifar10")
def test_ctrl_c_then_resume_leaves_every_file_as_an_uninterrupted_run(tmp_path):
    """Ctrl-C (SIGINT) in the middle of a trial's epoch, after gradient rows past its last checkpoint were appended:
    the run ends with exit 130 and one line, leaves no temporary file, and --resume then finishes with every file
    (metrics, checkpoints, gradient records, tables, figures) as a run that was never interrupted writes it."""
    import torch

    flags = ["--quick", "--epochs", "4", "--depths", "8", "--limit-train", "288", "--val-size", "32",
             "--test-subset", "64", "--batch-size", "32", "--quiet"]          # 8 steps an epoch
    command = [sys.executable, str(REPO / "section4_transfer" / "resnet_vs_plain.py"), *flags]
    straight = subprocess.run(command + ["--out", str(tmp_path / "straight")], capture_output=True, text=True)
    assert straight.returncode == 0, straight.stderr
    cut = tmp_path / "cut"
    proc = subprocess.Popen(command + ["--out", str(cut)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True)
    grads = cut / "resnet_vs_plain" / "ResNet-8" / "seed_0" / "grad_norms.csv"      # the second trial to run
    deadline = time.time() + 300
    while not (grads.exists() and len(grads.read_text().splitlines()) > 1 + 17) and time.time() < deadline:
        time.sleep(0.01)                                       # two epochs checkpointed, the third under way
    proc.send_signal(signal.SIGINT)
    err = proc.communicate(timeout=120)[1]
    assert proc.returncode == 130 and err.strip() == "resnet_vs_plain.py: interrupted", err
    assert not [p for p in cut.rglob("*") if p.name.endswith(".tmp")]
    recorded = len(grads.read_text().splitlines()) - 1
    checkpointed = torch.load(grads.parent / "last.pt", weights_only=True)["step"]
    assert recorded > checkpointed, (recorded, checkpointed)   # the case that appended twice before
    resumed = subprocess.run(command + ["--out", str(cut), "--resume"], capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr
    assert run_folder_differences(tmp_path / "straight", cut) == []
