"""The papers' claims C1-C6 as verdicts computed from a trials table: one function per claim.

The evidence standard every claim follows:

- **Only trials that interpolated are evidence** (status ``ok``: the training loss reached
  ``loss_tol``, and the probes ran). A net that failed to fit says nothing about memorization, so
  "X fails where Y succeeds" compares fitted nets only: X's failure must be repelling fixed points,
  not a failure to fit. Every verdict counts the trials it excluded, by reason.
- **A cell** is one grid point over seeds: the trials sharing every varying config axis but
  ``seed``. A cell is usable with at least ``MIN_SEEDS`` interpolated seeds; a comparison with a
  smaller cell is "insufficient evidence".
- **Comparisons** (deep vs shallow, wide vs narrow, conv_down vs conv, stable vs unstable) are
  decided by the bootstrap interval over seeds of the difference of the two cells' means
  (``diff_interval``): it must exclude 0. Never by comparing two points.
- **Status.** Each claim is decided in one or more *tests* (a group of cells, or one part of the
  claim), each of which comes out yes, no or insufficient; ``combine`` turns them into
  reproduced (some yes, no no), partly (yes and no), not reproduced (no, no yes) or insufficient
  evidence (only insufficient). A grid that cannot speak to a claim gets "not covered".
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from study.config import field_names

from . import maps

MIN_SEEDS = 3        # interpolated seeds a compared cell needs
LEVEL = maps.LEVEL   # two-sided level of every interval
YES, NO, MIXED, UNSURE = "yes", "no", "mixed", "insufficient"


@dataclass
class Verdict:
    claim: str
    status: str          # reproduced | partly | not reproduced | insufficient evidence | not covered
    text: str            # the numbers behind it, with their intervals
    seeds: int = 0       # the fewest interpolated seeds in a compared cell (0: none compared)
    excluded: dict[str, int] = field(default_factory=dict)  # reason -> trials left out

    @property
    def verdict(self) -> str:
        return self.status

    def line(self) -> str:
        gone = ", ".join(f"{n} {why}" for why, n in sorted(self.excluded.items()))
        tail = f" [min seeds per cell {self.seeds}; excluded: {gone or 'none'}]" if self.status != "not covered" else ""
        return f"{self.claim} [{self.status}]: {self.text}{tail}"


# --- the statistics ---------------------------------------------------------------------------

def mean_interval(a: np.ndarray, level: float = LEVEL, n_boot: int = maps.N_BOOT, seed: int = 0) -> tuple[float, float, float]:
    """(mean, lo, hi): mean of ``a`` and its percentile bootstrap interval (resampling with replacement)."""
    a = np.asarray(a, dtype=float)
    rng = np.random.default_rng(seed)
    boot = a[rng.integers(0, len(a), size=(n_boot, len(a)))].mean(axis=1)
    lo, hi = np.quantile(boot, [(1 - level) / 2, (1 + level) / 2])
    return float(a.mean()), float(lo), float(hi)


def diff_interval(a: np.ndarray, b: np.ndarray, level: float = LEVEL, n_boot: int = maps.N_BOOT,
                  seed: int = 0) -> tuple[float, float, float]:
    """(mean(a) - mean(b), lo, hi): the difference of two cells' means over seeds, with the percentile
    bootstrap interval from resampling each cell's seeds with replacement, independently."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    rng = np.random.default_rng(seed)
    da = a[rng.integers(0, len(a), size=(n_boot, len(a)))].mean(axis=1)
    db = b[rng.integers(0, len(b), size=(n_boot, len(b)))].mean(axis=1)
    lo, hi = np.quantile(da - db, [(1 - level) / 2, (1 + level) / 2])
    return float(a.mean() - b.mean()), float(lo), float(hi)


def rises(a: np.ndarray, b: np.ndarray) -> tuple[str, str]:
    """Is cell a's mean above cell b's? yes if the interval of the difference lies above 0, no if it
    lies at or below 0 (b is as high or higher: [0, 0] when both are all zeros), else insufficient.
    -> (outcome, 'diff (90% CI lo, hi)')."""
    if min(len(a), len(b)) < MIN_SEEDS:
        return UNSURE, f"{min(len(a), len(b))} seeds"
    d, lo, hi = diff_interval(a, b)
    outcome = YES if lo > 0 else NO if hi <= 0 else UNSURE
    return outcome, f"{d:+.2f} ({100 * LEVEL:.0f}% CI {lo:+.2f}, {hi:+.2f})"


