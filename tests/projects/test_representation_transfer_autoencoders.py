"""projects/representation_transfer/autoencoders.py: the PCA baseline against scikit-learn, the knee rule,
the models, a quick run on real MNIST, and bad input."""
import json

import numpy as np
import pytest

from tests.conftest import assert_user_error, folder_state, requires, run_script, sizes

torch = pytest.importorskip("torch")

from projects.representation_transfer import autoencoders as ae  # noqa: E402
from projects.representation_transfer.models import ConvAutoencoder, MLPAutoencoder  # noqa: E402
from shared_utils import data  # noqa: E402

SCRIPT = "projects/representation_transfer/autoencoders.py"


def test_pca_baseline_equals_sklearns_reconstruction():
    from sklearn.decomposition import PCA

    ds = data.digits(val_size=200, seed=0)             # 8x8 digits: 64 pixels (sklearn's own data set)
    train, test = ds.train.x.reshape(len(ds.train), -1) / 255.0, ds.test.x.reshape(len(ds.test), -1) / 255.0
    ours = ae.pca_errors(ds, [2, 8, 20])
    for k, error in ours.items():
        pca = PCA(n_components=k, svd_solver="full").fit(train)
        rebuilt = pca.inverse_transform(pca.transform(test))
        assert error == pytest.approx(((test - rebuilt) ** 2).sum(axis=1).mean(), rel=1e-6)
    assert ours[2] > ours[8] > ours[20] > 0


def test_knee_is_where_the_log_curve_bends_most():
    codes = [2, 4, 8, 16, 32, 64, 128]
    # falls by half per doubling up to k = 16, then flat: the bend is at 16
    errors = [64.0, 32.0, 16.0, 8.0, 7.8, 7.6, 7.5]
    assert ae.knee(codes, errors) == 16


@pytest.mark.parametrize("model", [MLPAutoencoder(5), ConvAutoencoder(5, width=4)])
def test_autoencoders_map_images_to_k_numbers_and_back_into_0_1(model):
    x = torch.rand(3, 1, 28, 28)
    assert model.encoder(x).shape == (3, 5)
    with torch.no_grad():
        out = model(x)
    assert out.shape == x.shape and float(out.min()) >= 0.0 and float(out.max()) <= 1.0


@requires("mnist")
@sizes("--limit-train", "1000", "--families", "mlp")
def test_quick_run_writes_the_error_table_figures_and_intrinsic_dimension(tmp_path, size):
    result = run_script(SCRIPT, "--quick", *size.flags, "--quiet", "--out", tmp_path, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    root = tmp_path / "autoencoders"
    for name in ("error_vs_code.png", "reconstructions.png", "code_2d.png", "error_by_code.md", "table.md"):
        assert (root / name).is_file(), name
    analysis = json.loads((root / "analysis.json").read_text())
    # PCA at k=32 on 834 (tiny) or 2,500 (quick) training images: 14.4 and about 14; Hinton & Salakhutdinov's
    # 13.87 at k=30 on all of them
    assert 11 < analysis["pca"]["32"] < 17 and analysis["pca"]["2"] > analysis["pca"]["32"]
    assert all(v[0] > 0 for fam in analysis["autoencoders"].values() for v in fam.values())
    ident = analysis["intrinsic_dimension"]
    assert 5 < ident["two_nn"] < 25 and ident["pca_dimensions"]["90%"] > ident["two_nn"]
    with np.load(root / "mlp_k_2" / "seed_0" / "outputs.npz", allow_pickle=False) as f:
        assert f["codes"].shape == (10_000, 2) and f["reconstructions"].shape == (10, 1, 28, 28)
    # the script writes files of its own (PCA errors, intrinsic dimension) beside the study: the study's refusals
    # come first, so a --resume refused for changed settings changes no byte of the folder
    before = folder_state(tmp_path)
    refused = run_script(SCRIPT, "--quick", *size.flags, "--quiet", "--out", tmp_path, "--resume", "--lr", "0.01",
                         cwd=tmp_path)
    assert_user_error(refused, "was made with other settings", "lr")
    assert folder_state(tmp_path) == before


@pytest.mark.parametrize("args, fragment", [
    (["--codes", "785"], "--codes"),
    (["--families", "vae"], "--families"),
])
def test_bad_input_exits_2_with_one_line(tmp_path, args, fragment):
    result = run_script(SCRIPT, "--quick", "--out", tmp_path / "out", *args, cwd=tmp_path)
    assert_user_error(result, fragment)
    assert not [p for p in tmp_path.rglob("*") if p.is_file()]
