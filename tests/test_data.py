"""study.trial.data: what each data set delivers, how images are picked, resized, and refused."""
from __future__ import annotations

import gzip
import pickle
import struct
import sys

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits

from study.trial import data
from study.config import ConfigError, TrialConfig


@pytest.fixture(autouse=True)
def fresh_cache():
    # Tests write different files into fresh folders and fake a missing scikit-image;
    # a pool cached by another test must not answer for them.
    data._raw_pool.cache_clear()
    yield
    data._raw_pool.cache_clear()


def digits_raw() -> np.ndarray:
    return load_digits().images  # [1797, 8, 8], counts 0..16


def rows(x: torch.Tensor) -> set[bytes]:
    return {r.numpy().tobytes() for r in x.reshape(len(x), -1)}


# --- digits --------------------------------------------------------------------------------

def test_digits_shapes_range_and_normalisation():
    d = data.load(TrialConfig(dataset="digits", n_train=50, n_heldout=20, seed=3))
    assert d.train.shape == (50, 1, 8, 8) and d.heldout.shape == (20, 1, 8, 8)
    assert d.train.dtype == torch.float32 and d.heldout.dtype == torch.float32
    assert d.shape == (1, 8, 8)
    assert (d.low, d.high) == (0.0, 1.0)
    both = torch.cat([d.train, d.heldout])
    assert both.min() >= 0 and both.max() == 1.0
    # Divided by 16, not by the max of the pick: every pixel is a multiple of 1/16.
    assert torch.equal(both * 16, (both * 16).round())


def test_digits_pick_follows_the_seeded_permutation():
    cfg = TrialConfig(dataset="digits", n_train=7, n_heldout=5, seed=11)
    d = data.load(cfg)
    perm = np.random.default_rng(11).permutation(1797)
    raw = digits_raw()
    np.testing.assert_array_equal(d.train[:, 0].numpy(), (raw[perm[:7]] / 16).astype(np.float32))
    np.testing.assert_array_equal(d.heldout[:, 0].numpy(), (raw[perm[7:12]] / 16).astype(np.float32))


def test_digits_train_and_heldout_are_disjoint():
    d = data.load(TrialConfig(dataset="digits", n_train=300, n_heldout=300, seed=0))
    assert len(rows(d.train)) == 300 and len(rows(d.heldout)) == 300  # no repeats inside either
    assert not rows(d.train) & rows(d.heldout)


def test_digits_deterministic_per_seed_and_different_across_seeds():
    cfg = TrialConfig(dataset="digits", n_train=10, n_heldout=10, seed=5)
    a, b = data.load(cfg), data.load(cfg)
    assert torch.equal(a.train, b.train) and torch.equal(a.heldout, b.heldout)
    other = data.load(cfg.replace(seed=6))
    assert rows(a.train) != rows(other.train)
    # More held-out images do not change which images are trained on.
    assert torch.equal(a.train, data.load(cfg.replace(n_heldout=40)).train)


def test_loaded_tensors_are_private_copies():
    cfg = TrialConfig(dataset="digits", n_train=4, n_heldout=0)
    a = data.load(cfg)
    a.train.fill_(-1.0)
    assert data.load(cfg).train.min() >= 0


# --- generated controls --------------------------------------------------------------------

@pytest.mark.parametrize("dataset", ["gaussian", "uniform"])
def test_generated_shapes_and_determinism(dataset):
    cfg = TrialConfig(dataset=dataset, n_train=6, n_heldout=4, seed=2)
    a, b = data.load(cfg), data.load(cfg)
    assert a.train.shape == (6, 1, 8, 8) and a.heldout.shape == (4, 1, 8, 8)
    assert a.train.dtype == torch.float32
    assert torch.equal(a.train, b.train) and torch.equal(a.heldout, b.heldout)
    assert not torch.equal(a.train, data.load(cfg.replace(seed=3)).train)
    assert not rows(a.train) & rows(a.heldout)
    assert torch.equal(a.train, data.load(cfg.replace(n_heldout=9)).train)  # train drawn first
    assert data.pool_shape(cfg) == (10, 1, 8, 8)
    sized = data.load(cfg.replace(image_size=5, channels=3))
    assert sized.train.shape == (6, 3, 5, 5) and sized.heldout.shape == (4, 3, 5, 5)
    assert data.pool_shape(cfg.replace(image_size=5, channels=3)) == (10, 3, 5, 5)