def collapse(outcomes: list[str]) -> str:
    """One test over several groups of cells: yes if some group says yes and none no, no if the
    reverse, mixed if both, insufficient if no group could say."""
    if YES in outcomes:
        return MIXED if NO in outcomes else YES
    return NO if NO in outcomes else UNSURE


def combine(parts: list[str]) -> str:
    """A claim's status from its tests' outcomes: reproduced if every test says yes; partly if some
    says yes (or mixed); not reproduced if none does and some says no; else insufficient evidence."""
    if parts and all(p == YES for p in parts):
        return "reproduced"
    if YES in parts or MIXED in parts:
        return "partly"
    return "not reproduced" if NO in parts else "insufficient evidence"


# --- the evidence -----------------------------------------------------------------------------

def evidence(trials: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, int]]:
    """The trials that interpolated and were probed, and the count left out per reason."""
    probed = trials["attractor_frac"].notna()
    ok = (trials["status"] == "ok") & probed
    excluded = trials.loc[~ok, "status"].map(lambda s: "did not interpolate" if s == "not_converged" else s)
    return trials[ok], excluded.value_counts().to_dict()


def cells(trials: pd.DataFrame, ignore: tuple[str, ...] = ()) -> list[str]:
    """The axes that define a cell: the config columns that vary in ``trials``, minus seed and ``ignore``."""
    return [c for c in maps.varying(trials) if c not in ("seed", *ignore)]


def _label(keys: list[str], key) -> str:
    """'width 64, activation selu: ' for a group of cells; '' when the grid has one group."""
    key = key if isinstance(key, tuple) else (key,)
    text = ", ".join(f"{k} {v}" for k, v in zip(keys, key))
    return f"{text}: " if text else ""


def _groups(ev: pd.DataFrame, space: pd.DataFrame, by: list[str]):
    """(key, interpolated trials of the group) for every group of ``space`` (the claim's trials before
    exclusions), so that a group whose trials were all excluded is still reported."""
    for key, g in (space.groupby(by, dropna=False) if by else [((), space)]):
        yield key, ev.loc[ev.index.intersection(g.index)]


def _pct(x: float) -> str:
    return f"{100 * x:.0f}%"


def _fewest(*counts: int) -> int:
    """The smallest of the seed counts that are set (0 stands for none compared yet)."""
    return min((c for c in counts if c), default=0)


def _linear(trials: pd.DataFrame) -> pd.Series:
    """Linear nets (identity activation, no bias): their fixed points have rho = 1 by construction, so
    they are C1's and the operator study's, never attractor evidence."""
    return (trials.activation == "identity") & ~trials.bias.astype(bool)


def _nonlinear_autoencoders(trials: pd.DataFrame) -> pd.DataFrame:
    task = trials["task"] if "task" in trials else pd.Series("autoencode", index=trials.index)
    return trials[(task == "autoencode") & ~_linear(trials)]


def _along(ev: pd.DataFrame, axis: str, metric: str, space: pd.DataFrame) -> tuple[list[str], list[str], int]:
    """For each group of cells differing only in ``axis`` (the groups of ``space``, the claim's trials
    before exclusions): does ``metric`` rise from the smallest to the largest value of ``axis`` that has
    MIN_SEEDS interpolated seeds? -> (outcomes, texts, fewest seeds)."""
    by = cells(space, ignore=(axis,))
    outcomes, texts, fewest = [], [], 0
    for key, g in _groups(ev, space, by):
        n = g.groupby(axis).seed.nunique()
        full = sorted(n[n >= MIN_SEEDS].index)
        if len(full) < 2:
            outcomes.append(UNSURE)
            have = ", ".join(f"{axis} {v}: {k}" for v, k in n.items()) or "none interpolated"
            texts.append(f"{_label(by, key)}fewer than two {axis} values with {MIN_SEEDS} interpolated seeds ({have})")
            continue
        lo_v, hi_v = full[0], full[-1]
        a, b = g[g[axis] == hi_v][metric].to_numpy(), g[g[axis] == lo_v][metric].to_numpy()
        outcome, diff = rises(a, b)
        fewest = _fewest(fewest, len(a), len(b))
        outcomes.append(outcome)
        texts.append(f"{_label(by, key)}{metric} {_pct(a.mean())} at {axis} {hi_v:g} vs {_pct(b.mean())} at "
                     f"{lo_v:g}, difference {diff} -> {outcome}")
    return outcomes, texts, fewest


# --- the claims -------------------------------------------------------------------------------

