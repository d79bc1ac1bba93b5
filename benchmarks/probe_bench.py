"""Probe costs, as ratios measured side by side in one run (timings on a shared machine are noisy).

1. Jacobian spectra at one point: matrix-free (ARPACK on jvp/vjp) vs the dense Jacobian +
   eigvals + svdvals, at d = 64 (digits), 784 (MNIST-size) and 3072 (CIFAR-size conv).
   The two must agree; the ratio is dense time / matrix-free time.
2. The default trial (``TrialConfig()``): probe time vs training time, split into its parts,
   after one warm-up trial in the same process (as in a sweep, where workers are reused).
3. n = 100: a ``headline-local`` net (fc width 512, depth 6, 25x25 images, 1,000 random starts for
   the census) at n_train 100, seed 0, trained and probed alone, its spectra at the training images
   timed three ways on the trained net (batched, ARPACK, dense: the oracle): probes vs training (about 5 minutes a data set on one
   core; ``--headline lfw,photos,uniform`` for more, ``--headline ''`` for none).

    python benchmarks/probe_bench.py [--threads 1] [--seeds 3] [--headline lfw] [--out benchmarks/probe_bench.md]
"""
from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch
from torch import nn

from study import run_trial
from study.config import TrialConfig
from study.sweep.presets import PRESETS
from study.trial import probes


def time_it(fn, repeat: int = 1):
    best, out = float("inf"), None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t)
    return best, out


def spectra_case(name: str, model: nn.Module, x: torch.Tensor, repeat: int) -> dict:
    for p in model.parameters():
        p.requires_grad_(False)
    model.eval()

    def dense():  # the baseline: materialise J, then full eigen- and singular-value decompositions
        J = probes.jacobians_dense(model, x).double()
        return torch.linalg.eigvals(J).abs().amax(-1).numpy(), torch.linalg.svdvals(J)[..., 0].numpy()

    t_dense, (rho_d, s1_d) = time_it(dense, repeat)
    t_free, (rho_m, s1_m) = time_it(lambda: probes.spectra_matrix_free(model, x), repeat)
    return {"case": name, "d": x[0].numel(), "dense_s": t_dense, "matrix_free_s": t_free,
            "speedup": t_dense / t_free,
            "max_rel_diff": float(max(np.max(np.abs(rho_m - rho_d) / rho_d), np.max(np.abs(s1_m - s1_d) / s1_d)))}


def fc(d: int, width: int = 512, depth: int = 5) -> nn.Module:
    sizes = [d] + [width] * (depth - 1) + [d]
    layers: list[nn.Module] = []
    for a, b in zip(sizes[:-1], sizes[1:]):
        layers += [nn.Linear(a, b), nn.LeakyReLU(0.01)]
    return nn.Sequential(*layers[:-1])


