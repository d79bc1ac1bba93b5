"""Full-batch training to interpolation: min_f mean_i |f(x_i) - y_i|^2 / d, y_i = x_i (autoencoder)
or y_i = x_(i+1 mod n) (sequence).

Stops when the loss drops below ``loss_tol`` (status ``ok``) or after ``max_steps``
(``not_converged``); a NaN/inf loss or a loss 1e4 times its start ends the run with
``diverged``. Nothing here raises on a bad run: the status is data.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass

import torch
from torch import nn

from .config import TrialConfig

DIVERGE_FACTOR = 1e4  # a loss this many times its initial value is not coming back
CURVE_POINTS = 200    # the loss curve is thinned to about this many log-spaced steps


@dataclass
class TrainResult:
    status: str                  # ok | not_converged | diverged
    final_loss: float
    steps: int
    train_seconds: float
    curve: list[tuple[int, float]]  # thinned (step, loss)


def make_optimizer(cfg: TrialConfig, params) -> torch.optim.Optimizer:
    params = list(params)
    if cfg.optimizer == "gd":
        return torch.optim.SGD(params, lr=cfg.lr)
    # the fused kernel cuts the optimizer step ~2.5x on CPU; it needs float tensors on one device
    fused = all(p.dtype == torch.float32 for p in params)
    return torch.optim.Adam(params, lr=cfg.lr, fused=fused)


def curve_steps(max_steps: int, points: int = CURVE_POINTS) -> set[int]:
    """Steps at which the loss curve is recorded: ~log-spaced, always including step 0."""
    return {0} | {int(round(math.exp(t))) for t in torch.linspace(0, math.log(max_steps), points).tolist()}


def targets(x: torch.Tensor, cfg: TrialConfig) -> torch.Tensor:
    """What f(x_i) should be: x_i itself, or for a sequence the next example, cyclically."""
    return x.roll(-1, dims=-x.dim()) if cfg.task == "sequence" else x


def train(model: nn.Module, x: torch.Tensor, cfg: TrialConfig) -> TrainResult:
    """Train ``model`` in place on ``x`` ([n, ...] in the model's input layout, on the model's device)
    to map x_i to ``targets(x)``."""
    gen = torch.Generator(device=x.device).manual_seed(cfg.seed + 1)
    y = targets(x, cfg)
    opt = make_optimizer(cfg, model.parameters())
    keep = curve_steps(cfg.max_steps)
    curve: list[tuple[int, float]] = []
    model.train()
    start = time.perf_counter()
    first = None
    status, loss_value, step = "not_converged", float("nan"), 0
    for step in range(cfg.max_steps + 1):
        if cfg.train_noise > 0:
            noisy = x + cfg.train_noise * torch.randn(x.shape, generator=gen, device=x.device, dtype=x.dtype)
            loss = torch.mean((model(noisy) - y) ** 2)
            with torch.no_grad():  # interpolation is judged on the clean images
                loss_value = torch.mean((model(x) - y) ** 2).item()
        else:
            loss = torch.mean((model(x) - y) ** 2)
            loss_value = loss.item()  # one sync per step; cheap next to a full-batch step
        first = loss_value if first is None else first
        if step in keep:
            curve.append((step, loss_value))
        if not math.isfinite(loss_value) or loss_value > DIVERGE_FACTOR * max(first, 1e-12):
            status = "diverged"
            break
        if loss_value < cfg.loss_tol:
            status = "ok"
            break
        if step == cfg.max_steps:
            break
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    if not curve or curve[-1][0] != step:
        curve.append((step, loss_value))
    model.eval()
    return TrainResult(status, loss_value, step, time.perf_counter() - start, curve)
