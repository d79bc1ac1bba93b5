"""The progress line's ETA on simulated sweeps: when its clock starts matters more than anything else.

A simulated sweep like the local preset's: 20 Tune trials of 3 configs each (the expensive first, as
memsweep orders them), 2 running at once, each config taking 0.1x its estimated cost times noise of
up to 2x either way, in sequence within its Tune trial, after a start-up of 15 s (Ray, the first
workers' imports). At each finished config, ``progress.eta_seconds`` is computed with its clock
started at the sweep's start (as before) and at the first trial's start (as now), and compared with
the time really left.

    python benchmarks/eta_sim.py
"""
from __future__ import annotations

import random
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from study.sweep.progress import eta_seconds  # noqa: E402


def simulate(seed: int, from_first_trial: bool, startup: float = 15.0, groups: int = 20, per: int = 3,
             slots: int = 2) -> list[tuple[float, float]]:
    """(time really left, ETA) at each finished config but the last."""
    rng = random.Random(seed)
    costs = sorted((rng.uniform(20, 300) for _ in range(groups)), reverse=True)
    free_at, finished = [startup] * slots, []  # (when, estimated cost credited)
    for cost in costs:
        slot = min(range(slots), key=free_at.__getitem__)
        t = free_at[slot]
        for _ in range(per):
            t += 0.1 * cost / per * rng.uniform(0.5, 2.0)
            finished.append((t, cost / per))
        free_at[slot] = t
    finished.sort()
    end, total, done, rows = finished[-1][0], sum(costs), 0.0, []
    for when, credit in finished[:-1]:
        done += credit
        rows.append((end - when, eta_seconds(when - (startup if from_first_trial else 0.0), done, total)))
    return rows


def summary(seed: int, from_first_trial: bool) -> dict[str, float]:
    """The first ETA over the time left, the range of that ratio while more than a fifth of the sweep
    is left, and the largest change of the ETA between two finished configs."""
    rows = simulate(seed, from_first_trial)
    span = rows[0][0]
    early = [eta / left for left, eta in rows if left > 0.2 * span]
    swing = max(max(a / b, b / a) for (_, a), (_, b) in zip(rows, rows[1:]))
    return {"first": rows[0][1] / rows[0][0], "low": min(early), "high": max(early), "swing": swing}


if __name__ == "__main__":
    print("| seed | clock from | first ETA / time left | ETA / time left (first 80%) | largest step |")
    print("|---|---|---|---|---|")
    for seed in range(4):
        for first in (False, True):
            s = summary(seed, first)
            print(f"| {seed} | {'first trial' if first else 'sweep start'} | {s['first']:.2f} | "
                  f"{s['low']:.2f}-{s['high']:.2f} | {s['swing']:.1f}x |")
