"""Probes against cases whose answer is known by construction."""
import math

import numpy as np
import pytest
import torch
from torch import nn

from study.trial import probes


def linear_map(A: torch.Tensor):
    """f(x) = A x on a batch of flat vectors."""
    return lambda x: x @ A.T


def with_spectrum(blocks: list[np.ndarray], seed: int = 0) -> tuple[torch.Tensor, np.ndarray]:
    """A = S B S^-1 with B block-diagonal: eigenvalues are those of the blocks, exactly."""
    d = sum(b.shape[0] for b in blocks)
    B = np.zeros((d, d))
    i = 0
    for b in blocks:
        k = b.shape[0]
        B[i:i + k, i:i + k] = b
        i += k
    rng = np.random.default_rng(seed)
    S = np.eye(d) + 0.1 * rng.standard_normal((d, d))
    A = S @ B @ np.linalg.inv(S)
    return torch.tensor(A, dtype=torch.float64), np.linalg.eigvals(B)


def rotation(r: float, theta: float) -> np.ndarray:
    return r * np.array([[math.cos(theta), -math.sin(theta)], [math.sin(theta), math.cos(theta)]])


@pytest.mark.parametrize("method", ["dense", "arpack", "batched"])
def test_dominant_complex_pair(method):
    # |0.95 e^{+-i 0.7}| = 0.95 dominates real eigenvalues 0.9, -0.8, ...: power iteration would oscillate
    blocks = [rotation(0.95, 0.7), np.array([[0.9]]), np.array([[-0.8]])] + [np.array([[0.1 * k]]) for k in range(8)]
    A, eig = with_spectrum(blocks)
    X = torch.randn(3, A.shape[0], dtype=torch.float64)
    rho, s1 = probes.spectra(linear_map(A), X, method)
    np.testing.assert_allclose(rho, 0.95, rtol=1e-6)
    np.testing.assert_allclose(s1, np.linalg.norm(A.numpy(), 2), rtol=1e-6)


@pytest.mark.parametrize("method", ["dense", "arpack", "batched"])
def test_contractive_spectrum_but_expanding_norm(method):
    # upper-triangular: eigenvalues 0.5 (rho < 1) yet sigma_1 ~ 10 (> 1): the two conditions differ
    d = 12
    A = 0.5 * torch.eye(d, dtype=torch.float64)
    A[0, 1] = 10.0
    rho, s1 = probes.spectra(linear_map(A), torch.zeros(2, d, dtype=torch.float64), method)
    np.testing.assert_allclose(rho, 0.5, rtol=1e-6)
    assert (s1 > 9.9).all() and (rho < 1).all()
    np.testing.assert_allclose(s1, np.linalg.norm(A.numpy(), 2), rtol=1e-6)


def test_jacobian_of_nonlinear_map_at_origin_is_its_linear_part():
    A, _ = with_spectrum([rotation(1.2, 0.3)] + [np.array([[0.2 * k]]) for k in range(1, 6)], seed=3)
    f = lambda x: torch.tanh(x @ A.T)  # J_f(0) = A, J_f(x) = diag(1 - tanh^2) A elsewhere
    rho, _ = probes.spectra_matrix_free(f, torch.zeros(1, A.shape[0], dtype=torch.float64))
    np.testing.assert_allclose(rho, 1.2, rtol=1e-6)
    x = torch.full((1, A.shape[0]), 0.7, dtype=torch.float64)
    J = probes.jacobians_dense(f, x)[0]
    expected = torch.diag(1 - torch.tanh(x @ A.T)[0] ** 2) @ A
    torch.testing.assert_close(J, expected)


@pytest.mark.parametrize("net", ["fc", "conv"])
def test_matrix_free_equals_dense_on_random_nets(net):
    torch.manual_seed(0)
    if net == "fc":
        model = nn.Sequential(nn.Linear(40, 64), nn.ELU(), nn.Linear(64, 64), nn.Tanh(), nn.Linear(64, 40))
        X = torch.randn(4, 40)
    else:
        model = nn.Sequential(nn.Conv2d(2, 4, 3, padding=1), nn.SELU(), nn.Conv2d(4, 2, 3, padding=1))
        X = torch.randn(4, 2, 5, 5)
    for p in model.parameters():
        p.requires_grad_(False)
    rho_d, s1_d = probes.spectra(model, X, "dense")
    for method in ("arpack", "batched"):
        rho_m, s1_m = probes.spectra(model, X, method)
        np.testing.assert_allclose(rho_m, rho_d, rtol=1e-4)
        np.testing.assert_allclose(s1_m, s1_d, rtol=1e-4)
    assert (rho_d <= s1_d + 1e-6).all()  # rho <= sigma_1 always
    assert not np.allclose(rho_d, rho_d[0])  # the Jacobian really depends on the point


def test_fixed_point_residuals():
    X = torch.randn(5, 7)
    assert probes.fixed_point_residuals(lambda x: x, X).abs().max() < 1e-7
    torch.testing.assert_close(probes.fixed_point_residuals(lambda x: 3 * x, X), torch.full((5,), 2.0))


# --- iteration ------------------------------------------------------------------------------------

def nearest_point_contraction(X: torch.Tensor, c: float = 0.5):
    """f(x) = x_j + c (x - x_j), j = the training point nearest to x: every x_j is an attractor
    whose basin is its Voronoi cell, and there are no other fixed points."""
    def f(x):
        j = torch.cdist(x, X).argmin(dim=1)
        return X[j] + c * (x - X[j])
    return f