def c1_span(trials: pd.DataFrame, span_tol: float = 0.01, attractor_tol: float = 0.1) -> Verdict:
    """C1: a single layer f = phi(A x) trained by GD sees only span(X), f(h) = f(P_X h), and stores no
    attractor. Per cell of depth-1 nets: yes if the upper bound of mean |f(h) - f(P_X h)| / |f(h)| is
    below ``span_tol`` and that of the attractor fraction below ``attractor_tol``; no if either lower
    bound is above its tolerance. Only depth-1 nets trained by plain GD are in the claim's setting
    (Adam's per-coordinate steps leave span(X), so its single layers are no test of it)."""
    single = trials[(trials.depth == 1) & (trials.optimizer == "gd" if "optimizer" in trials else True)]
    if single.empty:
        return Verdict("C1", "not covered", "no depth-1 trials trained by plain GD in this grid")
    ev, excluded = evidence(single)
    by = cells(single)
    outcomes, texts, fewest = [], [], 0
    for key, g in _groups(ev, single, by):
        if g.seed.nunique() < MIN_SEEDS:
            outcomes.append(UNSURE)
            texts.append(f"{_label(by, key)}{g.seed.nunique()} interpolated seeds")
            continue
        fewest = _fewest(fewest, g.seed.nunique())
        s, s_lo, s_hi = mean_interval(g.span_input_sensitivity_mean.to_numpy())
        a, a_lo, a_hi = mean_interval(g.attractor_frac.to_numpy())
        outcome = YES if s_hi < span_tol and a_hi < attractor_tol else NO if s_lo > span_tol or a_lo > attractor_tol \
            else UNSURE
        outcomes.append(outcome)
        texts.append(f"{_label(by, key)}|f(h) - f(P_X h)| / |f(h)| = {s:.1e} (CI up to {s_hi:.1e}), "
                     f"attractors {_pct(a)} -> {outcome}")
    if not outcomes:
        texts.append("no depth-1 trial interpolated")
    return Verdict("C1", combine([collapse(outcomes)]), "; ".join(texts), fewest, excluded)


def c2_depth(trials: pd.DataFrame) -> Verdict:
    """C2: deep fc autoencoders trained to interpolation are contractive at their training examples.
    Nonlinear fc nets, n_train > 1, depth >= 2. Per group of cells differing only in depth: the mean
    attractor fraction at the deepest depth with MIN_SEEDS interpolated seeds minus that at the
    shallowest, with its bootstrap interval (``rises``)."""
    fc = _nonlinear_autoencoders(trials)
    fc = fc[(fc.arch == "fc") & (fc.n_train > 1) & (fc.depth >= 2)]
    if fc.depth.nunique() < 2:
        return Verdict("C2", "not covered", "needs nonlinear fc trials on several examples at two or more depths >= 2")
    ev, excluded = evidence(fc)
    outcomes, texts, fewest = _along(ev, "depth", "attractor_frac", fc)
    return Verdict("C2", combine([collapse(outcomes)]), "; ".join(texts) or "no trial interpolated", fewest, excluded)


def helps(ev: pd.DataFrame, axis: str, better: str, worse: str, metric: str,
          space: pd.DataFrame) -> tuple[str, list[str], int]:
    """Does ``axis`` = ``better`` raise ``metric`` over ``worse``, compared cell by cell (every other
    varying axis equal)? yes if some cell pair says so (``rises``) and none says the reverse; no if
    some says the reverse and none says so, or if every compared pair is level or reversed; else
    insufficient. Groups are those of ``space``, the claim's trials before exclusions.
    -> (outcome, texts, fewest seeds)."""
    by = cells(space, ignore=(axis,))
    up, down, level, texts, fewest = 0, 0, 0, [], 0
    for key, g in _groups(ev, space, by):
        a, b = g[g[axis] == better][metric].to_numpy(), g[g[axis] == worse][metric].to_numpy()
        if min(len(a), len(b)) < MIN_SEEDS:
            continue
        fewest = _fewest(fewest, len(a), len(b))
        outcome, diff = rises(a, b)
        reverse, _ = rises(b, a)
        up, down, level = up + (outcome == YES), down + (reverse == YES), level + (outcome == NO)
        texts.append(f"{_label(by, key)}{_pct(a.mean())} vs {_pct(b.mean())}, difference {diff}")
    compared = len(texts)
    outcome = (YES if up and not down else NO if (down and not up) or (compared and level == compared) or (up and down)
               else UNSURE)
    if not compared:
        texts.append(f"no cell has {MIN_SEEDS} interpolated seeds of both {better} and {worse}")
    return outcome, texts, fewest


