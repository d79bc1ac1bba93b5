"""Autoencoders: fully connected, convolutional, convolutional with downsampling.

Architectures are chosen by name from ``ARCHS``; every builder takes the trial config
and the image shape (C, H, W) and returns an ``nn.Module`` mapping a batch in the
arch's input layout to the same layout:

    fc         x: [B, C*H*W]    depth weight layers  d -> w -> ... -> w -> d
    conv       x: [B, C, H, W]  depth stride-1 'same' convs  C -> w -> ... -> w -> C
    conv_down  x: [B, C, H, W]  first half: stride-2 convs (``down_stages`` of them, default as many
                                as halve H, W evenly), then stride-1; second half: nearest 2x
                                upsampling + stride-1 conv back up, one per stride-2 layer

Hidden layers are followed by the activation; the output layer is linear unless
``final_activation`` (C1's single layer f(x) = phi(Ax)).
"""
from __future__ import annotations

import math
from typing import Callable

import torch
from torch import nn

from ..config import ConfigError, TrialConfig


class CosId(nn.Module):
    """phi(x) = cos(x) - x: the non-monotone activation of the PNAS paper."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cos(x) - x


ACTIVATIONS: dict[str, Callable[[], nn.Module]] = {
    "identity": nn.Identity,
    "leaky_relu": lambda: nn.LeakyReLU(0.01),
    "relu": nn.ReLU,
    "selu": nn.SELU,
    "elu": nn.ELU,
    "tanh": nn.Tanh,
    "sigmoid": nn.Sigmoid,
    "softplus": nn.Softplus,
    "cosid": CosId,
}


def _stack(layers: list[nn.Module], cfg: TrialConfig) -> nn.Sequential:
    """Interleave weight layers with the activation (none after the last unless final_activation)."""
    out: list[nn.Module] = []
    for i, layer in enumerate(layers):
        out.append(layer)
        if i < len(layers) - 1 or cfg.final_activation:
            out.append(ACTIVATIONS[cfg.activation]())
    return nn.Sequential(*out)


def build_fc(cfg: TrialConfig, shape: tuple[int, int, int]) -> nn.Module:
    d = math.prod(shape)
    sizes = [d] + [cfg.width] * (cfg.depth - 1) + [d]
    return _stack([nn.Linear(a, b, bias=cfg.bias) for a, b in zip(sizes[:-1], sizes[1:])], cfg)


def build_conv(cfg: TrialConfig, shape: tuple[int, int, int]) -> nn.Module:
    c = shape[0]
    chans = [c] + [cfg.width] * (cfg.depth - 1) + [c]
    k = cfg.kernel_size
    return _stack([nn.Conv2d(a, b, k, padding=k // 2, bias=cfg.bias) for a, b in zip(chans[:-1], chans[1:])], cfg)


def n_downsamplings(cfg: TrialConfig, shape: tuple[int, int, int]) -> int:
    """How many times conv_down halves the image: ``down_stages`` if set (``check`` refuses more than
    the side allows), else depth // 2 capped by the factors of 2 in the side."""
    side, n = shape[1], 0
    want = cfg.down_stages if cfg.down_stages is not None else cfg.depth // 2
    while n < want and side % 2 == 0 and side > 1:
        side, n = side // 2, n + 1
    return n


def bottleneck_side(cfg: TrialConfig, shape: tuple[int, int, int]) -> int:
    """The side of the smallest feature map: the image side halved ``n_downsamplings`` times (conv_down),
    the image side itself (conv), the hidden width (fc has no image inside)."""
    if cfg.arch == "fc":
        return cfg.width
    return shape[1] // 2 ** (n_downsamplings(cfg, shape) if cfg.arch == "conv_down" else 0)