def retrieve(f, X, starts, tol=1e-7, max_steps=500, confirm_steps=100, memory_tol=5e-2, match_tol=1e-3):
    """The trial's path: iterate from [X; starts] in one batch, memories from the X rows, classify."""
    lim = probes.iterate(f, torch.cat([X, starts]), max_steps, tol, confirm_steps)
    mem = probes.memories(lim, X, memory_tol)
    nearest, kind = probes.classify(lim, mem, match_tol)
    return mem, nearest[len(X):], kind[len(X):], lim


def test_contraction_toward_training_points_retrieves_nearest():
    torch.manual_seed(0)
    X = 3 * torch.eye(6)[:3]  # three well separated points in R^6
    starts = torch.cat([X + 0.1 * torch.randn(3, 6), X[[0]] * 0.4 + X[[1]] * 0.6])  # last: nearer x_1
    mem, nearest, kind, lim = retrieve(nearest_point_contraction(X), X, starts)
    assert mem.found.all() and mem.offset.max() < 1e-12
    assert lim.converged.all()
    assert (kind == probes.TRAIN).all()
    assert nearest.tolist() == [0, 1, 2, 1]
    assert (lim.steps[3:] < 40).all()  # halves the distance each step: ~25 steps to 1e-7


def offset_contraction(X: torch.Tensor, P: torch.Tensor, c: float):
    """f(x) = p_j + c (x - p_j), j = the training point nearest x: the attracting fixed point of x_j's
    cell is p_j, not x_j (as for a trained net, whose x_j is fixed only up to its residual)."""
    def f(x):
        j = torch.cdist(x, X).argmin(dim=1)
        return P[j] + c * (x - P[j])
    return f


def test_attracting_point_offset_from_the_example_is_its_memory():
    torch.manual_seed(0)
    X = 3 * torch.eye(8, dtype=torch.float64)[:4]
    shift = torch.randn(4, 8, dtype=torch.float64)
    P = X + 0.015 * 3 * shift / shift.norm(dim=1, keepdim=True)  # attractors 1.5% away from each x_j
    starts = X.repeat(4, 1) + 0.1 * torch.randn(16, 8, dtype=torch.float64)
    mem, nearest, kind, _ = retrieve(offset_contraction(X, P, 0.9), X, starts, match_tol=1e-2)
    np.testing.assert_allclose(mem.offset, 0.015, rtol=1e-4)  # the memory is p_j, recorded 1.5% off
    assert mem.found.all()
    # every start returns to its own memory, though its limit is 1.5% from x_j (> match_tol = 1%)
    assert (kind == probes.TRAIN).all() and nearest.tolist() == [0, 1, 2, 3] * 4


def test_slowly_repelling_fixed_point_is_no_return():
    # f(x) = x_j + 1.014 (x - x_j): each x_j is exactly fixed, rho = 1.014. A start 1e-4 away moves
    # by 1.4e-6 < tol at once, so it stops at step 1; 100 confirmation steps show it creeping away
    X = 3 * torch.eye(6, dtype=torch.float64)[:3]
    torch.manual_seed(1)
    starts = X + 1e-4 * torch.randn(3, 6, dtype=torch.float64)
    f = offset_contraction(X, X, 1.014)
    unconfirmed = probes.iterate(f, starts, 500, 1e-5)
    assert unconfirmed.converged.all() and (unconfirmed.steps == 1).all()  # the old stopping rule's verdict
    mem, _, kind, lim = retrieve(f, X, starts, tol=1e-5)
    assert not lim.converged[3:].any() and (kind == probes.NONE).all()
    assert not mem.found.any()  # x_j shares its confirmation with the starts around it: repelling
    # the same map with 0.986 attracts: confirmed, retrieved
    _, _, kind, _ = retrieve(offset_contraction(X, X, 0.986), X, starts, tol=1e-5)
    assert (kind == probes.TRAIN).all()


def test_confirmation_measures_the_rms_step_against_tol():
    X = 10 * torch.eye(16, dtype=torch.float64)[:1]
    # a slow contraction (0.99): a start stops once its RMS step (|step| / sqrt(16)) < tol; confirm_steps
    # later the step is 0.99^100 = 0.37 of that, below tol: confirmed
    lim = probes.iterate(offset_contraction(X, X, 0.99), X + 0.01, 2000, 1e-5, confirm_steps=100)
    assert lim.converged.all() and lim.steps.item() > 100
    # x sits 1e-5 from a point repelling at 1.014: its first RMS step, 0.014e-5 / 4 = 3.5e-8, passes tol at
    # once; confirm_steps later it is 1.014^100 = 4x that, 1.4e-7, above tol / 100 = 1e-7: not confirmed
    P = X.clone()
    P[0, -1] = 1e-5
    lim = probes.iterate(offset_contraction(X, P, 1.014), X, 500, 1e-5, confirm_steps=100)
    assert lim.steps.item() == 1 and not lim.converged.any()


