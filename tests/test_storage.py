"""Results on shared storage: S3 from a moto server on loopback, reached through pyarrow exactly as a
cluster reaches a real bucket (AWS_ENDPOINT_URL_S3 points pyarrow at the server).

A sweep with ``--out s3://...`` writes its parts, ``sweep.json`` and Tune's state there; killed, it
resumes with every grid point exactly once; ``analysis.load`` and ``memsweep report`` read it back.
These sweeps run while another Ray runs on the machine: memsweep starts a Ray of its own (a plain
``ray.init()`` would join the other one and fail). Bad storage (no such bucket) and folders that
are not results stop the command with one line before any trial.
"""
import os
import shutil
import subprocess
import tempfile

import pyarrow.dataset as ds
import pytest

import analysis
from bed import BIN, free_port, kill_session, parts, s3, wait_for
from study.config import ConfigError
from study.sweep.grid import build_grid


@pytest.fixture(scope="module")
def other_ray():
    """A Ray head of someone else's (`ray start --head`, no CPUs), which records its address in
    RAY_TMPDIR's ray_current_cluster: the file a plain ray.init() reads to join it. Yields the
    environment in which memsweep sees it."""
    tmpdir = tempfile.mkdtemp(prefix="ro", dir="/tmp")  # short: Ray's socket paths must fit 107 bytes
    env = {"RAY_TMPDIR": tmpdir, "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_AUTH_MODE": "token"}
    head = subprocess.Popen(
        [os.path.join(BIN, "ray"), "start", "--head", "--node-ip-address", "127.0.0.1", "--port", str(free_port()),
         "--num-cpus", "0", "--include-dashboard", "false", "--ray-client-server-port", str(free_port()),
         "--disable-usage-stats"], env={**os.environ, **env}, stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        assert head.wait(timeout=120) == 0
        assert os.path.exists(os.path.join(tmpdir, "ray", "ray_current_cluster"))
        yield env
    finally:
        kill_session(head.pid)  # the head's daemons stay in the session `ray start` led
        shutil.rmtree(tmpdir, ignore_errors=True)


@pytest.fixture(scope="module")
def bucket(other_ray):
    """A moto S3 server on 127.0.0.1 with one bucket; yields the environment that points at it (and
    at the other Ray)."""
    from moto.server import ThreadedMotoServer
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    env = {**other_ray, "AWS_ENDPOINT_URL_S3": f"http://{host}:{port}", "AWS_ACCESS_KEY_ID": "local",
           "AWS_SECRET_ACCESS_KEY": "local", "AWS_DEFAULT_REGION": "us-east-1"}
    fs = s3(env["AWS_ENDPOINT_URL_S3"])
    fs.create_dir("results")
    try:
        yield env, fs
    finally:
        server.stop()


def test_killed_s3_sweep_resumes_and_reads_back(bucket, sessions, tmp_path, monkeypatch):
    env, fs = bucket
    args = ["run", "--preset", "smoke", "--set", "seed=0,1,2", "--out", "s3://results/killed"]
    expected = {c.trial_id for c in build_grid("smoke", None, ["seed=0,1,2"]).configs()}
    proc = sessions.start(*args, env=env)
    assert wait_for(lambda: proc.poll() is None and [p for p in parts(fs, "results/killed/trials")
                                                     if p.endswith(".parquet")], 180), "no part before the end"
    sessions.kill(proc)  # kill -9 of the driver and its Ray, mid-sweep
    written = set(parts(fs, "results/killed/trials"))
    assert "sweep.json" in parts(fs, "results/killed") and parts(fs, "results/killed/_tune")

    code, text = sessions.run(*args, env=env)
    assert code == 0, text
    assert "resuming sweep of 6 trials" in text and "starting a Ray of its own on this machine" in text
    trials = ds.dataset("results/killed/trials", filesystem=fs, format="parquet").to_table().to_pandas()
    assert sorted(trials.trial_id) == sorted(expected)  # every grid point exactly once
    assert written and all(p.endswith(".parquet") for p in written)  # at the kill: whole parts only
    (compacted,) = parts(fs, "results/killed/trials")  # at the end: one file, compacted in the bucket
    assert compacted.startswith("compacted-")

    for key in [k for k in env if k.startswith("AWS_")]:  # this process reads the bucket as a notebook would
        monkeypatch.setenv(key, env[key])
    res = analysis.load("s3://results/killed")
    assert len(res.trials) == 6 and len(res.examples) == 60 and res.manifest["preset"] == "smoke"
    code, text = sessions.run("report", "s3://results/killed", "--out", str(tmp_path / "report"), env=env)
    assert code == 0, text
    assert (tmp_path / "report" / "report.html").exists() and "[memsweep] report:" in text


def test_missing_bucket_is_one_line_before_any_trial(bucket, sessions):
    env, _ = bucket
    code, text = sessions.run("run", "--preset", "smoke", "--out", "s3://no-such-bucket/x", env=env)
    assert code == 2 and text.startswith("memsweep: error: --out s3://no-such-bucket/x: cannot")
    assert len(text.strip().splitlines()) == 1 and "Traceback" not in text
    code, text = sessions.run("report", "s3://no-such-bucket/x", "--out", "/tmp/unused", env=env)
    assert code == 2 and len(text.strip().splitlines()) == 1 and "no-such-bucket" in text


@pytest.mark.parametrize("make, message", [
    (lambda p: p / "missing", "no results folder at"),
    (lambda p: p, "holds no memsweep results: no sweep.json and no table parts"),
    (lambda p: (p / "trials").mkdir() or (p / "trials"), "(give the folder above it)"),
])
def test_load_says_in_one_line_what_is_not_a_results_folder(tmp_path, make, message):
    path = make(tmp_path)
    with pytest.raises(ConfigError) as err:
        analysis.load(str(path))
    assert message in str(err.value) and "\n" not in str(err.value)
