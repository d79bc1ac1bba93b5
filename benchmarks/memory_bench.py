"""The memory estimate against the measured peak: ``resources.memory_bytes`` (what a grid is refused by
before anything is built) beside the resident memory one trial adds, each trial in its own process.

    python benchmarks/memory_bench.py [--out benchmarks/memory_bench.md]

Peak: the process's maximum resident set size after the trial minus before it (torch, the data and
the libraries already loaded), from ``resource.getrusage``. The ratio estimate / peak is what to read:
the refusal is meant for configs off by orders of magnitude (a width of 65536, images of side 10^5),
and the small default trial's peak is mostly the allocator's and libraries' fixed cost.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys

SHORT = {"iter_steps": 100, "iter_max_steps": 100, "confirm_steps": 10}
CONFIGS = [  # short runs: the allocations, not convergence, are measured
    {"max_steps": 100, **SHORT},
    {"max_steps": 100, "width": 4096, "depth": 5, **SHORT},
    {"max_steps": 50, "dataset": "photos", "width": 2048, "depth": 4, "n_train": 30, **SHORT},
    {"max_steps": 50, "arch": "conv", "width": 64, "depth": 4, "dataset": "uniform", "image_size": 32, **SHORT},
    {"max_steps": 50, "arch": "conv_down", "width": 64, "depth": 6, "dataset": "uniform", "image_size": 32,
     "n_train": 20, **SHORT},
]

CHILD = """
import json, resource, sys, torch
torch.set_num_threads(1)
from study.trial import data
from study.trial import resources
from study.trial import run
from study.config import TrialConfig
cfg = TrialConfig(**json.loads(sys.argv[1]))
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
status = run.run_trial(cfg).trial["status"]
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - before
print(json.dumps([resources.memory_bytes(cfg, data.pool_shape(cfg)[1:]), peak, status]))
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    lines = ["| config | status | estimate MiB | peak MiB | estimate / peak |", "|---|---|---|---|---|"]
    for kw in CONFIGS:
        out = subprocess.run([sys.executable, "-c", CHILD, json.dumps(kw)], capture_output=True, text=True, check=True)
        est, peak, status = json.loads(out.stdout.strip().splitlines()[-1])
        shown = ", ".join(f"{k}={v}" for k, v in kw.items() if k not in SHORT)
        lines.append(f"| {shown} | {status} | {est / 2**20:.0f} | {peak / 2**20:.0f} | {est / max(peak, 1):.2f} |")
        print(lines[-1], flush=True)
    if args.out:
        with open(args.out, "w") as fh:
            fh.write("# Memory estimate vs measured peak\n\n`python benchmarks/memory_bench.py --out "
                     "benchmarks/memory_bench.md`\n\n" + "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
