import numpy as np
import pytest

torch = pytest.importorskip("torch")

from shared_utils.pytorch import models  # noqa: E402
from shared_utils.pytorch import pipeline as tp  # noqa: E402


@pytest.mark.parametrize("depth, millions", [(20, 0.27), (32, 0.46), (44, 0.66), (56, 0.85)])
def test_resnet_parameter_counts_match_the_paper(depth, millions):
    resnet = models.build_model("resnet", depth=depth)
    plain = models.build_model("plain", depth=depth)
    assert round(models.count_parameters(resnet) / 1e6, 2) == millions
    # residual and plain differ only by the (parameter-free) shortcut
    assert list(resnet.state_dict()) == list(plain.state_dict())
    assert models.count_parameters(plain) == models.count_parameters(resnet)


def test_shortcut_is_the_only_difference():
    torch.manual_seed(0)
    resnet = models.build_model("resnet", depth=20).eval()
    plain = models.build_model("plain", depth=20).eval()
    plain.load_state_dict(resnet.state_dict())
    x = torch.randn(2, 3, 32, 32)
    assert not torch.allclose(resnet(x), plain(x))
    for block in resnet.stages:
        block.residual = False
    assert torch.allclose(resnet(x), plain(x))


@pytest.mark.parametrize("name", ["mlp", "cnn", "resnet", "plain", "resnet18"])
def test_output_shapes(name):
    assert models.build_model(name)(torch.zeros(2, 3, 32, 32)).shape == (2, 10)


def test_imagenet_size_resnet18_keeps_its_stem():
    model = models.resnet18(classes=2, cifar_stem=False)
    assert model.conv1.kernel_size == (7, 7) and model(torch.zeros(1, 3, 224, 224)).shape == (1, 2)


def batch(n=16, seed=0):
    return torch.from_numpy(np.random.default_rng(seed).random((n, 3, 32, 32), dtype=np.float32))


# indexed augmentations (alternating flip) draw nothing from the generator: tests/projects/test_cifar_best.py
@pytest.mark.parametrize("name", sorted(n for n in tp.AUGMENTATIONS if not getattr(tp.AUGMENTATIONS[n](), "takes_index", False)))
def test_augmentations_keep_shape_dtype_range_and_repeat_with_a_seed(name):
    aug = tp.AUGMENTATIONS[name]()
    x = batch(64)   # several chunks for RandAugment, which draws one policy per chunk
    out1 = aug(x.clone(), torch.Generator().manual_seed(1))
    out2 = aug(x.clone(), torch.Generator().manual_seed(1))
    out3 = aug(x.clone(), torch.Generator().manual_seed(2))
    assert out1.shape == x.shape and out1.dtype == torch.float32
    assert out1.min() >= -1e-6 and out1.max() <= 1 + 1e-6
    assert torch.equal(out1, out2), "same seed, same result"
    assert not torch.equal(out1, out3), "another seed, another result"
    assert not torch.equal(out1, x), "it changed the images"


def test_crop_and_flip_move_pixels_not_values():
    x = batch(8)
    cropped = tp.random_crop(0)(x, torch.Generator().manual_seed(0))
    assert torch.equal(cropped, x)                           # padding 0: the only window is the image
    flipped = tp.horizontal_flip(p=1.0)(x, torch.Generator())
    assert torch.equal(flipped, x.flip(3))


def test_cutout_erases_one_size_by_size_square():
    x = torch.ones(400, 3, 32, 32)
    out = tp.cutout(8)(x, torch.Generator().manual_seed(0))
    erased = (out[:, 0] == 0).sum(dim=(1, 2))
    assert erased.max() == 64 and (erased == 64).float().mean() > 0.5   # whole square when it fits
    assert erased.min() >= 16                                            # a corner keeps at least 4x4
    assert torch.equal(out[:, 0] == 0, out[:, 2] == 0)                   # same square in every channel


def test_loader_keeps_labels_aligned_and_normalises():
    n = 50
    images = np.zeros((n, 3, 32, 32), dtype=np.uint8)
    images[:, 0] = np.arange(n, dtype=np.uint8)[:, None, None]   # the label is written in the red channel
    labels = np.arange(n)
    loader = tp.TensorLoader(images, labels, batch_size=16, mean=(0, 0, 0), std=(1, 1, 1),
                             augment=[tp.horizontal_flip(), tp.color_jitter(0.0, 0.0, 0.0)], seed=3)
    seen = []
    for x, y in loader:
        assert x.dtype == torch.float32 and y.dtype == torch.int64
        np.testing.assert_allclose(x[:, 0, 5, 5].numpy() * 255, y.numpy(), atol=1e-3)
        seen += y.tolist()
    assert sorted(seen) == list(range(n)) and len(loader) == 4
    again = tp.TensorLoader(images, labels, batch_size=16, mean=(0, 0, 0), std=(1, 1, 1), seed=3)
    assert [y.tolist() for _, y in again] == [y.tolist() for _, y in tp.TensorLoader(
        images, labels, batch_size=16, mean=(0, 0, 0), std=(1, 1, 1), seed=3)]


def test_a_batch_larger_than_the_data_is_the_whole_data_and_allocates_nothing_more():
    """A typo such as --batch-size 1000000000: every loader clips its batch to the examples it has (a fresh-data
    loader to one epoch's draw), so nothing is allocated for the missing billion."""
    from shared_utils.pytorch.pipeline import FreshLoader, TensorLoader

    x, y = np.zeros((10, 1, 4, 4), np.uint8), np.arange(10)
    loader = TensorLoader(x, y, batch_size=10**9)
    assert loader.batch_size == 10 and len(loader) == 1 and [len(b[1]) for b in loader] == [10]
    drawn = []
    fresh = FreshLoader(lambda n, seed: (drawn.append(n) or np.zeros((n, 3), np.float32), np.zeros(n)), 64,
                        batch_size=10**9)
    assert fresh.batch_size == 64 and [len(b[1]) for b in fresh] == [64] and drawn == [64]


def test_scripts_that_cannot_use_a_huge_batch_refuse_it_in_one_line(tmp_path):
    from tests.conftest import DATA_DIR, assert_user_error, run_script

    result = run_script("benchmarks/cifar_precision.py", "--quick", "--batch-size", "1000000000", cwd=tmp_path)
    assert_user_error(result, "--batch-size", "8192")          # a synthetic batch held in memory
    if (DATA_DIR / "MNIST").exists():                          # the claims need several steps per epoch
        result = run_script("projects/pytorch_mechanics/dying_relu.py", "--quick", "--batch-size", "1000000000",
                            "--out", tmp_path / "out", cwd=tmp_path)
        assert_user_error(result, "--batch-size 1000000000 leaves fewer than 4 steps per epoch")
        assert not any(p.is_file() for p in (tmp_path / "out").rglob("*"))
