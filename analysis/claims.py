"""The papers' claims C1-C6 as verdicts computed from a trials table: one function per claim, one
rule for the status of every claim (``judge``).

Evidence (``analysis.evidence``): only usable trials (interpolated, probed), one value per trained
network (seed), and only cells with at least ``rules.MIN_SEEDS`` usable seeds: a claim reads no
untested cell, and says how many trials it left out and why.

Statistics (``analysis.stats``), each exact at its error rate ``rules.ALPHA`` per side:
- a *comparison* (deep vs shallow, wide vs narrow, conv_down vs conv, stable vs unstable cycles)
  is a permutation test of the difference of the two cells' means over networks, paired by seed
  where the two cells share MIN_SEEDS usable seeds (a seed fixes the training images);
- a *share* (networks that store their example, that stay within a tolerance) is an exact
  binomial test against 1/2, more often than not.

A claim is decided in one or more *parts* (C3: depth, and downsampling). A part has *groups*: for
C2 one per width x activation (the cells that differ only in depth), for C4 one per cell. A group
is *testable* when the cells it compares are tested; its own test says yes, no, against (undecided,
but the estimate points the other way) or insufficient; a conv_down/conv pair whose cells are equal
network for network is *level* (``helps``), which neither supports nor contradicts. The part's *pooled test* puts every
testable group into one test (a permutation test stratified by group, or the pooled count), so a
claim has the power of all its groups and still the error rate of one test.

``judge``, the status of a part:
  not covered            the grid holds no trials in the claim's setting
  insufficient evidence  no testable group, or fewer than half of the groups testable
  reproduced             the pooled test says yes, no group says no or against, every group testable
  partly                 the pooled test says yes, but a group says no or against, or is untestable
  not reproduced         the pooled test says no (its interval lies at or below no effect)
  insufficient evidence  otherwise: the pooled test is undecided
``combine``, the status of a claim of several parts: reproduced if every part is; partly if some part
is reproduced or partly; not reproduced if some part is and none is better; else insufficient.
So a claim comes out "reproduced" only when each of its pooled tests says yes: under no effect, at
most ALPHA of the time (``tests/test_calibration.py`` measures it).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from study import rules
from study.rules import MIN_SEEDS

from . import evidence, maps, stats
from .stats import AGAINST, LEVEL_, NO, UNSURE, YES

REPRODUCED, PARTLY, NOT_REPRODUCED, INSUFFICIENT, NOT_COVERED = ("reproduced", "partly", "not reproduced",
                                                                  "insufficient evidence", "not covered")
UNTESTABLE = "untestable"
STATUS_MEANING = {  # a claim's status in words (``judge``, ``combine``), as the report explains it
    REPRODUCED: "every pooled test says yes, no group says no or points the other way, every group could be tested",
    PARTLY: "a pooled test says yes, but some group says no, points the other way or could not be tested",
    NOT_REPRODUCED: "a pooled test says no (its interval lies at or below no effect), or a theorem is contradicted",
    INSUFFICIENT: "too few groups could be tested (fewer than half, or none), or the pooled test cannot decide",
    NOT_COVERED: "the grid holds no trials in the claim's setting",
}
STATEMENTS = {  # what each claim of the papers says, in one line (the functions below test it)
    "C1": "a single layer trained by gradient descent sees only the span of its training data and stores no "
          "attractor",
    "C2": "deep fc autoencoders trained to interpolation are contractive at their training examples",
    "C3": "for nonlinear conv autoencoders depth is necessary and sufficient to memorize, and downsampling "
          "memorizes at smaller depth",
    "C3-linear": "a linear conv net can act as the projection onto its training data only once its receptive "
                 "field covers the image, and downsampling gets there sooner",
    "C4": "a net trained on one example stores it as an attractor",
    "C5": "a net trained on a cycle of images stores it; the cycle is stable, and retrieved, exactly when the "
          "product of its Jacobians has spectral radius below 1",
    "C6": "more width makes the map more contractive around its examples, so more of them are stored",
}


@dataclass
class Group:
    label: str                    # 'width 64, activation selu' ('' when the part has one group)
    outcome: str                  # yes, no, against, insufficient, level, untestable
    text: str                     # its numbers, or why it could not be tested
    pair: stats.Pair | None = None  # the compared cells, for the pooled comparison
    count: tuple | None = None    # (k, n): networks with the property, for the pooled share


@dataclass
class Part:
    name: str                     # 'depth', 'downsampling'; '' for a claim of one part
    groups: list[Group]
    pooled: stats.Test | None = None
    status: str = INSUFFICIENT
    what: str = ""                # what the pooled test compares, in words
    contradicted: str = ""        # a counterexample to a theorem, which no statistic outweighs

    def why(self) -> str:
        return _rule(self)[1]

    def text(self) -> str:
        return "; ".join(self.lines())

    def lines(self) -> list[str]:
        """The part in words: its pooled test and group counts, then each group's numbers, then any
        contradiction (``text`` joins them with '; ')."""
        n = len(self.groups)
        tested = [g for g in self.groups if g.outcome != UNTESTABLE]
        counts = ", ".join(f"{sum(g.outcome == o for g in tested)} {o}" for o in (YES, NO, AGAINST, UNSURE, LEVEL_)
                           if o != LEVEL_ or any(g.outcome == LEVEL_ for g in tested))
        head = f"{self.name} [{self.status}]: " if self.name else ""
        pooled = f"pooled {self.what} {self.pooled.text(self.pooled.null != 0)} -> {self.pooled.outcome}; " \
            if self.pooled is not None else ""
        parts = [f"{head}{pooled}{len(tested)} of {n} groups tested ({counts}), {n - len(tested)} untestable"
                 + (f" ({self.why()})" if self.why() else "")]
        parts += [f"{g.label}: {g.text}" if g.label else g.text for g in self.groups]
        return parts + ([self.contradicted] if self.contradicted else [])


@dataclass
class Verdict:
    claim: str
    status: str          # reproduced | partly | not reproduced | insufficient evidence | not covered
    text: str            # the pooled tests, the group counts and every group's numbers
    seeds: int = 0       # the fewest usable seeds of a tested cell (0: no cell is tested)
    excluded: dict[str, int] = field(default_factory=dict)  # reason -> trials left out
    parts: list[Part] = field(default_factory=list)
    cells: int = 0       # cells (grid points but the seed) in the claim's setting
    tested: int = 0      # of them, those with at least MIN_SEEDS usable seeds
    usable: tuple[int, int] = (0, 0)  # the fewest and the most usable seeds of a cell, tested or not

    def seed_text(self) -> str:
        """The seeds behind the verdict, counted as every table counts them (``evidence.seed_counts``):
        'min seeds per cell 5', 'min seeds per tested cell 5; 1 of 6 cells untested (...)', or 'no cell
        tested: at most 2 usable seeds in a cell, 3 needed'."""
        if not self.tested:
            have = f"at most {self.usable[1]} usable seeds in a cell" if self.usable[1] else "no usable trial"
            return f"no cell tested: {have}, {MIN_SEEDS} needed"
        if self.tested == self.cells:
            return f"min seeds per cell {self.seeds}"
        return (f"min seeds per tested cell {self.seeds}; {self.cells - self.tested} of {self.cells} cells untested "
                f"(fewer than {MIN_SEEDS} usable seeds)")

    def groups(self) -> tuple[int, int]:
        """(groups tested, groups) over the claim's parts."""
        every = [g for p in self.parts for g in p.groups]
        return sum(g.outcome != UNTESTABLE for g in every), len(every)

    def evidence_text(self) -> str:
        """What the verdict rests on: 'min seeds per cell 5; excluded: 1 did not interpolate'."""
        gone = ", ".join(f"{n} {why}" for why, n in sorted(self.excluded.items()))
        return f"{self.seed_text()}; excluded: {gone or 'none'}"

    def line(self) -> str:
        tail = f" [{self.evidence_text()}]" if self.status != NOT_COVERED else ""
        return f"{self.claim} [{self.status}]: {self.text}{tail}"


