"""Batched training gives each model what training it alone gives (same seeds), to float rounding."""
import numpy as np
import pytest
import torch

from study.trial import data
from study.trial import models
from study.trial.batched import batch_key
from study.config import TrialConfig
from study.trial.train import fit, train
from study.trial.run import run_trial, run_trials

BASE = TrialConfig(depth=4, width=48, lr=1e-3, loss_tol=1e-6, max_steps=1500, n_random_starts=10)
CPU = torch.device("cpu")


def setup(cfg):
    images = data.load(cfg)
    return models.build(cfg, images.shape), models.to_input(images.train, cfg.arch)


def alone_and_batched(cfgs):
    alone = []
    for cfg in cfgs:
        model, x = setup(cfg)
        alone.append((train(model, x, cfg), model))
    built = [setup(c) for c in cfgs]
    fits = fit([m for m, _ in built], [x for _, x in built], cfgs)
    return alone, list(zip(fits, [m for m, _ in built]))


def assert_same_training(alone, batched, rel=1e-3):
    for (fa, ma), (fb, mb) in zip(alone, batched):
        assert fa.status == fb.status and fa.steps == fb.steps
        assert fb.final_loss == pytest.approx(fa.final_loss, rel=rel)
        for pa, pb in zip(ma.parameters(), mb.parameters()):
            torch.testing.assert_close(pb, pa, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("optimizer, lr", [("adam", 1e-3), ("gd", 0.5)])
def test_batched_training_matches_training_alone(optimizer, lr):
    cfgs = [BASE.replace(seed=s, optimizer=optimizer, lr=lr, max_steps=300, loss_tol=1e-12) for s in range(3)]
    alone, batched = alone_and_batched(cfgs)
    assert_same_training(alone, batched)
    assert len({round(f.final_loss, 12) for f, _ in batched}) == 3  # three different models, not one copied


@pytest.mark.parametrize("optimizer, lrs", [("adam", (1e-3, 3e-3, 5e-4)), ("gd", (0.5, 0.2, 0.8))])
def test_a_batch_may_differ_in_lr_n_train_init_task_noise_and_steps(optimizer, lrs):
    # everything but the model's shape differs: each model still trains as it would alone
    cfgs = [BASE.replace(optimizer=optimizer, lr=lrs[0], max_steps=200, loss_tol=1e-12),
            BASE.replace(optimizer=optimizer, lr=lrs[1], max_steps=150, loss_tol=1e-12, seed=1, n_train=6,
                         init="xavier"),
            BASE.replace(optimizer=optimizer, lr=lrs[2], max_steps=250, loss_tol=1e-12, seed=2, n_train=4,
                         task="sequence", train_noise=0.05)]
    assert len({batch_key(c, CPU) for c in cfgs}) == 1
    alone, batched = alone_and_batched(cfgs)
    assert [f.steps for f, _ in batched] == [200, 150, 250]  # each stopped at its own max_steps
    assert_same_training(alone, batched)


def test_a_diverging_model_leaves_the_rest_of_its_batch_alone():
    cfgs = [BASE.replace(optimizer="gd", lr=0.5, max_steps=100, loss_tol=1e-12),
            BASE.replace(optimizer="gd", lr=1e6, max_steps=100, loss_tol=1e-12, seed=1)]
    alone, batched = alone_and_batched(cfgs)
    assert [f.status for f, _ in batched] == ["not_converged", "diverged"]
    assert_same_training(alone[:1], batched[:1])
    assert batched[1][0].steps == alone[1][0].steps


def test_conv_nets_batch_through_vmap_as_trained_alone():
    cfgs = [BASE.replace(arch="conv_down", width=8, depth=4, seed=s, max_steps=60, loss_tol=1e-12) for s in range(2)]
    alone, batched = alone_and_batched(cfgs)
    assert_same_training(alone, batched)


def test_models_that_finish_early_are_frozen_at_their_own_stopping_step():
    cfgs = [BASE.replace(seed=s) for s in range(3)]
    alone, batched = alone_and_batched(cfgs)
    steps = [f.steps for f, _ in batched]
    assert len(set(steps)) > 1  # the seeds stop at different steps: freezing is exercised
    # rounding differs between one batched matmul and three small ones, so the 1e-6 line may be
    # crossed a step or two apart; the trajectories are otherwise the same
    assert steps == pytest.approx([f.steps for f, _ in alone], rel=0.01)
    for cfg, (one, model) in zip(cfgs, batched):
        assert one.status == "ok"
        x = data.load(cfg).train.flatten(1)
        with torch.no_grad():
            now = torch.mean((model(x) - x) ** 2).item()
        # a frozen model still has the loss it stopped at; Adam's momentum would have moved it
        assert now == pytest.approx(one.final_loss, rel=1e-3) and now < cfg.loss_tol


def test_run_trials_rows_match_run_trial():
    # a fixed number of steps (tolerance out of reach), so both runs stop together: the Jacobian at a
    # training example is not pinned by interpolation, and two Adam steps more can move it by percents
    fixed = BASE.replace(loss_tol=1e-12, max_steps=400)
    cfgs = [fixed.replace(seed=s) for s in range(3)] + [BASE.replace(arch="conv", width=4, depth=2, max_steps=20)]
    batched = run_trials(cfgs)
    for cfg, res in zip(cfgs, batched):
        alone = run_trial(cfg)
        assert res.trial["trial_id"] == alone.trial["trial_id"] and res.trial["status"] == alone.trial["status"]
        assert res.trial["steps"] == alone.trial["steps"]
        np.testing.assert_allclose([e["spectral_radius"] for e in res.examples],
                                   [e["spectral_radius"] for e in alone.examples], rtol=2e-3)
        np.testing.assert_allclose([e["fixed_point_residual"] for e in res.examples],
                                   [e["fixed_point_residual"] for e in alone.examples], rtol=0.05, atol=1e-6)


def test_batch_key():
    key = batch_key(BASE, CPU)
    assert key == batch_key(BASE.replace(seed=5, lr=0.1, n_train=3, init="xavier", n_random_starts=3), CPU)
    assert key != batch_key(BASE.replace(width=64), CPU) and key != batch_key(BASE.replace(optimizer="gd"), CPU)
    # on a CPU only small kernels batch: fc up to width 128, conv up to 32; on a GPU every shape does
    assert batch_key(BASE.replace(width=129), CPU) is None and batch_key(BASE.replace(width=128), CPU) is not None
    assert batch_key(BASE.replace(arch="conv", width=33), CPU) is None
    assert batch_key(BASE.replace(arch="conv", width=32), CPU) is not None
    assert batch_key(BASE.replace(width=2048), torch.device("cuda")) is not None


def test_an_architecture_never_batched_on_a_cpu_trains_alone_and_writes_its_row(monkeypatch):
    """An architecture's CPU batching limit is part of its registry entry, which cannot be made without
    one (before, batch_key read a separate table outside the trial's try: an architecture added without
    an entry there raised KeyError and crashed the whole Tune trial). A limit of 0 trains it alone."""
    import dataclasses

    from study import registry
    from study.trial import batched
    with pytest.raises(TypeError):
        registry.Arch("an architecture without a CPU batching limit")  # noqa
    monkeypatch.setitem(batched.ARCHS, "fc", dataclasses.replace(registry.ARCHS["fc"], max_width_cpu=0))
    assert batch_key(BASE, CPU) is None
    cfg = BASE.replace(max_steps=5, n_random_starts=2, starts_per_example=1, iter_steps=20, iter_max_steps=20)
    rows = run_trials([cfg, cfg.replace(seed=1)], CPU)
    assert [r.trial["trial_id"] for r in rows] == [cfg.trial_id, cfg.replace(seed=1).trial_id]
    assert all(r.trial["status"] != "error" for r in rows)
