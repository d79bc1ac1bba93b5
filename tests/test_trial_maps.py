"""Hand-built maps whose answers are known, probed through the trial's own path (``study.trial.run._measure``:
the sequence composition, ``run.probe``'s attractor rule and retrieval counts, the rows), so a
wrong rule there shows here, not only in ``probes``. At the end, a few tiny real trials (digits,
one linear layer: milliseconds each) for what only a whole trial shows: ``run_trial``'s and
``run_trials``' rows, statuses and device handling."""
import platform
import tempfile
import time
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from torch import nn

from study.trial import probes
from study.store import parts
from study.trial import resources
from study.trial import run as trial_run
from study.trial import train
from study.config import TrialConfig
from study import rules

N, D = 4, 16
X = 10 * torch.eye(D, dtype=torch.float64)[:N]  # four well separated training points
HELDOUT = X[:2] + torch.tensor(3.0, dtype=torch.float64)  # two held-out points, away from every x_i


class Map(nn.Module):
    """f(x) = P[to[j]] + c (x - P[j]) with j the training point nearest x: a contraction (c < 1) or
    expansion (c > 1) about P[j] in x_j's cell, sending that cell's points on to P[to[j]]. With
    ``radius``, only points within that distance of P[j] move; the rest are left where they are."""

    def __init__(self, P: torch.Tensor, c: float, to: list[int] | None = None, radius: float | None = None):
        super().__init__()
        self.P, self.c, self.to, self.radius = P, c, torch.tensor(to if to is not None else list(range(N))), radius

    def forward(self, x):
        j = ((x[:, None, :] - X[None]) ** 2).sum(-1).argmin(dim=1)  # cdist has no forward-mode AD
        y = self.P[self.to[j]] + self.c * (x - self.P[j])
        if self.radius is None:
            return y
        return torch.where(((x - self.P[j]) ** 2).sum(-1, keepdim=True) < self.radius ** 2, y, x)


def config(**cfg) -> TrialConfig:
    return TrialConfig(**{"n_train": N, "n_heldout": 2, "n_random_starts": 20, "starts_per_example": 4,
                          "iter_steps": 400, "noise_levels": (0.05, 0.1), "headline_sigma": 0.1, **cfg})


def finish(f: nn.Module, x: torch.Tensor = X, heldout: torch.Tensor = HELDOUT, status: str = "ok",
           keep_model: bool = False, low: float = 0.0, high: float = 1.0, **cfg) -> trial_run.TrialResult:
    """``trial_run._measure`` on map ``f`` as if training had ended with ``status`` (train_seconds 0.25)."""
    setup = trial_run._Setup(config(**cfg), SimpleNamespace(shape=(1, 4, 4), low=low, high=high), x.clone(), heldout, f)
    fit = SimpleNamespace(status=status, final_loss=0.0, steps=1, train_seconds=0.25, curve=[(0, 1.0), (1, 0.0)])
    result = trial_run._measure(setup, fit, keep_model=keep_model)
    with tempfile.TemporaryDirectory() as out:  # rows of exactly the declared schemas, or this raises
        parts.write_trial(out, result)
    return result


def run(f: nn.Module, **cfg) -> tuple[dict, dict]:
    """The trial row and its retrieval rows (by start kind, at the headline sigma) for map ``f``."""
    result = finish(f, **cfg)
    config = result.config
    assert result.model is None  # not kept unless asked
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
    assert row["fixed_point_frac"] == 0.0  # x_i moves by 2% > fixed_point_tol ...
    assert row["attractor_frac"] == 1.0  # ... but iteration goes to a point 4% away that attracts (rho 0.5)
    assert row["retrieval_same_frac"] == 1.0  # and every noisy start returns to its own example's memory


@pytest.mark.parametrize("c", [1.014, 1 - 0.5e-3])
def test_a_repelling_or_barely_contracting_fixed_point_is_no_attractor(c):
    row, rr = run(Map(X, c))  # each x_i exactly fixed; rho = c
    assert row["fixed_point_frac"] == 1.0 and row["spectral_radius_median"] == pytest.approx(c)
    assert row["attractor_frac"] == 0.0  # rho >= 1 - rho_margin (1e-3): not an attractor
    if c > 1:  # starts creep away and never converge: no return, though the nearest example is their own
        assert row["retrieval_same_frac"] == 0.0 and rr["noisy"]["none_frac"] == 1.0
        # x_i itself never moves, but the points beside it leave: an unstable fixed point is no memory
        assert row["memory_frac"] == 0.0


def test_a_contraction_just_inside_the_margin_is_an_attractor():
    row, _ = run(Map(X, 1 - 2e-3))
    assert row["attractor_frac"] == 1.0