# --- the one rule -----------------------------------------------------------------------------------

def _rule(part: Part) -> tuple[str, str]:
    """A part's status from its pooled test and its groups (see the module docstring), and why it is
    below what its pooled test says, in words ('' if it is not): the one rule, which ``judge`` and
    ``Part.why`` both read."""
    if part.contradicted:
        return NOT_REPRODUCED, ""
    n = len(part.groups)
    tested = [g for g in part.groups if g.outcome != UNTESTABLE]
    if not tested or part.pooled is None:
        return INSUFFICIENT, ""
    if 2 * len(tested) < n:
        return INSUFFICIENT, "insufficient: fewer than half of the groups testable"
    pooled = part.pooled.outcome
    if pooled != YES:
        return (NOT_REPRODUCED if pooled == NO else INSUFFICIENT), ""
    clean = len(tested) == n and not any(g.outcome in (NO, AGAINST) for g in tested)
    if clean:
        return REPRODUCED, ""
    held = [f"{sum(g.outcome == o for g in tested)} {w}" for o, w in ((NO, "say no"), (AGAINST, "point the other way"))
            if any(g.outcome == o for g in tested)]
    if len(tested) < n:
        held.append(f"{n - len(tested)} untestable")
    return PARTLY, f"partly: {', '.join(held)}"


