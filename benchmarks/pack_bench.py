"""Packed vs one-by-one training of K small fc autoencoders, measured side by side in one run.

Each case trains K seeds of one config for a fixed number of steps (tolerance out of reach, so
both ways do the same work): once one model after another (``study.train.train``), once as one
batch of models (``study.packed.train_packed``). Reported: ms per model-step and the ratio.

    python benchmarks/pack_bench.py [--device cpu|cuda] [--steps 200] [--out benchmarks/pack_bench.md]
"""
from __future__ import annotations

import argparse
import time

import torch

from study import data, models
from study.config import TrialConfig
from study.packed import train_packed
from study.train import train

CASES = [(64, 3), (64, 6), (128, 3), (128, 6), (256, 3), (256, 6)]


def sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def measure(width: int, depth: int, k: int, steps: int, device: str) -> tuple[float, float]:
    cfgs = [TrialConfig(depth=depth, width=width, seed=s, lr=1e-3, loss_tol=1e-30, max_steps=steps) for s in range(k)]
    xs = [data.load(c).train.flatten(1).to(device) for c in cfgs]
    nets = [models.build(c, (1, 8, 8)).to(device) for c in cfgs]
    sync(device)
    t = time.perf_counter()
    for c, x, net in zip(cfgs, xs, nets):
        train(net, x, c)
    sync(device)
    alone = time.perf_counter() - t
    nets = [models.build(c, (1, 8, 8)).to(device) for c in cfgs]
    t = time.perf_counter()
    train_packed(cfgs, torch.stack(xs), nets)
    sync(device)
    packed = time.perf_counter() - t
    per = k * (steps + 1) / 1e3
    return alone / per, packed / per


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--k", type=int, nargs="+", default=[4, 16])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    measure(64, 3, 2, 20, args.device)  # warm-up
    lines = [f"## Packed vs one-by-one training on {args.device} ({args.threads} thread(s), {args.steps} steps, "
             "n = 10 digits)", "", "| width | depth | K | one by one (ms / model-step) | packed (ms / model-step) "
             "| speed-up |", "|---|---|---|---|---|---|"]
    for width, depth in CASES:
        for k in args.k:
            alone, packed = measure(width, depth, k, args.steps, args.device)
            lines.append(f"| {width} | {depth} | {k} | {alone:.3f} | {packed:.3f} | {alone / packed:.2f}x |")
            print(lines[-1], flush=True)
    text = "\n".join(lines)
    print(text)
    if args.out:
        with open(args.out, "w") as fh:
            fh.write(f"Written by `python benchmarks/pack_bench.py --device {args.device}`.\n\n{text}\n")


if __name__ == "__main__":
    main()