def test_a_slow_contraction_is_followed_past_iter_steps_to_its_limit():
    # c = 0.998: a start 0.1 per pixel away needs ~1,500 steps to move by less than iter_tol; the trial
    # gives every start 300, then follows those still contracting up to iter_max_steps
    row, rr = run(Map(X, 0.998), iter_steps=300)
    assert row["attractor_frac"] == row["memory_frac"] == 1.0
    assert row["retrieval_same_frac"] == 1.0 and rr["noisy"]["capped_frac"] == 0.0 and row["capped_frac"] == 0.0
    assert 300 < row["iter_steps_max"] <= 20000
    # with no room beyond 300 steps the budget decides: every noisy start is capped, and the row says so
    row, rr = run(Map(X, 0.998), iter_steps=300, iter_max_steps=300)
    assert row["retrieval_same_frac"] == 0.0 and rr["noisy"]["capped_frac"] == 1.0 and row["capped_frac"] > 0.5


def test_an_attracting_point_far_beyond_memory_tol_is_no_attractor_of_its_example():
    # f moves x_i by r_i = 0.9% of |x_i| (a fixed point by fixed_point_tol, 1%) and contracts at 0.995 (rho
    # below 1 - rho_margin), but toward a point 0.009 / 0.005 = 180% of |x_i| away, off the examples' span
    off = 18.0 * torch.eye(D, dtype=torch.float64)[N:2 * N]
    row, _ = run(Map(X + off, 0.995))
    assert row["fixed_point_frac"] == 1.0 and row["spectral_radius_median"] == pytest.approx(0.995)
    assert row["memory_frac"] == row["attractor_frac"] == 0.0  # iteration from x_i ends 180% away


class Cycle(nn.Module):
    """x_0 attracts within ``r0`` (f = x_0 + (x - x_0) / 2); the rest of its cell falls onto a stable
    2-cycle between a = x_0 + 2 e and b = x_0 - 2 e (e a unit vector off the examples' span): a point
    nearer a goes to b + (x - a) / 2, one nearer b to a + (x - b) / 2. The other cells contract onto
    their x_j."""

    def __init__(self, r0: float = 0.05):
        super().__init__()
        e = torch.eye(D, dtype=torch.float64)[N]
        self.a, self.b, self.r0 = X[0] + 2 * e, X[0] - 2 * e, r0

    def forward(self, x):
        j = ((x[:, None, :] - X[None]) ** 2).sum(-1).argmin(dim=1)
        home = X[j] + 0.5 * (x - X[j])
        nearer_a = ((x - self.a) ** 2).sum(-1, keepdim=True) < ((x - self.b) ** 2).sum(-1, keepdim=True)
        swap = torch.where(nearer_a, self.b + 0.5 * (x - self.a), self.a + 0.5 * (x - self.b))
        out = ((j == 0)[:, None]) & (((x - X[0]) ** 2).sum(-1, keepdim=True) >= self.r0 ** 2)
        return torch.where(out, swap, home)


def test_a_stable_two_cycle_beside_an_example_is_counted_as_a_cycle_and_as_spurious():
    row, rr = run(Cycle())
    assert row["memory_frac"] == row["attractor_frac"] == 1.0  # every x_i attracts the points just beside it
    # x_0's noisy starts (0.05 and 0.1 per pixel: beyond r0) fall onto the cycle, the others return
    noisy = rr["noisy"]
    assert noisy["cycle_frac"] == noisy["spurious_frac"] == 1 / N and noisy["same_frac"] == 1 - 1 / N
    assert noisy["none_frac"] == 0.0


class Regions(nn.Module):
    """Five regions, by the largest of coordinates 10..14 (region 0 also wherever all five lie below 0.1:
    the training images, the held-out ones and the points just beside them), each kept by its dynamics:
    0: f contracts onto the nearest x_j, a memory; 1: onto s_a = e_11 + e_15 / 4 where x_15 < 1/2, else onto
    s_b = e_11 + 3 e_15 / 4, two spurious fixed points; 2: a stable 2-cycle between a = e_12 and b = e_12 +
    e_15; 3: f = 2 x, divergence; 4: f = x + 1e-3 e_15, for ever moving. A uniform random start on [0, 1]^16
    lands in the region of its largest coordinate among 10..14."""

    def forward(self, x):
        e = torch.eye(D, dtype=x.dtype)
        tail = x[:, 10:15]
        region = torch.where(tail.max(dim=1).values < 0.1, 0, tail.argmax(dim=1))[:, None]
        j = ((x[:, None, :] - X[None]) ** 2).sum(-1).argmin(dim=1)
        s = torch.where(x[:, 15:16] < 0.5, e[11] + 0.25 * e[15], e[11] + 0.75 * e[15])
        a, b = e[12], e[12] + e[15]
        nearer_a = ((x - a) ** 2).sum(-1, keepdim=True) < ((x - b) ** 2).sum(-1, keepdim=True)
        out = X[j] + 0.5 * (x - X[j])
        out = torch.where(region == 1, s + 0.5 * (x - s), out)
        out = torch.where(region == 2, torch.where(nearer_a, b + 0.5 * (x - a), a + 0.5 * (x - b)), out)
        out = torch.where(region == 3, 2 * x, out)
        return torch.where(region == 4, x + 1e-3 * e[15], out)