def judge(part: Part) -> str:
    """A part's status from its pooled test and its groups (see the module docstring)."""
    return _rule(part)[0]


def combine(statuses: list[str]) -> str:
    """A claim's status from its parts' (see the module docstring)."""
    if statuses and all(s == REPRODUCED for s in statuses):
        return REPRODUCED
    if REPRODUCED in statuses or PARTLY in statuses:
        return PARTLY
    return NOT_REPRODUCED if NOT_REPRODUCED in statuses else INSUFFICIENT


def decide(part: Part) -> Part:
    """Pool the part's testable groups (comparisons or counts) and judge it."""
    pairs = [g.pair for g in part.groups if g.pair is not None]
    counts = [g.count for g in part.groups if g.count is not None]
    if pairs:
        part.pooled = stats.compare(pairs)
    elif counts:
        part.pooled = stats.share(sum(k for k, _ in counts), sum(n for _, n in counts))
    part.status = judge(part)
    return part


def verdict(claim: str, parts: list[Part], space: pd.DataFrame) -> Verdict:
    """The claim's verdict from its parts, over ``space``: the claim's trials before exclusions."""
    parts = [decide(p) for p in parts]
    counts = evidence.seed_counts(space)
    tested = counts[counts.tested]
    return Verdict(claim, combine([p.status for p in parts]), " | ".join(p.text() for p in parts),
                   int(tested.n_usable.min()) if len(tested) else 0, evidence.excluded(space), parts,
                   cells=len(counts), tested=len(tested),
                   usable=(int(counts.n_usable.min()), int(counts.n_usable.max())) if len(counts) else (0, 0))


# --- the evidence a claim reads -------------------------------------------------------------------------

def cell_axes(trials: pd.DataFrame, ignore: tuple[str, ...] = ()) -> list[str]:
    """The config columns that vary in ``trials``, minus seed and ``ignore``."""
    return [c for c in maps.varying(trials) if c not in ("seed", *ignore)]


def _label(keys: list[str], key) -> str:
    """'width 64, activation selu' for a group of cells; '' when the grid has one group."""
    key = key if isinstance(key, tuple) else (key,)
    return ", ".join(f"{k} {v}" for k, v in zip(keys, key))


def _groups(space: pd.DataFrame, by: list[str]):
    """(label, the group's trials) for every group of ``space`` (the claim's trials before exclusions), so
    that a group whose trials were all excluded is still counted."""
    for key, g in (space.groupby(by, dropna=False) if by else [((), space)]):
        yield _label(by, key), g


