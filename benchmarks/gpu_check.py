"""GPU check: the smoke preset on CUDA against CPU, batched vs one-by-one, trials per minute.

A few minutes on one GPU. Runs the study's trials directly (no Ray needed: a GPU image may lack
it; with Ray installed the sweep path is exercised too). Without CUDA it says so, runs the CPU
half, and skips the CUDA parts cleanly (exit 0). The last lines printed are the summary table.

    python benchmarks/gpu_check.py [--out DIR]
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # run from a checkout

import torch  # noqa: E402

from study.sweep.presets import PRESETS  # noqa: E402
from study.trial.run import run_trial, run_trials  # noqa: E402

COMPARE = ("fixed_point_frac", "attractor_frac", "spectral_radius_median", "top_singular_median",
           "retrieval_any_frac")


def smoke(device: str) -> tuple[list[dict], float]:
    configs = PRESETS["smoke"].configs()
    run_trial(configs[0].replace(max_steps=5), device)  # warm-up: CUDA context, kernels
    t = time.perf_counter()
    rows = [r.trial for r in run_trials(configs, device)]
    return rows, time.perf_counter() - t


def compare(cpu: list[dict], gpu: list[dict]) -> list[str]:
    """Differences beyond tolerance. Training is chaotic in the last bits, so metrics are compared
    loosely: statuses equal, fractions within 0.2, spectral values within 5%."""
    bad = []
    for a, b in zip(cpu, gpu):
        if a["status"] != b["status"]:
            bad.append(f"{a['trial_id']}: status {a['status']} (cpu) vs {b['status']} (cuda)")
        for k in COMPARE:
            x, y = a[k], b[k]
            if x is None or y is None:
                continue
            tol = 0.05 * abs(x) if "spectral" in k or "singular" in k else 0.2
            if abs(x - y) > tol:
                bad.append(f"{a['trial_id']}: {k} {x:.3f} (cpu) vs {y:.3f} (cuda)")
    return bad


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", help="folder for the JSON summary (default: a temp folder)")
    args = ap.parse_args()
    out = args.out or tempfile.mkdtemp(prefix="gpu-check-")
    os.makedirs(out, exist_ok=True)
    torch.set_num_threads(1)
    summary: dict = {"torch": torch.__version__, "cuda": torch.cuda.is_available()}
    cpu_rows, cpu_s = smoke("cpu")
    summary["cpu_smoke_seconds"] = cpu_s
    table = [("smoke preset on cpu", f"{len(cpu_rows)} trials in {cpu_s:.1f} s "
              f"({60 * len(cpu_rows) / cpu_s:.0f} trials/min)")]
    if not torch.cuda.is_available():
        print("no CUDA device: the CUDA parts are skipped")
        table.append(("cuda", "skipped: no CUDA device"))
    else:
        summary["gpu"] = torch.cuda.get_device_name(0)
        gpu_rows, gpu_s = smoke("cuda")
        bad = compare(cpu_rows, gpu_rows)
        summary.update(cuda_smoke_seconds=gpu_s, mismatches=bad)
        table.append(("smoke preset on cuda", f"{len(gpu_rows)} trials in {gpu_s:.1f} s "
                      f"({60 * len(gpu_rows) / gpu_s:.0f} trials/min) on {summary['gpu']}"))
        table.append(("cuda metrics vs cpu", "match within tolerance" if not bad else f"{len(bad)} differ: {bad[:3]}"))
        from benchmarks.batch_bench import measure
        for arch, width, depth, k in (("fc", 64, 3, 16), ("fc", 128, 6, 16), ("fc", 256, 6, 64), ("conv_down", 64, 4, 16)):
            alone, batched = measure(width, depth, k, 100, "cuda", arch)
            summary[f"batch_{arch}_w{width}_d{depth}_k{k}"] = {"alone_ms": alone, "batched_ms": batched}
            table.append((f"batched vs alone, {arch} w{width} d{depth} K={k}",
                          f"{alone:.3f} vs {batched:.3f} ms per model-step: {alone / batched:.1f}x"))
    with open(os.path.join(out, "gpu_check.json"), "w") as fh:
        json.dump(summary, fh, indent=1, default=str)
    width = max(len(a) for a, _ in table)
    print("\n== gpu check ==")
    for a, b in table:
        print(f"{a:<{width}}  {b}")
    return 1 if summary.get("mismatches") else 0


if __name__ == "__main__":
    sys.exit(main())