def test_the_census_of_random_and_heldout_starts_counts_every_class_and_the_spurious_points():
    result = finish(Regions(), n_random_starts=200)
    row, cfg = result.trial, result.config
    rows = {r["start"]: r for r in result.retrieval if r["start"] in ("heldout", "random")}
    # the trial's random starts, drawn as probe() draws them: their regions decide their classes
    gen = torch.Generator().manual_seed(cfg.seed + 2)
    probes.noisy_starts(X, cfg.noise_levels, cfg.starts_per_example, gen)
    probes.masked_starts(X, cfg.mask_frac, cfg.starts_per_example, 0.0, 1.0, gen)
    random = torch.rand((cfg.n_random_starts, D), generator=gen, dtype=X.dtype)
    region = random[:, 10:15].argmax(dim=1)
    share = np.bincount(region.numpy(), minlength=5) / len(random)
    assert (share > 0.1).all()  # every class is there
    classes = ("any_frac", "spurious_point_frac", "cycle_frac", "diverged_frac", "moving_frac")  # regions 0..4
    assert set(rules.CENSUS_COLUMNS) == set(classes)
    assert [rows["random"][c] for c in classes] == pytest.approx(share.tolist(), abs=1e-12)
    assert [rows["heldout"][c] for c in classes] == [1.0, 0.0, 0.0, 0.0, 0.0]  # both to x_0, x_1
    assert rows["random"]["n_starts"] == 200 and rows["heldout"]["n_starts"] == 2
    # every row's census sums to 1, and refines its kinds: spurious = spurious point + cycle, none = the rest
    for r in result.retrieval:
        assert sum(r[c] for c in rules.CENSUS_COLUMNS) == pytest.approx(1.0, abs=1e-12), r
        assert r["spurious_frac"] == pytest.approx(r["spurious_point_frac"] + r["cycle_frac"], abs=1e-12), r
        assert r["none_frac"] == pytest.approx(r["diverged_frac"] + r["moving_frac"], abs=1e-12), r
    # the trial's diverged_frac counts every probe start, as its retrieval rows do
    assert row["diverged_frac"] == pytest.approx(sum(r["n_starts"] * r["diverged_frac"] for r in result.retrieval)
                                                 / sum(r["n_starts"] for r in result.retrieval))
    # two distinct spurious points, s_a and s_b: from x_j = 10 e_j, |s - x_j|^2 = 100 + 1 + s_15^2; from the
    # mean 2.5 (e_0 + ... + e_3), 4 * 6.25 + 1 + s_15^2; RMS divides by sqrt(16)
    assert (random[region == 1, 15] < 0.5).any() and (random[region == 1, 15] >= 0.5).any()
    assert row["spurious_points"] == 2
    s15 = np.array([0.25, 0.75])
    assert row["spurious_train_rms_median"] == pytest.approx(np.median(np.sqrt(101 + s15 ** 2) / 4), rel=1e-5)
    assert row["spurious_mean_rms_median"] == pytest.approx(np.median(np.sqrt(26 + s15 ** 2) / 4), rel=1e-5)


class Leaves(nn.Module):
    """Within ``radius`` of x_j: f(x) = x_j + v + (x - x_j) / 2, a contraction (rho = 1/2) that moves x_j
    by |v| = 0.9% of |x_j| toward a fixed point 2 v away, beyond ``radius``; outside, f expands away from
    x_j, f(x) = x_j + 2 (x - x_j). At x_j everything looks attracting; iteration from it leaves."""

    def __init__(self, radius: float = 0.1):
        super().__init__()
        self.v = 0.09 * torch.eye(D, dtype=torch.float64)[N:2 * N]
        self.radius = radius

    def forward(self, x):
        j = ((x[:, None, :] - X[None]) ** 2).sum(-1).argmin(dim=1)
        inside = ((x - X[j]) ** 2).sum(-1, keepdim=True) < self.radius ** 2
        return torch.where(inside, X[j] + self.v[j] + 0.5 * (x - X[j]), X[j] + 2 * (x - X[j]))


def test_a_contraction_at_the_example_whose_iteration_leaves_is_no_attractor():
    row, _ = run(Leaves())
    assert row["fixed_point_frac"] == 1.0 and row["spectral_radius_max"] == pytest.approx(0.5)  # the old rule: yes
    assert row["memory_frac"] == row["attractor_frac"] == 0.0


