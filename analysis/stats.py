"""Tests whose error rates are known: exact permutation tests over trained networks, and exact
binomial tests of a share of networks. Every comparison, verdict and trend of the analysis decides
with one of these, at the one error rate ``rules.ALPHA`` per side.

Why these (docs/analysis.md argues it at length; ``tests/test_calibration.py`` measures it):

- The unit of replication is the trained network (a seed): one number per network, never one per
  training example, so examples of one net never pass for independent evidence.
- With 3 to 5 networks per cell, asymptotic intervals (t, percentile bootstrap) are not
  calibrated: the percentile bootstrap of a difference of two 3-seed means says "yes" in 11-12% of
  null draws at a nominal 5%. A permutation test is exact at any size: under no effect every
  relabelling of the networks is equally likely, so P(p <= ALPHA) <= ALPHA by construction. With
  3 against 3 networks there are C(6, 3) = 20 relabellings: the smallest one-sided p is 1/20, so
  "yes" at ALPHA = 0.05 needs every network of one cell above every network of the other.
- A claim over several groups (widths, activations) pools them in one *stratified* permutation
  test (networks relabelled within each group only), so it has the power of all groups together
  and still its exact error rate; per-group tests only say where the claim fails.
- A share of networks ("stores its example", "stays within tolerance") is a binomial count:
  an exact one-sided test against ``null`` (default 1/2: more often than not) and the
  Clopper-Pearson interval, which covers at least its level for every true share.

A ``Test`` holds the estimate, its interval at ``rules.LEVEL`` (inverted from the same test: the
values of the effect it does not reject) and the one-sided p-values. ``Test.outcome`` is the one
decision rule: yes when the interval lies above the null value, no when it lies at or below it.
"""
from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np

from study.rules import ALPHA, LEVEL

YES, NO, AGAINST, UNSURE, LEVEL_ = "yes", "no", "against", "insufficient", "level"
MAX_EXACT = 20_000   # relabellings enumerated exactly up to this many; beyond, N_DRAWS random ones
N_DRAWS = 19_999     # Monte Carlo relabellings (with the observed one: 20,000, p-values in steps of 5e-5)
_EPS = 1e-9          # ties between floating sums count as ties


@dataclass(frozen=True)
class Test:
    """One decision: ``estimate`` of an effect against ``null``, its interval [low, high] at
    ``rules.LEVEL``, and one-sided p-values for "above null" (``p_up``) and "below" (``p_down``)."""
    estimate: float
    low: float
    high: float
    p_up: float
    p_down: float
    null: float = 0.0
    n: int = 0          # relabellings (permutation) or networks (binomial) behind it

    @property
    def outcome(self) -> str:
        """yes: the interval lies above ``null``; no: at or below it (the data reject any rise);
        against: undecided, but the estimate lies below ``null``; else insufficient. (Bounds within
        _EPS of ``null`` are ties: an interval that ends at exactly no effect does not exclude it.)"""
        if self.low > self.null + _EPS:
            return YES
        if self.high <= self.null + _EPS:
            return NO
        return AGAINST if self.estimate < self.null - _EPS else UNSURE

    @property
    def level(self) -> bool:
        """The two cells are equal network for network or value for value: the interval is the point
        ``null`` (nothing memorizes in either, or everything does)."""
        return abs(self.low - self.null) <= _EPS and abs(self.high - self.null) <= _EPS

    def text(self, pct: bool = False) -> str:
        """'+0.57 (90% CI +0.33, +0.80; p = 0.002)': the one-sided p of the claimed direction."""
        def f(v: float) -> str:
            v = 0.0 if abs(v) < _EPS else v  # a bound at a tie is 0, not -0.00
            return f"{100 * v:.0f}%" if pct else f"{v:+.2f}"
        return f"{f(self.estimate)} ({100 * LEVEL:.0f}% CI {f(self.low)}, {f(self.high)}; p = {pvalue(self.p_up)})"


def pvalue(p: float) -> str:
    """A p-value as the verdicts print it: two significant digits."""
    return f"{p:.2g}"


# --- permutation tests of a difference of means over networks ---------------------------------------

