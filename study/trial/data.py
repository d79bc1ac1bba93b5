"""The images a trial memorizes: load, pick, resize, and check them before compute.

``load(cfg)`` returns ``ImageData``: ``n_train`` training images and ``n_heldout``
held-out images as float32 tensors ``[n, C, H, W]``, plus the value range ``[low, high]``
that noise starts and masks should draw from.

Normalisation
-------------
* Every real data set is scaled to [0, 1] (``low=0, high=1``): digits are divided by 16
  (their pixels are counts 0..16), MNIST, CIFAR-10 and the scikit-image photos by 255;
  ``lfw`` already comes as floats in [0, 1] and is kept as is.
* ``uniform``: i.i.d. U[0, 1] pixels (``low=0, high=1``), a structureless control on the
  same scale as the images.
* ``gaussian``: i.i.d. N(0, 1) pixels, the *unnormalised* control. Its range is unbounded,
  so ``low=-3, high=3`` (+-3 sigma, 99.7% of pixels) is what uniform-noise starts and masks
  use for it.

Nothing is mean-centred or standardised: the fixed-point probes compare images to
``f(image)`` in pixel space, so the data stays in the space it is shown in.

Picking
-------
Real data sets form a pool of N images; with ``perm = default_rng(seed).permutation(N)``,
train is ``perm[:n_train]`` and held-out is ``perm[n_train:n_train + n_heldout]``. Same
seed, same images; train does not depend on ``n_heldout``. The generated data sets draw
exactly ``n_train + n_heldout`` images (train first) from ``default_rng(seed)``, directly
at the requested size and channels, so their pixels stay i.i.d. at every size.

Resizing and channels (real data): ``image_size`` different from the native side resizes
with ``interpolate`` (``area`` when shrinking, i.e. block means; ``bilinear`` when
enlarging). ``channels=1`` on colour data takes luminance (0.299 R + 0.587 G + 0.114 B);
``channels=3`` on grayscale repeats the plane. Both keep values in [0, 1].

Native data sets: digits (sklearn, 1797 x 1 x 8 x 8, ships in the wheel); lfw (scikit-image's subset:
100 faces, then 100 background patches of the same photographs, 1 x 25 x 25) and photos (32 x 32 colour
tiles of four sample photos) need scikit-image; mnist (IDX files) and cifar10 (python pickle batches) are read from ``cfg.data_dir``.
"""
from __future__ import annotations

import functools
import gzip
import os
import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, NamedTuple

import numpy as np
import torch
import torch.nn.functional as F

from ..config import ConfigError, TrialConfig
from ..registry import DATASETS

GENERATED = tuple(name for name, d in DATASETS.items() if d.generated)  # drawn by ``_generate``; the rest: LOADERS
GENERATED_SIDE = 8  # the generated controls match digits by default
GAUSSIAN_RANGE = (-3.0, 3.0)  # +-3 sigma: where uniform-noise starts for N(0,1) data are drawn
LUMINANCE = (0.299, 0.587, 0.114)  # ITU-R BT.601, what PIL's convert("L") uses

MNIST_FILES = ("train-images-idx3-ubyte", "train-images-idx3-ubyte.gz", "train-images.idx3-ubyte")
CIFAR_SUBDIR = "cifar-10-batches-py"
PHOTOS = ("astronaut", "chelsea", "coffee", "rocket")
PHOTO_TILE = 32
SKIMAGE_HINT = "pip install scikit-image (or the extra memsweep[images])"


@dataclass(frozen=True, eq=False)  # eq=False: tensors have no single truth value to compare by
class ImageData:
    train: torch.Tensor    # [n_train, C, H, W] float32
    heldout: torch.Tensor  # [n_heldout, C, H, W] float32
    low: float             # value range of the data, for uniform-noise starts and masks
    high: float

    @property
    def shape(self) -> tuple[int, int, int]:
        """(C, H, W) of one image."""
        c, h, w = self.train.shape[1:]
        return c, h, w


def load(cfg: TrialConfig) -> ImageData:
    """The trial's train and held-out images (see the module docstring for how they are picked)."""
    if cfg.dataset in GENERATED:
        return _generate(cfg)
    check(cfg)
    pool = _pool(cfg)
    perm = np.random.default_rng(cfg.seed).permutation(len(pool.images))
    train = perm[: cfg.n_train]
    heldout = perm[cfg.n_train : cfg.n_train + cfg.n_heldout]
    return ImageData(
        train=_prepare(pool, train, cfg),
        heldout=_prepare(pool, heldout, cfg),
        low=0.0,
        high=1.0,
    )