def test_a_cyclic_contraction_is_probed_through_f_to_the_n_as_a_sequence_task():
    f = Map(X, 0.8, to=[1, 2, 3, 0])  # x_i -> x_(i+1): no x_i is a fixed point of f itself
    row, _ = run(f, task="sequence")
    assert row["fixed_point_frac"] == row["attractor_frac"] == 1.0  # fixed points of f^4
    assert row["spectral_radius_median"] == pytest.approx(0.8 ** N)  # the product of four 0.8 I
    assert row["retrieval_same_frac"] == 1.0
    row, _ = run(f)  # the same map as an autoencoder: nothing is fixed
    assert row["fixed_point_frac"] == 0.0 and np.isclose(row["spectral_radius_median"], 0.8)


def test_a_contraction_about_every_example_fills_every_row_and_the_result():
    f = Map(X, 0.5)
    before = time.perf_counter()
    result = finish(f, keep_model=True)
    wall = time.perf_counter() - before
    row, tid = result.trial, result.config.trial_id
    assert [(e["trial_id"], e["example"], e["attractor"], e["memory_found"]) for e in result.examples] == [
        (tid, i, True, True) for i in range(N)]
    for e in result.examples:  # x_i exactly fixed, J = 0.5 I, every noisy start (up to sigma 0.1) comes back
        assert e["fixed_point_residual"] == e["memory_offset"] == 0.0 and e["basin_radius"] == 0.1
        assert e["spectral_radius"] == pytest.approx(0.5) and e["top_singular_value"] == pytest.approx(0.5)
    assert row["top_singular_median"] == pytest.approx(0.5) and row["spectral_failures"] == 0
    assert row["spurious_frac"] == row["unconverged_frac"] == 0.0  # held-out and random starts all reach a memory
    assert row["spurious_points"] == 0 and row["spurious_train_rms_median"] is row["spurious_mean_rms_median"] is None
    assert [(r["sigma"], r["n_starts"], r["same_frac"]) for r in result.retrieval if r["start"] == "noisy"] == [
        (0.05, N * 4, 1.0), (0.1, N * 4, 1.0)]
    assert {r["start"]: r["n_starts"] for r in result.retrieval if r["start"] != "noisy"} == {
        "masked": N * 4, "heldout": 2, "random": 20}
    # h = x_0 + 3 (1, ..., 1) goes to f(h) = x_0 + 1.5 (1, ..., 1) (and h = x_1 + 3 likewise): off span(X) it keeps
    # 1.5 on 12 coordinates, |f(h)|^2 = 11.5^2 + 15 * 1.5^2 = 166; f(P_X h) lacks just that part
    assert row["span_residual_mean"] == pytest.approx((27 / 166) ** 0.5)
    assert row["span_input_sensitivity_mean"] == pytest.approx((27 / 166) ** 0.5)
    assert row["span_dim"] is row["operator_near_one"] is None  # no linear net: no operator
    assert (row["device"], row["input_dim"], row["n_params"], row["bottleneck_side"]) == ("cpu", D, 0, 512)
    assert (row["status"], row["error"], row["train_seconds"]) == ("ok", None, 0.25)
    assert result.config == config() and result.model is f and result.image_shape == (1, 4, 4)
    assert torch.equal(result.train_x, X)
    assert result.curve == [{"trial_id": tid, "step": 0, "loss": 1.0}, {"trial_id": tid, "step": 1, "loss": 0.0}]
    assert result.timings["train"] == 0.25
    # the three probe stages are timed inside the probe, which is timed inside this call
    stages = sum(row[f"{k}_seconds"] for k in ("spectra", "iteration", "span"))
    assert 0 < stages <= row["probe_seconds"] <= wall


@pytest.mark.parametrize("keep_model", [False, True])
def test_a_diverged_run_is_a_row_with_its_curve_and_nothing_probed(keep_model):
    f = Map(X, 0.5)
    result = finish(f, status="diverged", keep_model=keep_model)
    row = result.trial
    assert row["status"] == "diverged" and row["attractor_frac"] is row["probe_seconds"] is None
    assert result.examples == result.retrieval == []
    assert [(c["trial_id"], c["step"], c["loss"]) for c in result.curve] == [(row["trial_id"], 0, 1.0),
                                                                              (row["trial_id"], 1, 0.0)]
    assert result.config == config() and (result.model is f) == keep_model and (result.model is None) != keep_model
    assert torch.equal(result.train_x, X) and result.image_shape == (1, 4, 4) and result.timings == {"train": 0.25}