def test_clusters_are_headed_by_the_least_settled_point_and_take_only_unassigned_points():
    def line(*v):
        return torch.tensor([[a, 0.0] for a in v], dtype=torch.float64)
    # share 0.1: y_1 is 0.001 from y_0; y_2 is 0.1005 from y_0 (beyond y_0's reach, 0.1) and 0.0995 from y_1,
    # and both lie within its own reach (0.11005), but they are taken already: y_2 heads a group of its own
    assert probes._clusters(line(1.0, 1.001, 1.1005), 0.1, torch.tensor([0.3, 0.2, 0.1])).tolist() == [0, 0, 2]
    # a NaN step is the least settled of all: it heads the group
    assert probes._clusters(line(1.0, 1.0001), 0.1, torch.tensor([0.1, float("nan")])).tolist() == [1, 1]
    # within relative distance share means <= share |y_r|: 0.5 from y_0 = (1, 0) is within share 0.5
    assert probes._clusters(line(1.0, 1.5), 0.5, torch.tensor([0.2, 0.1])).tolist() == [0, 0]


def test_memory_offsets_are_relative_to_the_example_memory_tol_is_inclusive_and_nan_limits_are_far():
    X = torch.tensor([[10.0, 0, 0], [0, 0.1, 0], [0, 0, 1.0]], dtype=torch.float64)
    L = torch.tensor([[10.0, 0.5, 0], [0, 0.1, 0.004], [math.nan] * 3], dtype=torch.float64)
    lim = probes.Limits(L, torch.tensor([True, True, False]), torch.ones(3, dtype=torch.long))
    mem = probes.memories(lim, X, memory_tol=0.05)
    # x_0* is 0.5 from x_0, |x_0| = 10: offset 0.05, exactly memory_tol; x_1* is 0.004 from x_1, |x_1| = 0.1: 0.04
    assert mem.offset[:2].tolist() == pytest.approx([0.05, 0.04]) and mem.found.tolist() == [True, True, False]
    assert mem.offset[2] > 1e20  # an iterate that blew up is as far as can be, not at the origin


def test_limit_that_is_no_memory_is_spurious_and_counts_once_confirmed():
    # p_0 is x_0's attracting point; a second attracting point q sits halfway between x_0 and x_1, and
    # x_1 is 1e-5 from a repelling point, as a trained net's x_i is fixed only up to its residual.
    # Starts near q are spurious; starts near x_1, and x_1 itself, never converge
    X = 3 * torch.eye(4, dtype=torch.float64)[:2]
    q = (X[0] + X[1]) / 2
    pts = torch.stack([X[0], q, X[1] + 1e-5])
    rates = torch.tensor([0.5, 0.5, 1.2], dtype=torch.float64)

    def f(x):
        j = torch.cdist(x, pts).argmin(dim=1)
        return pts[j] + rates[j, None] * (x - pts[j])
    starts = torch.stack([X[0] + 0.01, q + 0.01, X[1] + 0.01])
    mem, nearest, kind, _ = retrieve(f, X, starts)
    assert mem.found.tolist() == [True, False]
    assert kind.tolist() == [probes.TRAIN, probes.SPURIOUS, probes.NONE]
    assert nearest[0] == 0


def test_projection_retrieves_only_off_span_noise_and_makes_spurious_points():
    torch.manual_seed(0)
    X = torch.randn(3, 10, dtype=torch.float64)
    U = probes.span_basis(X)
    P = U @ U.T  # f = P_X: every point of the span is a fixed point, so x_i is fixed but not attracting
    off = torch.randn(3, 10, dtype=torch.float64)
    off = off - off @ P  # noise orthogonal to the span is removed in one step
    in_span = 0.5 * (X[[1]] - X[[0]])  # noise inside the span stays
    starts = torch.cat([X + off, X[[0]] + in_span, torch.randn(2, 10, dtype=torch.float64)])
    mem, nearest, kind, lim = retrieve(linear_map(P), X, starts, tol=1e-9, max_steps=10, match_tol=1e-6)
    assert lim.converged.all() and mem.found.all()
    assert kind[:3].tolist() == [probes.TRAIN] * 3 and nearest[:3].tolist() == [0, 1, 2]
    assert kind[3:].tolist() == [probes.SPURIOUS] * 3
    rho, _ = probes.spectra_dense(linear_map(P), X)
    np.testing.assert_allclose(rho, 1.0, rtol=1e-9)


def test_a_start_that_oscillates_beside_its_example_is_no_return():
    # f(x) = x_j - (x - x_j): each x_j is exactly fixed (its own memory), and a start 1e-5 away flips
    # across it for ever. Its iterates stay within match_tol of x_j, yet it never converges: NONE, not TRAIN
    X = 3 * torch.eye(4, dtype=torch.float64)[:2]
    f = offset_contraction(X, X, -1.0)
    starts = X + torch.tensor([[1e-5, 0, 0, 0], [0, 1e-5, 0, 0]], dtype=torch.float64)
    mem, nearest, kind, lim = retrieve(f, X, starts, tol=1e-7, max_steps=50, match_tol=1e-3)
    assert mem.found.all() and lim.converged[:2].all()  # the examples themselves are memories
    assert not lim.converged[2:].any()
    assert nearest.tolist() == [0, 1] and (kind == probes.NONE).all()