def pool_shape(cfg: TrialConfig) -> tuple[int, int, int, int]:
    """(N available, C, H, W) after the requested resizing and channel conversion.

    Reads (and caches) the real data set once; for generated data N is
    ``n_train + n_heldout``, the number that will be drawn. Raises ConfigError when the
    data cannot be read.
    """
    if cfg.dataset in GENERATED:
        n, c, h, w = cfg.n_train + cfg.n_heldout, 1, GENERATED_SIDE, GENERATED_SIDE
    else:
        n, c, h, w = _pool(cfg).images.shape
    if cfg.image_size is not None:
        h = w = cfg.image_size
    return n, cfg.channels or c, h, w


def check(cfg: TrialConfig) -> None:
    """Raise ConfigError, naming the field, if ``load(cfg)`` cannot deliver the images."""
    n_available = pool_shape(cfg)[0]
    wanted = cfg.n_train + cfg.n_heldout
    if wanted > n_available:
        raise ConfigError(f"n_train + n_heldout = {cfg.n_train} + {cfg.n_heldout} = {wanted} exceeds "
                          f"the {n_available} images of dataset {cfg.dataset!r}")


# --- generated controls --------------------------------------------------------------------

def _generate(cfg: TrialConfig) -> ImageData:
    side = cfg.image_size or GENERATED_SIDE
    size = (cfg.n_train + cfg.n_heldout, cfg.channels or 1, side, side)
    rng = np.random.default_rng(cfg.seed)
    # Drawn in one block, train first: the train images do not change with n_heldout.
    if cfg.dataset == "uniform":
        pixels, (low, high) = rng.random(size, dtype=np.float32), (0.0, 1.0)
    else:
        pixels, (low, high) = rng.standard_normal(size, dtype=np.float32), GAUSSIAN_RANGE
    images = torch.from_numpy(pixels)
    return ImageData(train=images[: cfg.n_train].clone(), heldout=images[cfg.n_train :].clone(),
                     low=low, high=high)


# --- the cached pools ----------------------------------------------------------------------

class _Pool(NamedTuple):
    images: np.ndarray  # [N, C, H, W], read-only, in the file's own dtype (uint8 mostly: 4x less memory)
    scale: float        # divide by this to land in [0, 1]


def _pool(cfg: TrialConfig) -> _Pool:
    # One cache entry per folder, however it is spelled; data_dir means nothing to the others.
    reads_files = DATASETS[cfg.dataset].reads_files and cfg.data_dir
    return _raw_pool(cfg.dataset, os.path.abspath(os.path.expanduser(cfg.data_dir)) if reads_files else None)


@functools.lru_cache(maxsize=8)
def _raw_pool(dataset: str, data_dir: str | None) -> _Pool:
    """The whole native data set, read once per process; failures are not cached."""
    if dataset not in LOADERS:  # config validation should have stopped this
        raise ConfigError(f"dataset {dataset!r} has no loader")
    images, scale = LOADERS[dataset](data_dir)
    images = np.ascontiguousarray(images)
    images.flags.writeable = False  # shared by every trial in the process
    return _Pool(images, scale)


# --- the real data sets: name (``registry.DATASETS``) -> data_dir -> (images [N, C, H, W], scale to [0, 1]) ----

def _digits(data_dir: str | None) -> tuple[np.ndarray, float]:
    from sklearn.datasets import load_digits
    return load_digits().images.astype(np.uint8)[:, None], 16.0


def _lfw(data_dir: str | None) -> tuple[np.ndarray, float]:
    return _unit_scale(_skimage_data("lfw").lfw_subset()[:, None])


def _photos(data_dir: str | None) -> tuple[np.ndarray, float]:
    return _photo_tiles(_skimage_data("photos")), 255.0


def _mnist(data_dir: str | None) -> tuple[np.ndarray, float]:
    path = _find_mnist(data_dir)
    images = _as_config_error(data_dir, read_mnist_idx, path)
    if images.ndim != 3:
        raise ConfigError(f"data_dir: {path} holds an array of shape {images.shape}, expected [N, H, W] images")
    return images[:, None], 255.0


def _cifar10(data_dir: str | None) -> tuple[np.ndarray, float]:
    return _as_config_error(data_dir, read_cifar10, _find_cifar(data_dir)), 255.0