@dataclass(frozen=True)
class Pair:
    """Two cells to compare, one value per network: ``a`` (the cell the claim says is higher) and ``b``.
    ``paired``: a[i] and b[i] are networks of the same seed (same training images), so the test flips
    the sign of each seed's difference; otherwise it relabels networks between the cells."""
    a: np.ndarray
    b: np.ndarray
    paired: bool = False

    @property
    def size(self) -> int:
        """How many relabellings an exact test of this pair enumerates."""
        return 2 ** len(self.a) if self.paired else math.comb(len(self.a) + len(self.b), len(self.a))


def _relabel(pair: Pair, rng: np.random.Generator, draws: int | None) -> tuple[np.ndarray, np.ndarray]:
    """The pair's statistic mean(a) - mean(b) under each relabelling (the observed one included), and its
    coefficient c on a shift delta of the first cell: T(delta) = T - delta c (c = 1 when observed).
    Every relabelling, or ``draws`` random ones after the observed."""
    a, b = pair.a, pair.b
    if pair.paired:  # flip the sign of each seed's difference a_i - b_i
        n = len(a)
        if draws is None:
            signs = np.array(list(itertools.product([1.0, -1.0], repeat=n)))
        else:
            signs = np.vstack([np.ones(n), rng.choice([1.0, -1.0], size=(draws, n))])
        return signs @ (a - b) / n, signs.mean(axis=1)
    n_a, n = len(a), len(a) + len(b)
    if draws is None:
        masks = np.zeros((math.comb(n, n_a), n), dtype=bool)
        for i, idx in enumerate(itertools.combinations(range(n), n_a)):
            masks[i, list(idx)] = True
    else:
        order = rng.permuted(np.tile(np.arange(n), (draws, 1)), axis=1)
        masks = np.zeros((draws + 1, n), dtype=bool)
        masks[0, :n_a] = True
        np.put_along_axis(masks[1:], order[:, :n_a], True, axis=1)
    x = np.concatenate([a, b])
    k = masks[:, :n_a].sum(axis=1)  # networks of the first cell kept in the first cell
    return masks @ x / n_a - (~masks) @ x / len(b), k / n_a - (n_a - k) / len(b)


def compare(pairs: list[Pair], seed: int = 0) -> Test:
    """Is the first cell of each pair above the second? One ``Pair`` per group; the statistic is the
    mean over groups of mean(a) - mean(b), and its null distribution relabels each group on its own
    (a stratified exact permutation test: every combination of the groups' relabellings up to
    MAX_EXACT, else N_DRAWS random ones).

    Interval: every shift delta of the first cells that the test of "difference = delta" rejects in
    neither tail at ALPHA. A relabelling's statistic is linear in delta, T(delta) = T - delta c, so the
    bounds are order statistics of (d - T) / (1 - c)."""
    pairs = [Pair(np.asarray(p.a, float), np.asarray(p.b, float), p.paired) for p in pairs]
    exact = math.prod(p.size for p in pairs) <= MAX_EXACT
    rng = np.random.default_rng(seed)
    parts = [_relabel(p, rng, None if exact else N_DRAWS) for p in pairs]
    if exact:  # every combination of the groups' relabellings
        t = (sum(np.ix_(*[p[0] for p in parts])) / len(parts)).ravel()
        c = (sum(np.ix_(*[p[1] for p in parts])) / len(parts)).ravel()
    else:
        t = sum(p[0] for p in parts) / len(parts)
        c = sum(p[1] for p in parts) / len(parts)
    d = float(np.mean([p.a.mean() - p.b.mean() for p in pairs]))
    return _invert(d, t, c)


def _invert(d: float, t: np.ndarray, c: np.ndarray) -> Test:
    """p-values at 0 and the interval of ``compare`` from the relabellings' (T, c)."""
    n = len(t)
    kmax = math.floor(ALPHA * n + _EPS)  # most relabellings as extreme as the observed for a rejection
    fixed = np.abs(1 - c) < _EPS         # relabellings that only reorder within cells: T = d always
    with np.errstate(divide="ignore", invalid="ignore"):
        cut = np.sort((d - t[~fixed]) / (1 - c[~fixed]))
    up_fixed = int((t[fixed] >= d - _EPS).sum())
    down_fixed = int((t[fixed] <= d + _EPS).sum())
    # "above delta" is rejected while #{cut <= delta} <= kmax - up_fixed: up to the next cut
    j = kmax - up_fixed
    low = -np.inf if j < 0 else (np.inf if j >= len(cut) else float(cut[j]))
    j = kmax - down_fixed
    high = np.inf if j < 0 else (-np.inf if j >= len(cut) else float(cut[::-1][j]))
    p_up = (up_fixed + int((cut <= _EPS).sum())) / n
    p_down = (down_fixed + int((cut >= -_EPS).sum())) / n
    return Test(d, low, high, p_up, p_down, 0.0, n)


