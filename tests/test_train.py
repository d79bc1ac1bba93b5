"""Training, and claim C1: a single-layer autoencoder trained by GD projects onto span(X)."""
import math

import torch

from study.trial import data
from study.trial import models
from study.trial import probes
from study.config import TrialConfig
from study.trial.train import curve_steps, train

# n < d random vectors: the span is a proper subspace, so "projection onto it" is a real constraint
C1 = dict(dataset="gaussian", n_train=5, n_heldout=5, image_size=6, depth=1, activation="identity",
          bias=False, optimizer="gd", lr=2.0, max_steps=4000, loss_tol=1e-12)


def fit(**overrides):
    cfg = TrialConfig(**{**C1, **overrides})
    images = data.load(cfg)
    x, h = images.train.flatten(1), images.heldout.flatten(1)
    model = models.build(cfg, images.shape)
    w0 = model[0].weight.detach().clone()
    result = train(model, x, cfg)
    return cfg, model, x, h, w0, result


def projector(x: torch.Tensor) -> torch.Tensor:
    return x.T.double() @ torch.linalg.pinv(x.T.double())  # X X^+, X with examples as columns


def test_linear_gd_from_zero_converges_to_min_norm_projection():
    cfg, model, x, h, _, result = fit(init="zero")
    assert result.status == "ok"
    A = model[0].weight.detach().double()
    P = projector(x)
    assert torch.linalg.matrix_norm(A - P) < 1e-3 * torch.linalg.matrix_norm(P)
    res, sens = probes.span_residuals(model, x, h)
    assert res.max() < 1e-3 and sens.max() < 1e-3


def test_gd_leaves_off_span_part_of_weights_unchanged_but_adam_does_not():
    _, model, x, _, w0, result = fit(init="normal", init_scale=0.1)
    assert result.status == "ok"
    Q = torch.eye(x.shape[1], dtype=torch.float64) - projector(x)  # I - P_X
    off_before = w0.double() @ Q
    off_after = model[0].weight.detach().double() @ Q
    assert torch.linalg.matrix_norm(off_before) > 0.05  # the small init is really there
    assert torch.linalg.matrix_norm(off_after - off_before) < 1e-4 * torch.linalg.matrix_norm(off_before)

    _, model, x, _, w0, _ = fit(init="normal", init_scale=0.1, optimizer="adam", lr=1e-2, max_steps=500)
    drift = torch.linalg.matrix_norm(model[0].weight.detach().double() @ Q - w0.double() @ Q)
    assert drift > 0.1 * torch.linalg.matrix_norm(w0.double() @ Q)  # Adam's per-coordinate scaling breaks it


def test_nonlinear_single_layer_depends_only_on_projection_of_input():
    # f(x) = tanh(A x) from A = 0 under GD: A = M X^T, so f(x) = f(P_X x) exactly (C1's "nonlinear span")
    cfg, model, x, h, _, _ = fit(init="zero", activation="tanh", final_activation=True, dataset="uniform",
                                 lr=1.0, max_steps=300)
    _, sens = probes.span_residuals(model, x, h)
    assert sens.max() < 1e-5
    _, model, x, h, _, _ = fit(init="zero", activation="tanh", final_activation=True, dataset="uniform",
                               optimizer="adam", lr=1e-2, max_steps=300)
    _, sens = probes.span_residuals(model, x, h)
    assert sens.mean() > 1e-2  # Adam does not keep the identity, so the probe can tell them apart


def test_training_is_deterministic_for_a_seed_and_differs_across_seeds():
    cfg = TrialConfig(depth=3, width=32, max_steps=50, train_noise=0.01)
    images = data.load(cfg)
    curves = []
    for seed in (0, 0, 1):
        c = cfg.replace(seed=seed)
        model = models.build(c, images.shape)
        curves.append(train(model, images.train.flatten(1), c).curve)
    assert curves[0] == curves[1]
    assert curves[0] != curves[2]


def test_statuses_instead_of_exceptions():
    cfg = TrialConfig(depth=3, width=32)
    images = data.load(cfg)
    x = images.train.flatten(1)
    r = train(models.build(cfg.replace(max_steps=5), images.shape), x, cfg.replace(max_steps=5))
    assert r.status == "not_converged" and r.steps == 5 and r.final_loss > cfg.loss_tol
    bad = cfg.replace(optimizer="gd", lr=1e6)
    r = train(models.build(bad, images.shape), x, bad)
    assert r.status == "diverged" and r.steps < bad.max_steps
    assert not math.isfinite(r.final_loss) or r.final_loss > 1e4 * r.curve[0][1]


def test_loss_curve_is_thinned_and_ends_at_last_step():
    cfg = TrialConfig(depth=2, width=16, max_steps=2000, loss_tol=1e-30)
    images = data.load(cfg)
    r = train(models.build(cfg, images.shape), images.train.flatten(1), cfg)
    steps = [s for s, _ in r.curve]
    assert steps[0] == 0 and steps[-1] == r.steps == 2000
    assert len(steps) <= len(curve_steps(2000)) + 1 < 250
    assert steps == sorted(steps)


def test_sequence_task_trains_f_to_map_each_image_to_the_next():
    cfg = TrialConfig(task="sequence", n_train=4, depth=4, width=128, activation="selu", lr=1e-3,
                      loss_tol=1e-7, max_steps=3000)
    images = data.load(cfg)
    x = images.train.flatten(1)
    model = models.build(cfg, images.shape)
    assert train(model, x, cfg).status == "ok"
    with torch.no_grad():
        out = model(x)
    for i in range(4):  # f(x_i) is x_(i+1), not x_i
        assert torch.norm(out[i] - x[(i + 1) % 4]) < 1e-2 * torch.norm(x[(i + 1) % 4])
        assert torch.norm(out[i] - x[i]) > 0.1 * torch.norm(x[i])
