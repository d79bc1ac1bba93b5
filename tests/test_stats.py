"""The tests every verdict decides with, against answers computed by hand or by scipy."""
import itertools

import numpy as np
import pytest
from scipy import stats as sp

from analysis import stats
from analysis.stats import Pair
from study.rules import ALPHA, LEVEL


def test_the_error_rate_and_level_are_one_setting():
    assert ALPHA == 0.05 and LEVEL == pytest.approx(0.9)


def test_three_against_three_completely_separated_is_exactly_one_in_twenty():
    # C(6, 3) = 20 relabellings, one as extreme as the observed: p = 1/20 = ALPHA, so yes
    t = stats.compare([Pair(np.array([0.5, 0.6, 0.7]), np.zeros(3))])
    assert (t.n, t.p_up, t.p_down) == (20, 0.05, 1.0) and t.outcome == "yes"
    # shifting the first cell down by delta keeps it above the second for delta < 0.5 and below for delta > 0.7
    assert (t.low, t.high) == pytest.approx((0.5, 0.7))
    # one network out of order: {0.6, 0.7, 0.1} and the observed {0.6, 0.7, 0.05} are as extreme, p = 2/20
    t = stats.compare([Pair(np.array([0.05, 0.6, 0.7]), np.array([0.1, 0.0, 0.0]))])
    assert t.p_up == pytest.approx(0.1) and t.outcome == "insufficient"


def test_paired_by_seed_flips_the_sign_of_each_seeds_difference():
    # 5 seeds, every difference positive: 1 of 2^5 sign patterns as extreme, p = 1/32 < ALPHA
    t = stats.compare([Pair(np.arange(5) + 1.0, np.zeros(5), paired=True)])
    assert (t.n, t.p_up) == (32, 1 / 32) and t.outcome == "yes"
    # 3 seeds cannot reach ALPHA paired (1/8): no decision however large the effect
    t = stats.compare([Pair(np.ones(3), np.zeros(3), paired=True)])
    assert t.p_up == 1 / 8 and t.outcome == "insufficient" and t.low == -np.inf
    # two groups of 3 seeds pooled: 2^6 patterns, p = 1/64
    t = stats.compare([Pair(np.ones(3), np.zeros(3), paired=True)] * 2)
    assert (t.n, t.p_up) == (64, 1 / 64) and t.outcome == "yes" and t.estimate == 1.0


def test_a_pooled_test_by_hand():
    # group 1: differences (+1, -1) paired -> T1 in {0 (x2), +1, -1}; group 2: 2 vs 1 unpaired, values (1, 0 | 0)
    # -> T2 = mean(a) - mean(b) over the 3 ways to choose a: {1/2 (x2, a=(1,0)), -1 (a=(0,0))} ... by enumeration:
    g1, g2 = Pair(np.array([1.0, 0.0]), np.array([0.0, 1.0]), paired=True), Pair(np.array([1.0, 0.0]), np.array([0.0]))
    t = stats.compare([g1, g2])
    d = (0.0 + 0.5) / 2
    t1 = [np.mean(np.array(s) * np.array([1.0, -1.0])) for s in itertools.product([1, -1], repeat=2)]
    x = np.array([1.0, 0.0, 0.0])
    t2 = [x[list(a)].mean() - x[[i for i in range(3) if i not in a]].mean() for a in itertools.combinations(range(3), 2)]
    null = np.array([(u + v) / 2 for u in t1 for v in t2])
    assert t.estimate == d and t.n == 12
    assert t.p_up == pytest.approx((null >= d - 1e-12).mean()) and t.p_down == pytest.approx((null <= d + 1e-12).mean())