def test_bottleneck_side_is_the_width_for_fc_the_image_side_for_conv_and_halved_by_conv_down():
    cheap = dict(n_heldout=0, n_random_starts=0, starts_per_example=1, noise_levels=(0.1,), iter_steps=5)
    sides = [finish(Map(X, 0.5), heldout=X[:0], **cheap, **arch).trial["bottleneck_side"]
             for arch in (dict(width=64), dict(arch="conv"), dict(arch="conv_down", depth=2))]
    assert sides == [64, 4, 2]  # 4x4 images: conv keeps the side, one conv_down stage halves it


def test_a_linear_net_keeping_the_span_and_halving_the_rest_reports_its_operator(monkeypatch):
    def linear(n: int) -> nn.Linear:  # A = P + 0.5 (I - P), P the projector onto span(x_0 .. x_(n-1))
        P = torch.diag((torch.arange(D) < n).float())
        net = nn.Linear(D, D, bias=False)  # float32, as a trained net and its data are
        with torch.no_grad():
            net.weight.copy_(P + 0.5 * (torch.eye(D) - P))
        return net

    linear_cfg = dict(activation="identity", bias=False, x=X.float(), heldout=HELDOUT.float())
    monkeypatch.setattr(resources, "OPERATOR_MAX_DIM", D)  # d = 16 is exactly the largest operator read
    result = finish(linear(N), keep_model=True, **linear_cfg)
    row = result.trial
    assert (row["span_dim"], row["operator_near_one"], row["operator_near_one_in_span"]) == (N, N, N)
    assert row["operator_rest_radius"] == pytest.approx(0.5) and row["n_params"] == D * D
    assert not any(p.requires_grad for p in result.model.parameters())  # the kept net comes back frozen
    # one training example (the C3 setting): still its operator; its one spectral radius is A's, 1
    row = finish(linear(1), **{**linear_cfg, "x": X[:1].float()}, n_train=1).trial
    assert (row["span_dim"], row["operator_near_one"], row["operator_near_one_in_span"]) == (1, 1, 1)
    assert row["spectral_radius_median"] == pytest.approx(1.0) and row["memory_offset_median"] == 0.0
    # a larger input than the limit, a bias or a nonlinearity: no operator
    for limit, cfg in [(D - 1, linear_cfg), (D, {**linear_cfg, "bias": True}),
                       (D, {**linear_cfg, "activation": "leaky_relu"})]:
        monkeypatch.setattr(resources, "OPERATOR_MAX_DIM", limit)
        row = finish(linear(N), **cfg).trial
        assert [row[k] for k in ("span_dim", "operator_near_one", "operator_near_one_in_span",
                                 "operator_rest_radius")] == [None] * 4, (limit, cfg)


def test_a_basin_holding_small_noise_only_is_reported_per_sigma_and_at_the_headline_sigma():
    # within 0.7 of x_i the map contracts, elsewhere it fixes every point (a limit that is no memory); noisy
    # starts at sigma 0.1 in 16 coordinates lie ~0.4 from x_i (inside), at sigma 0.5 ~2.0 away (outside)
    f = Map(X, 0.5, radius=0.7)
    result = finish(f, noise_levels=(0.1, 0.5), headline_sigma=0.1)
    noisy = {r["sigma"]: (r["n_starts"], r["same_frac"], r["any_frac"], r["spurious_frac"], r["none_frac"])
             for r in result.retrieval if r["start"] == "noisy"}
    assert noisy == {0.1: (N * 4, 1.0, 1.0, 0.0, 0.0), 0.5: (N * 4, 0.0, 0.0, 1.0, 0.0)}
    row = result.trial
    assert row["retrieval_same_frac"] == row["retrieval_any_frac"] == 1.0
    assert row["basin_radius_median"] == 0.1 and [e["basin_radius"] for e in result.examples] == [0.1] * N
    row = finish(f, noise_levels=(0.1, 0.5), headline_sigma=0.5).trial
    assert row["retrieval_same_frac"] == row["retrieval_any_frac"] == 0.0


def test_a_fixed_point_or_an_attractor_lies_strictly_inside_its_tolerance():
    # f(x_i) = x_i + 0.125 e_15: r_i = 0.125 / 10 = 0.0125, exactly, in floating point too
    P = X.clone()
    P[:, -1] = 0.25
    assert finish(Map(P, 0.5), fixed_point_tol=0.0125).trial["fixed_point_frac"] == 0.0
    assert finish(Map(P, 0.5), fixed_point_tol=0.0126).trial["fixed_point_frac"] == 1.0
    # J = 0.75 I at the exactly fixed x_i: rho = 0.75 = 1 - rho_margin is no attractor
    assert finish(Map(X, 0.75), rho_margin=0.25).trial["attractor_frac"] == 0.0
    assert finish(Map(X, 0.75), rho_margin=0.2499).trial["attractor_frac"] == 1.0


