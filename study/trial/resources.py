"""What a trial needs of the machine, checked before anything is built: memory (estimated from the
config alone), and a usable CUDA device when it was given a GPU.
"""
from __future__ import annotations

import math
import os

import torch

from ..config import ConfigError, TrialConfig
from ..rules import is_linear
from . import data as data_mod
from . import models, probes

OPERATOR_MAX_DIM = 1024  # a linear net's d x d operator is eigen-decomposed densely up to this d


def configure_cuda() -> None:
    """float32 throughout: TF32 matmuls (10-bit mantissa) cannot interpolate to a loss of 1e-8, so they
    are off unless MEMSWEEP_TF32=1 (faster, for runs that stop at a looser loss_tol)."""
    allow = os.environ.get("MEMSWEEP_TF32") == "1"
    torch.backends.cuda.matmul.allow_tf32 = allow
    torch.backends.cudnn.allow_tf32 = allow


class DeviceError(RuntimeError):
    """A trial was told to run on a device this process cannot use."""


def check_cuda() -> None:
    """Raise DeviceError, saying what this process sees, when torch has no usable CUDA device: a trial
    given a GPU must not fall back to the CPU unseen (``memsweep run --device cpu`` asks for that)."""
    if torch.cuda.is_available():
        return
    import platform
    seen = os.environ.get("CUDA_VISIBLE_DEVICES")
    raise DeviceError(
        f"this trial was given a GPU (CUDA_VISIBLE_DEVICES={seen!r} on {platform.node()}), but torch "
        f"{torch.__version__} (CUDA build: {torch.version.cuda or 'none'}) sees no CUDA device; fix that "
        "node's CUDA, or pass --device cpu to train on CPU while holding the GPU share")


# --- memory, estimated before anything is built --------------------------------------------------

def memory_bytes(cfg: TrialConfig, shape: tuple[int, int, int]) -> int:
    """Bytes the trial holds at its peak, estimated from its config alone (``models.layers``), float32.

    With P parameters, A and M the sum and the largest of the layers' outputs per example, U the
    largest conv layer's unfolded input per example (k^2 x in-channels x output positions; 0 for fc),
    d = C*H*W, n = n_train and m the probes' starts (the n examples, MEMORY_CHECKS points beside each,
    the noisy and masked starts, the random and held-out ones):

        training  4 * (4P + 2nA + nU)     weights, gradients, Adam's two moments; every layer's output
                                          and activation kept for the backward pass (full batch); the
                                          unfolding
        probes    4 * m * (3M + 30d)      all starts iterated at once: a layer's input, output and
                                          activation; x_t, x_t+1, the PERIOD_MAX - 1 past iterates,
                                          their lags, and the allocator's slack (measured: 28 copies
                                          of the starts)
        clusters  9 * m^2                 the stop points' pairwise distances (float64) and their
                                          comparison (``probes._clusters``): 8 GB at 30,000 starts
        spectra   n * d * (12d + 4M)      dense Jacobians (d <= DENSE_MAX_DIM) in float32 and float64,
                                          d tangents through the net; a linear net's d x d operator too
        peak = training + max(probes, clusters, spectra)

    On every net of ``benchmarks/memory_bench.md`` it lies at or below the measured peak (0.37-1.00 of
    it for nets of hundreds of MB; conv layers' workspaces are not all counted), so a config it refuses
    cannot fit, and one it passes may still need up to about 3 times as much."""
    net = models.layers(cfg, shape)
    p, a, big, unfold = (sum(x[0] for x in net), sum(x[1] for x in net), max(x[1] for x in net),
                         max(x[2] for x in net))
    d, n = math.prod(shape), cfg.n_train
    m = n * (1 + probes.MEMORY_CHECKS + cfg.starts_per_example * (len(cfg.noise_levels) + 1)) \
        + cfg.n_random_starts + cfg.n_heldout
    training = 4 * (4 * p + 2 * n * a + n * unfold)
    iteration = 4 * m * (3 * big + 30 * d)
    dense = (n if d <= probes.DENSE_MAX_DIM else 0) + (1 if linear_operator(cfg, d) else 0)
    return training + max(iteration, 9 * m * m, dense * d * (12 * d + 4 * big))


def node_memory(device: torch.device | str = "cpu") -> int:
    """Bytes of memory this process may use: the GPU's for cuda, else the machine's physical memory or
    its control group's limit, whichever is smaller."""
    device = torch.device(device)
    if device.type == "cuda" and torch.cuda.is_available():
        return torch.cuda.get_device_properties(device).total_memory
    total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    try:
        with open("/sys/fs/cgroup/memory.max") as fh:
            limit = fh.read().strip()
        return min(total, int(limit)) if limit.isdigit() else total
    except OSError:
        return total


def check_memory(cfg: TrialConfig, shape: tuple[int, int, int], available: int | None = None) -> None:
    """Raise ConfigError, before anything is allocated, when ``memory_bytes`` exceeds ``available``
    (default: ``node_memory()``)."""
    need, have = memory_bytes(cfg, shape), available if available is not None else node_memory()
    if need > have:
        params = sum(x[0] for x in models.layers(cfg, shape))
        raise ConfigError(f"{cfg.trial_id} on {shape[0]}x{shape[1]}x{shape[2]} images needs about {_gib(need)} "
                          f"({params:.3g} parameters), more than the {_gib(have)} of memory here: lower width, "
                          "depth, image_size or the probe starts")


RERUN_MAX_S = 300.0  # a results folder's row is re-trained (for a figure) only when its training is estimated below


def check_rerunnable(cfg: TrialConfig, max_seconds: float = RERUN_MAX_S) -> None:
    """Raise ConfigError unless re-training ``cfg``, a config read from a results folder (perhaps someone
    else's), runs nothing but this package on data it ships or generates, within this machine's memory
    and about ``max_seconds`` of training (``sweep.cost.estimated_seconds``): a row naming a ``data_dir`` would
    have this process read files that the folder's author chose."""
    from ..sweep.cost import estimated_seconds
    if cfg.data_dir is not None:
        raise ConfigError(f"{cfg.trial_id} reads its data from data_dir {cfg.data_dir!r}: a row of a results "
                          "folder is re-trained only on bundled or generated data (save the net with "
                          "memsweep trial --save-model to draw it from the model)")
    check_memory(cfg, data_mod.pool_shape(cfg)[1:])
    if (secs := estimated_seconds(cfg)) > max_seconds:
        raise ConfigError(f"{cfg.trial_id} would train for about {secs:.0f} s, over the {max_seconds:.0f} s a "
                          "figure may re-train a row for (save the net with memsweep trial --save-model)")


def _gib(n: int) -> str:
    return f"{n / 2 ** 30:.3g} GiB" if n >= 2 ** 30 else f"{n / 2 ** 20:.3g} MiB"


def linear_operator(cfg: TrialConfig, d: int) -> bool:
    """A linear net's operator is studied densely (``probe``)."""
    return bool(is_linear(cfg.activation, cfg.bias)) and d <= OPERATOR_MAX_DIM
