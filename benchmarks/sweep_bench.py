"""The sweep engine's costs, measured side by side in one run on one preset.

1. Plain parallel pool, no Ray: one 1-thread process per CPU taking the sweep's Tune trials (the
   same groups of configs, in the same most-expensive-first order) and running each through
   ``trial.run_and_write``, exactly as the trainable does, batching included.
2. The same grid as a sweep (``run_sweep``: Ray started locally, 1 CPU and 1 thread per Tune
   trial), wall time from the call to its return, Ray's start-up and shut-down included, the final
   compaction left out (``compact=False``: the pool does not compact either).
3. The same sweep with ``--no-batch``: every config trains alone.

Ray's own cost = (2) / (1). Batching's gain = (2) / (3), and every row of (2) is checked against
(3): statuses, steps, and the headline metrics of trials that interpolated both ways (float
rounding differs between one batched kernel and K small ones, and a long trajectory can carry it
across loss_tol a few steps earlier or later).

    python benchmarks/sweep_bench.py [--preset local] [--out benchmarks/sweep_bench.md]
"""
from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import shutil
import tempfile
import time

import pandas as pd
import torch

from study.sweep.cost import estimated_costs
from study.sweep.grid import tune_trials
from study.sweep.presets import PRESETS
from study.store.reader import read_trials
from study.sweep.driver import run_sweep
from study.sweep.launch import Launch
from study.trial.run import run_and_write

def _pool_init() -> None:
    torch.set_num_threads(1)


def _one(job) -> None:
    group, out = job
    run_and_write(group, out)


HEADLINE = ("attractor_frac", "spectral_radius_median", "retrieval_same_frac")


def compare(batched: pd.DataFrame, alone: pd.DataFrame) -> list[str]:
    """How the rows of the batched sweep differ from those of configs trained alone: statuses, steps,
    and the headline metrics of the trials that interpolated both ways."""
    a, b = batched.set_index("trial_id").sort_index(), alone.set_index("trial_id").sort_index()
    if list(a.index) != list(b.index):
        return ["the two sweeps hold different trials"]
    both = (a.status == "ok") & (b.status == "ok")
    steps = (a.steps[both] - b.steps[both]).abs() / b.steps[both].clip(lower=1)
    lines = [f"- statuses equal in {int((a.status == b.status).sum())} of {len(a)} trials"
             + "".join(f"; {tid}: {x} batched, {y} alone" for tid, x, y in zip(a.index, a.status, b.status) if x != y),
             f"- {int(both.sum())} trials interpolated (status ok) both ways; their steps equal in "
             f"{int((steps == 0).sum())}, within 1% in {int((steps <= 0.01).sum())}, at most {100 * steps.max():.1f}% apart"]
    for col in HEADLINE:
        x, y = a[col][both].astype(float), b[col][both].astype(float)
        diff = (x - y).abs()
        lines.append(f"- {col} of those: equal in {int((diff <= 1e-12).sum())}, largest difference {diff.max():.3g}"
                     f" (median {diff.median():.3g})")
    return lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preset", default="local")
    ap.add_argument("--out", help="also write the tables to this Markdown file")
    args = ap.parse_args()
    grid = PRESETS[args.preset]
    configs = grid.configs()
    groups = tune_trials(grid, configs, estimated_costs(configs))
    workers = min(os.cpu_count() or 1, len(groups))
    tmp = tempfile.mkdtemp(prefix="memsweep-bench-")
    try:
        start = time.perf_counter()
        with mp.get_context("spawn").Pool(workers, initializer=_pool_init) as pool:
            list(pool.imap_unordered(_one, [(g, os.path.join(tmp, "pool")) for g in groups]))
        pool_wall = time.perf_counter() - start
        walls, tables, lines = {}, {}, {}
        for name, batch in (("batched", True), ("alone", False)):
            out = os.path.join(tmp, name)
            start = time.perf_counter()
            summary = run_sweep(grid, Launch(out=out, batch=batch), preset=args.preset, compact=False)
            walls[name] = time.perf_counter() - start
            tables[name], lines[name] = read_trials(out), summary.line()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    text = "\n".join([
        f"## Preset `{args.preset}`: {len(configs)} configs in {len(groups)} Tune trials, {workers} workers", "",
        "| plain 2-process pool, no Ray (s) | Ray Tune sweep (s) | sweep / pool | sweep, every config alone (s) "
        "| batched / alone |",
        "|---|---|---|---|---|",
        f"| {pool_wall:.1f} | {walls['batched']:.1f} | {walls['batched'] / pool_wall:.3f} | {walls['alone']:.1f} "
        f"| {walls['batched'] / walls['alone']:.3f} |", "",
        "Rows of the batched sweep against the sweep of configs alone:",
        *compare(tables["batched"], tables["alone"]),
        "",
        f"Batched sweep: {lines['batched']}",
        f"Sweep of configs alone: {lines['alone']}",
    ])
    print(text)
    if args.out:
        with open(args.out, "w") as fh:
            fh.write(f"Written by `python benchmarks/sweep_bench.py --preset {args.preset}` "
                     f"on a {os.cpu_count()}-CPU machine.\n\n{text}\n")


if __name__ == "__main__":
    main()
