"""Batched vs one-by-one training of K small autoencoders, measured side by side in one run.

Each case trains K seeds of one config for a fixed number of steps (tolerance out of reach, so
both ways do the same work): once one model after another (``study.trial.train.train``), once as one
batch of models (``study.trial.train.fit``). Reported: ms per model-step and the ratio. The CPU's
``registry.ARCHS``' ``max_width_cpu`` comes from this table.

    python benchmarks/batch_bench.py [--device cpu|cuda] [--steps 100] [--out benchmarks/batch_bench.md]
"""
from __future__ import annotations

import argparse
import time

import torch

from study.trial import data
from study.trial import models
from study.config import TrialConfig
from study.trial.train import fit, train

CASES = [("fc", 64, 3), ("fc", 64, 6), ("fc", 128, 3), ("fc", 128, 6), ("fc", 256, 3), ("fc", 256, 6),
         ("conv_down", 16, 6), ("conv_down", 32, 6), ("conv_down", 64, 4), ("conv_down", 128, 4)]


def sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def measure(width: int, depth: int, k: int, steps: int, device: str, arch: str = "fc") -> tuple[float, float]:
    cfgs = [TrialConfig(arch=arch, depth=depth, width=width, seed=s, lr=1e-3, loss_tol=1e-30, max_steps=steps)
            for s in range(k)]
    xs = [models.to_input(data.load(c).train, arch).to(device) for c in cfgs]
    nets = [models.build(c, (1, 8, 8)).to(device) for c in cfgs]
    sync(device)
    t = time.perf_counter()
    for c, x, net in zip(cfgs, xs, nets):
        train(net, x, c)
    sync(device)
    alone = time.perf_counter() - t
    nets = [models.build(c, (1, 8, 8)).to(device) for c in cfgs]
    t = time.perf_counter()
    fit(nets, xs, cfgs)
    sync(device)
    batched = time.perf_counter() - t
    per = k * (steps + 1) / 1e3
    return alone / per, batched / per


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--k", type=int, nargs="+", default=[4, 16])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    measure(64, 3, 2, 20, args.device)  # warm-up
    lines = [f"## Batched vs one-by-one training on {args.device} ({args.threads} thread(s), {args.steps} steps, "
             "n = 10 digits)", "", "| arch | width | depth | K | one by one (ms / model-step) | batched (ms / model-step) "
             "| speed-up |", "|---|---|---|---|---|---|---|"]
    for arch, width, depth in CASES:
        for k in args.k:
            alone, batched = measure(width, depth, k, args.steps, args.device, arch)
            lines.append(f"| {arch} | {width} | {depth} | {k} | {alone:.3f} | {batched:.3f} | {alone / batched:.2f}x |")
            print(lines[-1], flush=True)
    text = "\n".join(lines)
    print(text)
    if args.out:
        with open(args.out, "w") as fh:
            fh.write(f"Written by `python benchmarks/batch_bench.py --device {args.device}`.\n\n{text}\n")


if __name__ == "__main__":
    main()