def test_failed_spectral_solves_are_counted_and_are_no_evidence_of_an_attractor(monkeypatch):
    real = probes.spectra

    def failing(nan_rho, nan_s1):
        def spectra(f, x):  # NaN where a solve did not converge, as ARPACK's are reported
            rho, s1 = real(f, x)
            rho[nan_rho], s1[nan_s1] = np.nan, np.nan
            return rho, s1
        return spectra

    monkeypatch.setattr(probes, "spectra", failing([0], [0, 1]))
    row = finish(Map(X, 0.5)).trial
    assert row["spectral_failures"] == 3 and row["fixed_point_frac"] == 1.0 and row["attractor_frac"] == 0.75
    assert row["spectral_radius_median"] == row["top_singular_median"] == pytest.approx(0.5)
    monkeypatch.setattr(probes, "spectra", failing(slice(None), slice(None)))
    row = finish(Map(X, 0.5)).trial
    assert row["spectral_failures"] == 2 * N and row["attractor_frac"] == 0.0
    assert row["spectral_radius_median"] is row["spectral_radius_max"] is row["top_singular_median"] is None


def test_without_heldout_or_random_starts_their_fractions_are_empty_not_nan():
    result = finish(Map(X, 0.5), heldout=X[:0], n_heldout=0, n_random_starts=0)
    row = result.trial
    for k in ("heldout_to_train_frac", "random_to_train_frac", "spurious_frac", "unconverged_frac",
              "span_residual_mean", "span_input_sensitivity_mean"):
        assert row[k] is None, k
    assert [(r["start"], r["n_starts"], r["same_frac"], r["any_frac"], r["spurious_frac"], r["none_frac"])
            for r in result.retrieval if r["start"] in ("heldout", "random")] == [
        ("heldout", 0, None, None, None, None), ("random", 0, None, None, None, None)]
    assert all(r[c] is None for r in result.retrieval if r["start"] in ("heldout", "random")
               for c in rules.CENSUS_COLUMNS)
    assert row["spurious_points"] == 0 and row["spurious_train_rms_median"] is None
    assert row["memory_frac"] == row["retrieval_same_frac"] == 1.0  # the rest is probed as ever


def test_an_example_beside_a_slowly_repelling_point_is_fixed_but_no_memory():
    # x_i lies 1e-5 from p_i, which repels at rate 1.014: the first step (RMS 3.5e-8) passes iter_tol, but
    # confirm_steps more show the iterate creeping away, its step growing ~4x
    P = X.clone()
    P[:, -1] = 1e-5
    row = finish(Map(P, 1.014)).trial
    assert row["fixed_point_frac"] == 1.0 and row["memory_frac"] == 0.0


class Recorder(Map):
    """A map that keeps the first batch of ``m`` points it is given: the iteration's starts."""

    def __init__(self, *args, m: int, **kwargs):
        super().__init__(*args, **kwargs)
        self.m, self.starts = m, None

    def forward(self, x):
        if self.starts is None and x.shape[0] == self.m:
            self.starts = x.clone()
        return super().forward(x)


def test_the_starts_depend_on_the_trial_seed_alone_and_random_ones_fill_the_value_range():
    def starts(seed: int, global_seed: int) -> torch.Tensor:
        torch.manual_seed(global_seed)  # torch's global generator must not matter
        f = Recorder(X, 0.5, m=N + probes.MEMORY_CHECKS * N + 2 * N * 4 + N * 4 + 2 + 20)
        finish(f, seed=seed, low=-1.0, high=1.0)
        return f.starts

    a = starts(0, 1)
    assert torch.equal(a, starts(0, 2)) and not torch.equal(a, starts(1, 1))
    memory, beside, noisy, masked, heldout, rand = a.split([N, probes.MEMORY_CHECKS * N, 2 * N * 4, N * 4, 2, 20])
    assert torch.equal(memory, X) and torch.equal(heldout, HELDOUT)
    nudge = (beside - X.repeat_interleave(probes.MEMORY_CHECKS, dim=0)).norm(dim=1) / 10  # |x_i| = 10
    torch.testing.assert_close(nudge, torch.full_like(nudge, probes.MEMORY_NUDGE))
    replaced = masked[masked != X.repeat_interleave(4, dim=0)]
    for u in (rand, replaced):  # uniform on [low, high] = [-1, 1]: hundreds of draws reach near both ends
        assert -1 <= u.min() < -0.8 and 0.8 < u.max() <= 1


# --- tiny real trials ---------------------------------------------------------------------------------
# Two 8x8 digits through one linear layer: trained and probed in milliseconds. At depth 1 the width is
# unused, so widths 128 and 129 build the same net, on either side of registry.ARCHS['fc'].max_width_cpu (128).
TINY = TrialConfig(n_train=2, n_heldout=2, depth=1, width=128, lr=1e-2, max_steps=300, loss_tol=1e-4,
                   n_random_starts=4, starts_per_example=2, noise_levels=(0.1,), iter_steps=50, confirm_steps=10)