def test_uniform_is_in_unit_range():
    d = data.load(TrialConfig(dataset="uniform", n_train=200, n_heldout=0, seed=1))
    assert (d.low, d.high) == (0.0, 1.0)
    assert d.train.min() >= 0 and d.train.max() < 1
    assert abs(d.train.mean().item() - 0.5) < 0.02
    assert abs(d.train.std().item() - (1 / 12) ** 0.5) < 0.02


def test_gaussian_is_standard_normal():
    d = data.load(TrialConfig(dataset="gaussian", n_train=500, n_heldout=0, seed=1))
    assert (d.low, d.high) == (-3.0, 3.0)
    assert abs(d.train.mean().item()) < 0.03
    assert abs(d.train.std().item() - 1.0) < 0.03
    assert d.train.min() < -3 < 3 < d.train.max()  # unnormalised: not clipped to the noise range


# --- MNIST ---------------------------------------------------------------------------------

N_MNIST = 12


def mnist_images() -> np.ndarray:
    # Image i: every pixel is 20*i plus a position pattern below 20, so pixel // 20 names the image.
    pos = (np.arange(28 * 28) % 20).reshape(28, 28)
    return (20 * np.arange(N_MNIST)[:, None, None] + pos).astype(np.uint8)


def idx_bytes(images: np.ndarray, magic: bytes = b"\x00\x00\x08\x03") -> bytes:
    return magic + struct.pack(">3I", *images.shape) + images.tobytes()


@pytest.mark.parametrize("name", ["train-images-idx3-ubyte", "train-images-idx3-ubyte.gz",
                                  "train-images.idx3-ubyte"])
def test_mnist_pixels_land_in_the_right_image(tmp_path, name):
    raw = mnist_images()
    payload = idx_bytes(raw)
    (tmp_path / name).write_bytes(gzip.compress(payload) if name.endswith(".gz") else payload)
    cfg = TrialConfig(dataset="mnist", data_dir=str(tmp_path), n_train=5, n_heldout=4, seed=7)
    assert data.pool_shape(cfg) == (N_MNIST, 1, 28, 28)
    d = data.load(cfg)
    assert d.train.shape == (5, 1, 28, 28) and d.heldout.shape == (4, 1, 28, 28)
    perm = np.random.default_rng(7).permutation(N_MNIST)
    np.testing.assert_array_equal(d.train[:, 0].numpy(), raw[perm[:5]].astype(np.float32) / 255)
    np.testing.assert_array_equal(d.heldout[:, 0].numpy(), raw[perm[5:9]].astype(np.float32) / 255)
    picked = (d.train[:, 0, 0, 0] * 255).round().long() // 20
    assert picked.tolist() == perm[:5].tolist()


def test_read_mnist_idx_plain_and_gzip_agree(tmp_path):
    raw = mnist_images()
    (tmp_path / "a").write_bytes(idx_bytes(raw))
    (tmp_path / "b.gz").write_bytes(gzip.compress(idx_bytes(raw)))
    for path in (tmp_path / "a", tmp_path / "b.gz"):
        out = data.read_mnist_idx(path)
        assert out.dtype == np.uint8 and out.shape == (N_MNIST, 28, 28)
        np.testing.assert_array_equal(out, raw)


def test_mnist_bad_magic_number_is_a_clear_error(tmp_path):
    path = tmp_path / "train-images-idx3-ubyte"
    path.write_bytes(idx_bytes(mnist_images(), magic=b"\x12\x34\x08\x03"))
    with pytest.raises(ValueError, match="magic"):
        data.read_mnist_idx(path)
    cfg = TrialConfig(dataset="mnist", data_dir=str(tmp_path), n_train=2, n_heldout=0)
    with pytest.raises(ConfigError, match="data_dir.*magic"):
        data.check(cfg)
    with pytest.raises(ConfigError, match="data_dir.*magic"):
        data.load(cfg)


def test_mnist_truncated_file_is_a_clear_error(tmp_path):
    path = tmp_path / "train-images-idx3-ubyte"
    path.write_bytes(idx_bytes(mnist_images())[:-10])
    with pytest.raises(ValueError, match="header says"):
        data.read_mnist_idx(path)


