"""Reading a results folder of many one-row parts: memsweep's loader against Polars, side by side,
before and after compaction.

Builds a folder of N one-row ``trials/`` parts (default 2,835, the size of paper-fc) by writing the
smoke preset's rows again under new ids with ``parts.write_part``, as a sweep would, then times
``analysis.load.load_table`` and ``polars.read_parquet`` on the same files, alternating; then runs
``study.store.compact.compact`` (what a sweep does at its end) and times both readers again. Reports the
best of ``--repeats`` for each, their ratio to Polars on the parts, and the compaction's time.

    python benchmarks/load_bench.py [--parts 2835] [--repeats 3] [--out benchmarks/load_bench.md]
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time

import pandas as pd


def build(folder: str, n: int) -> None:
    from study.store import parts
    from study.sweep.presets import PRESETS
    from study.trial.run import run_and_write
    seed_dir = os.path.join(folder, "seed")
    rows = [r for r in run_and_write(PRESETS["smoke"].configs()[:1], seed_dir)]
    out = os.path.join(folder, "many")
    for i in range(n):
        parts.write_part(out, "trials", f"t{i:05d}", [dict(rows[0], trial_id=f"t{i:05d}", seed=i)])


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
    from study.store.compact import compact
    rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        build(tmp, args.parts)
        folder = os.path.join(tmp, "many")
        readers = {"`analysis.load.load_table`": lambda: load_table(folder, "trials"),
                   "`polars.read_parquet`": lambda: pl.read_parquet(os.path.join(folder, "trials", "*.parquet"))}
        for stage in ("parts", "compacted"):
            if stage == "compacted":
                t0 = time.perf_counter()
                compact(folder)
                compact_s = time.perf_counter() - t0
            times = {name: [] for name in readers}
            for _ in range(args.repeats):
                for name, read in readers.items():
                    seconds, n = timed(read)
                    assert n == args.parts, (name, stage, n)
                    times[name].append(seconds)
            rows.update({(name, stage): min(t) for name, t in times.items()})
    polars_parts = rows[("`polars.read_parquet`", "parts")]
    table = (f"| reader | files | best of {args.repeats}, s | ratio to Polars on the parts |\n|---|---|---|---|\n"
             + "".join(f"| {name} | {stage}: {args.parts if stage == 'parts' else 1} | {t:.3f} | {t / polars_parts:.2f} |\n"
                       for (name, stage), t in sorted(rows.items(), key=lambda kv: (kv[0][1] != "parts", kv[0][0]))))
    text = (f"# Reading {args.parts} one-row `trials/` parts, local disk\n\n"
            f"`python benchmarks/load_bench.py --parts {args.parts}` on {os.cpu_count()} CPUs, pandas "
            f"{pd.__version__}, polars {pl.__version__}. Compacting the folder (`memsweep compact`, run at "
            f"the end of every sweep) took {compact_s:.2f} s.\n\n{table}")
    print(text)
    if args.out:
        with open(args.out, "w") as fh:
            fh.write(text)


if __name__ == "__main__":
    main()