LOADERS: dict[str, Callable[[str | None], tuple[np.ndarray, float]]] = {
    "digits": _digits, "lfw": _lfw, "photos": _photos, "mnist": _mnist, "cifar10": _cifar10}


def _prepare(pool: _Pool, index: np.ndarray, cfg: TrialConfig) -> torch.Tensor:
    """Pool images ``index`` as float32 [len(index), C, H, W] in [0, 1], resized as cfg asks."""
    x = torch.from_numpy(pool.images[index].astype(np.float32) / np.float32(pool.scale))
    if cfg.channels == 1 and x.shape[1] == 3:
        weights = torch.tensor(LUMINANCE, dtype=x.dtype).view(1, 3, 1, 1)
        x = (x * weights).sum(dim=1, keepdim=True)
    elif cfg.channels == 3 and x.shape[1] == 1:
        x = x.repeat(1, 3, 1, 1)
    side = cfg.image_size
    if side is not None and tuple(x.shape[2:]) != (side, side):
        if side <= min(x.shape[2:]):
            x = F.interpolate(x, size=(side, side), mode="area")
        else:
            x = F.interpolate(x, size=(side, side), mode="bilinear", align_corners=False)
    return x.contiguous()


def _unit_scale(images: np.ndarray) -> tuple[np.ndarray, float]:
    # Sample images come as uint8 0..255 or as floats already in [0, 1]; keep both honest.
    if images.dtype == np.uint8:
        return images, 255.0
    images = images.astype(np.float32)
    return images, (1.0 if images.max() <= 1.0 else 255.0)


def _as_config_error(data_dir: str | None, reader: Callable[[Path], np.ndarray], path: Path) -> np.ndarray:
    # A corrupt or foreign file is a config problem: say which folder it came from.
    try:
        return reader(path)
    except ConfigError:
        raise
    except (ValueError, OSError, EOFError, pickle.UnpicklingError) as e:
        raise ConfigError(f"data_dir {data_dir!r}: {e}") from e


# --- scikit-image samples (optional dependency) --------------------------------------------

def _skimage_data(dataset: str):
    try:
        import skimage.data
    except ImportError:
        raise ConfigError(f"dataset={dataset!r} needs scikit-image: {SKIMAGE_HINT}") from None
    return skimage.data


def _photo_tiles(skdata) -> np.ndarray:
    """Non-overlapping 32x32 tiles, row-major, of each photo that loads: uint8 [N, 3, 32, 32]."""
    tiles = []
    for name in PHOTOS:
        try:
            photo = np.asarray(getattr(skdata, name)())
        except Exception:  # a sample missing from this scikit-image install is skipped, never fetched
            continue
        if photo.dtype != np.uint8 or photo.ndim != 3 or photo.shape[2] < 3:
            continue
        t = PHOTO_TILE
        rows, cols = photo.shape[0] // t, photo.shape[1] // t
        grid = photo[: rows * t, : cols * t, :3].reshape(rows, t, cols, t, 3)
        tiles.append(grid.transpose(0, 2, 4, 1, 3).reshape(rows * cols, 3, t, t))
    if not tiles:
        raise ConfigError(f"dataset='photos': none of the scikit-image samples {', '.join(PHOTOS)} "
                          "could be loaded offline")
    return np.concatenate(tiles)


# --- MNIST ---------------------------------------------------------------------------------

def _find_mnist(data_dir: str | None) -> Path:
    folder = _existing_dir("mnist", data_dir)
    for name in MNIST_FILES:
        if (folder / name).is_file():
            return folder / name
    raise ConfigError(f"data_dir {str(folder)!r} holds none of the MNIST files "
                      f"{', '.join(MNIST_FILES)} (dataset='mnist')")


