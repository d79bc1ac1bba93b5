"""Adaptive placement of trials: locate the onset depth with fewer trials than a dense grid.

The onset depth is the smallest depth whose memorization rate (over seeds) reaches a threshold.
If the rate rises with depth, a coarse pass over every ``coarse``-th candidate depth brackets the
onset between the last depth below the threshold and the first at or above it; bisection inside
the bracket then finds it. For D candidate depths this evaluates about D / coarse + log2(coarse)
depths instead of D.

``bisect_onset`` takes any ``rate_at(depth)``: a synthetic function in the tests, or, in
``refine_grid`` (``memsweep refine``), training a grid point's seeds at that depth.
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


def refine_grid(configs: list, depths: list[int], out: str, rate_of: Callable[[list[dict]], float],
                threshold: float = 0.5, coarse: int = 4, device: str = "cpu",
                log: Callable[[str], None] = print) -> dict:
    """For each group of ``configs`` (same fields but depth and seed), find the onset depth among
    ``depths`` by ``bisect_onset``, training the group's seeds only at the depths it asks for.

    ``rate_of(rows)`` turns the trial rows of one depth (its seeds) into a memorization rate. Rows
    go to ``out`` like a sweep's (``trial.run_and_write``: a depth already trained there is not trained again).
    Returns group -> Onset, a group named by its config at depth 1 and seed 0."""
    from .results import read_trial_row
    from .trial import run_and_write

    groups: dict = {}  # the group's config at depth 1, seed 0 -> its seeds' configs
    for cfg in configs:
        seeds = groups.setdefault(cfg.replace(depth=1, seed=0), [])
        if all(c.seed != cfg.seed for c in seeds):
            seeds.append(cfg)
    found = {}
    for key, seeds in groups.items():
        def rate_at(depth: int, seeds=seeds) -> float:
            rows = run_and_write([c.replace(depth=depth) for c in seeds], out, device)
            rows = [r if r is not None else read_trial_row(out, c.replace(depth=depth).trial_id)
                    for r, c in zip(rows, seeds)]
            return rate_of(rows)

        onset = bisect_onset(rate_at, depths, threshold, coarse)
        found[key] = onset
        label = f"arch={key.arch}, width={key.width}, activation={key.activation}, n_train={key.n_train}"
        log(f"[memsweep] {label}: onset depth {onset.depth if onset.depth is not None else 'not reached'}, "
            f"trained {onset.n_evaluations} of {len(depths)} depths ({sorted(onset.evaluated)})")
    return found
