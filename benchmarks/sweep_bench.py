"""Ray Tune's cost over a plain loop, measured side by side in one run.

1. Plain loop: every config of the preset, one after another in this process, 1 thread.
2. Plain parallel loop, no Ray: a multiprocessing pool of one 1-thread process per CPU taking
   configs expensive-first. It shows what two busy cores cost each other (shared caches, memory
   bandwidth, clock) before any scheduler is involved.
3. The same grid as a sweep (``run_sweep``: Ray started locally, 1 CPU and 1 thread per trial),
   wall time from the call to its return, Ray's start-up and shut-down included.

Ratio = sweep wall time / (plain-loop time / parallel workers), workers = min(CPUs, Tune trials).
1.0 would be perfect parallel speed-up with zero scheduling overhead.

    python benchmarks/sweep_bench.py [--preset local] [--out benchmarks/sweep_bench.md]
"""
from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import shutil
import tempfile
import time

import torch

from study.grid import PRESETS, estimated_seconds
from study.sweep import Launch, run_sweep
from study.trial import run_trial


def _pool_init() -> None:
    torch.set_num_threads(1)


def _one(cfg) -> float:
    return run_trial(cfg).trial["train_seconds"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preset", default="local")
    ap.add_argument("--out", help="also write the table to this Markdown file")
    args = ap.parse_args()
    grid = PRESETS[args.preset]
    configs = grid.configs()

    torch.set_num_threads(1)
    run_trial(configs[0].replace(max_steps=10))  # warm-up, as a reused Ray worker would be
    start = time.perf_counter()
    for cfg in configs:
        run_trial(cfg)
    plain = time.perf_counter() - start

    workers = min(os.cpu_count() or 1, len(configs))
    start = time.perf_counter()
    by_cost = sorted(configs, key=estimated_seconds, reverse=True)
    with mp.get_context("spawn").Pool(workers, initializer=_pool_init) as pool:
        list(pool.imap_unordered(_one, by_cost))
    pool_wall = time.perf_counter() - start

    tmp = tempfile.mkdtemp(prefix="memsweep-bench-")
    try:
        start = time.perf_counter()
        summary = run_sweep(grid, Launch(out=os.path.join(tmp, "out")), preset=args.preset)
        sweep = time.perf_counter() - start
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    packs = len(configs) // len(grid.axes.get(grid.pack, [0])) if grid.pack else len(configs)
    workers = min(os.cpu_count() or 1, packs)
    ideal = plain / workers
    text = "\n".join([
        f"## Sweep vs plain loop: preset `{args.preset}`, {len(configs)} trials in {packs} Tune trials", "",
        "| plain loop, 1 process (s) | workers | ideal = plain / workers (s) | plain parallel pool, no Ray (s) "
        "| Ray Tune sweep (s) | pool / ideal | sweep / ideal | sweep / pool |",
        "|---|---|---|---|---|---|---|---|",
        f"| {plain:.1f} | {workers} | {ideal:.1f} | {pool_wall:.1f} | {sweep:.1f} | {pool_wall / ideal:.3f} "
        f"| {sweep / ideal:.3f} | {sweep / pool_wall:.3f} |", "",
        f"Sweep summary: {summary.line()}",
    ])
    print(text)
    if args.out:
        with open(args.out, "w") as fh:
            fh.write(f"Written by `python benchmarks/sweep_bench.py --preset {args.preset}` "
                     f"on a {os.cpu_count()}-CPU machine.\n\n{text}\n")


if __name__ == "__main__":
    main()
