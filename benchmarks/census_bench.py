"""What a census of many random starts costs: the default trial (``TrialConfig()``) trained once, then
probed (``run.probe``, every probe) with ``n_random_starts`` = 50 (the default) and 1,000 and more,
each after a warm-up probe, on one torch thread as a sweep's trial runs. All starts iterate in one
batch (``probes.iterate``), so the census adds rows to that batch, not loops.

    python benchmarks/census_bench.py [--threads 1] [--starts 50,1000,4000] [--out benchmarks/census_bench.md]
"""
from __future__ import annotations

import argparse
import platform
import time

import torch

from study import rules, run_trial
from study.config import TrialConfig
from study.trial import data, models
from study.trial import run as trial_run


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--starts", default="50,1000,4000")
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    cfg = TrialConfig()
    result = run_trial(cfg, keep_model=True)
    f, x = result.model, result.train_x
    images = data.load(cfg)
    heldout = models.to_input(images.heldout, cfg.arch)
    trial_run.probe(f, x, heldout, images.low, images.high, cfg)  # warm-up
    rows = []
    for m in map(int, args.starts.split(",")):
        c = cfg.replace(n_random_starts=m)
        t0 = time.perf_counter()
        probed = trial_run.probe(f, x, heldout, images.low, images.high, c)
        wall = time.perf_counter() - t0
        rnd = next(r for r in probed.retrieval if r["start"] == "random")
        rows.append((m, wall, probed.metrics["iteration_seconds"], probed.metrics["iter_steps_max"],
                     [rnd[k] for k in rules.CENSUS_COLUMNS], probed.metrics["spurious_points"]))
        print(rows[-1], flush=True)
    lines = [f"# Census cost on the default trial ({cfg.trial_id}), {args.threads} thread(s)", "",
             f"{platform.processor() or platform.machine()}, torch {torch.__version__}; trained in "
             f"{result.trial['train_seconds']:.2f} s ({result.trial['steps']} steps).", "",
             "| random starts | all probes (s) | iteration (s) | most steps | random: " +
             " / ".join(c.removesuffix("_frac") for c in rules.CENSUS_COLUMNS) + " | spurious points |",
             "|---|---|---|---|---|---|"]
    for m, wall, it, steps, census, points in rows:
        lines.append(f"| {m} | {wall:.2f} | {it:.2f} | {steps} | " + " / ".join(f"{v:.3f}" for v in census)
                     + f" | {points} |")
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        with open(args.out, "w") as fh:
            fh.write(text)


if __name__ == "__main__":
    main()
