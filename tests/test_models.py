"""Architectures: shapes, parameter counts, downsampling, activations, inits."""
import math

import pytest
import torch
from torch import nn

from study.trial import models
from study.config import ConfigError, TrialConfig


def test_fc_layer_sizes_and_parameter_count():
    cfg = TrialConfig(depth=3, width=20)
    m = models.build(cfg, (1, 8, 8))
    linears = [l for l in m if isinstance(l, nn.Linear)]
    assert [(l.in_features, l.out_features) for l in linears] == [(64, 20), (20, 20), (20, 64)]
    assert models.n_params(m) == 64 * 20 + 20 + 20 * 20 + 20 + 20 * 64 + 64
    assert models.n_params(models.build(cfg.replace(bias=False), (1, 8, 8))) == 64 * 20 + 20 * 20 + 20 * 64


def test_activation_after_hidden_layers_only_unless_final():
    m = models.build(TrialConfig(depth=3, width=8, activation="tanh"), (1, 4, 4))
    assert [type(l).__name__ for l in m] == ["Linear", "Tanh", "Linear", "Tanh", "Linear"]
    m = models.build(TrialConfig(depth=1, activation="tanh", final_activation=True), (1, 4, 4))
    assert [type(l).__name__ for l in m] == ["Linear", "Tanh"]


def test_cosid():
    x = torch.linspace(-3, 3, 11)
    torch.testing.assert_close(models.ACTIVATIONS["cosid"]()(x), torch.cos(x) - x)


@pytest.mark.parametrize("arch", ["conv", "conv_down"])
@pytest.mark.parametrize("depth", [2, 3, 6])
def test_conv_maps_images_to_images(arch, depth):
    m = models.build(TrialConfig(arch=arch, depth=depth, width=4), (3, 16, 16))
    x = torch.rand(2, 3, 16, 16)
    assert m(x).shape == x.shape


def test_conv_down_halves_then_restores():
    cfg = TrialConfig(arch="conv_down", depth=6, width=4)
    assert models.n_downsamplings(cfg, (1, 8, 8)) == 3  # 8 -> 4 -> 2 -> 1
    assert models.n_downsamplings(cfg, (1, 12, 12)) == 2  # 12 -> 6 -> 3, 3 is odd
    m = models.build(cfg, (1, 8, 8))
    sizes, h = [], torch.rand(1, 1, 8, 8)
    for layer in m:
        h = layer(h)
        sizes.append(h.shape[-1])
    assert min(sizes) == 1 and sizes[-1] == 8


def test_down_stages_set_the_bottleneck():
    shape = (1, 8, 8)
    for stages, side in ((None, 1), (1, 4), (2, 2)):
        cfg = TrialConfig(arch="conv_down", depth=6, width=4, down_stages=stages)
        m = models.build(cfg, shape)
        h, smallest = torch.rand(1, *shape), 8
        for layer in m:
            h = layer(h)
            smallest = min(smallest, h.shape[-1])
        assert smallest == side == models.bottleneck_side(cfg, shape) and h.shape[-1] == 8
    assert models.bottleneck_side(TrialConfig(arch="conv"), shape) == 8
    with pytest.raises(ConfigError, match="between 1 and depth // 2 = 3"):
        TrialConfig(arch="conv_down", depth=6, down_stages=4)
    with pytest.raises(ConfigError, match="more often than it divides evenly"):
        models.check(TrialConfig(arch="conv_down", depth=8, down_stages=4), (1, 12, 12))


def test_conv_down_rejects_odd_images():
    with pytest.raises(ConfigError, match="cannot downsample images of side 25"):
        models.check(TrialConfig(arch="conv_down", depth=4), (1, 25, 25))


def test_conv_receptive_field_grows_with_depth():
    # a linear stride-1 conv net's output pixel sees L(k-1)+1 pixels per side: C3's depth argument
    for depth in (1, 2, 3):
        cfg = TrialConfig(arch="conv", depth=depth, width=2, activation="identity", kernel_size=3, bias=False,
                          init="normal")
        m = models.build(cfg, (1, 15, 15))
        x = torch.zeros(1, 1, 15, 15, requires_grad=True)
        m(x)[0, 0, 7, 7].backward()
        seen = (x.grad[0, 0].abs() > 0).nonzero()
        assert (seen.max(0).values - seen.min(0).values + 1).tolist() == [2 * depth + 1] * 2


def test_inits():
    shape = (1, 8, 8)
    zero = models.build(TrialConfig(depth=1, init="zero"), shape)
    assert all((p == 0).all() for p in zero.parameters())
    normal = models.build(TrialConfig(depth=4, width=2000, init="normal", init_scale=2.0), shape)
    w = normal[2].weight  # a 2000 x 2000 hidden layer: std = 2 / sqrt(2000)
    assert abs(w.std().item() - 2.0 / math.sqrt(2000)) < 1e-3
    assert (normal[2].bias == 0).all()
    a = models.build(TrialConfig(seed=1), shape)[0].weight
    b = models.build(TrialConfig(seed=1), shape)[0].weight
    c = models.build(TrialConfig(seed=2), shape)[0].weight
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_layouts():
    imgs = torch.rand(3, 2, 4, 4)
    flat = models.to_input(imgs, "fc")
    assert flat.shape == (3, 32)
    assert torch.equal(models.to_images(flat, (2, 4, 4)), imgs)
    assert models.to_input(imgs, "conv") is imgs


@pytest.mark.parametrize("kw, shape", [
    (dict(arch="fc", depth=5, width=64), (1, 8, 8)),
    (dict(arch="fc", depth=1, width=16, bias=False), (3, 4, 4)),
    (dict(arch="conv", depth=3, width=8), (3, 8, 8)),
    (dict(arch="conv_down", depth=6, width=8), (1, 8, 8)),
    (dict(arch="conv_down", depth=7, width=4, down_stages=2, kernel_size=5), (1, 16, 16)),
    (dict(arch="conv_down", depth=4, width=4), (1, 6, 6)),
])
def test_layers_count_what_the_built_net_holds(kw, shape):
    """``layers`` is arithmetic on the config (the memory check refuses a net before building it), so it
    must give exactly the built net's parameters and each weight layer's output size."""
    cfg = TrialConfig(**kw)
    model = models.build(cfg, shape)
    outs = []
    for m in model.modules():
        if isinstance(m, (nn.Linear, nn.Conv2d)):
            m.register_forward_hook(lambda mod, i, o: outs.append(o[0].numel()))
    model(models.to_input(torch.zeros(2, *shape), cfg.arch))
    layers = models.layers(cfg, shape)
    assert sum(p for p, _, _ in layers) == models.n_params(model)
    assert [o for _, o, _ in layers] == outs
    for m, (_, _, unfolded) in zip([m for m in model.modules() if isinstance(m, (nn.Linear, nn.Conv2d))], layers):
        assert unfolded == (0 if isinstance(m, nn.Linear) else m.weight[0].numel() * outs.pop(0) // m.out_channels)