# --- CIFAR-10 ------------------------------------------------------------------------------

def cifar_rows(n: int, first: int = 0) -> np.ndarray:
    """uint8 [n, 3072]: R plane = row-major position pattern + image number, G = 7, B = 250."""
    out = np.empty((n, 3072), dtype=np.uint8)
    for i in range(n):
        out[i, :1024] = (np.arange(1024) % 200) + first + i
        out[i, 1024:2048] = 7
        out[i, 2048:] = 250
    return out


def write_batch(path, rows_: np.ndarray) -> None:
    with open(path, "wb") as f:
        pickle.dump({b"data": rows_, b"labels": list(range(len(rows_)))}, f)


def test_cifar10_channel_order_and_values(tmp_path):
    raw = cifar_rows(6)
    write_batch(tmp_path / "data_batch_1", raw)
    cfg = TrialConfig(dataset="cifar10", data_dir=str(tmp_path), n_train=4, n_heldout=2, seed=1)
    assert data.pool_shape(cfg) == (6, 3, 32, 32)
    d = data.load(cfg)
    assert d.train.shape == (4, 3, 32, 32) and d.shape == (3, 32, 32)
    perm = np.random.default_rng(1).permutation(6)
    for k, i in enumerate(perm[:4]):
        red = raw[i, :1024].reshape(32, 32).astype(np.float32) / 255  # R plane first, row-major
        np.testing.assert_array_equal(d.train[k, 0].numpy(), red)
        assert torch.all(d.train[k, 1] == np.float32(7) / 255)
        assert torch.all(d.train[k, 2] == np.float32(250) / 255)
    assert d.train[:, 0, 0, 1].tolist() == pytest.approx(((perm[:4] + 1) / 255).tolist())


def test_cifar10_batches_in_subfolder_concatenate_in_order(tmp_path):
    sub = tmp_path / "cifar-10-batches-py"
    sub.mkdir()
    write_batch(sub / "data_batch_1", cifar_rows(3, first=0))
    write_batch(sub / "data_batch_2", cifar_rows(3, first=100))
    write_batch(sub / "test_batch", cifar_rows(3, first=50))  # ignored when training batches exist
    out = data.read_cifar10(tmp_path)
    assert out.shape == (6, 3, 32, 32) and out.dtype == np.uint8
    assert out[:, 0, 0, 0].tolist() == [0, 1, 2, 100, 101, 102]
    cfg = TrialConfig(dataset="cifar10", data_dir=str(tmp_path), n_train=6, n_heldout=0)
    assert data.pool_shape(cfg)[0] == 6


def test_cifar10_falls_back_to_test_batch(tmp_path):
    write_batch(tmp_path / "test_batch", cifar_rows(2, first=40))
    assert data.read_cifar10(tmp_path)[:, 0, 0, 0].tolist() == [40, 41]


def test_cifar10_grayscale_uses_luminance(tmp_path):
    colour = np.concatenate([np.full(1024, 100), np.full(1024, 50), np.full(1024, 200)])
    write_batch(tmp_path / "data_batch_1", np.tile(colour, (3, 1)).astype(np.uint8))
    cfg = TrialConfig(dataset="cifar10", data_dir=str(tmp_path), n_train=3, n_heldout=0, channels=1)
    assert data.pool_shape(cfg) == (3, 1, 32, 32)
    d = data.load(cfg)
    assert d.train.shape == (3, 1, 32, 32)
    expected = (0.299 * 100 + 0.587 * 50 + 0.114 * 200) / 255
    torch.testing.assert_close(d.train, torch.full_like(d.train, expected))