def test_oscillation_is_a_cycle_and_divergence_is_no_limit():
    X = torch.eye(4)
    starts = torch.ones(2, 4)
    flip = probes.iterate(lambda x: -x, starts, max_steps=50, tol=1e-6)
    grow = probes.iterate(lambda x: 10 * x, starts, max_steps=500, tol=1e-6)
    mem = probes.Memories(X, np.zeros(4), np.ones(4, dtype=bool))
    assert (flip.outcome == probes.CYCLE).all() and (flip.period == 2).all() and (flip.steps < 10).all()
    assert (grow.outcome == probes.DIVERGED).all() and (grow.steps < 500).all()  # stopped once it overflowed
    # the 2-cycle between (1, 1, 1, 1) and its negative is far from every memory: spurious; divergence: none
    assert (probes.classify(flip, mem, match_tol=1e-2)[1] == probes.SPURIOUS).all()
    assert (probes.classify(grow, mem, match_tol=1e-2)[1] == probes.NONE).all()
    assert not flip.converged.any() and not grow.converged.any()


def test_an_iterate_that_outgrows_the_starts_a_thousandfold_has_diverged_long_before_overflow():
    # f = 1.01 x never overflows within the budget (float32 would after ~8,900 steps): the bound decides.
    # It is 1e3 x the farthest start's RMS, here 10: 10 * 1.01^t > 1e4 first at t = 695, 1.01^t > 1e4 at 926
    starts = torch.stack([torch.ones(4), 10 * torch.ones(4)])
    assert probes.divergence_bound(starts) == pytest.approx(1e4)
    lim = probes.iterate(lambda x: 1.01 * x, starts, max_steps=1000, tol=1e-6)
    assert (lim.outcome == probes.DIVERGED).all() and lim.steps.tolist() == [926, 695]
    # the last iterate kept is the first one beyond the bound: finite, not an overflow
    assert torch.isfinite(lim.x).all() and (lim.x.flatten(1).norm(dim=1) / 2 > 1e4).all()
    # where every start is 0 there is no scale: only a non-finite iterate diverges, and x + 1 keeps moving
    zeros = torch.zeros(2, 4)
    assert probes.divergence_bound(zeros) == math.inf
    assert (probes.iterate(lambda x: x + 1, zeros, max_steps=50, tol=1e-6).outcome == probes.CAPPED).all()


def census_map():
    """Eight cells in R^8, each the points nearest its centre c (3 e_k or so), with known dynamics:
    x_0 = 3 e_0 and x_1 = 3 e_1, the training images, and q_1 = 3 e_2, q_2 = 6 e_3, attract (f = c +
    (x - c) / 2): q_1 and q_2 are spurious fixed points; a = 3 e_4 and b = -3 e_4 swap (near a, f = b +
    (x - a) / 2, and back): a stable 2-cycle; near 3 e_5, f = 2 x: a start diverges; near 3 e_6, f =
    x + 1e-3 e_7: a start drifts for ever, still moving. -> (f, X, centres)"""
    E = 3 * torch.eye(8, dtype=torch.float64)
    centres = torch.stack([E[0], E[1], E[2], 2 * E[3], E[4], -E[4], E[5], E[6]])
    goes_to = torch.tensor([0, 1, 2, 3, 5, 4])  # the attracting cells, and the cycle's swap a <-> b

    def f(x):
        j = torch.cdist(x, centres).argmin(dim=1)
        c = centres[j]
        settle = centres[goes_to[j.clamp_max(5)]] + 0.5 * (x - c)
        out = torch.where((j == 6)[:, None], 2 * x, settle)
        return torch.where((j == 7)[:, None], x + 1e-3 * E[7] / 3, out)
    return f, E[:2], centres


def census_starts(centres: torch.Tensor, per_cell: list[int]) -> torch.Tensor:
    """``per_cell[k]`` starts within 0.05 (per coordinate, at most) of centre k, for each k."""
    g = torch.Generator().manual_seed(0)
    return torch.cat([centres[k] + 0.05 * (2 * torch.rand(m, 8, generator=g, dtype=torch.float64) - 1)
                      for k, m in enumerate(per_cell)])


def test_the_census_puts_every_start_in_the_one_class_its_cell_decides():
    f, X, centres = census_map()
    starts = census_starts(centres, [2, 2, 3, 2, 2, 1, 2, 2])
    mem, nearest, kind, lim = retrieve(f, X, starts, max_steps=200)
    assert mem.found.all()
    where = probes.census(lim, probes.classify(lim, mem, 1e-3)[1])[len(X):]
    assert where.tolist() == ([probes.AT_MEMORY] * 4 + [probes.AT_SPURIOUS] * 5 + [probes.ON_CYCLE] * 3
                              + [probes.ESCAPED] * 2 + [probes.MOVING] * 2)
    assert nearest[:4].tolist() == [0, 0, 1, 1]
    # the divergent starts pass 1e3 x the farthest start's RMS (6 / sqrt(8), q_2's) after ~11 doublings,
    # not at a float64 overflow (~1,000 doublings, beyond the budget: they would be counted still moving)
    outcome = lim.outcome[len(X):]
    assert (outcome[12:14] == probes.DIVERGED).all() and (lim.steps[len(X):][12:14] <= 12).all()
    assert (outcome[14:] == probes.CAPPED).all() and (outcome[9:12] == probes.CYCLE).all()
    # the census refines classify: kind SPURIOUS is a spurious point or a cycle away from every memory,
    # NONE is a divergence or a start still moving
    assert ((kind == probes.SPURIOUS) == ((where == probes.AT_SPURIOUS) | (where == probes.ON_CYCLE))).all()
    assert ((kind == probes.NONE) == ((where == probes.ESCAPED) | (where == probes.MOVING))).all()


