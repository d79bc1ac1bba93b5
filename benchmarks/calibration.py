"""How often each test and each claim of the analysis says yes under no effect, and its power with an
effect of the size measured here: ``analysis.calibration``'s simulation, larger than the test suite's.

    python benchmarks/calibration.py [--sims 1000] [--out benchmarks/calibration.md]

Beside the tests it uses, it measures the rule they replaced, the percentile bootstrap of a
difference of two cells' means over seeds (yes when its 90% interval excludes 0).
"""
from __future__ import annotations

import argparse
import math
import time

import numpy as np

from analysis import calibration as cal
from study.rules import ALPHA

EFFECTS = {"paired": 0.3, "unpaired": 0.3, "pooled": 0.3, "share": 0.4, "trend": 1.0}
CLAIM_EFFECTS = {"C1": 0.45, "C2": 0.4, "C3": 0.8, "C3-linear": 0.45, "C4": 0.45, "C5": 0.45, "C6": 0.3}


def bootstrap_rate(seeds: int, effect: float, sims: int, groups: int = 1, seed: int = 0) -> float:
    """The earlier rule: per group, the percentile bootstrap (1,000 draws) of mean(a) - mean(b), each cell
    resampled on its own; yes when the 90% interval lies above 0 (for several groups: some yes, none no)."""
    rng = np.random.default_rng(seed)
    yes = 0
    for _ in range(sims):
        outcomes = []
        for pair in cal.two_sample(rng, seeds, effect, groups):
            da = pair.a[rng.integers(0, seeds, (1000, seeds))].mean(axis=1)
            db = pair.b[rng.integers(0, seeds, (1000, seeds))].mean(axis=1)
            lo, hi = np.quantile(da - db, [0.05, 0.95])
            outcomes.append("yes" if lo > 0 else "no" if hi <= 0 else "unsure")
        yes += "yes" in outcomes and "no" not in outcomes
    return yes / sims


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sims", type=int, default=1000)
    ap.add_argument("--out")
    args = ap.parse_args()
    n = args.sims
    se = 2.58 * math.sqrt(ALPHA * (1 - ALPHA) / n)
    lines = ["# Calibration", "",
             f"`python benchmarks/calibration.py --sims {n}`: the share of simulated tables (`analysis/calibration.py`) "
             f"on which a test says yes, or a claim comes out reproduced; under no effect it must be at most "
             f"{ALPHA:g} (Monte Carlo margin at {n} draws: +{se:.3f}). Power: the same share with the effect given "
             f"({n // 2} draws).", "",
             "Effects, as the generators in `analysis/calibration.py` plant them: paired, unpaired, pooled: the attractor "
             "share of the first cell raised by 0.3 (seed propensities Beta(2, 3), mean 0.4; pooled: four pairs); "
             "share: networks have the property with probability 0.9 against 1/2; trend: the onset moves one depth per "
             "doubling of width (three widths); claims: the size the `-local` runs measured (C2 +0.4 attractor share "
             "from the shallowest to the deepest depth; C6 +0.3 from the narrowest to the widest width; C3 memorization "
             "rising with depth to 0.8 for conv_down and 0.4 for conv; C1 and C4: 95% of networks agreeing; C3-linear: "
             "narrow stride-1 nets acting as P_X with probability 0.05, conv_down's operator 0.45 more often than "
             "conv's; C5: stable cycles' retrieval raised by 0.45).", "",
             "| test | seeds per cell | false yes (no effect) | effect | power |", "|---|---|---|---|---|"]
    t0 = time.perf_counter()
    for kind in ("paired", "unpaired", "pooled", "share", "trend"):
        for seeds in (3, 5):
            sims = n if kind != "trend" or seeds == 3 else n // 4
            rate = cal.test_rate(kind, seeds, 0.0, sims)
            power = cal.test_rate(kind, seeds, EFFECTS[kind], max(sims // 2, 50), seed=1)
            lines.append(f"| {kind} | {seeds} | {rate:.3f} ({sims} draws) | {EFFECTS[kind]:g} | {power:.2f} |")
            print(lines[-1], flush=True)
    for groups, name in ((1, "one pair"), (4, "four pairs, some yes and none no")):
        for seeds in (3, 5):
            rate = bootstrap_rate(seeds, 0.0, n, groups)
            lines.append(f"| earlier rule: percentile bootstrap, {name} | {seeds} | {rate:.3f} ({n} draws) | - | - |")
            print(lines[-1], flush=True)
    lines += ["", "| claim | seeds per cell | false reproduced (no effect) | effect | power |", "|---|---|---|---|---|"]
    for claim, effect in CLAIM_EFFECTS.items():
        for seeds in (3, 5):
            sims = max(n // 4, 50)
            rate = cal.claim_rate(claim, seeds, 0.0, sims)
            power = cal.claim_rate(claim, seeds, effect, max(sims // 2, 50), seed=1)
            lines.append(f"| {claim} | {seeds} | {rate:.3f} ({sims} draws) | {effect:g} | {power:.2f} |")
            print(lines[-1], flush=True)
    lines += ["", f"{time.perf_counter() - t0:.0f} s on this machine."]
    if args.out:
        with open(args.out, "w") as fh:
            fh.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
