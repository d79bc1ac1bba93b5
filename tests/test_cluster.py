"""The cluster path: cluster.yaml against Ray's own validation, and a real `ray job submit` round trip.

There is no `ray up --dry-run`; ``prepare_config`` + ``validate_config`` are what `ray up` runs
before any cloud call (private Ray APIs, hence the pinned Ray minor). The job test starts a Ray
head on loopback in its own process session, submits the smoke sweep as a job, and kills that
session when done: it stops what it started, by process group, never by name.
"""
import copy
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time

import pandas as pd
import pytest
import yaml
from ray.autoscaler._private.util import prepare_config, validate_config

from study.grid import PRESETS

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.dirname(sys.executable)


def cluster_config() -> dict:
    with open(os.path.join(ROOT, "cluster.yaml")) as fh:
        return yaml.safe_load(fh)


def ray_up_checks(config: dict) -> dict:
    prepared = prepare_config(copy.deepcopy(config))
    validate_config(prepared)
    return prepared


def test_cluster_yaml_passes_rays_validation():
    prepared = ray_up_checks(cluster_config())
    types = prepared["available_node_types"]
    assert prepared["head_node_type"] == "head" and types["head"]["resources"] == {"CPU": 0}
    assert {t["resources"].get("GPU", 0) for t in types.values()} == {0, 1, 8}
    assert prepared["idle_timeout_minutes"] > 0
    assert any("pip install" in c and "memsweep" in c for c in prepared["setup_commands"])


@pytest.mark.parametrize("breakage, error", [
    (lambda c: c["available_node_types"]["gpu_1"]["resources"].update(GPU=0.5), "is not of type 'integer'"),
    (lambda c: c.update(head_node_type="gpu_head"), "must be one of `available_node_types`"),
    (lambda c: c.update(max_wrokers=3), "Additional properties are not allowed"),
])
def test_broken_cluster_yaml_is_rejected(breakage, error):
    config = cluster_config()
    breakage(config)
    with pytest.raises(Exception) as err:
        ray_up_checks(config)
    assert error in str(err.value)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_smoke_sweep_as_a_ray_job_on_a_local_head(tmp_path):
    env = {**os.environ, "RAY_AUTH_MODE": "token"}  # token auth is on for local clusters since Ray 2.59
    temp = tempfile.mkdtemp(prefix="rj", dir="/tmp")  # short: Ray's socket paths must fit 107 bytes
    gcs, dash = free_port(), free_port()
    head = subprocess.Popen(
        [os.path.join(BIN, "ray"), "start", "--head", "--block", "--node-ip-address=127.0.0.1", f"--port={gcs}",
         "--dashboard-host=127.0.0.1", f"--dashboard-port={dash}", "--num-cpus=2", f"--temp-dir={temp}",
         "--disable-usage-stats"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    out = tmp_path / "job-out"
    try:
        address = f"http://127.0.0.1:{dash}"
        deadline = time.time() + 90
        while time.time() < deadline:  # the job server answers once the dashboard is up
            ok = subprocess.run([os.path.join(BIN, "ray"), "job", "list", "--address", address],
                                env=env, capture_output=True, text=True)
            if ok.returncode == 0:
                break
            time.sleep(1)
        job = subprocess.run(
            [os.path.join(BIN, "ray"), "job", "submit", "--address", address, "--working-dir", ROOT, "--",
             sys.executable, "-m", "study", "run", "--preset", "smoke", "--address", "auto", "--out", str(out)],
            env=env, capture_output=True, text=True, timeout=300)
        assert job.returncode == 0, job.stdout[-3000:] + job.stderr[-3000:]
        assert "4 trials: 4 done" in job.stdout
        trials = pd.read_parquet(out / "trials")
        assert sorted(trials.trial_id) == sorted(c.trial_id for c in PRESETS["smoke"].configs())
        assert (trials.status == "ok").all()
    finally:
        os.killpg(head.pid, signal.SIGTERM)
        try:
            head.wait(timeout=20)
        except subprocess.TimeoutExpired:
            pass
        try:
            os.killpg(head.pid, signal.SIGKILL)  # whatever ignored SIGTERM
        except ProcessLookupError:
            pass