def permutation_p(observed: float, null: np.ndarray) -> tuple[float, float]:
    """One-sided p-values (up, down) of a defined ``observed`` statistic against its permutation
    distribution ``null`` (the observed labelling included), over the relabellings whose statistic is
    defined (NaN: not). Valid: under the null the observed labelling is uniform over its orbit of
    relabellings, so also over the defined ones, given that it is one of them."""
    null = np.asarray(null, float)
    null = null[~np.isnan(null)]
    return float((null >= observed - _EPS).mean()), float((null <= observed + _EPS).mean())


# --- exact binomial tests of a share of networks -----------------------------------------------------

def _upper_tail(k: int, n: int, p: float) -> float:
    """P(Bin(n, p) >= k)."""
    return sum(math.comb(n, i) * p ** i * (1 - p) ** (n - i) for i in range(k, n + 1))


def _solve(f, target: float) -> float:
    """The p in [0, 1] where the increasing function f crosses target (bisection)."""
    lo, hi = 0.0, 1.0
    for _ in range(60):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if f(mid) < target else (lo, mid)
    return (lo + hi) / 2


def share(k: int, n: int, null: float = 0.5) -> Test:
    """k of n networks have the property: is their share above ``null``?

    p_up = P(Bin(n, null) >= k), p_down = P(Bin(n, null) <= k) (exact);
    interval: Clopper-Pearson, low solves P(Bin(n, low) >= k) = ALPHA (0 if k = 0), high solves
    P(Bin(n, high) <= k) = ALPHA (1 if k = n). With ALPHA = 0.05 a "yes" needs n >= 5 (0.5^5 < 0.05)."""
    k, n = int(k), int(n)
    if n == 0:
        return Test(float("nan"), 0.0, 1.0, 1.0, 1.0, null, 0)
    low = 0.0 if k == 0 else _solve(lambda p: _upper_tail(k, n, p), ALPHA)
    high = 1.0 if k == n else _solve(lambda p: _upper_tail(k + 1, n, p), 1 - ALPHA)
    return Test(k / n, low, high, _upper_tail(k, n, null), 1 - _upper_tail(k + 1, n, null), null, n)


# --- the median of one value per network -----------------------------------------------------------

def median(values, null: float = 0.0) -> Test:
    """The median over networks of one value each (a per-network correlation, say): is it above ``null``?

    Sign test, exact for any continuous distribution of networks: with k of the m networks above
    ``null`` and j below (ties dropped), p_up = P(Bin(k + j, 1/2) >= k), p_down = P(Bin(k + j, 1/2) >= j).
    Interval: the order statistics [v_(r), v_(m+1-r)], r the largest with P(Bin(m, 1/2) <= r - 1) <= ALPHA,
    which covers the true median with probability >= LEVEL; (-inf, +inf) when no r works (m < 5 at ALPHA
    0.05: three networks cannot bound a median). NaN values (not measured) are dropped first."""
    v = np.sort(np.asarray(values, dtype=float))
    v = v[~np.isnan(v)]
    m = len(v)
    if m == 0:
        return Test(float("nan"), -math.inf, math.inf, 1.0, 1.0, null, 0)
    r = 0
    while r + 1 <= m and 1 - _upper_tail(r + 1, m, 0.5) <= ALPHA:  # P(Bin(m, 1/2) <= r) <= ALPHA
        r += 1
    low, high = (v[r - 1], v[m - r]) if r else (-math.inf, math.inf)
    above, below = int((v > null + _EPS).sum()), int((v < null - _EPS).sum())
    return Test(float(np.median(v)), float(low), float(high), _upper_tail(above, above + below, 0.5),
                _upper_tail(below, above + below, 0.5), null, m)