def _pct(x: float) -> str:
    return f"{100 * x:.0f}%"


def _seed_counts(space: pd.DataFrame, axis: str) -> str:
    """'depth 8: 2 of 3 usable, depth 12: 3 of 3' for a group's values of ``axis``."""
    ok = evidence.usable(space)
    return ", ".join(f"{axis} {v:g}: {int(ok[g.index].sum())} of {g.seed.nunique()} usable"
                     for v, g in space.groupby(axis)) or "no trials"


def _linear(trials: pd.DataFrame) -> pd.Series:
    """Linear nets (identity activation, no bias): their fixed points have rho = 1 by construction, so
    they are C1's and the operator study's, never attractor evidence."""
    return pd.Series(rules.is_linear(trials.activation, trials.bias.astype(bool)), index=trials.index)


def _nonlinear_autoencoders(trials: pd.DataFrame) -> pd.DataFrame:
    task = trials["task"] if "task" in trials else pd.Series("autoencode", index=trials.index)
    return trials[(task == "autoencode") & ~_linear(trials)]


# --- the groups of each kind of test ----------------------------------------------------------------------

def _groups_along(space: pd.DataFrame, axis: str, metric: str, values: pd.Series | None):
    """Each group of cells differing only in ``axis``: its label, its trials, and its rows in tested cells
    (``metric`` replaced by ``values`` where given)."""
    space = space if values is None else space.assign(**{metric: values})
    ev = evidence.tested_rows(space)
    for label, g in _groups(space, cell_axes(space, ignore=(axis,))):
        yield label, g, ev.loc[ev.index.intersection(g.index)]


def along(space: pd.DataFrame, axis: str, metric: str, values: pd.Series | None = None) -> list[Group]:
    """Per group of cells differing only in ``axis`` (the groups of ``space``, the claim's trials before
    exclusions): does ``metric`` (or ``values``, per row) rise from the smallest to the largest tested
    value of ``axis``? Untestable with fewer than two tested values."""
    out = []
    for label, g, e in _groups_along(space, axis, metric, values):
        have = sorted(e[axis].unique())
        if len(have) < 2:
            out.append(Group(label, UNTESTABLE, f"untestable: fewer than two {axis} values with {MIN_SEEDS} usable "
                                                f"seeds ({_seed_counts(g, axis)})"))
            continue
        lo, hi = have[0], have[-1]
        pair = _pair(e[e[axis] == hi], e[e[axis] == lo], metric)
        t = stats.compare([pair])
        text = f"{metric} {_pct(pair.a.mean())} at {axis} {hi:g} vs {_pct(pair.b.mean())} at {lo:g}"
        out.append(Group(label, t.outcome, f"{text}, difference {t.text()}{_how(pair)} -> {t.outcome}", pair=pair))
    return out


def _pair(a: pd.DataFrame, b: pd.DataFrame, metric: str) -> stats.Pair:
    """Two tested cells as a ``stats.Pair``: paired by seed over the seeds usable in both when there are
    MIN_SEEDS of them (a seed fixes the training images, so its two networks are compared with each
    other), else every network of each, unpaired."""
    shared = sorted(set(a.seed) & set(b.seed))
    if len(shared) >= MIN_SEEDS:
        pick = lambda cell: cell.set_index("seed").loc[shared, metric].to_numpy(float)  # noqa: E731
        return stats.Pair(pick(a), pick(b), paired=True)
    return stats.Pair(a[metric].to_numpy(float), b[metric].to_numpy(float))


def _how(pair: stats.Pair) -> str:
    return f", paired by seed ({len(pair.a)} seeds)" if pair.paired else f", unpaired ({len(pair.a)} vs {len(pair.b)})"


