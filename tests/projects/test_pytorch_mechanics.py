"""projects/pytorch_mechanics: every mechanics claim as an assertion (shared storage, strides, the contiguity
error and its fix, broadcasting shapes, gradients exactly zero, the BatchNorm ValueError, dropout's spread),
the hand-written loop against the engine, and the scripts' quick runs on real MNIST, in-process."""
import itertools
import json
import math

import numpy as np
import pytest

from tests.conftest import REPO, docs_module, requires

torch = pytest.importorskip("torch")

from projects.pytorch_mechanics import dying_relu, manual_loop, modern_mlp, tensors  # noqa: E402


# ------------------------------------------------------------------ tensors
def test_every_view_shares_the_storage_and_its_strides_address_each_element():
    rows = {r["tensor"]: r for r in tensors.layouts()}
    expected = {   # (shape, stride, offset, contiguous)
        "base = arange(12).reshape(3, 4)": ((3, 4), (4, 1), 0, True),
        "base.view(4, 3)": ((4, 3), (3, 1), 0, True),
        "base.reshape(2, 6)": ((2, 6), (6, 1), 0, True),
        "base.transpose(0, 1)": ((4, 3), (1, 4), 0, False),
        "base[:, 1:3]": ((3, 2), (4, 1), 1, False),
        "base[::2, ::3]": ((2, 2), (8, 3), 0, False),
        "base[:, :1].expand(3, 4)": ((3, 4), (4, 0), 0, False),
    }
    assert set(rows) == set(expected)
    for name, (shape, stride, offset, contiguous) in expected.items():
        r = rows[name]
        assert (r["shape"], r["stride"], r["offset"], r["contiguous"]) == (shape, stride, offset, contiguous), name
        assert r["shares_storage"] and r["first_element_bytes"] == offset * 4      # float32: 4 bytes each
    # the transpose's element [i, j] is stored at i * 1 + j * 4
    assert rows["base.transpose(0, 1)"]["indices"][2] == [2, 6, 10]


def test_storage_indices_catch_a_wrong_stride():
    t = tensors.base_tensor().transpose(0, 1)
    assert torch.equal(tensors.storage_indices(t), t.long())
    wrong = torch.as_strided(tensors.base_tensor(), (4, 3), (3, 1))   # same shape, another walk
    assert not torch.equal(tensors.storage_indices(wrong), t.long())


def test_view_of_a_transpose_fails_and_contiguous_or_reshape_fix_it_by_copying():
    facts = tensors.contiguity()
    assert facts["error"].startswith(tensors.CONTIGUITY_ERROR)
    assert facts["transpose_contiguous"] is False
    assert facts["contiguous_view_copies"] and facts["reshape_of_transpose_copies"]
    assert not facts["reshape_of_contiguous_copies"] and facts["contiguous_of_contiguous_is_self"]
    assert facts["flattened_order"] == [0, 4, 8, 1, 5, 9, 2, 6, 10, 3, 7, 11]


def test_broadcast_rule_matches_torch_on_every_small_pair_of_shapes():
    shapes = [s for n in range(4) for s in itertools.product((1, 2, 3), repeat=n)]
    failures = 0
    for a, b in itertools.product(shapes, repeat=2):
        try:
            theirs = tuple(torch.broadcast_shapes(a, b))
        except RuntimeError:
            with pytest.raises(ValueError, match="clash"):
                tensors.broadcast_shape(a, b)
            failures += 1
            continue
        assert tensors.broadcast_shape(a, b) == theirs, (a, b)
    assert failures > 100      # the sweep covered clashing pairs too


def test_documented_broadcasting_cases():
    cases = {(c["a"], c["b"]): c for c in tensors.broadcasting()}
    assert cases[((5, 1, 4), (3, 1))]["result"] == (5, 3, 4)
    assert cases[((2, 3, 4), (3, 1))]["result"] == (2, 3, 4)
    assert cases[((4, 3), ())]["result"] == (4, 3)
    failing = cases[((3, 4), (3,))]
    assert failing["result"] is None and "4 and 3 clash at dimension -1" in failing["error"]


def test_tensors_script_writes_its_tables_and_figures(tmp_path):
    tensors.main(["--quiet", "--out", str(tmp_path)])
    run = tmp_path / "tensors"
    for name in ("views.md", "views.csv", "broadcasting.md", "storage_layout.png", "broadcasting.png"):
        assert (run / name).stat().st_size > 0, name
    summary = json.loads((run / "summary.json").read_text())
    assert summary["views"] == 7 and summary["broadcast_failures"] == 1 and summary["contiguous_view_copies"]


# ------------------------------------------------------------------ dying ReLU, batch norm, dropout
def test_negative_weights_on_nonnegative_inputs_give_exactly_zero_weight_gradients():
    x = torch.rand(32, 1, 28, 28)
    y = torch.randint(0, 10, (32,))
    for init, dead in (("negative", True), ("he", False)):
        model = dying_relu.build(init, seed=0)
        loss = torch.nn.functional.cross_entropy(model(x), y)
        loss.backward()
        layers = dying_relu.linears(model)
        weight_grads = [float(layer.weight.grad.abs().max()) for layer in layers]
        if dead:
            assert weight_grads == [0.0, 0.0, 0.0]
            assert float(layers[0].bias.grad.abs().max()) == 0.0 and float(layers[1].bias.grad.abs().max()) == 0.0
            assert float(layers[-1].bias.grad.abs().max()) > 0.0      # only the output bias learns
            assert abs(loss.item() - math.log(10)) < 1e-6              # zero logits: the uniform prediction
        else:
            assert min(weight_grads) > 0.0