def test_the_distinct_spurious_points_and_how_far_they_lie_from_the_images_and_their_mean():
    f, X, centres = census_map()
    starts = census_starts(centres, [1, 1, 3, 2, 0, 0, 0, 0])  # three starts settle on q_1, two on q_2
    mem, _, kind, lim = retrieve(f, X, starts)
    where = probes.census(lim, probes.classify(lim, mem, 1e-3)[1])
    points, to_train, to_mean = probes.spurious_points(lim.x[where == probes.AT_SPURIOUS], X, 1e-3)
    torch.testing.assert_close(points, centres[[2, 3]], atol=1e-6, rtol=0)  # the first start of each heads it
    # q_1 = 3 e_2: |q_1 - x_0|^2 = 18, |q_1 - xbar|^2 = 1.5^2 + 1.5^2 + 9 = 13.5 (xbar = 1.5 e_0 + 1.5 e_1);
    # q_2 = 6 e_3: 9 + 36 = 45 and 4.5 + 36 = 40.5; RMS divides by sqrt(d) = sqrt(8)
    np.testing.assert_allclose(to_train, np.sqrt([18 / 8, 45 / 8]), rtol=1e-5)
    np.testing.assert_allclose(to_mean, np.sqrt([13.5 / 8, 40.5 / 8]), rtol=1e-5)


def test_spurious_limits_within_share_of_an_earlier_head_are_one_point_and_none_are_none():
    p = torch.tensor([[4.0, 0.0], [4.0625, 0.0], [0.0, 8.125], [0.0, 8.0], [0.0, 8.25]], dtype=torch.float64)
    X = torch.tensor([[4.0, 2.0], [0.0, 0.0]], dtype=torch.float64)
    # share 2^-6: (4.0625, 0) lies 0.0625 = share |(4, 0)| from the first (inclusive): one point, headed by
    # the first. (0, 8.125) comes first of its three and reaches both others (0.125 <= 0.127): one point,
    # though (0, 8) and (0, 8.25) lie 0.25 apart (taken the other way round they would make two)
    points, to_train, to_mean = probes.spurious_points(p, X, 2 ** -6)
    assert points.tolist() == [[4.0, 0.0], [0.0, 8.125]]
    # nearest images: (4, 2) for both, at 2 and hypot(4, 6.125). The mean is (2, 1). RMS divides by sqrt(2)
    np.testing.assert_allclose(to_train, np.array([2, math.hypot(4, 6.125)]) / math.sqrt(2))
    np.testing.assert_allclose(to_mean, np.array([math.hypot(2, 1), math.hypot(2, 7.125)]) / math.sqrt(2))
    points, to_train, to_mean = probes.spurious_points(p[:0], X, 2 ** -6)
    assert len(points) == len(to_train) == len(to_mean) == 0


def test_census_classes_from_outcomes_and_kinds():
    # one start of each: a memory, a fixed point that is no memory, a cycle about a memory and one away from
    # all, a divergence, a capped start and a stop whose confirmation failed
    X = 3 * torch.eye(4, dtype=torch.float64)[:1]
    mem = probes.Memories(X, np.zeros(1), np.ones(1, dtype=bool))
    L = torch.stack([X[0], 2 * X[0], X[0] + 1e-4, -X[0], X[0] + 1e6, X[0], X[0]])
    outcome = torch.tensor([probes.CONVERGED, probes.CONVERGED, probes.CYCLE, probes.CYCLE, probes.DIVERGED,
                            probes.CAPPED, probes.UNCONFIRMED])
    lim = probes.Limits(L, outcome == probes.CONVERGED, torch.ones(7, dtype=torch.long), outcome)
    where = probes.census(lim, probes.classify(lim, mem, match_tol=1e-2)[1])
    assert where.tolist() == [probes.AT_MEMORY, probes.AT_SPURIOUS, probes.ON_CYCLE, probes.ON_CYCLE,
                              probes.ESCAPED, probes.MOVING, probes.MOVING]
    assert len(probes.CENSUS) == 5 and sorted(set(where.tolist())) == list(range(5))


def test_noisy_and_masked_starts():
    X = torch.rand(4, 100)
    g = torch.Generator().manual_seed(0)
    starts, origin, sigma = probes.noisy_starts(X, (0.1, 0.5), 3, g)
    assert starts.shape == (24, 100) and origin.tolist() == [0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3] * 2
    std = (starts - X[origin]).std(dim=1)
    assert (abs(std[sigma == 0.1] - 0.1) < 0.04).all() and (abs(std[sigma == 0.5] - 0.5) < 0.2).all()
    masked, origin = probes.masked_starts(X, 0.25, 2, 0.0, 1.0, g)
    changed = (masked != X[origin]).float().mean()
    assert 0.15 < changed < 0.35 and masked.min() >= 0 and masked.max() <= 1


def test_starts_come_from_the_generator_alone_in_the_data_dtype_and_value_range():
    X = torch.rand(4, 100)

    def draw(global_seed: int):
        torch.manual_seed(global_seed)  # torch's global generator must not matter
        g = torch.Generator().manual_seed(0)
        return probes.noisy_starts(X, (0.1, 0.5), 3, g)[0], probes.masked_starts(X, 0.25, 2, -1.0, 1.0, g)[0]

    (noisy, masked), (noisy2, masked2) = draw(1), draw(2)
    assert torch.equal(noisy, noisy2) and torch.equal(masked, masked2)
    assert noisy.dtype == masked.dtype == X.dtype  # a float32 net takes float32 starts
    replaced = masked[masked != X.repeat_interleave(2, dim=0)]  # ~200 coordinates, uniform on [low, high]
    assert -1 <= replaced.min() < -0.8 and 0.8 < replaced.max() <= 1


