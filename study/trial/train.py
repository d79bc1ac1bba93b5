"""Full-batch training to interpolation: min_f mean_i |f(x_i) - y_i|^2 / d, y_i = x_i (autoencoder)
or y_i = x_(i+1 mod n) (sequence).

One loop (``fit``) trains one model or a batch of models of one shape (``batched.py``); each
model has its own stop rule, optimizer settings, targets and loss curve. A model stops when its
loss drops below ``loss_tol`` (status ``ok``) or after ``max_steps`` (``not_converged``); a NaN/inf
loss or a loss 1e4 times its start ends it with ``diverged``. In a batch a stopped model is frozen:
its weights do not move again. Nothing here raises on a bad run: the status is data.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass

import torch
from torch import nn

from .batched import Stacked
from ..config import TrialConfig
from ..rules import DIVERGED, NOT_CONVERGED, OK

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
    return x.roll(-1, dims=0) if cfg.task == "sequence" else x


def train(model: nn.Module, x: torch.Tensor, cfg: TrialConfig) -> TrainResult:
    """Train ``model`` in place on ``x`` ([n, ...] in the model's input layout, on the model's device)
    to map x_i to ``targets(x)``."""
    return fit([model], [x], [cfg])[0]


class _Batch:
    """What ``fit`` needs of its models: inputs, targets, noise and the per-model loss.

    One model runs as itself; several as one ``Stacked`` model on their data stacked [K, n_max, ...],
    a model with fewer examples padded with zeros that its loss masks out."""

    def __init__(self, nets: list[nn.Module], xs: list[torch.Tensor], cfgs: list[TrialConfig]):
        self.K, self.nets = len(nets), nets
        self.stacked = Stacked(nets) if self.K > 1 else None
        self.model = self.stacked if self.stacked is not None else nets[0]
        n = [len(x) for x in xs]
        self.n_max = max(n)
        self.mask = None if min(n) == self.n_max else torch.tensor(
            [[i < nk for i in range(self.n_max)] for nk in n], device=xs[0].device)
        self.x = self._stack(xs)
        self.y = self._stack([targets(x, c) for x, c in zip(xs, cfgs)])
        self.xs = xs
        self.noise = [c.train_noise for c in cfgs]
        self.gens = [torch.Generator(device=x.device).manual_seed(c.seed + 1) for x, c in zip(xs, cfgs)]

    def _stack(self, xs: list[torch.Tensor]) -> torch.Tensor:
        if self.K == 1:
            return xs[0]
        pad = [torch.cat([x, x.new_zeros((self.n_max - len(x), *x.shape[1:]))]) if len(x) < self.n_max else x
               for x in xs]
        return torch.stack(pad)

    def losses(self, x: torch.Tensor) -> torch.Tensor:
        """[K]: each model's MSE on its own examples, for inputs ``x`` (the clean or the noisy ones)."""
        if self.K == 1:
            return torch.mean((self.model(x) - self.y) ** 2).reshape(1)
        err = (self.model(x) - self.y) ** 2
        if self.mask is None:
            return err.mean(dim=tuple(range(1, err.dim())))
        per_row = err.mean(dim=tuple(range(2, err.dim())))  # [K, n_max]
        return torch.where(self.mask, per_row, 0.0).sum(dim=1) / self.mask.sum(dim=1)

    def noisy(self) -> torch.Tensor:
        """The inputs with each model's own training noise, drawn from its own generator (seed + 1)."""
        draws = [x + s * torch.randn(x.shape, generator=g, device=x.device, dtype=x.dtype) if s > 0 else x
                 for x, s, g in zip(self.xs, self.noise, self.gens)]
        return self._stack(draws)

    def params(self) -> list[torch.Tensor]:
        return list(self.model.parameters())

    def done(self) -> None:
        self.model.eval()
        if self.stacked is not None:
            self.stacked.unstack(self.nets)


