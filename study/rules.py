"""What counts as memorizing, and what counts as evidence of it, as pure functions of recorded
numbers: shared by the probes, which measure, ``refine``, which searches, and the analysis, which
reads rows back. Elementwise on scalars, numpy arrays and pandas Series alike (NaN, i.e. not
measured, gives False), and free of torch, so analysis runs without it.

The evidence settings below are defined here once; every table, figure, verdict and search reads
them from here.
"""
from __future__ import annotations

import numpy as np

from .registry import ACTIVATIONS

# How a trial ended: the ``status`` column of its row. Only an ``ok`` trial interpolated.
OK, NOT_CONVERGED, DIVERGED, ERROR = "ok", "not_converged", "diverged", "error"
STATUSES = (OK, NOT_CONVERGED, DIVERGED, ERROR)
STATUS_MEANING = {  # each status in words, defined here once (a report's status table shows these)
    OK: "the training loss reached loss_tol: the net interpolates its training examples",
    NOT_CONVERGED: "max_steps ran out before the loss reached loss_tol: the net did not interpolate",
    DIVERGED: "the loss blew up during training (train.DIVERGE_FACTOR): nothing to probe",
    ERROR: "the trial raised an exception (its row's error column says which): a fault of the run, run it again",
}

THRESHOLD = 0.5   # a grid point memorizes at a depth when at least this share of its usable seeds do
MIN_SEEDS = 3     # usable seeds a cell needs before its rate is read at all; fewer: "too few", untested
ALPHA = 0.05      # one-sided error rate of every test (a "yes" and a "no" each)
LEVEL = 1 - 2 * ALPHA  # two-sided level of every interval: 0.9, one ALPHA in each tail
CAPPED_WARN = 0.05  # a report warns when more than this share of the probe starts ended still moving

# The census of where a start's iteration ended (``probes.census``): exactly one class per start, and
# the column of each class's share in the retrieval table, in the same order; per row they sum to 1
CENSUS = ("memory", "spurious point", "cycle", "diverged", "moving")
CENSUS_COLUMNS = ("any_frac", "spurious_point_frac", "cycle_frac", "diverged_frac", "moving_frac")


def usable(status, attractor_frac):
    """A trial is evidence when it interpolated (status ok: the training loss reached loss_tol) and its
    probes ran (attractor_frac recorded). A net that did not fit says nothing about memorization."""
    return (np.asarray(status, dtype=object) == OK) & ~np.isnan(np.asarray(attractor_frac, dtype=float))


def cell_rate(k, n):
    """The memorization rate of a cell, k memorized of its n usable seeds; NaN (untested) when
    n < MIN_SEEDS, so that a cell short of seeds is never read as if it had the minimum."""
    k, n = np.asarray(k, dtype=float), np.asarray(n, dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n >= MIN_SEEDS, k / n, np.nan)


def is_linear(activation, bias):
    """A net that is a linear map: an activation the registry marks linear (``identity``) and no bias.
    Elementwise, like the rules here."""
    linear = [name for name, a in ACTIVATIONS.items() if a.linear]
    return np.isin(np.asarray(activation, dtype=object), linear) & ~np.asarray(bias, dtype=bool)


def keeps_span(near_one, near_one_in_span, span_dim):
    """A linear net's operator A keeps exactly span(X): its eigenvalues ~1 number rank(X), and their
    eigenspace lies in span(X): near_one = near_one_in_span = span_dim."""
    return (near_one == near_one_in_span) & (near_one_in_span == span_dim)


def acts_like_projection(near_one, near_one_in_span, span_dim, rest_radius):
    """A linear net memorizes: A behaves like P_X, keeping exactly span(X) (``keeps_span``) and
    contracting everything else (rest_radius < 1), so x <- Ax converges onto span(X)."""
    return keeps_span(near_one, near_one_in_span, span_dim) & (rest_radius < 1)


# --- the onset of a rate curve over depth -------------------------------------------------------------
REACHED, BOUND, NOT_MONOTONE, NOT_REACHED, NO_EVIDENCE = "reached", "at most", "not monotone", "not reached", \
    "no evidence"
ONSET_MEANING = {  # the status of an onset (``onsets``), in words
    REACHED: "every tested depth from the onset on stays >= the threshold, none before it untested",
    BOUND: "as reached, but the trained depth just before it is untested: the onset may lie there",
    NOT_MONOTONE: "a deeper tested depth falls back below the threshold: no clean onset",
    NOT_REACHED: "no tested depth reaches the threshold",
    NO_EVIDENCE: "no depth is tested",
}


def onsets(rates, threshold: float = THRESHOLD, trained=None) -> tuple[np.ndarray, np.ndarray]:
    """The onset rule, over the last axis of ``rates`` (..., D): the rates at the depths trained, in
    order of depth, NaN where a depth is untested (trained, but fewer than MIN_SEEDS usable seeds).
    ``trained`` (boolean, like ``rates``) marks the depths trained; others are absent, not untested.

    onset index = the first tested depth whose rate is >= ``threshold`` (-1: none), and a status,
    ``ONSET_MEANING``: reached, at most, not monotone, not reached, no evidence.
    -> (index array, status array), of the shape of ``rates`` without its last axis."""
    r = np.asarray(rates, dtype=float)
    tested = ~np.isnan(r)
    with np.errstate(invalid="ignore"):
        reach = tested & (r >= threshold)
    hit = reach.any(axis=-1)
    first = np.where(hit, reach.argmax(axis=-1), -1)
    depth_no = np.arange(r.shape[-1])
    falls = hit & (tested & ~reach & (depth_no >= first[..., None])).any(axis=-1)
    trained = np.ones(r.shape, dtype=bool) if trained is None else np.asarray(trained, dtype=bool)
    before = np.where(trained & (depth_no < first[..., None]), depth_no, -1).max(axis=-1, initial=-1)
    gap = hit & (before >= 0) & ~np.take_along_axis(tested, np.maximum(before, 0)[..., None], axis=-1)[..., 0]
    status = np.select([~tested.any(axis=-1), ~hit, falls, gap], [NO_EVIDENCE, NOT_REACHED, NOT_MONOTONE, BOUND],
                       REACHED)
    return first, status


def onset(rates, threshold: float = THRESHOLD) -> tuple[int | None, str]:
    """``onsets`` of one rate curve (a list): (index of the onset depth or None, status)."""
    if not len(rates):
        return None, NO_EVIDENCE
    first, status = onsets(np.asarray(rates, dtype=float)[None, :], threshold)
    return (int(first[0]) if first[0] >= 0 else None), str(status[0])