def test_basin_radius_needs_half_of_an_examples_starts_at_a_sigma_and_none_is_not_half():
    # example 0 returns at both sigmas; example 1 brings back 1 of 3 at 0.1 (less than half); example 2
    # 2 of 3 at 0.1 but has no start at 0.2, which is no pass there
    origin = np.array([0, 0, 0, 1, 1, 1, 2, 2, 2] + [0, 0, 0, 1, 1, 1])
    sigma = np.array([0.1] * 9 + [0.2] * 6)
    same = np.array([1, 1, 1, 1, 0, 0, 1, 1, 0] + [1, 1, 1, 0, 0, 0], dtype=float)
    np.testing.assert_allclose(probes.basin_radius(same, origin, sigma, 3), [0.2, 0.0, 0.1])


def test_basin_radius_is_monotone():
    # example 0 returns (at least half its starts) at every sigma, example 1 at the two smaller ones;
    # examples 2 and 3 fail at the smallest sigma, so a pass at a larger one gives no radius
    origin = np.array([0, 0, 1, 1, 2, 2, 3, 3] * 3)
    sigma = np.array([0.1] * 8 + [0.2] * 8 + [0.4] * 8)
    same = np.array([1, 1, 1, 0, 0, 0, 0, 0] + [1, 0, 1, 0, 0, 0, 1, 1] + [1, 1, 0, 0, 1, 1, 1, 1], dtype=float)
    np.testing.assert_allclose(probes.basin_radius(same, origin, sigma, 4), [0.4, 0.2, 0.0, 0.0])


# --- span ------------------------------------------------------------------------------------------

def test_span_residuals_of_projection_and_identity():
    torch.manual_seed(1)
    X, H = torch.randn(4, 20, dtype=torch.float64), torch.randn(6, 20, dtype=torch.float64)
    U = probes.span_basis(X)
    assert U.shape == (20, 4)
    P = U @ U.T
    res, sens = probes.span_residuals(linear_map(P), X, H)
    assert res.max() < 1e-12 and sens.max() < 1e-12
    res, sens = probes.span_residuals(lambda x: x, X, H)
    expected = ((H - H @ P).norm(dim=1) / H.norm(dim=1)).numpy()
    np.testing.assert_allclose(res, expected, rtol=1e-10)
    np.testing.assert_allclose(sens, expected, rtol=1e-10)  # identity: |h - P h| / |h| again


def test_span_basis_drops_dependent_rows():
    X = torch.randn(2, 9, dtype=torch.float64)
    X3 = torch.cat([X, X[[0]] + 2 * X[[1]]])
    assert probes.span_basis(X3).shape == (9, 2)


def test_tiny_maps_get_exact_spectra_and_spectra_dispatches_by_method_and_size(monkeypatch):
    # d = 3 is below ARPACK's reach (k < d - 1 for a few eigenvalues): done densely; d = 4 is ARPACK's smallest
    for blocks in ([rotation(0.95, 0.7), [[0.5]]], [rotation(0.95, 0.7), [[0.5]], [[-0.2]]]):
        A, _ = with_spectrum([np.array(b) for b in blocks])
        rho, s1 = probes.spectra_matrix_free(linear_map(A), torch.zeros(2, A.shape[0], dtype=torch.float64))
        np.testing.assert_allclose(rho, 0.95, rtol=1e-6)
        np.testing.assert_allclose(s1, np.linalg.norm(A.numpy(), 2), rtol=1e-6)
    calls = []
    monkeypatch.setattr(probes, "spectra_dense", lambda f, X: calls.append(("dense", X.shape[1])))
    monkeypatch.setattr(probes, "spectra_matrix_free", lambda f, X: calls.append(("arpack", X.shape[1])))
    monkeypatch.setattr(probes, "spectra_batched", lambda f, X: calls.append(("batched", X.shape[1])))
    for d, method in [(probes.DENSE_MAX_DIM, "auto"), (probes.DENSE_MAX_DIM + 1, "auto"), (4, "arpack"), (300, "dense"),
                      (5, "batched")]:
        probes.spectra(lambda x: x, torch.zeros(1, d), method)
    assert calls == [("dense", 256), ("batched", 257), ("arpack", 4), ("dense", 300), ("batched", 5)]