def fit(nets: list[nn.Module], xs: list[torch.Tensor], cfgs: list[TrialConfig]) -> list[TrainResult]:
    """Train ``nets`` in place (one, or several of one shape: ``batched.batch_key``), each on its own
    examples ``xs[k]`` ([n_k, ...], model layout, on the models' device) to map them to their targets.
    One TrainResult per model, as training it alone gives (to float rounding)."""
    batch = _Batch(nets, xs, cfgs)
    K = batch.K
    params = batch.params()
    opt = make_optimizer(cfgs[0], params)
    lrs = [c.lr for c in cfgs]
    keep = [curve_steps(c.max_steps) for c in cfgs]
    curves: list[list[tuple[int, float]]] = [[] for _ in range(K)]
    status, last, steps = [NOT_CONVERGED] * K, [float("nan")] * K, [c.max_steps for c in cfgs]
    first: list[float | None] = [None] * K
    active = [True] * K
    noisy = any(s > 0 for s in batch.noise)
    batch.model.train()
    start = time.perf_counter()
    for step in range(max(c.max_steps for c in cfgs) + 1):
        if noisy:
            loss = batch.losses(batch.noisy())
            with torch.no_grad():  # interpolation is judged on the clean images
                values = batch.losses(batch.x).tolist()
        else:
            loss = batch.losses(batch.x)
            values = loss.tolist()  # one sync per step; cheap next to a full-batch step
        for k in range(K):
            if not active[k]:
                continue
            v, cfg = values[k], cfgs[k]
            first[k] = v if first[k] is None else first[k]
            last[k] = v
            if step in keep[k]:
                curves[k].append((step, v))
            if not math.isfinite(v) or v > DIVERGE_FACTOR * max(first[k], 1e-12):
                status[k], steps[k], active[k] = DIVERGED, step, False
            elif v < cfg.loss_tol:
                status[k], steps[k], active[k] = OK, step, False
            elif step == cfg.max_steps:
                steps[k], active[k] = step, False
        if not any(active):
            break
        _step(opt, params, loss, active, lrs, cfgs[0].optimizer)
    seconds = time.perf_counter() - start
    for k in range(K):
        if not curves[k] or curves[k][-1][0] != steps[k]:
            curves[k].append((steps[k], last[k]))
    batch.done()
    # wall time is shared: each model is charged its share, so sums over trials stay honest
    return [TrainResult(status[k], last[k], steps[k], seconds / K, curves[k]) for k in range(K)]


def _step(opt: torch.optim.Optimizer, params: list[torch.Tensor], loss: torch.Tensor, active: list[bool],
          lrs: list[float], optimizer: str) -> None:
    """One optimizer step of the active models, each at its own learning rate; stopped models stay put.

    With one lr and every model active this is the optimizer's own step. Otherwise (stacked
    weights, [K, ...]) the optimizer steps at lr 1: GD on gradients scaled by each model's lr (0
    for a stopped one), Adam from the old weights by each model's lr times its unit step, as
    Adam's lr multiplies only its final update."""
    opt.zero_grad(set_to_none=True)
    if all(active) and len(set(lrs)) == 1:
        opt.param_groups[0]["lr"] = lrs[0]
        loss.sum().backward()
        opt.step()
        return
    on = torch.tensor(active, device=loss.device)
    loss[on].sum().backward()  # a diverged model's NaN loss stays out of the gradients
    rate = torch.tensor([lr if a else 0.0 for lr, a in zip(lrs, active)], device=loss.device, dtype=loss.dtype)
    opt.param_groups[0]["lr"] = 1.0
    shape = [(-1,) + (1,) * (p.dim() - 1) for p in params]
    if optimizer == "gd":
        with torch.no_grad():
            for p, s in zip(params, shape):
                p.grad = torch.where(on.view(s), p.grad * rate.view(s), 0.0)
        opt.step()
        return
    with torch.no_grad():
        old = [p.detach().clone() for p in params]
    opt.step()
    with torch.no_grad():
        for p, o, s in zip(params, old, shape):
            p.copy_(torch.where(on.view(s), o.lerp(p, rate.view(s)), o))