def test_label_entropy_is_the_floor_of_a_constant_prediction():
    labels = np.array([0] * 50 + [1] * 50)
    assert dying_relu.label_entropy(labels) == pytest.approx(math.log(2))
    assert dying_relu.label_entropy(np.arange(10)) == pytest.approx(math.log(10))


def test_one_image_in_train_mode_breaks_batchnorm_and_dropout_varies_without_it():
    torch.manual_seed(0)
    x = torch.rand(1, 1, 28, 28)
    bn, plain = modern_mlp.build(True, seed=0), modern_mlp.build(False, seed=0)
    error = modern_mlp.train_mode_error(bn, x)
    assert error is not None and modern_mlp.BATCHNORM_ERROR in error and "torch.Size([1, 512])" in error
    assert modern_mlp.train_mode_error(plain, x) is None
    eval_p = modern_mlp.probabilities(bn, x, "eval", passes=10)
    assert np.ptp(eval_p, axis=0).max() == 0.0                       # eval mode: deterministic
    train_p = modern_mlp.probabilities(plain, x, "train", passes=20)
    assert np.ptp(train_p, axis=0).max() > 1e-4                      # train mode: dropout draws new masks
    assert np.allclose(train_p.sum(1), 1.0, atol=1e-5)
    # the same model in eval mode has no dropout: its output is what the train-mode passes scatter around
    assert np.ptp(modern_mlp.probabilities(plain, x, "eval", passes=5), axis=0).max() == 0.0


# ------------------------------------------------------------------ the scripts on real MNIST
@requires("mnist")
def test_manual_loop_and_engine_reach_the_same_accuracy(tmp_path):
    out = manual_loop.main(["--quick", "--quiet", "--out", str(tmp_path)])
    assert out["gap_points"] <= manual_loop.TOLERANCE
    assert out["manual"]["test_acc"] > 0.75                    # 3,000 images, one epoch, real test set
    manual = (tmp_path / "manual_loop" / "manual" / "metrics.csv").read_text().splitlines()
    engine = (tmp_path / "manual_loop" / "engine" / "metrics.csv").read_text().splitlines()
    # same initial weights, batches and optimizer: the per-epoch losses agree to the logged digits
    assert manual[1].split(",")[1] == engine[1].split(",")[engine[0].split(",").index("train_loss")]
    assert (tmp_path / "manual_loop" / "curves.png").stat().st_size > 0


@requires("mnist")
def test_dying_relu_script_asserts_its_claims_on_real_digits(tmp_path):
    results = dying_relu.main(["--quick", "--quiet", "--out", str(tmp_path)])
    dead, he = results["negative"]["summary"], results["he"]["summary"]
    assert dead["max_weight_grad_norm"] == 0.0 and he["max_weight_grad_norm"] > 0.0
    assert he["final_val_acc"] > 0.7 and dead["final_val_acc"] < 0.2
    assert (tmp_path / "dying_relu" / "gradient_norms.png").stat().st_size > 0


@requires("mnist")
def test_modern_mlp_quick_run_and_stress_test(tmp_path):
    out = modern_mlp.main(["--quick", "--quiet", "--out", str(tmp_path)])
    assert out["batchnorm"]["test_acc"] > 0.8
    easy = out["images"][0]
    assert easy["eval_prediction"] == easy["label"] and easy["distinct_outputs"] > 1
    assert modern_mlp.BATCHNORM_ERROR in easy["train_mode_error"]
    summary = json.loads((tmp_path / "modern_mlp" / "summary.json").read_text())
    assert summary["full_run"] is False and len(summary["train_p_true_0"]) == modern_mlp.PASSES
    assert (tmp_path / "modern_mlp" / "dropout_spread.png").stat().st_size > 0


def test_bad_flag_value_exits_2_in_one_line(capsys):
    with pytest.raises(SystemExit) as exit_info:
        manual_loop.main(["--epochs", "0"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--epochs" in err[0]


# ------------------------------------------------------------------ the notes: quiz key and links
def docs_quiz():
    """docs/quiz.py, the generator of docs/quiz.md (it lives with the docs, outside every package)."""
    return docs_module("quiz")


def test_quiz_page_is_the_rendered_quiz_and_its_key_is_computed():
    quiz = docs_quiz()

    page = (REPO / "docs" / "quiz.md").read_text()
    assert len(quiz.QUESTIONS) == 15
    key = quiz.answer_key(page)
    computed = [q.answer() for q in quiz.QUESTIONS]
    for i, (written, answer) in enumerate(zip(key, computed), 1):
        assert written == answer, f"docs/quiz.md answer {i} says {written!r}; the code computes {answer!r}"
    assert len(key) == 15 and page == quiz.render()
    for q in quiz.QUESTIONS:
        assert (REPO / q.where).is_file(), q.where


def test_answer_key_reads_the_numbered_lines_after_its_heading():
    quiz = docs_quiz()

    text = "# q\n\n1. **A.** question?\n\n## Answer key\n\n<!-- note -->\n\n1. forty-two\n2. (3, 4)\n"
    assert quiz.answer_key(text) == ["forty-two", "(3, 4)"]