class _Up(nn.Sequential):
    """Nearest 2x upsampling then a stride-1 conv: linear, so the C3 operator study applies."""

    def __init__(self, a: int, b: int, k: int, bias: bool):
        super().__init__(nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(a, b, k, padding=k // 2, bias=bias))


def build_conv_down(cfg: TrialConfig, shape: tuple[int, int, int]) -> nn.Module:
    c, k, n_down = shape[0], cfg.kernel_size, n_downsamplings(cfg, shape)
    if n_down == 0:
        raise ConfigError(f"arch='conv_down' cannot downsample images of side {shape[1]}: "
                          "set image_size to an even number (e.g. 8, 16, 32)")
    chans = [c] + [cfg.width] * (cfg.depth - 1) + [c]
    n_down_layers = cfg.depth // 2
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(chans[:-1], chans[1:])):
        if i < n_down_layers:
            stride = 2 if i < n_down else 1
            layers.append(nn.Conv2d(a, b, k, stride=stride, padding=k // 2, bias=cfg.bias))
        elif i - n_down_layers < n_down:
            layers.append(_Up(a, b, k, cfg.bias))
        else:
            layers.append(nn.Conv2d(a, b, k, padding=k // 2, bias=cfg.bias))
    return _stack(layers, cfg)


ARCHS: dict[str, Callable[[TrialConfig, tuple[int, int, int]], nn.Module]] = {
    "fc": build_fc,
    "conv": build_conv,
    "conv_down": build_conv_down,
}


def build(cfg: TrialConfig, shape: tuple[int, int, int]) -> nn.Module:
    """The autoencoder for ``cfg`` on images of ``shape`` = (C, H, W), initialised from ``cfg.seed``."""
    check(cfg, shape)
    torch.manual_seed(cfg.seed)
    model = ARCHS[cfg.arch](cfg, shape)
    init_weights(model, cfg)
    return model


def init_weights(model: nn.Module, cfg: TrialConfig) -> None:
    if cfg.init == "default":  # torch's own (Kaiming-uniform) init, as most papers' code used
        return
    for m in model.modules():
        if not isinstance(m, (nn.Linear, nn.Conv2d)):
            continue
        with torch.no_grad():
            if cfg.init == "zero":
                m.weight.zero_()
            elif cfg.init == "xavier":
                nn.init.xavier_uniform_(m.weight)
            else:  # "normal": variance init_scale^2 / fan_in, so the scale is comparable across widths
                fan_in = m.weight[0].numel()
                m.weight.normal_(0.0, cfg.init_scale / math.sqrt(fan_in))
            if m.bias is not None:
                m.bias.zero_()


def to_input(images: torch.Tensor, arch: str) -> torch.Tensor:
    """[B, C, H, W] images -> the arch's input layout ([B, C*H*W] for fc)."""
    return images.flatten(1) if arch == "fc" else images


def to_images(x: torch.Tensor, shape: tuple[int, int, int]) -> torch.Tensor:
    """Inverse of ``to_input``: any layout -> [B, C, H, W]."""
    return x.reshape(x.shape[0], *shape)


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def layers(cfg: TrialConfig, shape: tuple[int, int, int]) -> list[tuple[int, int, int]]:
    """(parameters, output elements, unfolded input elements) per example of each weight layer of
    ``cfg``'s net on images of ``shape``, by arithmetic alone: nothing is built, so a net too large to
    build can be refused. The unfolded input is a conv's im2col workspace (k^2 x in-channels x output
    positions; 0 for a linear layer)."""
    c, side, _ = shape
    if cfg.arch == "fc":
        d = c * side * side
        sizes = [d] + [cfg.width] * (cfg.depth - 1) + [d]
        return [(a * b + b * cfg.bias, b, 0) for a, b in zip(sizes[:-1], sizes[1:])]
    chans = [c] + [cfg.width] * (cfg.depth - 1) + [c]
    n_down = n_downsamplings(cfg, shape) if cfg.arch == "conv_down" else 0
    out, k2 = [], cfg.kernel_size ** 2
    for i, (a, b) in enumerate(zip(chans[:-1], chans[1:])):
        if cfg.arch == "conv_down" and i < cfg.depth // 2 and i < n_down:
            side //= 2
        elif cfg.arch == "conv_down" and 0 <= i - cfg.depth // 2 < n_down:
            side *= 2
        out.append((a * b * k2 + b * cfg.bias, b * side * side, k2 * a * side * side))
    return out


def check(cfg: TrialConfig, shape: tuple[int, int, int]) -> None:
    """Raise ConfigError if ``cfg``'s architecture cannot be built for images of ``shape``."""
    if cfg.arch == "conv_down" and n_downsamplings(cfg, shape) == 0:
        build_conv_down(cfg, shape)  # raises with the message
    if cfg.arch == "conv_down" and cfg.down_stages is not None and n_downsamplings(cfg, shape) < cfg.down_stages:
        raise ConfigError(f"down_stages={cfg.down_stages} halves images of side {shape[1]} more often than it "
                          f"divides evenly (at most {n_downsamplings(cfg, shape)} times)")
