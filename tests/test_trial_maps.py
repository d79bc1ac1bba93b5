"""Hand-built maps whose answers are known, probed through the trial's own path (``trial._finish``:
the sequence composition, ``trial.probe``'s attractor rule and retrieval counts, the rows), so a
wrong rule there shows here, not only in ``probes``."""
import tempfile
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from torch import nn

from study import results, trial
from study.config import TrialConfig

N, D = 4, 16
X = 10 * torch.eye(D, dtype=torch.float64)[:N]  # four well separated training points
HELDOUT = X[:2] + torch.tensor(3.0, dtype=torch.float64)  # two held-out points, away from every x_i


class Map(nn.Module):
    """f(x) = P[to[j]] + c (x - P[j]) with j the training point nearest x: a contraction (c < 1) or
    expansion (c > 1) about P[j] in x_j's cell, sending that cell's points on to P[to[j]]."""

    def __init__(self, P: torch.Tensor, c: float, to: list[int] | None = None):
        super().__init__()
        self.P, self.c, self.to = P, c, torch.tensor(to if to is not None else list(range(N)))

    def forward(self, x):
        j = ((x[:, None, :] - X[None]) ** 2).sum(-1).argmin(dim=1)  # cdist has no forward-mode AD
        return self.P[self.to[j]] + self.c * (x - self.P[j])


def run(f: nn.Module, **cfg) -> tuple[dict, dict]:
    """The trial row and its retrieval rows (by start kind, at the headline sigma) for map ``f``."""
    config = TrialConfig(n_train=N, n_heldout=2, n_random_starts=20, starts_per_example=4, iter_steps=400,
                         noise_levels=(0.05, 0.1), headline_sigma=0.1, **cfg)
    setup = trial._Setup(config, SimpleNamespace(shape=(1, 4, 4), low=0.0, high=1.0), X.clone(), HELDOUT, f)
    fit = SimpleNamespace(status="ok", final_loss=0.0, steps=1, train_seconds=0.0, curve=[(0, 0.0)])
    result = trial._finish(setup, fit, keep_model=False)
    with tempfile.TemporaryDirectory() as out:  # rows of exactly the declared schemas, or this raises
        results.write_trial(out, result)
    assert {r["start"]: r["sigma"] for r in result.retrieval if r["start"] != "noisy"} == {
        "masked": config.mask_frac, "heldout": None, "random": None}
    assert all(result.trial[f"{k}_seconds"] > 0 for k in ("probe", "spectra", "iteration", "span"))
    retrieval = {r["start"]: r for r in result.retrieval if r["sigma"] in (None, 0.1, config.mask_frac)}
    return result.trial, retrieval


def test_a_map_sending_every_start_to_x0_retrieves_any_memory_but_its_own_only_from_x0():
    row, rr = run(Map(X[[0, 0, 0, 0]], 0.0))  # f(x) = x_0 everywhere
    assert row["attractor_frac"] == row["fixed_point_frac"] == row["memory_frac"] == 1 / N  # only x_0
    assert row["retrieval_any_frac"] == 1.0  # every noisy start lands on a memory...
    assert row["retrieval_same_frac"] == 1 / N  # ...but only x_0's starts on their own
    assert rr["noisy"]["same_frac"] == 1 / N and rr["noisy"]["any_frac"] == 1.0 and rr["masked"]["any_frac"] == 1.0
    assert row["masked_same_frac"] == 1 / N  # masked starts too: only x_0's come back to their own
    assert row["heldout_to_train_frac"] == row["random_to_train_frac"] == 1.0 and row["spurious_frac"] == 0.0


def test_a_contraction_with_no_fixed_point_at_the_examples_makes_no_attractor():
    far = torch.full((N, D), 30.0, dtype=torch.float64)  # one attracting point, far from every x_i
    row, rr = run(Map(far, 0.5))
    assert row["spectral_radius_max"] == pytest.approx(0.5)  # contracting at every x_i...
    assert row["attractor_frac"] == row["fixed_point_frac"] == row["memory_frac"] == 0.0  # ...but none is fixed
    assert row["retrieval_same_frac"] == row["retrieval_any_frac"] == 0.0
    assert row["spurious_frac"] == 1.0 and rr["noisy"]["spurious_frac"] == 1.0  # a limit, but no memory


def test_an_attracting_point_offset_from_each_example_is_a_memory_that_starts_return_to():
    shift = torch.randn(N, D, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    P = X + 0.04 * 10 * shift / shift.norm(dim=1, keepdim=True)  # 4% from x_i: within memory_tol (5%)
    row, _ = run(Map(P, 0.5))
    assert row["memory_frac"] == 1.0 and row["memory_offset_median"] == pytest.approx(0.04, rel=1e-3)
    assert row["fixed_point_frac"] == row["attractor_frac"] == 0.0  # x_i moves by 2% > fixed_point_tol
    assert row["retrieval_same_frac"] == 1.0  # yet every noisy start returns to its own example's memory


@pytest.mark.parametrize("c", [1.014, 1 - 0.5e-3])
def test_a_repelling_or_barely_contracting_fixed_point_is_no_attractor(c):
    row, rr = run(Map(X, c))  # each x_i exactly fixed; rho = c
    assert row["fixed_point_frac"] == 1.0 and row["spectral_radius_median"] == pytest.approx(c)
    assert row["attractor_frac"] == 0.0  # rho >= 1 - rho_margin (1e-3): not an attractor
    if c > 1:  # starts creep away and never converge: no return, though the nearest example is their own
        assert row["retrieval_same_frac"] == 0.0 and rr["noisy"]["none_frac"] == 1.0


def test_a_contraction_just_inside_the_margin_is_an_attractor():
    row, _ = run(Map(X, 1 - 2e-3))
    assert row["attractor_frac"] == 1.0


def test_a_cyclic_contraction_is_probed_through_f_to_the_n_as_a_sequence_task():
    f = Map(X, 0.8, to=[1, 2, 3, 0])  # x_i -> x_(i+1): no x_i is a fixed point of f itself
    row, _ = run(f, task="sequence")
    assert row["fixed_point_frac"] == row["attractor_frac"] == 1.0  # fixed points of f^4
    assert row["spectral_radius_median"] == pytest.approx(0.8 ** N)  # the product of four 0.8 I
    assert row["retrieval_same_frac"] == 1.0
    row, _ = run(f)  # the same map as an autoencoder: nothing is fixed
    assert row["fixed_point_frac"] == 0.0 and np.isclose(row["spectral_radius_median"], 0.8)