def test_batched_spectra_settle_most_points_at_once_and_send_the_rest_to_arpack(monkeypatch):
    # three points of one map whose Jacobian differs per point: J(x) = diag(1 + x) A; the top of A's spectrum
    # is a near-tie (1 and 0.999999) that 6 Krylov steps cannot separate, but 60 can for a well-separated top
    tie, _ = with_spectrum([np.array([[1.0]]), np.array([[0.999999]])] + [np.array([[0.99 - 0.001 * k]])
                                                                            for k in range(60)], seed=5)
    f = lambda x: (1 + x) * (x @ tie.T)  # at x = 0: J = A
    X = torch.zeros(3, tie.shape[0], dtype=torch.float64)
    sent = []
    arpack = probes.spectra_matrix_free
    monkeypatch.setattr(probes, "spectra_matrix_free", lambda f, X: (sent.append(len(X)), arpack(f, X))[1])
    rho, s1 = probes.spectra_batched(f, X, steps=6)
    assert sent == [3]  # none settled in 6 steps: every point is done again by ARPACK, whose answer stands
    np.testing.assert_allclose(rho, 1.0, rtol=1e-6)
    np.testing.assert_allclose(s1, np.linalg.norm(tie.numpy(), 2), rtol=1e-6)
    A, _ = with_spectrum([rotation(0.95, 0.7), np.array([[0.5]])] + [np.array([[0.03 * k]]) for k in range(1, 30)])
    sent.clear()
    rho, s1 = probes.spectra_batched(linear_map(A), torch.zeros(4, A.shape[0], dtype=torch.float64))
    assert sent == [] and np.allclose(rho, 0.95, rtol=1e-8)  # settled in the batch: ARPACK never ran


def test_arpack_failure_is_nan_not_an_exception():
    # one Arnoldi restart on a spectrum with a near-tie at the top: ARPACK gives up, the probe says NaN
    blocks = [np.array([[1.0]]), np.array([[0.999999]])] + [np.array([[0.99 - 0.001 * k]]) for k in range(60)]
    A, _ = with_spectrum(blocks, seed=5)
    rho, s1 = probes.spectra_matrix_free(linear_map(A), torch.zeros(2, A.shape[0], dtype=torch.float64), maxiter=1)
    assert np.isnan(rho).all()
    rho, s1 = probes.spectra_matrix_free(linear_map(A), torch.zeros(1, A.shape[0], dtype=torch.float64))
    np.testing.assert_allclose(rho, 1.0, rtol=1e-6)  # with the default budget it converges


def test_span_basis_cuts_relative_to_the_largest_singular_value():
    X = torch.tensor([[1e3, 0, 0], [0, 1e-5, 0]], dtype=torch.float64)  # s_2 / s_1 = 1e-8 < rtol (1e-6)
    for scale in (1.0, 1e-6):  # at any scale
        assert probes.span_basis(scale * X).shape == (3, 1)
    assert probes.span_basis(torch.zeros(2, 3, dtype=torch.float64)).shape == (3, 0)  # zeros span nothing


def test_the_jacobian_operator_takes_complex_vectors_part_by_part():
    A, _ = with_spectrum([rotation(0.9, 0.4)] + [np.array([[0.1 * k]]) for k in range(1, 5)], seed=2)
    op = probes.jacobian_operator(linear_map(A), torch.zeros(A.shape[0], dtype=torch.float64))
    rng = np.random.default_rng(0)
    v = rng.standard_normal(A.shape[0]) + 1j * rng.standard_normal(A.shape[0])
    np.testing.assert_allclose(op.matvec(v), A.numpy() @ v, rtol=1e-12)
    np.testing.assert_allclose(op.rmatvec(v), A.numpy().T @ v, rtol=1e-12)


# --- linear operators (C3) ---------------------------------------------------------------------------

@pytest.mark.parametrize("arch", ["conv", "conv_down"])
def test_linear_operator_is_the_network_on_random_inputs(arch):
    from study.trial import models
    from study.config import TrialConfig
    cfg = TrialConfig(arch=arch, depth=4, width=1, activation="identity", bias=False, init="normal")
    net = models.build(cfg, (1, 8, 8))
    for p in net.parameters():
        p.requires_grad_(False)
    A = probes.linear_operator(net, (1, 8, 8))
    x = torch.randn(5, 1, 8, 8)
    torch.testing.assert_close(net(x).flatten(1), x.flatten(1) @ A.T, rtol=1e-5, atol=1e-5)


def test_operator_spectrum_of_a_projection_and_of_a_banded_map():
    torch.manual_seed(0)
    X = torch.randn(3, 16, dtype=torch.float64)
    U = probes.span_basis(X)
    P = U @ U.T
    s = probes.operator_spectrum(P, X)
    assert (s.span_dim, s.near_one, s.near_one_in_span) == (3, 3, 3)  # memorization: P_X exactly
    assert s.rest_radius == pytest.approx(0, abs=1e-12) and s.memorizes()
    I = torch.eye(16, dtype=torch.float64)
    s = probes.operator_spectrum(P + 0.5 * (I - P), X)  # keeps the span, halves the rest: still memorizes
    assert s.rest_radius == pytest.approx(0.5) and s.memorizes()
    s = probes.operator_spectrum(P + 1.5 * (I - P), X)  # keeps the span but pushes away from it
    assert (s.near_one, s.near_one_in_span) == (3, 3) and s.rest_radius == pytest.approx(1.5) and not s.memorizes()
    band = torch.eye(16, dtype=torch.float64) * 0.5 + torch.diag(torch.full((15,), 0.5, dtype=torch.float64), 1)
    s = probes.operator_spectrum(band, X)
    assert s.near_one == s.near_one_in_span == 0 and s.rest_radius == pytest.approx(0.5) and not s.memorizes()
    s = probes.operator_spectrum(I, X)
    assert s.near_one == 16 and s.near_one_in_span == 3  # identity keeps everything, mostly off the span
    assert s.rest_radius == 0 and not s.memorizes()


# --- cycles (C5) -----------------------------------------------------------------------------------