def c3_conv(trials: pd.DataFrame, criterion: maps.Criterion = maps.DEFAULT) -> Verdict:
    """C3: for nonlinear conv autoencoders depth is necessary and (empirically) sufficient, and
    downsampling reaches memorization at smaller depth. On interpolated trials, with the memorization
    indicator (``maps.memorized``) as each trial's value, two tests:
    depth: per arch (and any other axis), the deepest usable cell memorizes more than the shallowest
    (``rises``); a shallow net counts only if it fitted, so its failure is repelling points;
    downsampling: cell by cell at equal depth, conv_down memorizes more than conv (``helps``)."""
    conv = _nonlinear_autoencoders(trials)
    conv = conv[conv.arch.isin(["conv", "conv_down"]) & (conv.n_train > 1)]
    if conv.depth.nunique() < 2:
        return Verdict("C3", "not covered", "needs nonlinear conv or conv_down trials at two or more depths")
    ev, excluded = evidence(conv)
    ev = ev.assign(memorized=maps.memorized(ev, criterion).astype(float))
    outcomes, texts, fewest = _along(ev, "depth", "memorized", conv)
    tests = [collapse(outcomes)]
    parts = [f"memorization rate over depth -> {tests[0]}: " + "; ".join(texts)]
    if {"conv", "conv_down"} <= set(conv.arch):
        down, down_texts, seeds = helps(ev, "arch", "conv_down", "conv", "memorized", conv)
        tests.append(down)
        fewest = _fewest(fewest, seeds)
        parts.append(f"conv_down vs conv at equal depth -> {down}: " + "; ".join(down_texts))
    else:
        parts.append(f"the grid lacks {({'conv', 'conv_down'} - set(conv.arch)).pop()}, so whether downsampling "
                     "helps is not tested")
        tests.append(UNSURE)  # half of the claim untested: at best partly
    return Verdict("C3", combine(tests), " | ".join(parts), fewest, excluded)


def c3_linear(trials: pd.DataFrame) -> Verdict:
    """C3's operator study on linear conv nets (identity activation, no bias), whose operator A is
    measured (``maps.operator_memorizes``: A acts like P_X). Two tests on interpolated trials:
    necessity: no stride-1 net whose receptive field L(k-1)+1 is below the image side acts like P_X
    (yes: >= MIN_SEEDS such nets and none does; no: any does);
    downsampling: cell by cell at equal depth, side and width, conv_down's operator memorizes more
    often than stride-1's (``helps``)."""
    lin = trials[_linear(trials) & trials.arch.isin(["conv", "conv_down"])]
    if "operator_near_one" in lin:
        lin = lin[lin.operator_near_one.notna()]
    if lin.empty or lin.depth.nunique() < 2:
        return Verdict("C3-linear", "not covered", "needs linear conv or conv_down trials at two or more depths")
    ev, excluded = evidence(lin)
    ev = ev.assign(side=maps.image_side(ev), memorizes=maps.operator_memorizes(ev).astype(float))
    narrow = ev[(ev.arch == "conv") & (maps.receptive_field(ev) < ev.side)]
    hits = int(narrow.memorizes.sum())
    necessary = NO if hits else YES if len(narrow) >= MIN_SEEDS else UNSURE
    down, texts, fewest = helps(ev, "arch", "conv_down", "conv", "memorizes", lin)
    return Verdict("C3-linear", combine([necessary, down]),
                   f"interpolated stride-1 nets with receptive field < image side acting as P_X: {hits} of "
                   f"{len(narrow)} -> {necessary} | operator acts as P_X, conv_down vs conv at equal depth -> "
                   f"{down}: " + "; ".join(texts), fewest, excluded)


