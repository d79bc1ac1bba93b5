"""Batched models: K autoencoders of one shape as one stacked model, trained by ``train.fit`` at once.

Small nets leave a CPU (and far more a GPU) idle between small kernels. Stacking the K models'
weights, W: [K, ...], turns K small kernels into one batched kernel: ``torch.baddbmm`` for a
chain of linear layers, ``torch.func.vmap`` (a grouped convolution) for convolutional nets. The
loss is the sum of the K models' own losses, so each model's gradient is exactly its own, and
Adam and GD act per coordinate, so one optimizer over the stacked weights is K separate ones.
``unstack`` copies the trained weights back into the K ordinary modules, which are probed exactly
like singly trained ones.

Configs batch together when their models have one shape (``batch_key``): arch, depth, width,
activation, bias, kernel, image shape, optimizer. They may differ in everything else that
``train.fit`` handles per model: seed and init (the starting weights), dataset and n_train (the
data, padded to the largest n and masked), lr, max_steps, loss_tol, task, train_noise.
"""
from __future__ import annotations

import torch
from torch import nn

from ..config import NET_FIELDS, TrialConfig
from ..registry import ARCHS



def batch_key(cfg: TrialConfig, device: torch.device) -> tuple | None:
    """Configs with equal keys train as one batch on ``device``; None: this config trains alone (on a
    CPU, a net wider than its architecture's ``max_width_cpu`` in ``registry.ARCHS``)."""
    if device.type != "cuda" and cfg.width > ARCHS[cfg.arch].max_width_cpu:
        return None
    return tuple(getattr(cfg, f) for f in NET_FIELDS)


class Stacked(nn.Module):
    """K modules of one architecture with their parameters stacked:  xs [K, n, ...] -> [K, n, ...].

    A ``nn.Sequential`` of ``nn.Linear`` layers and activations runs as batched matmuls (half the
    per-step cost of ``vmap`` at K = 3, width 32); any other module runs through ``torch.func.vmap``
    over ``functional_call`` of one copy of it."""

    def __init__(self, nets: list[nn.Module]):
        super().__init__()
        stacked, _ = torch.func.stack_module_state(nets)
        self.names = list(stacked)
        self.params = nn.ParameterList([nn.Parameter(stacked[name]) for name in self.names])
        self.__dict__["template"] = nets[0]  # the architecture only: not a submodule, its weights not ours
        self.linear_chain = isinstance(nets[0], nn.Sequential) and all(
            isinstance(m, nn.Linear) or not list(m.parameters()) for m in nets[0])

    def forward(self, xs: torch.Tensor) -> torch.Tensor:
        weights = dict(zip(self.names, self.params))
        if self.linear_chain:
            for i, module in enumerate(self.template):
                if isinstance(module, nn.Linear):
                    w = weights[f"{i}.weight"].transpose(1, 2)
                    bias = weights.get(f"{i}.bias")
                    xs = torch.bmm(xs, w) if bias is None else torch.baddbmm(bias.unsqueeze(1), xs, w)
                else:
                    xs = module(xs)
            return xs
        return torch.func.vmap(lambda p, x: torch.func.functional_call(self.template, p, (x,)))(weights, xs)

    @torch.no_grad()
    def unstack(self, nets: list[nn.Module]) -> None:
        """Copy the stacked weights back into the K ordinary modules (eval mode)."""
        for k, net in enumerate(nets):
            for name, p in zip(self.names, self.params):
                net.get_parameter(name).copy_(p[k])
            net.eval()
