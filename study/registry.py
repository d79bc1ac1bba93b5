"""The names a config may use, each with its one-line meaning: architectures, activations, data sets,
initializations, optimizers, tasks (and the devices a trial may train on). One registry per extensible concept: ``TrialConfig`` accepts
exactly these names, the CLI's ``choices`` and ``--help`` list them, and the batching limits are the
architectures' own. The torch side of a name (its builder in ``trial/models.py``, its loader in
``trial/data.py``) sits under the same key; ``tests/test_registry.py`` ties them together. The
metrics' registry is ``store/schema.py``'s ``TRIAL_METRICS``; the claims' is ``analysis/claims.py``'s
``CLAIMS``. Free of torch, so configs are checked and ``--help`` is shown without it.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Arch:
    help: str
    max_width_cpu: int  # the widest net of it trained as one batch on a CPU (0: always alone)


# On a CPU batching pays only where kernels are small (``benchmarks/batch_bench.md``, one thread, K = 4-16):
# fc nets at width <= 128 (1.9-7.2x; 0.7-1.6x at 256), conv nets at width <= 32 (1.5-3.3x; 0.8-1.1x at
# 64-128). On a GPU it always pays.
ARCHS = {
    "fc": Arch("fully connected: d -> width -> ... -> d, depth weight layers", 128),
    "conv": Arch("convolutional, every feature map the image's size, width channels", 32),
    "conv_down": Arch("convolutional with down_stages stride-2 layers, each mirrored by a 2x upsampling", 32),
}


@dataclass(frozen=True)
class Activation:
    help: str
    linear: bool = False  # with no bias, a net of it is a linear map (C3's operator study)


ACTIVATIONS = {
    "identity": Activation("none: with bias=false the net is a linear map", linear=True),
    "leaky_relu": Activation("max(x, 0.01x)"),
    "relu": Activation("max(x, 0)"),
    "selu": Activation("scaled ELU"),
    "elu": Activation("x if x > 0 else exp(x) - 1"),
    "tanh": Activation("tanh(x)"),
    "sigmoid": Activation("1 / (1 + exp(-x))"),
    "softplus": Activation("log(1 + exp(x))"),
    "cosid": Activation("cos(x) - x, the PNAS paper's non-monotone activation"),
}


@dataclass(frozen=True)
class Dataset:
    help: str
    generated: bool = False    # drawn from the seed, no file read
    reads_files: bool = False  # read from the folder data_dir names


DATASETS = {
    "digits": Dataset("sklearn's 8x8 handwritten digits, shipped in its wheel"),
    "gaussian": Dataset("N(0, 1) pixels, 8x8 unless image_size says otherwise", generated=True),
    "uniform": Dataset("U(0, 1) pixels, 8x8 unless image_size says otherwise", generated=True),
    "lfw": Dataset("scikit-image's Labeled Faces in the Wild subset at 25x25: 100 faces, then 100 background patches"),
    "photos": Dataset("32x32 colour tiles of four photographs shipped in scikit-image"),
    "mnist": Dataset("MNIST from IDX files in data_dir", reads_files=True),
    "cifar10": Dataset("CIFAR-10 from its python batches in data_dir", reads_files=True),
}

INITS = {
    "default": "torch's own (Kaiming uniform), as most papers' code used",
    "xavier": "Xavier (Glorot) uniform",
    "normal": "N(0, init_scale^2 / fan_in)",
    "zero": "all zero (depth 1 only: deeper nets get no gradient)",
}

OPTIMIZERS = {"adam": "Adam, the papers' optimizer", "gd": "full-batch gradient descent"}

TASKS = {"autoencode": "f(x_i) = x_i", "sequence": "f(x_i) = x_(i+1 mod n): the images as a cycle (C5)"}

DEVICES = {"cpu": "the CPU", "cuda": "an NVIDIA GPU through torch's CUDA (a sweep's trial: the GPU share it holds)"}

CHOICES = {"dataset": DATASETS, "arch": ARCHS, "activation": ACTIVATIONS, "init": INITS, "optimizer": OPTIMIZERS,
           "task": TASKS}  # config field -> the registry of its allowed names


def meaning(entry) -> str:
    """An entry's one-line meaning (an entry is its help text, or holds it)."""
    return entry if isinstance(entry, str) else entry.help
