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