def c4_single(trials: pd.DataFrame) -> Verdict:
    """C4: a net trained on one example stores it as an attractor, across activations, widths and
    depths. Per cell of nonlinear n_train = 1 autoencoders: yes if the lower bound of the mean
    attractor fraction over seeds is >= 0.5, no if its upper bound is < 0.5."""
    one = _nonlinear_autoencoders(trials)
    one = one[one.n_train == 1]
    if one.empty:
        return Verdict("C4", "not covered", "no nonlinear n_train = 1 trials in this grid")
    ev, excluded = evidence(one)
    by = cells(one)
    outcomes, failing, fewest, shares, thin = [], [], 0, [], 0
    for key, g in _groups(ev, one, by):
        if g.seed.nunique() < MIN_SEEDS:
            outcomes.append(UNSURE)
            thin += 1
            continue
        fewest = _fewest(fewest, g.seed.nunique())
        m, lo, hi = mean_interval(g.attractor_frac.to_numpy())
        outcome = YES if lo >= 0.5 else NO if hi < 0.5 else UNSURE
        outcomes.append(outcome)
        shares.append(m)
        if outcome != YES:
            failing.append(f"{_label(by, key)}{_pct(m)} ({outcome})")
    return Verdict("C4", combine([collapse(outcomes)]),
                   f"{outcomes.count(YES)} of {len(outcomes)} cells store the example (lower bound of the attractor "
                   f"share >= 50%); mean share over usable cells {_pct(np.mean(shares)) if shares else 'n/a'}"
                   + (f"; {thin} cell(s) with fewer than {MIN_SEEDS} interpolated seeds" if thin else "") + ("; not stored: " + "; ".join(failing) if failing else ""),
                   fewest, excluded)


def c5_sequence(trials: pd.DataFrame) -> Verdict:
    """C5: a net trained on a cycle stores it, and the cycle is stable iff rho(J(x_(n-1)) ... J(x_0)) < 1.
    Probed through f^n, a trial's cycle is stable when every cycle image is an attractor of f^n
    (attractor_frac = 1). On interpolated sequence trials, pooled over the grid: stable cycles are
    reached from noisy starts (yes if the lower bound of their mean retrieval_any_frac is >= 0.5), and,
    where MIN_SEEDS unstable cycles exist, more often than unstable ones (``rises``)."""
    seq = trials[trials["task"] == "sequence"] if "task" in trials else trials.iloc[:0]
    if seq.empty:
        return Verdict("C5", "not covered", "no task = sequence trials in this grid")
    ev, excluded = evidence(seq)
    stable, unstable = ev[ev.attractor_frac == 1], ev[ev.attractor_frac < 1]
    outcomes, text = [], f"{len(stable)} of {len(ev)} interpolated cycles stable"
    if len(stable) >= MIN_SEEDS:
        m, lo, hi = mean_interval(stable.retrieval_any_frac.to_numpy())
        outcomes.append(YES if lo >= 0.5 else NO if hi < 0.5 else UNSURE)
        text += f"; noisy starts reach a stable cycle in {_pct(m)} (CI {_pct(lo)}-{_pct(hi)}) -> {outcomes[-1]}"
    else:
        outcomes.append(UNSURE)
    if len(unstable) >= MIN_SEEDS:
        outcome, diff = rises(stable.retrieval_any_frac.to_numpy(), unstable.retrieval_any_frac.to_numpy())
        outcomes.append(outcome)
        text += f"; stable minus unstable retrieval {diff} -> {outcome}"
    else:
        text += f"; {len(unstable)} unstable cycles (too few to compare)"
    compared = [len(stable)] + ([len(unstable)] if len(unstable) >= MIN_SEEDS else [])
    return Verdict("C5", combine(outcomes), text, min(compared), excluded)


def c6_width(trials: pd.DataFrame) -> Verdict:
    """C6: more width makes the map more contractive around its examples, so more are stored (C2 is the
    depth half). Nonlinear autoencoders, n_train > 1. Per group of cells differing only in width (depth,
    arch, activation... kept apart): the mean attractor fraction at the widest width with MIN_SEEDS
    interpolated seeds minus that at the narrowest (``rises``). A width that fails to fit its examples
    is excluded, not read as less contractive."""
    several = _nonlinear_autoencoders(trials)
    several = several[several.n_train > 1]
    if several.width.nunique() < 2:
        return Verdict("C6", "not covered", "needs nonlinear trials on several examples at two or more widths")
    ev, excluded = evidence(several)
    outcomes, texts, fewest = _along(ev, "width", "attractor_frac", several)
    return Verdict("C6", combine([collapse(outcomes)]), "; ".join(texts) or "no trial interpolated", fewest, excluded)


CLAIMS = (c1_span, c2_depth, c3_conv, c3_linear, c4_single, c5_sequence, c6_width)


def verdicts(trials: pd.DataFrame, criterion: maps.Criterion = maps.DEFAULT) -> list[Verdict]:
    """Every claim's verdict for one trials table (claims the grid cannot speak to: 'not covered')."""
    return [fn(trials, criterion) if fn is c3_conv else fn(trials) for fn in CLAIMS]