FAILING_SEEDS = (7, 8)  # the probe of these trials raises, from deep down


def same_rows(a: list[dict], b: list[dict], rel: float = 0.0) -> bool:
    """Rows equal key by key (floats within ``rel``, NaN equal to NaN: not measured in either), wall times aside."""
    def same(x, y):
        return x == pytest.approx(y, rel=rel, abs=1e-9, nan_ok=True) if isinstance(x, float) else x == y
    return len(a) == len(b) and all(ra.keys() == rb.keys() and all(
        same(ra[k], rb[k]) for k in ra if not k.endswith("seconds")) for ra, rb in zip(a, b))


def rows(result: trial_run.TrialResult) -> list[list[dict]]:
    return [[result.trial], result.examples, result.retrieval, result.curve]


@pytest.fixture(scope="module")
def tiny():
    """``run_trials`` on seven tiny trials, in order: a wide one (never batched on a CPU), three narrow seeds
    batched together (the last one's probe fails), two more of another shape whose batch ``train.fit``
    refuses (run one by one instead), and a wide one whose probe fails; then some of them through
    ``run_trial`` alone."""
    patch, batches = pytest.MonkeyPatch(), []
    fit, probe = train.fit, trial_run.probe

    def spy(nets, xs, cfgs):
        if cfgs[0].activation != TINY.activation:
            raise RuntimeError("this batch cannot run")
        fits = fit(nets, xs, cfgs)
        batches.append([c.seed for c in cfgs])
        return fits

    def deep(depth: int):
        if depth == 0:
            raise ValueError("the probe failed")
        deep(depth - 1)

    def failing_probe(f, x, heldout, low, high, cfg):
        if cfg.seed in FAILING_SEEDS:
            deep(8)
        return probe(f, x, heldout, low, high, cfg)

    patch.setattr(trial_run, "fit", spy)
    patch.setattr(trial_run, "probe", failing_probe)
    try:
        cfgs = [TINY.replace(width=129), TINY, TINY.replace(seed=1), TINY.replace(seed=7),
                TINY.replace(activation="tanh"), TINY.replace(activation="tanh", seed=1), TINY.replace(width=129, seed=8)]
        batch = trial_run.run_trials(cfgs, keep_model=True)
        single = [trial_run.run_trial(c) for c in cfgs[:3]]
        alone = trial_run.run_trials(cfgs[1:3], batch=False)
    finally:
        patch.undo()
    return SimpleNamespace(cfgs=cfgs, batch=batch, single=single, alone=alone, batches=batches)


def test_run_trials_batches_narrow_nets_only_and_gives_the_rows_run_trial_gives(tiny):
    assert tiny.batches == [[0, 1, 7]]  # one batch; no batch at all with batch=False
    assert [r.config for r in tiny.batch] == tiny.cfgs  # results in the order of the configs
    assert [r.trial["status"] for r in tiny.batch] == ["ok"] * 3 + ["error"] + ["ok"] * 2 + ["error"]
    assert same_rows(sum(rows(tiny.batch[0]), []), sum(rows(tiny.single[0]), []))  # not batched: the same run
    for i in (1, 2):  # batched: the same up to float rounding
        assert same_rows(sum(rows(tiny.batch[i]), []), sum(rows(tiny.single[i]), []), rel=1e-4)
        assert same_rows(sum(rows(tiny.alone[i - 1]), []), sum(rows(tiny.single[i]), []))
    # models kept when asked, whichever way a trial ran: alone, batched, or alone after a batch failed
    assert all(isinstance(tiny.batch[i].model, nn.Module) for i in (0, 1, 2, 4, 5))
    assert all(r.model is None for r in tiny.single + tiny.alone)  # and not otherwise


def test_run_trial_gives_the_rows_of_a_trained_and_probed_net(tiny):
    result = tiny.batch[1]
    row = result.trial
    assert (row["status"], row["error"], row["device"], row["input_dim"]) == ("ok", None, "cpu", 64)
    assert row["n_params"] == 64 * 64 + 64 and row["bottleneck_side"] == 128 and row["final_loss"] < TINY.loss_tol
    assert len(result.examples) == TINY.n_train and result.curve[-1]["step"] == row["steps"]
    assert [(r["start"], r["n_starts"]) for r in result.retrieval] == [("noisy", 4), ("masked", 4), ("heldout", 2),
                                                                        ("random", 4)]
    assert result.image_shape == (1, 8, 8) and result.train_x.shape == (2, 64)
    assert not result.model.training and not any(p.requires_grad for p in result.model.parameters())
    with torch.no_grad():  # the kept net is the one probed
        resid = ((result.model(result.train_x) - result.train_x).norm(dim=1) / result.train_x.norm(dim=1)).tolist()
    assert [e["fixed_point_residual"] for e in result.examples] == pytest.approx(resid, rel=1e-4)