def test_random_relabellings_agree_with_the_exact_test_beyond_the_limit():
    rng = np.random.default_rng(0)
    pairs = [Pair(rng.random(3) + 0.2, rng.random(3)) for _ in range(4)]  # 20^4 = 160,000 > MAX_EXACT
    t = stats.compare(pairs)
    assert t.n == stats.N_DRAWS + 1
    masks = [list(itertools.combinations(range(6), 3)) for _ in pairs]
    per_group = []
    for p in pairs:
        x = np.concatenate([p.a, p.b])
        per_group.append(np.array([x[list(a)].mean() - np.delete(x, list(a)).mean() for a in masks[0]]))
    null = sum(np.ix_(*per_group)).ravel() / 4
    exact = (null >= t.estimate - 1e-12).mean()
    assert t.p_up == pytest.approx(exact, abs=0.005)


def test_level_data_say_no_and_undecided_data_lean_by_their_estimate():
    assert stats.compare([Pair(np.zeros(3), np.zeros(3))]).outcome == "no"  # [0, 0]: no rise at all
    t = stats.compare([Pair(np.array([0.1, 0.2, 0.3]), np.array([0.1, 0.2, 0.3]))])
    assert t.outcome == "insufficient" and t.low < 0 < t.high
    t = stats.compare([Pair(np.array([0.0, 0.2, 0.3]), np.array([0.1, 0.2, 0.3]))])
    assert t.estimate < 0 and t.outcome == "against"
    # the reverse completely separated: the interval lies below 0
    assert stats.compare([Pair(np.zeros(3), np.array([0.5, 0.6, 0.7]))]).outcome == "no"


def test_a_share_of_networks_is_an_exact_binomial_test_with_clopper_pearson_bounds():
    t = stats.share(5, 5)
    assert t.p_up == 1 / 32 and t.outcome == "yes"
    assert stats.share(3, 3).outcome == "insufficient"  # 1/8: three networks cannot say yes
    assert stats.share(4, 5).p_up == pytest.approx(6 / 32)
    t = stats.share(0, 5)
    assert t.p_down == 1 / 32 and t.outcome == "no" and t.low == 0
    for k, n in ((3, 5), (1, 7), (10, 12), (0, 4), (9, 9)):
        t = stats.share(k, n)
        low = sp.beta.ppf(ALPHA, k, n - k + 1) if k else 0.0
        high = sp.beta.ppf(1 - ALPHA, k + 1, n - k) if k < n else 1.0
        assert (t.low, t.high) == pytest.approx((low, high), abs=1e-9)
        assert t.p_up == pytest.approx(sp.binom.sf(k - 1, n, 0.5))
    assert stats.share(1, 3).outcome == "against"


def test_a_permutation_p_value_is_taken_over_the_defined_relabellings():
    up, down = stats.permutation_p(-1.0, np.array([-1.0, 0.0, 1.0, np.nan]))
    assert (up, down) == (1.0, 1 / 3)


def test_the_median_of_networks_has_the_sign_tests_order_statistic_interval():
    # 18 networks: P(Bin(18, 1/2) <= 5) = 0.048 <= ALPHA < P(<= 6) = 0.119, so r = 6: [v_(6), v_(13)]
    v = np.arange(1.0, 19.0) - 4.5  # -3.5 .. 13.5: 4 below 0, 14 above
    t = stats.median(np.random.default_rng(0).permutation(v))
    assert (t.estimate, t.low, t.high, t.n) == (np.median(v), v[5], v[12], 18)
    assert sp.binom.cdf(5, 18, 0.5) <= ALPHA < sp.binom.cdf(6, 18, 0.5)
    assert t.p_up == pytest.approx(sp.binom.sf(13, 18, 0.5)) and t.p_down == pytest.approx(sp.binom.sf(3, 18, 0.5))
    assert t.outcome == "yes"
    # five networks: P(Bin(5, 1/2) = 0) = 1/32 <= ALPHA, so [min, max]; four cannot bound a median at all
    assert (stats.median([3, -1, 2, 5, 4]).low, stats.median([3, -1, 2, 5, 4]).high) == (-1, 5)
    four = stats.median([0.1, 0.2, 0.3, np.nan, 0.4])
    assert (four.low, four.high, four.n, four.outcome) == (-np.inf, np.inf, 4, "insufficient")
