"""The GPU check script: where there is no GPU it runs its CPU half and skips the CUDA parts cleanly;
where there is one, the CUDA metrics match the CPU ones."""
import json
import os
import subprocess
import sys

import pytest
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA: the script runs for real there")
def test_gpu_check_without_cuda_skips_cleanly(tmp_path):
    run = subprocess.run([sys.executable, os.path.join(ROOT, "benchmarks", "gpu_check.py"), "--out", str(tmp_path)],
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    assert "no CUDA device: the CUDA parts are skipped" in run.stdout
    assert run.stdout.rstrip().splitlines()[-1].startswith("cuda")  # the summary table comes last
    summary = json.loads((tmp_path / "gpu_check.json").read_text())
    assert summary["cuda"] is False and summary["cpu_smoke_seconds"] > 0


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_gpu_check_on_cuda_matches_the_cpu_metrics(tmp_path):
    run = subprocess.run([sys.executable, os.path.join(ROOT, "benchmarks", "gpu_check.py"), "--out", str(tmp_path)],
                         capture_output=True, text=True, timeout=900)
    summary = json.loads((tmp_path / "gpu_check.json").read_text())
    assert summary["cuda"] is True and summary["mismatches"] == [], summary.get("mismatches")
    assert run.returncode == 0 and "match within tolerance" in run.stdout
