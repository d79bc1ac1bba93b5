"""Packed training gives each model what training it alone gives (same seeds), to float rounding."""
import numpy as np
import pytest
import torch

from study import data, models
from study.config import TrialConfig
from study.packed import pack_key, train_packed
from study.train import train
from study.trial import run_trial, run_trials

BASE = TrialConfig(depth=4, width=48, lr=1e-3, loss_tol=1e-6, max_steps=1500, n_random_starts=10)


def separate_and_packed(cfgs):
    alone = []
    for cfg in cfgs:
        images = data.load(cfg)
        model = models.build(cfg, images.shape)
        alone.append((train(model, images.train.flatten(1), cfg), model))
    setups = [(data.load(c), models.build(c, data.load(c).shape)) for c in cfgs]
    xs = torch.stack([im.train.flatten(1) for im, _ in setups])
    fits = train_packed(cfgs, xs, [m for _, m in setups])
    return alone, list(zip(fits, [m for _, m in setups]))


@pytest.mark.parametrize("optimizer, lr", [("adam", 1e-3), ("gd", 0.5)])
def test_packed_training_matches_training_alone(optimizer, lr):
    cfgs = [BASE.replace(seed=s, optimizer=optimizer, lr=lr, max_steps=300, loss_tol=1e-12) for s in range(3)]
    alone, packed = separate_and_packed(cfgs)
    for (fa, ma), (fp, mp) in zip(alone, packed):
        assert fa.status == fp.status and fa.steps == fp.steps
        assert fp.final_loss == pytest.approx(fa.final_loss, rel=1e-3)
        for pa, pp in zip(ma.parameters(), mp.parameters()):
            torch.testing.assert_close(pp, pa, rtol=1e-4, atol=1e-5)
    assert len({round(f.final_loss, 12) for f, _ in packed}) == 3  # three different models, not one copied


def test_models_that_finish_early_are_frozen_at_their_own_stopping_step():
    cfgs = [BASE.replace(seed=s) for s in range(3)]
    alone, packed = separate_and_packed(cfgs)
    steps = [f.steps for f, _ in packed]
    assert len(set(steps)) > 1  # the seeds stop at different steps: freezing is exercised
    # rounding differs between one batched matmul and three small ones, so the 1e-6 line may be
    # crossed a step or two apart; the trajectories are otherwise the same
    assert steps == pytest.approx([f.steps for f, _ in alone], rel=0.01)
    for cfg, (fit, model) in zip(cfgs, packed):
        assert fit.status == "ok"
        x = data.load(cfg).train.flatten(1)
        with torch.no_grad():
            now = torch.mean((model(x) - x) ** 2).item()
        # a frozen model still has the loss it stopped at; Adam's momentum would have moved it
        assert now == pytest.approx(fit.final_loss, rel=1e-3) and now < cfg.loss_tol


def test_run_trials_rows_match_run_trial():
    # a fixed number of steps (tolerance out of reach), so both runs stop together: the Jacobian at a
    # training example is not pinned by interpolation, and two Adam steps more can move it by percents
    fixed = BASE.replace(loss_tol=1e-12, max_steps=400)
    cfgs = [fixed.replace(seed=s) for s in range(3)] + [BASE.replace(arch="conv", width=4, depth=2, max_steps=20)]
    packed = run_trials(cfgs)
    for cfg, res in zip(cfgs, packed):
        alone = run_trial(cfg)
        assert res.trial["trial_id"] == alone.trial["trial_id"] and res.trial["status"] == alone.trial["status"]
        assert res.trial["steps"] == alone.trial["steps"]
        np.testing.assert_allclose([e["spectral_radius"] for e in res.examples],
                                   [e["spectral_radius"] for e in alone.examples], rtol=2e-3)
        np.testing.assert_allclose([e["fixed_point_residual"] for e in res.examples],
                                   [e["fixed_point_residual"] for e in alone.examples], rtol=0.05, atol=1e-6)


def test_pack_key():
    assert pack_key(BASE) == pack_key(BASE.replace(seed=5, n_random_starts=3))
    assert pack_key(BASE) != pack_key(BASE.replace(width=64))
    assert pack_key(BASE.replace(arch="conv")) is None and pack_key(BASE.replace(train_noise=0.1)) is None