def cyclic_contraction(X: torch.Tensor, c: float):
    """f(x) = x_(j+1) + c (x - x_j), j = the training point nearest x: the x_j form a cycle, and
    f^n near x_0 is x_0 + c^n (x - x_0), so the cycle is stable iff c^n < 1."""
    n = X.shape[0]

    def f(x):
        j = ((x[:, None, :] - X[None]) ** 2).sum(-1).argmin(dim=1)  # cdist has no forward-mode AD
        return X[(j + 1) % n] + c * (x - X[j])
    return f


@pytest.mark.parametrize("c, stable", [(0.8, True), (1.1, False)])
def test_cycle_probed_through_the_composed_map(c, stable):
    torch.manual_seed(0)
    X = 4 * torch.eye(8, dtype=torch.float64)[:4]  # a 4-cycle of well separated points
    g = probes.compose(cyclic_contraction(X, c), 4)
    assert probes.fixed_point_residuals(g, X).max() < 1e-12  # every cycle image is a fixed point of f^4
    rho, s1 = probes.spectra_dense(g, X)
    np.testing.assert_allclose(rho, c ** 4, rtol=1e-9)  # the product of the 4 Jacobians, c I each
    starts = X + 0.05 * torch.randn(4, 8, dtype=torch.float64)
    mem, nearest, kind, _ = retrieve(g, X, starts, tol=1e-9, max_steps=200, match_tol=1e-6)
    assert ((kind == probes.TRAIN).all() and nearest.tolist() == [0, 1, 2, 3]) == stable


def test_jacobian_of_composed_map_is_the_product_of_jacobians():
    torch.manual_seed(1)
    net = nn.Sequential(nn.Linear(6, 16), nn.Tanh(), nn.Linear(16, 6))
    for p in net.parameters():
        p.requires_grad_(False)
    x0 = torch.randn(1, 6)
    x1 = net(x0)
    J0, J1 = probes.jacobians_dense(net, x0)[0], probes.jacobians_dense(net, x1)[0]
    torch.testing.assert_close(probes.jacobians_dense(probes.compose(net, 2), x0)[0], J1 @ J0)


def test_operator_eigenvalues_come_sorted_by_modulus_and_near_one_is_strictly_within_tol():
    A = torch.diag(torch.tensor([0.25, 1.0, -2.0, 1.5], dtype=torch.float64))
    s = probes.operator_spectrum(A, torch.eye(4, dtype=torch.float64)[:1], tol=0.5)
    np.testing.assert_array_equal(s.eigenvalues, [-2.0, 1.5, 1.0, 0.25])
    assert s.near_one == 1 and s.rest_radius == 2.0  # |1.5 - 1| = 0.5 is not < tol


def test_an_attractor_is_a_memory_contracting_by_more_than_the_margin_at_the_memory():
    found = np.array([True, False, True, True, True, True])
    rho = np.array([0.5, 0.5, 0.95, 0.98, np.nan, 0.1])  # at the memories x_i*
    # margin 0.03: example 1 has no memory, 2 contracts by more than the margin, 3 by less, 4's spectrum
    # failed (NaN is no evidence)
    assert probes.attractors(found, rho, 0.03).tolist() == [True, False, True, False, False, True]
    assert probes.attractors(found, rho, 0.0).tolist() == [True, False, True, True, False, True]


def test_a_kink_that_flips_the_attractor_decision_is_flagged_with_its_spread():
    x0 = torch.ones(1, 4, dtype=torch.float64)

    def kinked(x):  # J = 1.0005 I exactly at x0, 0.9985 I at every other point: a kink at x0
        moved = ((x - x0) ** 2).sum(dim=1, keepdim=True) > 0
        return x0 + torch.where(moved, 0.9985, 1.0005) * (x - x0)

    gen = torch.Generator().manual_seed(0)
    spread, unsure = probes.kink_spread(kinked, x0, np.array([1.0005]), 1e-3, gen)
    assert spread[0] == pytest.approx(0.002, rel=1e-5) and unsure.tolist() == [True]
    # a smooth map: the spread is measured near the threshold (and is 0), not far from it (NaN)
    for c, measured in ((0.995, True), (0.5, False)):
        spread, unsure = probes.kink_spread(lambda x, c=c: x0 + c * (x - x0), x0, np.array([c]), 1e-3, gen)
        assert (spread[0] == pytest.approx(0.0, abs=1e-7)) if measured else np.isnan(spread[0])
        assert unsure.tolist() == [False]


def test_a_start_still_moving_beside_a_memory_is_no_return():
    # x_0's memory is x_0; one start was capped 0.1% from it, one is an unconfirmed stop there, one converged
    X = 3 * torch.eye(4, dtype=torch.float64)[:2]
    mem = probes.Memories(X, np.zeros(2), np.ones(2, dtype=bool))
    L = X[[0, 0, 0]] + torch.tensor([0.003, 0, 0, 0], dtype=torch.float64)
    outcome = torch.tensor([probes.CAPPED, probes.UNCONFIRMED, probes.CONVERGED])
    lim = probes.Limits(L, outcome == probes.CONVERGED, torch.ones(3, dtype=torch.long), outcome)
    nearest, kind = probes.classify(lim, mem, match_tol=1e-2)
    assert kind.tolist() == [probes.NONE, probes.NONE, probes.TRAIN] and nearest.tolist() == [0, 0, 0]