def read_mnist_idx(path: str | os.PathLike) -> np.ndarray:
    """One IDX file (plain or gzip) as a uint8 array shaped as its header says.

    MNIST training images come out as [60000, 28, 28]. Raises ValueError naming the file
    when it is not an unsigned-byte IDX file or its length disagrees with the header.
    """
    with open(path, "rb") as f:
        gzipped = f.read(2) == b"\x1f\x8b"  # sniffed, not trusted to the file name
    with (gzip.open(path, "rb") if gzipped else open(path, "rb")) as f:
        raw = f.read()
    # Header: two zero bytes, a type code (0x08 = unsigned byte), the number of dims,
    # then one big-endian int32 per dim.
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0:
        raise ValueError(f"{path} is not an IDX file (bad magic number {raw[:4].hex() or 'empty'})")
    if raw[2] != 0x08:
        raise ValueError(f"{path}: IDX type code 0x{raw[2]:02x} is not unsigned byte (0x08)")
    ndim = raw[3]
    header = 4 + 4 * ndim
    if ndim == 0 or len(raw) < header:
        raise ValueError(f"{path}: truncated IDX header ({ndim} dims)")
    shape = tuple(int(d) for d in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    if len(raw) - header != int(np.prod(shape)):
        raise ValueError(f"{path}: header says {shape} = {int(np.prod(shape))} bytes, "
                         f"file holds {len(raw) - header}")
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(shape).copy()


# --- CIFAR-10 ------------------------------------------------------------------------------

def _cifar_batches(folder: Path) -> list[Path]:
    batches = sorted(folder.glob("data_batch_*"), key=lambda p: (len(p.name), p.name))
    if not batches and (folder / "test_batch").is_file():
        batches = [folder / "test_batch"]
    return batches


def _find_cifar(data_dir: str | None) -> Path:
    folder = _existing_dir("cifar10", data_dir)
    if not (_cifar_batches(folder) or _cifar_batches(folder / CIFAR_SUBDIR)):
        raise ConfigError(f"data_dir {str(folder)!r} holds no CIFAR-10 python batches data_batch_1..5 "
                          f"(or test_batch), neither directly nor in {CIFAR_SUBDIR}/ (dataset='cifar10')")
    return folder


class _BatchUnpickler(pickle.Unpickler):
    """Unpickles a CIFAR-10 batch and nothing else: a pickle names the callables it wants run
    (``find_class``), and a batch needs only numpy's array and dtype reconstructors; its dicts,
    lists and bytes need none. Any other global (``os.system``, ``builtins.eval``, ...) is refused
    before it is looked up, so a hostile file runs nothing."""

    ALLOWED = {("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode"),  # bytes, at protocol 2
               *((f"numpy.{core}.multiarray", n) for core in ("core", "_core") for n in ("_reconstruct", "scalar")),
               *((f"numpy.{core}.numeric", "_frombuffer") for core in ("core", "_core"))}

    def find_class(self, module: str, name: str):
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"refused to unpickle {module}.{name}: a CIFAR-10 batch holds only "
                                         "arrays, lists, dicts and bytes, and memsweep runs nothing a data file names")
        return super().find_class(module, name)


def read_cifar10(dir: str | os.PathLike) -> np.ndarray:
    """All ``data_batch_*`` (or ``test_batch`` if there are none) as uint8 [N, 3, 32, 32].

    ``dir`` may be the ``cifar-10-batches-py`` folder or the folder above it. Each row of
    a batch is 3072 bytes: the 32x32 R plane, then G, then B.

    The batches are pickles; they are read by ``_BatchUnpickler``, which admits only numpy's
    array reconstructors, so a file that asks for anything else is refused and runs nothing.
    """
    folder = Path(dir)
    batches = _cifar_batches(folder) or _cifar_batches(folder / CIFAR_SUBDIR)
    if not batches:
        raise ValueError(f"{folder} holds no CIFAR-10 data_batch_* or test_batch files")
    parts = []
    for path in batches:
        with open(path, "rb") as f:
            batch = _BatchUnpickler(f, encoding="bytes").load()
        data = batch.get(b"data", batch.get("data")) if isinstance(batch, dict) else None
        if data is None:
            raise ValueError(f"{path} is not a CIFAR-10 batch (no 'data' entry)")
        if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3 * 32 * 32:
            what = f"{data.dtype} {data.shape}" if isinstance(data, np.ndarray) else type(data).__name__
            raise ValueError(f"{path}: 'data' is {what}, expected uint8 [N, 3072]")
        parts.append(data.reshape(-1, 3, 32, 32))
    return np.concatenate(parts)


def _existing_dir(dataset: str, data_dir: str | None) -> Path:
    if not data_dir:
        raise ConfigError(f"data_dir is not set; dataset={dataset!r} reads local files from it")
    folder = Path(data_dir)
    if not folder.is_dir():
        raise ConfigError(f"data_dir {data_dir!r} is not an existing folder (dataset={dataset!r})")
    return folder
