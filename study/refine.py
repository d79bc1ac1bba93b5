"""Adaptive placement of trials: locate the onset depth with fewer trials than a dense grid.

The onset depth is the smallest depth whose memorization rate (over seeds) reaches a threshold.
If the rate rises with depth, a coarse pass over every ``coarse``-th candidate depth brackets the
onset between the last depth below the threshold and the first at or above it; bisection inside
the bracket then finds it. For D candidate depths this evaluates about D / coarse + log2(coarse)
depths instead of D.

``rate_at(depth)`` is whatever measures the rate at a depth: training the seeds there (a sweep),
or a synthetic function in the tests. Nothing here knows about training.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable


@dataclass
class Onset:
    depth: int | None                 # None: not reached at any candidate depth
    evaluated: dict[int, float] = field(default_factory=dict)  # depth -> rate, in evaluation order

    @property
    def n_evaluations(self) -> int:
        return len(self.evaluated)


def bisect_onset(rate_at: Callable[[int], float], depths: list[int], threshold: float = 0.5,
                 coarse: int = 4) -> Onset:
    """Smallest depth in ``depths`` with rate_at(depth) >= threshold, assuming the rate rises with
    depth. Coarse pass over every ``coarse``-th depth (and the largest), then bisection inside the
    bracket over the candidates left between its ends."""
    depths = sorted(set(depths))
    if not depths:
        raise ValueError("no candidate depths")
    seen: dict[int, float] = {}

    def rate(i: int) -> float:
        d = depths[i]
        if d not in seen:
            seen[d] = float(rate_at(d))
        return seen[d]

    probe = sorted(set(range(0, len(depths), max(coarse, 1))) | {len(depths) - 1})
    hi = next((i for i in probe if rate(i) >= threshold), None)
    if hi is None:
        return Onset(None, seen)
    lo = max((i for i in probe if i < hi), default=-1)  # rate(lo) < threshold; -1: below the first
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if rate(mid) >= threshold:
            hi = mid
        else:
            lo = mid
    return Onset(depths[hi], seen)