def helps(space: pd.DataFrame, axis: str, better: str, worse: str, metric: str,
          values: pd.Series | None = None) -> list[Group]:
    """Does ``axis`` = ``better`` raise ``metric`` over ``worse``, cell by cell (every other varying axis
    equal)? One group per pair of cells; untestable unless both are tested. A pair whose cells are equal
    network for network (neither memorizes, or both do) is *level*: "downsampling reaches memorization
    at smaller depth" expects that at depths where neither or both have reached it, so a level pair
    neither supports nor contradicts the claim (it stays in the pooled test)."""
    out = []
    for label, g, e in _groups_along(space, axis, metric, values):
        a, b = e[e[axis] == better], e[e[axis] == worse]
        if min(len(a), len(b)) == 0:
            ok = evidence.usable(g)
            have = ", ".join(f"{v}: {int(ok[x.index].sum())} of {x.seed.nunique()} usable" for v, x in g.groupby(axis))
            out.append(Group(label, UNTESTABLE, f"untestable: {better} and {worse} need {MIN_SEEDS} usable seeds each "
                                                f"({have or 'no trials'})"))
            continue
        pair = _pair(a, b, metric)
        t = stats.compare([pair])
        outcome = LEVEL_ if t.level else t.outcome  # equal cells: where neither or both memorize, no help is due
        out.append(Group(label, outcome, f"{_pct(pair.a.mean())} vs {_pct(pair.b.mean())}, difference {t.text()}"
                                         f"{_how(pair)} -> {outcome}", pair=pair))
    return out


def shares(space: pd.DataFrame, has: pd.Series, by: list[str] | None = None) -> list[Group]:
    """Per group (default: per cell): k of the n usable networks of a tested cell have the property
    ``has`` (boolean per row); is their share above 1/2 (``stats.share``)?"""
    ev = evidence.tested_rows(space)
    out = []
    for label, g in _groups(space, cell_axes(space) if by is None else by):
        e = ev.loc[ev.index.intersection(g.index)]
        if e.empty:
            ok = evidence.usable(g)
            out.append(Group(label, UNTESTABLE, f"untestable: {int(ok.sum())} of {g.seed.nunique()} seeds usable"))
            continue
        k, n = int(has[e.index].sum()), len(e)
        t = stats.share(k, n)
        out.append(Group(label, t.outcome, f"{k} of {n} (p = {stats.pvalue(t.p_up)}) -> {t.outcome}", count=(k, n)))
    return out


def _not_covered(claim: str, why: str) -> Verdict:
    return Verdict(claim, NOT_COVERED, why)


# --- the claims -------------------------------------------------------------------------------------------

def c1_span(trials: pd.DataFrame, span_tol: float = 0.01, attractor_tol: float = 0.1) -> Verdict:
    """C1: a single layer f = phi(A x) trained by GD sees only span(X), f(h) = f(P_X h), and stores no
    attractor. A network agrees when |f(h) - f(P_X h)| / |f(h)| < ``span_tol`` and its attractor share
    < ``attractor_tol``; per cell of depth-1 nets, and pooled, is the share of networks that agree
    above 1/2? Only depth-1 nets trained by plain GD are in the claim's setting (Adam's per-coordinate
    steps leave span(X), so its single layers are no test of it)."""
    single = trials[(trials.depth == 1) & (trials.optimizer == "gd" if "optimizer" in trials else True)]
    if single.empty:
        return _not_covered("C1", "no depth-1 trials trained by plain GD in this grid")
    agree = (single.span_input_sensitivity_mean.astype(float) < span_tol) & \
        (single.attractor_frac.astype(float) < attractor_tol)
    groups = shares(single, agree)
    what = f"share of networks with span sensitivity < {span_tol:g} and attractor share < {attractor_tol:g}"
    return verdict("C1", [Part("", groups, what=what)], single)