def conv(channels: int = 3, width: int = 16, depth: int = 5) -> nn.Module:
    chans = [channels] + [width] * (depth - 1) + [channels]
    layers: list[nn.Module] = []
    for a, b in zip(chans[:-1], chans[1:]):
        layers += [nn.Conv2d(a, b, 3, padding=1), nn.LeakyReLU(0.01)]
    return nn.Sequential(*layers[:-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=1, help="torch threads (sweeps run 1 per trial)")
    ap.add_argument("--seeds", type=int, default=3, help="default trials to time")
    ap.add_argument("--headline", default="lfw", help="data sets of the headline-local nets to time at n = 100")
    ap.add_argument("--out", help="also write the tables to this Markdown file")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    rows = [
        spectra_case("fc 64-512x5 (digits)", fc(64), torch.rand(1, 64), repeat=3),
        spectra_case("fc 784-512x5 (MNIST size)", fc(784), torch.rand(1, 784), repeat=3),
        spectra_case("conv 3x32x32, 16 ch x5 (CIFAR size)", conv(), torch.rand(1, 3, 32, 32), repeat=1),
    ]
    lines = ["## Jacobian spectra at one point: dense vs matrix-free", "",
             "| case | d | dense (s) | matrix-free (s) | dense / matrix-free | max rel. diff of rho, sigma_1 |",
             "|---|---|---|---|---|---|"]
    lines += [f"| {r['case']} | {r['d']} | {r['dense_s']:.3f} | {r['matrix_free_s']:.3f} | {r['speedup']:.1f}x | "
              f"{r['max_rel_diff']:.1e} |" for r in rows]

    cfg = TrialConfig()
    run_trial(cfg.replace(max_steps=10))  # warm-up: first-call costs of torch.func and the allocator
    trials = [run_trial(cfg.replace(seed=s)).trial for s in range(args.seeds)]
    lines += ["", f"## Default trial (`TrialConfig()`: {cfg.trial_id.rsplit('-', 3)[0]}, digits, "
              f"{args.threads} thread(s)): probes vs training", "",
              "| seed | steps | train (s) | spectra (s) | iteration (s) | span (s) | probes / train |",
              "|---|---|---|---|---|---|---|"]
    ratios = []
    for s, t in enumerate(trials):
        ratios.append(t["probe_seconds"] / t["train_seconds"])
        lines.append(f"| {s} | {t['steps']} | {t['train_seconds']:.2f} | {t['spectra_seconds']:.3f} | "
                     f"{t['iteration_seconds']:.3f} | {t['span_seconds']:.4f} | {ratios[-1]:.2f} |")
    total = sum(t["probe_seconds"] for t in trials) / sum(t["train_seconds"] for t in trials)
    lines += ["", f"All seeds together: probes / train = {total:.2f} (median per seed {statistics.median(ratios):.2f})."]
    if args.headline:
        lines += headline_rows(args.headline.split(","))
    text = "\n".join(lines)
    print(text)
    if args.out:
        with open(args.out, "w") as fh:
            fh.write("Written by `python benchmarks/probe_bench.py`.\n\n" + text + "\n")


def headline_rows(datasets: list[str]) -> list[str]:
    """A headline-local net per data set at n_train = 100, seed 0, trained and probed alone (``run_trial``,
    its census included), and its spectra at the training images timed again both ways on the trained net."""
    cfgs = [c for c in PRESETS["headline-local"].configs() if c.n_train == 100 and c.seed == 0 and c.dataset in datasets]
    lines = ["", "## n = 100: headline-local nets (fc width 512, depth 6, 25x25 images), seed 0, each alone", "",
             "| dataset | status | steps | train (s) | spectra (s) | iteration (s) | census starts | probes / train | "
             "spectra at x_i: batched (s) | ARPACK (s) | dense (s) | max rel. diff from dense: batched | ARPACK |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for cfg in cfgs:
        r = run_trial(cfg, keep_model=True)
        t, net = r.trial, r.model.eval()
        for p in net.parameters():
            p.requires_grad_(False)
        times, diffs = [], []
        t_d, (rho_d, s1_d) = time_it(lambda: probes.spectra(net, r.train_x, "dense"))  # the oracle
        for method in ("batched", "arpack"):
            t_m, (rho_m, s1_m) = time_it(lambda: probes.spectra(net, r.train_x, method))
            times.append(t_m)
            diffs.append(max(np.max(np.abs(rho_m - rho_d) / rho_d), np.max(np.abs(s1_m - s1_d) / s1_d)))
        lines.append(f"| {cfg.dataset} | {t['status']} | {t['steps']} | {t['train_seconds']:.1f} | "
                     f"{t['spectra_seconds']:.1f} | {t['iteration_seconds']:.1f} | {cfg.n_random_starts + cfg.n_heldout} | "
                     f"{t['probe_seconds'] / t['train_seconds']:.2f} | {times[0]:.2f} | {times[1]:.2f} | {t_d:.2f} | "
                     f"{diffs[0]:.1e} | {diffs[1]:.1e} |")
    return lines


if __name__ == "__main__":
    main()
