"""What counts as memorizing, as pure functions of recorded numbers: shared by the probes, which
measure, and the analysis, which reads rows back. Elementwise on scalars, numpy arrays and pandas
Series alike (NaN, i.e. not measured, gives False), and free of torch, so analysis runs without it.
"""
from __future__ import annotations


def keeps_span(near_one, near_one_in_span, span_dim):
    """A linear net's operator A keeps exactly span(X): its eigenvalues ~1 number rank(X), and their
    eigenspace lies in span(X): near_one = near_one_in_span = span_dim."""
    return (near_one == near_one_in_span) & (near_one_in_span == span_dim)


def acts_like_projection(near_one, near_one_in_span, span_dim, rest_radius):
    """A linear net memorizes: A behaves like P_X, keeping exactly span(X) (``keeps_span``) and
    contracting everything else (rest_radius < 1), so x <- Ax converges onto span(X)."""
    return keeps_span(near_one, near_one_in_span, span_dim) & (rest_radius < 1)


def first_reaching(rates, threshold: float):
    """The onset rule: the index of the first rate (in order of depth) at or above ``threshold``;
    None if none is. NaN (a depth not tested) never reaches."""
    return next((i for i, r in enumerate(rates) if r >= threshold), None)


def falls_back(rates, threshold: float) -> bool:
    """The rate is not monotone in depth: some rate reaches ``threshold`` and a later (deeper) one
    falls below it. NaN entries (depths not tested) are skipped. Where this holds, the first depth
    reaching the threshold is no clean onset."""
    tested = [r for r in rates if r == r]
    first = first_reaching(tested, threshold)
    return first is not None and any(r < threshold for r in tested[first:])
