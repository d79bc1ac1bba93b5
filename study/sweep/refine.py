"""Adaptive placement of trials: locate the onset depth with fewer trials than a dense grid.

The onset depth is the smallest depth whose memorization rate reaches a threshold: the rate over
a grid point's usable seeds (interpolated and probed), a depth with fewer than ``rules.MIN_SEEDS``
usable seeds being untested, as everywhere in the analysis (``rules.onsets`` is the one rule).
If the rate rises with depth, a coarse pass over every ``coarse``-th candidate depth (and the
largest) brackets the onset between the last coarse depth below the threshold and the first at
or above it; bisection inside the bracket then finds it. For D candidate depths this evaluates
about D / coarse + 1 + log2(coarse) depths instead of D.

The search is a pure function of the rates seen so far (``search_step``): given them, it names
the depths to evaluate next, or its answer. So it runs in rounds, each round one batch of
trials, and it resumes from whatever rows a results folder already holds.

The coarse pass is one round, all of its depths at once; it is also the check that the rate
rises with depth. Where an evaluated depth reaches the threshold and a deeper one does not, the
rate is not monotone over seeds: the search stops and says so, with no onset (bisection assumes
a rise, and would report a clean onset either way).

``bisect_onset`` runs the search on any ``rate_at(depth)`` (a synthetic function in the tests);
``refine`` (``memsweep refine``) runs it for every grid point of a grid, each round of every
group as one batch of Ray Tune trials through the sweep engine (``engine.Engine``), its rows in
the same Parquet tables as a sweep's.
"""
from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from typing import Callable

from ..config import DEPTH, NAMED, REPLICATE
from ..rules import (BOUND, MIN_SEEDS, NO_EVIDENCE, NOT_MONOTONE, NOT_REACHED, REACHED, THRESHOLD, cell_rate, onset,
                    usable)

INCOMPLETE = "incomplete"  # a round left rows missing; every other status is the onset rule's (``rules.onsets``)


@dataclass
class Onset:
    depth: int | None                 # the onset depth where status is REACHED or BOUND, else None
    evaluated: dict[int, float] = field(default_factory=dict)  # depth -> rate (NaN: too few usable seeds)
    status: str = REACHED

    @property
    def n_evaluations(self) -> int:
        return len(self.evaluated)

    def describe(self) -> str:
        rates = ", ".join(f"{d}: " + ("too few" if r != r else f"{r:.2f}") for d, r in sorted(self.evaluated.items()))
        head = {REACHED: f"onset depth {self.depth}",
                BOUND: f"onset depth at most {self.depth} (a shallower depth has fewer than {MIN_SEEDS} usable seeds)",
                NOT_REACHED: "onset depth not reached", NOT_MONOTONE: "NOT MONOTONE in depth, no onset reported",
                NO_EVIDENCE: f"no evidence (no depth has {MIN_SEEDS} usable seeds)",
                INCOMPLETE: "incomplete (a depth's rows are missing)"}[self.status]
        return f"{head}; rate by depth {{{rates}}}"


def coarse_depths(depths: list[int], coarse: int) -> list[int]:
    """Every ``coarse``-th candidate depth from the smallest, and the largest."""
    return [depths[i] for i in sorted(set(range(0, len(depths), max(coarse, 1))) | {len(depths) - 1})]