def c2_depth(trials: pd.DataFrame) -> Verdict:
    """C2: deep fc autoencoders trained to interpolation are contractive at their training examples.
    Nonlinear fc nets, n_train > 1, depth >= 2. Per group of cells differing only in depth: the mean
    attractor fraction at the deepest tested depth against the shallowest (``along``); pooled over
    the groups."""
    fc = _nonlinear_autoencoders(trials)
    fc = fc[(fc.arch == "fc") & (fc.n_train > 1) & (fc.depth >= 2)]
    if fc.depth.nunique() < 2:
        return _not_covered("C2", "needs nonlinear fc trials on several examples at two or more depths >= 2")
    part = Part("", along(fc, "depth", "attractor_frac"), what="difference deepest - shallowest")
    return verdict("C2", [part], fc)


def c3_conv(trials: pd.DataFrame, criterion: maps.Criterion = maps.DEFAULT) -> Verdict:
    """C3: for nonlinear conv autoencoders depth is necessary and (empirically) sufficient, and
    downsampling reaches memorization at smaller depth. Each network's value is whether it memorizes
    (``maps.memorized``). Two parts: depth, per arch (and any other axis), the deepest tested cell
    memorizes more than the shallowest (``along``; a shallow net counts only if it fitted, so its
    failure is repelling points); downsampling, cell by cell at equal depth, conv_down memorizes more
    than conv (``helps``)."""
    conv = _nonlinear_autoencoders(trials)
    conv = conv[conv.arch.isin(["conv", "conv_down"]) & (conv.n_train > 1)]
    if conv.depth.nunique() < 2:
        return _not_covered("C3", "needs nonlinear conv or conv_down trials at two or more depths")
    flag = maps.memorized(conv, criterion).astype(float)
    parts = [Part("depth", along(conv, "depth", "memorized", flag), what="difference deepest - shallowest")]
    if {"conv", "conv_down"} <= set(conv.arch):
        parts.append(Part("downsampling", helps(conv, "arch", "conv_down", "conv", "memorized", flag),
                          what="difference conv_down - conv"))
    else:
        missing = ({"conv", "conv_down"} - set(conv.arch)).pop()
        parts.append(Part("downsampling", [Group("", UNTESTABLE, f"not tested: the grid lacks {missing}")]))
    return verdict("C3", parts, conv)


def c3_linear(trials: pd.DataFrame) -> Verdict:
    """C3's operator study on linear conv nets (identity activation, no bias), whose operator A is
    measured (``maps.operator_memorizes``: A acts like P_X). Two parts: necessity, of the usable
    stride-1 nets whose receptive field L(k-1)+1 is below the image side, the share that do not act
    like P_X is above 1/2, and none does (one that does contradicts the theorem: no); downsampling,
    cell by cell at equal depth and side, conv_down's operator acts like P_X more often (``helps``)."""
    lin = trials[_linear(trials) & trials.arch.isin(["conv", "conv_down"])]
    if "operator_near_one" in lin:
        lin = lin[lin.operator_near_one.notna()]
    if lin.empty or lin.depth.nunique() < 2:
        return _not_covered("C3-linear", "needs linear conv or conv_down trials at two or more depths")
    lin = lin.assign(side=maps.image_side(lin))
    acts = maps.operator_memorizes(lin).astype(float)
    narrow = lin[(lin.arch == "conv") & (maps.receptive_field(lin) < lin.side)]
    necessity = Part("necessity", shares(narrow, acts[narrow.index] == 0, by=[]) if len(narrow) else
                     [Group("", UNTESTABLE, "not tested: no stride-1 net with a receptive field below the image side")],
                     what="share of stride-1 nets with a receptive field below the image side not acting as P_X")
    ev = evidence.tested_rows(lin)
    hits = int(acts[ev.index.intersection(narrow.index)].sum())
    if hits:
        necessity.contradicted = f"{hits} usable stride-1 net(s) below the bound act as P_X, which the bound forbids"
    parts = [necessity, Part("downsampling", helps(lin, "arch", "conv_down", "conv", "memorizes", acts),
                             what="difference conv_down - conv")]
    return verdict("C3-linear", parts, lin)


