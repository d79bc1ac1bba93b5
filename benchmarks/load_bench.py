"""Reading a results folder of many one-row parts: memsweep's loader against Polars, side by side.

Builds a folder of N one-row ``trials/`` parts (default 2,835, the size of paper-fc) by writing the
smoke preset's rows again under new ids with ``results.write_part``, as a sweep would, then times
``analysis.load.load_table`` and ``polars.read_parquet`` on the same files, alternating, and reports
the best of ``--repeats`` for each and their ratio.

    python benchmarks/load_bench.py [--parts 2835] [--repeats 3] [--out benchmarks/load_bench.md]
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time

import pandas as pd


def build(folder: str, n: int) -> None:
    from study import results
    from study.grid import PRESETS
    from study.sweep import run_pack
    seed_dir = os.path.join(folder, "seed")
    rows = [r for r in run_pack(PRESETS["smoke"].configs()[:1], seed_dir)]
    out = os.path.join(folder, "many")
    for i in range(n):
        results.write_part(out, "trials", f"t{i:05d}", [dict(rows[0], trial_id=f"t{i:05d}", seed=i)])


def timed(fn) -> tuple[float, int]:
    t0 = time.perf_counter()
    rows = len(fn())
    return time.perf_counter() - t0, rows


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--parts", type=int, default=2835)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    import polars as pl

    from analysis.load import load_table
    with tempfile.TemporaryDirectory() as tmp:
        build(tmp, args.parts)
        folder = os.path.join(tmp, "many")
        ours, theirs = [], []
        for _ in range(args.repeats):
            ours.append(timed(lambda: load_table(folder, "trials")))
            theirs.append(timed(lambda: pl.read_parquet(os.path.join(folder, "trials", "*.parquet"))))
        assert {r for _, r in ours} == {r for _, r in theirs} == {args.parts}
    best_ours, best_theirs = min(t for t, _ in ours), min(t for t, _ in theirs)
    table = (f"| reader | best of {args.repeats}, s | ratio to Polars |\n|---|---|---|\n"
             f"| `analysis.load.load_table` | {best_ours:.2f} | {best_ours / best_theirs:.2f} |\n"
             f"| `polars.read_parquet` | {best_theirs:.2f} | 1.00 |\n")
    text = (f"# Reading {args.parts} one-row `trials/` parts, local disk\n\n"
            f"`python benchmarks/load_bench.py --parts {args.parts}` on {os.cpu_count()} CPUs, pandas "
            f"{pd.__version__}, polars {pl.__version__}.\n\n{table}")
    print(text)
    if args.out:
        with open(args.out, "w") as fh:
            fh.write(text)


if __name__ == "__main__":
    main()