class _Payload:
    """A pickle that, loaded by pickle.load, would create the file ``marker`` (as a shell command would)."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


@pytest.mark.parametrize("protocol", [2, pickle.HIGHEST_PROTOCOL])
def test_cifar10_batches_load_at_every_pickle_protocol(tmp_path, protocol):
    rows_ = cifar_rows(2, first=5)
    with open(tmp_path / "data_batch_1", "wb") as f:
        pickle.dump({b"data": rows_, b"labels": [np.int64(3), 4], b"batch_label": b"x", b"filenames": [b"a", b"b"]},
                    f, protocol=protocol)
    assert np.array_equal(data.read_cifar10(tmp_path), rows_.reshape(-1, 3, 32, 32))


@pytest.mark.parametrize("where", ["batch", "data"])
def test_a_hostile_cifar10_batch_runs_nothing_and_is_refused_in_one_line(tmp_path, where):
    marker = tmp_path / "ran"
    payload = _Payload(marker)
    assert pickle.loads(pickle.dumps(payload)) and marker.exists()  # the payload works on a plain unpickler
    marker.unlink()
    batch = payload if where == "batch" else {b"data": payload, b"labels": []}
    with open(tmp_path / "data_batch_1", "wb") as f:
        pickle.dump(batch, f)
    cfg = TrialConfig(dataset="cifar10", data_dir=str(tmp_path), n_train=1, n_heldout=0)
    with pytest.raises(ConfigError, match=r"refused to unpickle (io|builtins)\.open") as e:
        data.check(cfg)
    assert "\n" not in str(e.value) and not marker.exists()


def test_cifar10_corrupt_batch_names_data_dir(tmp_path):
    (tmp_path / "data_batch_1").write_bytes(b"not a pickle")
    cfg = TrialConfig(dataset="cifar10", data_dir=str(tmp_path), n_train=1, n_heldout=0)
    with pytest.raises(ConfigError, match="data_dir"):
        data.check(cfg)


# --- resizing and channels -----------------------------------------------------------------

def test_digits_shrink_is_the_mean_of_2x2_blocks():
    cfg = TrialConfig(dataset="digits", n_train=20, n_heldout=5, seed=4)
    native, small = data.load(cfg), data.load(cfg.replace(image_size=4))
    assert small.train.shape == (20, 1, 4, 4) and small.heldout.shape == (5, 1, 4, 4)
    blocks = native.train.reshape(20, 1, 4, 2, 4, 2).mean(dim=(3, 5))
    torch.testing.assert_close(small.train, blocks)
    # At 2x, bilinear also gives 2x2 means; at 4x only area averaging gives 4x4 block means.
    tiny = data.load(cfg.replace(image_size=2))
    torch.testing.assert_close(tiny.train, native.train.reshape(20, 1, 2, 4, 2, 4).mean(dim=(3, 5)))
    assert data.pool_shape(cfg.replace(image_size=4)) == (1797, 1, 4, 4)


def test_digits_enlarge_is_bilinear_and_keeps_range_and_mean():
    cfg = TrialConfig(dataset="digits", n_train=20, n_heldout=5, seed=4)
    native, big = data.load(cfg), data.load(cfg.replace(image_size=16))
    assert big.train.shape == (20, 1, 16, 16) and big.heldout.shape == (5, 1, 16, 16)
    assert big.train.min() >= 0 and big.train.max() <= 1
    # Doubling with bilinear (align_corners=False) keeps each image's mean exactly;
    # nearest would too, so also check that new in-between values appear.
    torch.testing.assert_close(big.train.mean(dim=(1, 2, 3)), native.train.mean(dim=(1, 2, 3)))
    assert not torch.equal(big.train * 16, (big.train * 16).round())


def test_digits_as_three_channels_repeats_the_plane():
    cfg = TrialConfig(dataset="digits", n_train=5, n_heldout=3, seed=2)
    gray, rgb = data.load(cfg), data.load(cfg.replace(channels=3))
    assert rgb.train.shape == (5, 3, 8, 8) and rgb.shape == (3, 8, 8)
    for c in range(3):
        assert torch.equal(rgb.train[:, c], gray.train[:, 0])
        assert torch.equal(rgb.heldout[:, c], gray.heldout[:, 0])
    assert torch.equal(data.load(cfg.replace(channels=1)).train, gray.train)


def test_empty_heldout_still_has_the_image_shape():
    d = data.load(TrialConfig(dataset="digits", n_train=2, n_heldout=0, image_size=4, channels=3))
    assert d.heldout.shape == (0, 3, 4, 4)


# --- error catalogue -----------------------------------------------------------------------

def test_too_many_images_names_the_fields():
    cfg = TrialConfig(dataset="digits", n_train=1000, n_heldout=1000)
    with pytest.raises(ConfigError, match=r"n_train \+ n_heldout .*2000 exceeds the 1797 images of dataset 'digits'"):
        data.check(cfg)
    with pytest.raises(ConfigError, match="n_train"):
        data.load(cfg)
    data.check(cfg.replace(n_heldout=797))  # exactly the pool is fine


def test_too_many_images_from_files(tmp_path):
    (tmp_path / "train-images-idx3-ubyte").write_bytes(idx_bytes(mnist_images()))
    cfg = TrialConfig(dataset="mnist", data_dir=str(tmp_path), n_train=10, n_heldout=3)
    with pytest.raises(ConfigError, match="n_train.*13 exceeds the 12 images of dataset 'mnist'"):
        data.check(cfg)


@pytest.mark.parametrize("dataset", ["mnist", "cifar10"])
def test_missing_data_dir_folder(tmp_path, dataset):
    cfg = TrialConfig(dataset=dataset, data_dir=str(tmp_path / "nowhere"), n_train=1, n_heldout=0)
    with pytest.raises(ConfigError, match="data_dir.*nowhere"):
        data.check(cfg)
    with pytest.raises(ConfigError, match="data_dir"):
        data.load(cfg)


@pytest.mark.parametrize("dataset, expected", [("mnist", "train-images-idx3-ubyte"),
                                               ("cifar10", "data_batch")])
def test_folder_without_the_files(tmp_path, dataset, expected):
    (tmp_path / "README").write_text("nothing here")
    cfg = TrialConfig(dataset=dataset, data_dir=str(tmp_path), n_train=1, n_heldout=0)
    with pytest.raises(ConfigError, match="data_dir") as err:
        data.check(cfg)
    assert expected in str(err.value)


@pytest.mark.parametrize("dataset", ["lfw", "photos"])
def test_missing_skimage_says_how_to_install(monkeypatch, dataset):
    # A None entry in sys.modules makes the import fail, installed or not.
    monkeypatch.setitem(sys.modules, "skimage", None)
    monkeypatch.setitem(sys.modules, "skimage.data", None)
    with pytest.raises(ConfigError, match=r"dataset.*pip install scikit-image"):
        data.check(TrialConfig(dataset=dataset, n_train=1, n_heldout=0))


# --- scikit-image samples (optional) -------------------------------------------------------

def test_lfw_faces():
    skdata = pytest.importorskip("skimage.data")
    cfg = TrialConfig(dataset="lfw", n_train=30, n_heldout=10, seed=0)
    assert data.pool_shape(cfg) == (200, 1, 25, 25)
    d = data.load(cfg)
    assert d.train.shape == (30, 1, 25, 25) and d.train.dtype == torch.float32
    assert d.train.min() >= 0 and d.train.max() <= 1
    faces = skdata.lfw_subset()
    perm = np.random.default_rng(0).permutation(200)
    np.testing.assert_allclose(d.train[:, 0].numpy(), faces[perm[:30]], atol=1e-6)


def test_photo_tiles():
    skdata = pytest.importorskip("skimage.data")
    n, c, h, w = data.pool_shape(TrialConfig(dataset="photos", n_train=1, n_heldout=0))
    assert (c, h, w) == (3, 32, 32) and n > 100
    d = data.load(TrialConfig(dataset="photos", n_train=n, n_heldout=0, seed=0))
    assert d.train.min() >= 0 and d.train.max() <= 1
    perm = np.random.default_rng(0).permutation(n)
    astronaut = skdata.astronaut()  # the first photo: its tiles come first, row-major
    for tile, r, col in [(0, 0, 0), (1, 0, 1), (16, 1, 0)]:  # 512 px wide: 16 tiles a row
        expected = astronaut[32 * r : 32 * r + 32, 32 * col : 32 * col + 32].transpose(2, 0, 1) / 255
        k = int(np.flatnonzero(perm == tile)[0])
        np.testing.assert_allclose(d.train[k].numpy(), expected, atol=1e-6)


def test_pool_is_read_once_per_folder(tmp_path):
    path = tmp_path / "train-images-idx3-ubyte"
    path.write_bytes(idx_bytes(mnist_images()))
    cfg = TrialConfig(dataset="mnist", data_dir=str(tmp_path), n_train=3, n_heldout=2)
    first = data.load(cfg)
    path.unlink()  # a second read would fail now
    same_dir = cfg.replace(data_dir=str(tmp_path) + "/", seed=1)
    data.check(same_dir)
    assert data.load(cfg.replace(seed=0)).train.equal(first.train)