def c4_single(trials: pd.DataFrame) -> Verdict:
    """C4: a net trained on one example stores it as an attractor, across activations, widths and
    depths. Per cell of nonlinear n_train = 1 autoencoders, and pooled: is the share of networks
    storing their example (attractor_frac >= 0.5) above 1/2?"""
    one = _nonlinear_autoencoders(trials)
    one = one[one.n_train == 1]
    if one.empty:
        return _not_covered("C4", "no nonlinear n_train = 1 trials in this grid")
    stores = one.attractor_frac.astype(float) >= 0.5
    part = Part("", shares(one, stores), what="share of networks storing their example")
    return verdict("C4", [part], one)


def c5_sequence(trials: pd.DataFrame) -> Verdict:
    """C5: a net trained on a cycle stores it, and the cycle is stable iff rho(J(x_(n-1)) ... J(x_0)) < 1.
    Probed through f^n, a network's cycle is stable when every cycle image is an attractor of f^n
    (attractor_frac = 1), and stored when it is stable and noisy starts return to it
    (retrieval_any_frac >= 0.5). Two parts: stored, per cell and pooled, the share of networks
    storing their cycle is above 1/2; only if, unstable cycles are reached less often than stable
    ones (a comparison of retrieval_any_frac between the networks of tested cells, untestable with
    fewer than MIN_SEEDS of either)."""
    seq = trials[trials["task"] == "sequence"] if "task" in trials else trials.iloc[:0]
    if seq.empty:
        return _not_covered("C5", "no task = sequence trials in this grid")
    stable = seq.attractor_frac.astype(float) == 1
    stored = stable & (seq.retrieval_any_frac.astype(float) >= 0.5)
    ev = evidence.tested_rows(seq)
    a, b = (ev[stable[ev.index] == s].retrieval_any_frac.to_numpy(float) for s in (True, False))
    if min(len(a), len(b)) < MIN_SEEDS:
        only_if = [Group("", UNTESTABLE, f"untestable: {len(a)} stable and {len(b)} unstable cycles in tested cells "
                                         f"(each side needs {MIN_SEEDS})")]
    else:
        pair = stats.Pair(a, b)
        t = stats.compare([pair])
        only_if = [Group("", t.outcome, f"retrieval of stable {_pct(a.mean())} vs unstable {_pct(b.mean())}, "
                                        f"difference {t.text()}{_how(pair)} -> {t.outcome}", pair=pair)]
    parts = [Part("stored", shares(seq, stored), what="share of networks whose cycle is stable and reached"),
             Part("only if", only_if, what="difference stable - unstable")]
    return verdict("C5", parts, seq)


def c6_width(trials: pd.DataFrame) -> Verdict:
    """C6: more width makes the map more contractive around its examples, so more are stored (C2 is the
    depth half). Nonlinear autoencoders, n_train > 1. Per group of cells differing only in width
    (depth, arch, activation... kept apart): the mean attractor fraction at the widest tested width
    against the narrowest (``along``); pooled over the groups. A width that fails to fit its
    examples is excluded, not read as less contractive."""
    several = _nonlinear_autoencoders(trials)
    several = several[several.n_train > 1]
    if several.width.nunique() < 2:
        return _not_covered("C6", "needs nonlinear trials on several examples at two or more widths")
    part = Part("", along(several, "width", "attractor_frac"), what="difference widest - narrowest")
    return verdict("C6", [part], several)


CLAIMS = (c1_span, c2_depth, c3_conv, c3_linear, c4_single, c5_sequence, c6_width)


def verdicts(trials: pd.DataFrame, criterion: maps.Criterion = maps.DEFAULT) -> list[Verdict]:
    """Every claim's verdict for one trials table (claims the grid cannot speak to: 'not covered'). A
    table where nothing interpolated gets 'insufficient evidence', never an error."""
    return [fn(trials, criterion) if fn is c3_conv else fn(trials) for fn in CLAIMS]
