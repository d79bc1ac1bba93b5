"""Packing: train K small fully connected autoencoders at once, as one batch of models.

Tiny nets leave a CPU (and far more a GPU) idle between small kernels. Stacking the K models'
weights, W_l: [K, out, in], turns K small matmuls into one batched matmul (``torch.baddbmm``).
The loss is the sum of the K models' own losses, so each model's gradient is exactly its own;
Adam and GD act per coordinate, so the K optimizers are exactly K separate ones; a model that has
reached ``loss_tol`` (or diverged) is frozen by restoring its weights after every later step.
``unpack`` returns ordinary ``nn.Module``s, probed exactly like singly trained ones.

Packable configs share everything that shapes the computation (``pack_key``): arch ``fc``,
depth, width, activation, bias, data shape, n_train, optimizer, lr, max_steps, loss_tol,
train_noise. Seeds differ (init and data), and so may any probe setting.
"""
from __future__ import annotations

import math
import time

import torch
from torch import nn

from . import models
from .config import TrialConfig
from .train import DIVERGE_FACTOR, TrainResult, curve_steps

# On a CPU packing pays for narrow nets only: benchmarks/pack_bench.py measured 2.1-4.9x at width 64,
# 1.5-2.7x at 128, and 0.8-1.1x at 256 (one thread). On a GPU it always pays.
PACK_MAX_WIDTH_CPU = 128

PACK_FIELDS = ("arch", "dataset", "data_dir", "image_size", "channels", "n_train", "depth", "width", "activation",
               "final_activation", "bias", "optimizer", "lr", "max_steps", "loss_tol", "train_noise", "task")


def pack_key(cfg: TrialConfig) -> tuple | None:
    """Configs with equal keys can be trained together; None: this config is never packed."""
    if cfg.arch != "fc" or cfg.train_noise > 0:  # noise draws are per model: keep those unpacked
        return None
    return tuple(getattr(cfg, f) for f in PACK_FIELDS)


class PackedFC(nn.Module):
    """K fully connected autoencoders with stacked weights.   x: [K, n, d] -> [K, n, d]."""

    def __init__(self, nets: list[nn.Sequential], activation: str, final_activation: bool):
        super().__init__()
        linears = [[m for m in net if isinstance(m, nn.Linear)] for net in nets]
        self.weights = nn.ParameterList(
            [nn.Parameter(torch.stack([ls[i].weight.detach() for ls in linears])) for i in range(len(linears[0]))])
        self.biases = nn.ParameterList(
            [nn.Parameter(torch.stack([ls[i].bias.detach() for ls in linears]).unsqueeze(1))
             for i in range(len(linears[0]))] if linears[0][0].bias is not None else [])
        self.act = models.ACTIVATIONS[activation]()
        self.final_activation = final_activation

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        last = len(self.weights) - 1
        for i, w in enumerate(self.weights):
            wt = w.transpose(1, 2)
            x = torch.baddbmm(self.biases[i], x, wt) if len(self.biases) else torch.bmm(x, wt)
            if i < last or self.final_activation:
                x = self.act(x)
        return x


def train_packed(cfgs: list[TrialConfig], xs: torch.Tensor, nets: list[nn.Sequential]) -> list[TrainResult]:
    """Train ``nets`` (built from ``cfgs``, one per config) together on their data ``xs`` [K, n, d];
    the trained weights are copied back into ``nets``. One TrainResult per model, as ``train`` gives."""
    cfg = cfgs[0]
    K = len(cfgs)
    ys = xs.roll(-1, dims=1) if cfg.task == "sequence" else xs  # targets, as study.train.targets
    packed = PackedFC(nets, cfg.activation, cfg.final_activation).to(xs.device)
    params = list(packed.parameters())
    if cfg.optimizer == "gd":
        opt = torch.optim.SGD(params, lr=cfg.lr)
    else:
        opt = torch.optim.Adam(params, lr=cfg.lr, fused=all(p.dtype == torch.float32 for p in params))
    keep = curve_steps(cfg.max_steps)
    curves: list[list[tuple[int, float]]] = [[] for _ in range(K)]
    status = ["not_converged"] * K
    last = [float("nan")] * K
    steps = [cfg.max_steps] * K
    first: list[float | None] = [None] * K
    active = torch.ones(K, dtype=torch.bool)
    start = time.perf_counter()
    step = 0
    for step in range(cfg.max_steps + 1):
        per_model = ((packed(xs) - ys) ** 2).mean(dim=(1, 2))  # [K]: each model's own MSE
        values = per_model.tolist()
        for k in range(K):
            if not active[k]:
                continue
            v = values[k]
            first[k] = v if first[k] is None else first[k]
            last[k] = v
            if step in keep:
                curves[k].append((step, v))
            if not math.isfinite(v) or v > DIVERGE_FACTOR * max(first[k], 1e-12):
                status[k], steps[k], active[k] = "diverged", step, False
            elif v < cfg.loss_tol:
                status[k], steps[k], active[k] = "ok", step, False
        if not active.any() or step == cfg.max_steps:
            break
        frozen = ~active
        saved = [p.detach()[frozen].clone() for p in params] if frozen.any() else None
        opt.zero_grad(set_to_none=True)
        per_model[active].sum().backward()
        opt.step()
        if saved is not None:  # finished models keep their weights (Adam's momentum would move them)
            with torch.no_grad():
                for p, s in zip(params, saved):
                    p[frozen] = s
    seconds = time.perf_counter() - start
    for k in range(K):
        if not curves[k] or curves[k][-1][0] != steps[k]:
            curves[k].append((steps[k], last[k]))
    unpack(packed, nets)
    # wall time is shared: each model is charged its share, so sums over trials stay honest
    return [TrainResult(status[k], last[k], steps[k], seconds / K, curves[k]) for k in range(K)]


@torch.no_grad()
def unpack(packed: PackedFC, nets: list[nn.Sequential]) -> None:
    """Copy the stacked weights back into the K ordinary modules (eval mode)."""
    for k, net in enumerate(nets):
        linears = [m for m in net if isinstance(m, nn.Linear)]
        for i, lin in enumerate(linears):
            lin.weight.copy_(packed.weights[i][k])
            if lin.bias is not None:
                lin.bias.copy_(packed.biases[i][k, 0])
        net.eval()