def test_a_probe_that_raises_makes_an_error_row_whether_batched_or_not(tiny):
    for i in (3, 6):  # batched with seeds 0 and 1; alone
        result = tiny.batch[i]
        row = result.trial
        assert row["status"] == "error" and row["trial_id"] == tiny.cfgs[i].trial_id and row["device"] == "cpu"
        assert row["error"].startswith("ValueError: the probe failed\nTraceback")
        assert row["error"].count("\n  File ") == 4  # the outermost four frames only: a row, not a log
        assert row["attractor_frac"] is row["final_loss"] is None
        assert result.config == tiny.cfgs[i] and result.examples == result.retrieval == result.curve == []
        assert result.model is None


def test_a_diverging_or_unfinished_training_is_a_status_not_an_exception():
    result = trial_run.run_trial(TINY.replace(optimizer="gd", lr=1e6))
    assert result.trial["status"] == "diverged" and result.trial["attractor_frac"] is None
    assert result.examples == result.retrieval == [] and len(result.curve) == 2  # steps 0 and 1
    result = trial_run.run_trial(TINY.replace(max_steps=2))
    assert (result.trial["status"], result.trial["steps"]) == ("not_converged", 2)
    assert len(result.examples) == TINY.n_train and result.trial["attractor_frac"] is not None  # probed all the same


def test_a_trial_given_a_gpu_this_process_cannot_use_is_an_error_row_saying_so(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.version, "cuda", None)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3")
    message = (f"DeviceError: this trial was given a GPU (CUDA_VISIBLE_DEVICES='3' on {platform.node()}), but torch "
               f"{torch.__version__} (CUDA build: none) sees no CUDA device; fix that node's CUDA, or pass "
               "--device cpu to train on CPU while holding the GPU share")
    # two that would be batched (on a GPU batching always pays), and a conv net
    cfgs = [TINY.replace(width=512), TINY.replace(width=512, seed=1), TINY.replace(arch="conv")]
    for result, cfg in zip([trial_run.run_trial(TINY, "cuda")] + trial_run.run_trials(cfgs, "cuda"), [TINY] + cfgs):
        row = result.trial
        assert (row["status"], row["device"], row["trial_id"]) == ("error", "cuda", cfg.trial_id)
        assert row["error"].startswith(message), row["error"]
        assert result.config == cfg and result.examples == result.retrieval == result.curve == []


def test_tf32_matmuls_are_off_unless_memsweep_tf32_is_1(monkeypatch):
    flags = torch.backends.cuda.matmul, torch.backends.cudnn
    before = [f.allow_tf32 for f in flags]
    try:
        for value, allowed in [("1", True), ("0", False), (None, False)]:
            if value is None:
                monkeypatch.delenv("MEMSWEEP_TF32", raising=False)
            else:
                monkeypatch.setenv("MEMSWEEP_TF32", value)
            resources.configure_cuda()
            assert [f.allow_tf32 for f in flags] == [allowed, allowed], value
    finally:
        for f, b in zip(flags, before):
            f.allow_tf32 = b


class TwoRates(nn.Module):
    """f(x) = P_j + c (x - P_j) in x_j's cell, with c = 1/2 within ``r`` of P_j and c = 0.9995 (rho within
    rho_margin of 1) farther out. P_j sits 4% of |x_j| from x_j, beyond r: at x_j the map barely
    contracts, at the point iteration reaches it contracts strongly."""

    def __init__(self, r: float = 0.2):
        super().__init__()
        shift = torch.eye(D, dtype=torch.float64)[N:2 * N]
        self.P, self.r = X + 0.4 * shift, r

    def forward(self, x):
        j = ((x[:, None, :] - X[None]) ** 2).sum(-1).argmin(dim=1)
        near = ((x - self.P[j]) ** 2).sum(-1, keepdim=True) < self.r ** 2
        return self.P[j] + torch.where(near, 0.5, 0.9995) * (x - self.P[j])


def test_the_attractor_is_decided_by_rho_at_the_memory_not_at_the_example():
    result = finish(TwoRates())
    ex = result.examples
    assert all(e["spectral_radius"] == pytest.approx(0.9995) for e in ex)  # at x_i: within the margin of 1
    assert all(e["memory_spectral_radius"] == pytest.approx(0.5) for e in ex)  # at x_i*: strongly contracting
    assert result.trial["memory_frac"] == result.trial["attractor_frac"] == 1.0