def search_step(depths: list[int], seen: dict[int, float], threshold: float = THRESHOLD,
                coarse: int = 4) -> list[int] | Onset:
    """The depths to evaluate next (the whole coarse pass at once, then one bisection point), or the
    answer when ``seen`` (depth -> rate) settles it. Pure: the same rates give the same step."""
    depths = sorted(set(depths))
    if not depths:
        raise ValueError("no candidate depths")
    seen = {d: r for d, r in seen.items() if d in depths}
    probe = coarse_depths(depths, coarse)
    missing = [d for d in probe if d not in seen]
    if missing:
        return missing
    tried = sorted(seen)
    first, status = onset([seen[d] for d in tried], threshold)
    if first is None or status == NOT_MONOTONE:
        return Onset(None, seen, status)
    hi = depths.index(tried[first])  # the shallowest depth seen at the threshold; every one seen below is under it
    lo = max((i for i, d in enumerate(depths[:hi]) if d in seen), default=-1)  # -1: below the first
    if hi - lo > 1:
        return [depths[(lo + hi) // 2]]
    return Onset(depths[hi], seen, status)


def bisect_onset(rate_at: Callable[[int], float], depths: list[int], threshold: float = THRESHOLD,
                 coarse: int = 4) -> Onset:
    """``search_step`` run to its answer, calling ``rate_at(depth)`` once per depth it asks for."""
    seen: dict[int, float] = {}
    while isinstance(step := search_step(depths, seen, threshold, coarse), list):
        seen.update({d: float(rate_at(d)) for d in step})
    return step


# --- a grid's onsets, on Ray --------------------------------------------------------------------------

def search_groups(configs: list) -> dict:
    """The grid's configs by search group: same fields but depth and seed. Key: the group's config at
    depth 1, seed 0; value: its seeds' configs (at whatever depth they were listed)."""
    groups: dict = {}
    for cfg in configs:
        seeds = groups.setdefault(cfg.replace(**{DEPTH: 1, REPLICATE: 0}), [])
        if all(c.seed != cfg.seed for c in seeds):
            seeds.append(cfg)
    return groups


def label_fields(keys) -> list[str]:
    """The fields that name a group in the output: ``config.NAMED``, and any other field that differs
    between the groups' ``keys``."""
    rows = [k.to_row() for k in keys]
    return [*NAMED, *(f for f in rows[0] if f not in NAMED and len({str(r[f]) for r in rows}) > 1)] if rows else []


def onset_records(found: dict) -> list[dict]:
    """sweep.json's record of each group's onset (group key -> ``Onset``): the fields that tell the
    groups apart (``label_fields``: two groups differing only in lr are two records), its status,
    onset depth and the rate at each depth evaluated."""
    fields = label_fields(list(found))
    return [{**{k: v for k, v in key.to_row().items() if k in fields}, "status": o.status, "onset_depth": o.depth,
             "rates": {str(d): r for d, r in sorted(o.evaluated.items())}} for key, o in found.items()]


def group_label(key, fields) -> str:
    """'arch=fc, width=256, n_train=10, image_size=25'."""
    row = key.to_row()
    return ", ".join(f"{f}={row[f]}" for f in fields)


def rates_seen(groups: dict, depths: list[int], rows_by_id: dict, memorized: Callable) -> dict:
    """group -> {depth: rate} for every depth whose seeds all have a row: the evidence rule's rate,
    over the usable seeds only (``rules.cell_rate``: NaN when fewer than MIN_SEEDS are usable)."""
    seen: dict = {}
    for key, seeds in groups.items():
        seen[key] = {}
        for d in depths:
            rows = [rows_by_id.get(c.replace(depth=d).trial_id) for c in seeds]
            if all(r is not None for r in rows):
                ok = usable([r["status"] for r in rows], [r["attractor_frac"] for r in rows])
                seen[key][d] = float(cell_rate((memorized(rows).to_numpy() & ok).sum(), ok.sum()))
    return seen


def refine(grid, depths: list[int], engine, memorized: Callable, threshold: float = THRESHOLD, coarse: int = 4,
           log: Callable[[str], None] = lambda s: print(s, file=sys.stderr)) -> dict:
    """Find the onset depth of every search group of ``grid`` (its depth axis replaced by ``depths``):
    rounds of ``search_step`` over all groups at once, each round's configs run by ``engine.run`` (a
    batch of Ray Tune trials; rows already in the results folder are not trained again, so a killed
    refine resumes). ``memorized(rows)`` -> a boolean Series per trial row.
    Returns group -> Onset (status INCOMPLETE where a round left a row missing)."""
    from ..store.reader import read_trials
    groups = search_groups(grid.configs())
    fields = label_fields(groups)
    found: dict = {}
    asked: dict = {}  # group -> the depths the last round ran for it
    for round_no in range(1, 2 * len(depths) + 2):  # each round settles or narrows every group
        table = read_trials(engine.out)
        rows_by_id = {r["trial_id"]: r for r in table.to_dict("records")} if len(table) else {}
        seen = rates_seen(groups, depths, rows_by_id, lambda rows: memorized(_frame(rows)))
        todo = []
        for key, seeds in groups.items():
            if key in found:
                continue
            step = search_step(depths, seen[key], threshold, coarse)
            if not isinstance(step, Onset) and set(step) & asked.get(key, set()):
                step = Onset(None, seen[key], INCOMPLETE)  # the last round ran it, and rows are missing
            if isinstance(step, Onset):
                found[key] = step
                log(f"[memsweep] {group_label(key, fields)}: {step.describe()}")
            else:
                asked[key] = set(step)
                todo += [c.replace(depth=d) for d in step for c in seeds]
        if not todo:
            return found
        there = sum(c.trial_id in rows_by_id for c in todo)
        log(f"[memsweep] refine round {round_no}: {len(todo)} configs for {len(groups) - len(found)} groups "
            f"at depths {sorted({c.depth for c in todo})}" + (f" ({there} already there)" if there else ""))
        engine.run(todo)
        _fault_point(round_no)
    return found


def _fault_point(round_no: int) -> None:
    """For tests only: MEMSWEEP_FAULT_STOP_ROUND=K kills the driver right after round K, as a lost
    driver would, so that a test resumes a refine from a known round."""
    if os.environ.get("MEMSWEEP_FAULT_STOP_ROUND") == str(round_no):
        os._exit(17)


def _frame(rows: list[dict]):
    import pandas as pd
    return pd.DataFrame(rows)
