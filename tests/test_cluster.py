"""The cluster path, run for real on one machine.

- ``cluster.yaml`` passes the preparation and schema validation that ``ray up`` runs before any cloud
  call (``prepare_config`` + ``validate_config``: private Ray APIs, hence Ray pinned exactly); its
  rsync filter keeps the virtual environment, results and git history home, as Ray's own rsync
  arguments show; head and workers get separate instance profiles whose IAM policies (``docs/aws/``)
  match it.
- ``cluster-local.yaml`` has ``cluster.yaml``'s node types: a head with no CPUs, GPU workers from zero.
- The README's "cluster path on a laptop" commands run as written (``cluster/laptop.py up``: free ports,
  a folder of their own), beside another Ray on its default ports, and ``down`` leaves no process of
  theirs and the other Ray running: Ray's fake multi-node autoscaler starts worker nodes from zero, a moto server is S3,
  ``ray job submit`` runs the smoke sweep, one worker node's raylet is killed (kill -9) while it
  holds a trial at an injected fault point, and every grid point ends with exactly one row in S3.
- On that cluster: trials that no node type can hold stop at ``--start-timeout``; a trial given a
  GPU without ``--device cpu`` finds no CUDA and says so in its row.
- ``up`` whose head takes no job (its dashboard agent's port held here) says so in one line naming the
  agent's error, and leaves no process.

Each test ends only what it started: every process a test starts lives in a process session of its
own, ended whole by session id (never `ray stop`, which ends every Ray process of the user).
"""
import copy
import json
import os
import pathlib
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import pyarrow.dataset as ds
import pytest
import yaml
from ray.autoscaler._private.command_runner import SSHCommandRunner
from ray.autoscaler._private.util import prepare_config, validate_config

from bed import (BIN, HEAD_NODE_ID, ROOT, free_port, kill_session, laptop_commands, parts, raylets, s3,
                 session_pids, wait_for)
from study.sweep.presets import PRESETS


def load_yaml(name: str) -> dict:
    with open(ROOT / name) as fh:
        return yaml.safe_load(fh)


def ray_up_checks(config: dict) -> dict:
    prepared = prepare_config(copy.deepcopy(config))
    validate_config(prepared)
    return prepared


# --- cluster.yaml and cluster-local.yaml, offline ---------------------------------------------------

def test_cluster_yaml_passes_rays_validation():
    prepared = ray_up_checks(load_yaml("cluster.yaml"))
    types = prepared["available_node_types"]
    assert prepared["head_node_type"] == "head" and types["head"]["resources"] == {"CPU": 0}
    assert {t["resources"].get("GPU", 0) for t in types.values()} == {0, 1, 8}
    assert all(t.get("min_workers", 0) == 0 for name, t in types.items() if name != "head")  # from zero
    assert prepared["idle_timeout_minutes"] > 0


@pytest.mark.parametrize("breakage, error", [
    (lambda c: c["available_node_types"]["gpu_1"]["resources"].update(GPU=0.5), "is not of type 'integer'"),
    (lambda c: c.update(head_node_type="gpu_head"), "must be one of `available_node_types`"),
    (lambda c: c.update(max_wrokers=3), "Additional properties are not allowed"),
])
def test_broken_cluster_yaml_is_rejected(breakage, error):
    config = load_yaml("cluster.yaml")
    breakage(config)
    with pytest.raises(Exception) as err:
        ray_up_checks(config)
    assert error in str(err.value)


def test_cluster_yaml_pins_exactly_what_the_tests_run_and_speaks_token_auth_everywhere():
    import ray
    import torch
    config = load_yaml("cluster.yaml")
    setup = " ".join(config["setup_commands"])
    assert f'"ray[tune,default]=={ray.__version__}"' in setup
    assert f'"torch=={torch.__version__.split("+")[0]}"' in setup
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert f'"ray[tune,default]=={ray.__version__}"' in pyproject  # what `pip install -e` on a node brings
    assert any("RAY_AUTH_MODE=token" in c and ".bashrc" in c for c in config["setup_commands"])  # node shells
    for cmd in config["head_start_ray_commands"][1:] + config["worker_start_ray_commands"][1:]:
        assert "RAY_AUTH_MODE=token" in cmd


def test_rsync_keeps_the_venv_results_and_git_history_home():
    config = load_yaml("cluster.yaml")
    runner = SSHCommandRunner.__new__(SSHCommandRunner)  # only its rsync argument builder is used
    args = runner._create_rsync_filter_args(
        {"rsync_exclude": config["rsync_exclude"], "rsync_filter": config["rsync_filter"]})
    excluded = {args[i + 1] for i, a in enumerate(args) if a == "--exclude"}
    assert {".venv", "results", ".git"} <= excluded
    assert ["--filter", "dir-merge,- .gitignore"] == args[-2:]
    assert config["file_mounts"]["~/memsweep"] == "."


def profile_name(arn: str) -> str:
    return arn.rsplit("/", 1)[1]


def test_head_and_workers_get_separate_profiles_with_the_documented_policies():
    config = load_yaml("cluster.yaml")
    types = config["available_node_types"]
    head = profile_name(types["head"]["node_config"]["IamInstanceProfile"]["Arn"])
    workers = {profile_name(t["node_config"]["IamInstanceProfile"]["Arn"]) for n, t in types.items() if n != "head"}
    assert len(workers) == 1 and head not in workers
    worker = workers.pop()
    policies = ("head", "worker")
    allowed = {who: {(a, r) for st in _statements(who) for a in st["Action"] for r in st["Resource"]}
               for who in policies}
    head_actions = {a for a, _ in allowed["head"]}
    assert {"ec2:RunInstances", "ec2:TerminateInstances", "ec2:CreateTags", "ec2:Describe*"} <= head_actions
    passed = [r for a, r in allowed["head"] if a == "iam:PassRole"]
    assert passed == [f"arn:aws:iam::123456789012:role/{worker}"]  # exactly the workers' role, nothing wider
    assert all(a.startswith("s3:") for a, _ in allowed["worker"])  # workers: the bucket, nothing else
    buckets = {who: {r for a, r in allowed[who] if a.startswith("s3:")} for who in allowed}
    assert buckets["head"] == buckets["worker"] == {"arn:aws:s3:::YOUR-BUCKET", "arn:aws:s3:::YOUR-BUCKET/memsweep/*"}
    trust = json.loads((ROOT / "docs" / "aws" / "trust-policy.json").read_text())
    assert trust["Statement"][0]["Principal"] == {"Service": "ec2.amazonaws.com"}


def _statements(who: str) -> list[dict]:
    out = []
    for st in json.loads((ROOT / "docs" / "aws" / f"{who}-policy.json").read_text())["Statement"]:
        assert st["Effect"] == "Allow"
        st = dict(st, Action=[st["Action"]] if isinstance(st["Action"], str) else st["Action"],
                  Resource=[st["Resource"]] if isinstance(st["Resource"], str) else st["Resource"])
        out.append(st)
    return out


def test_aws_rights_are_least_privilege_and_cluster_yaml_launches_what_they_allow():
    """The head may launch, tag and terminate only instances of this cluster (its tag), launch only with
    IMDSv2, encrypted volumes and the named security group; S3 rights stop at the results prefix; no
    right on "*" but what AWS cannot scope; every node of cluster.yaml is launched that way."""
    config = load_yaml("cluster.yaml")
    tag = {"aws:RequestTag/ray-cluster-name": config["cluster_name"]}
    head, worker = _statements("head"), _statements("worker")
    for st in head + worker:
        if "*" in st["Resource"]:  # only unscopable reads, or a right pinned by its condition
            assert st["Action"] == ["ec2:Describe*"] or st.get("Condition", {}).get("StringEquals", {}).get(
                "iam:AWSServiceName") == "spot.amazonaws.com", st["Sid"]
    ec2 = [st for st in head if any(a.startswith("ec2:") and a != "ec2:Describe*" for a in st["Action"])]
    for st in ec2:
        cond = st.get("Condition", {}).get("StringEquals", {})
        instance_or_volume = any(":instance/" in r or ":volume/" in r for r in st["Resource"])
        if st["Action"] == ["ec2:RunInstances"] and not instance_or_volume:
            # the resources a launch uses but does not create: the named group, not any group
            groups = [r for r in st["Resource"] if ":security-group/" in r]
            assert groups and all(not r.endswith("/*") for r in groups), st["Sid"]
            continue
        assert instance_or_volume and all(":instance/" in r or ":volume/" in r for r in st["Resource"]), st["Sid"]
        name = config["cluster_name"]
        assert cond.get("aws:RequestTag/ray-cluster-name") == name or \
            cond.get("ec2:ResourceTag/ray-cluster-name") == name, f"{st['Sid']}: not bound to the cluster's tag"
    launch = {r.split(":")[-1].split("/")[0]: st for st in ec2 if st["Action"] == ["ec2:RunInstances"]
              for r in st["Resource"]}
    assert launch["instance"]["Condition"]["StringEquals"] == {**tag, "ec2:MetadataHttpTokens": "required"}
    assert launch["volume"]["Condition"] == {"StringEquals": tag, "Bool": {"ec2:Encrypted": "true"}}
    group = next(r for r in launch["security-group"]["Resource"] if ":security-group/" in r).rsplit("/", 1)[1]
    for who in (head, worker):
        listing = next(st for st in who if "s3:ListBucket" in st["Action"])
        assert listing["Condition"] == {"StringLike": {"s3:prefix": ["memsweep/", "memsweep/*"]}}
        objects = {r for st in who for r in st["Resource"] if any(a.startswith("s3:") for a in st["Action"])
                   and r.startswith("arn:aws:s3:::YOUR-BUCKET/")}
        assert objects == {"arn:aws:s3:::YOUR-BUCKET/memsweep/*"}
    for name, node in config["available_node_types"].items():
        nc = node["node_config"]
        assert nc["SecurityGroupIds"] == [group], name  # not Ray's default group, which opens SSH to 0.0.0.0/0
        assert nc["MetadataOptions"]["HttpTokens"] == "required", name
        assert all(m["Ebs"]["Encrypted"] is True for m in nc["BlockDeviceMappings"]), name
    assert "security_group" not in config["provider"]  # no group of Ray's making


def test_cluster_local_yaml_has_cluster_yamls_node_types_on_one_machine():
    local, cloud = load_yaml("cluster-local.yaml"), load_yaml("cluster.yaml")
    validate_config(local)  # the schema check (prepare_config needs an example.yaml the wheel lacks)
    types = local["available_node_types"]
    head = types.pop(local["head_node_type"])
    assert head["resources"] == cloud["available_node_types"]["head"]["resources"] == {"CPU": 0}
    assert types and set(types) <= set(cloud["available_node_types"])
    for name, t in types.items():
        assert t["min_workers"] == 0 and t["resources"]["GPU"] == cloud["available_node_types"][name]["resources"]["GPU"]
    assert local["provider"]["type"] == "fake_multinode" and local["provider"]["gcs_address"].startswith("127.0.0.1:")


# --- the README's laptop commands on a fake multi-node cluster ----------------------------------------

class LaptopCluster:
    """The README's laptop commands as written: `python cluster/laptop.py up` (S3 server and Ray head on
    free ports, its state under this test's folder), `ray job submit`, `memsweep report`, and `down`."""

    def __init__(self, tmp):
        self.tmp = tmp
        self.hold = tmp / "hold"
        self.hold.mkdir()
        self.env = {**os.environ, "PATH": BIN + os.pathsep + os.environ["PATH"], "MEMSWEEP_LAPTOP": str(tmp / "state"),
                    # the fault point for the node-kill test: the first trial of the cluster's first sweep
                    # to write a part holds there (one hold per folder, so later sweeps run straight through)
                    "MEMSWEEP_FAULT_HOLD": str(self.hold),
                    "RAY_health_check_period_ms": "1000",            # notice a dead node in seconds, not ~30 s
                    "RAY_health_check_failure_threshold": "3"}
        self.commands = {}
        for line in laptop_commands():
            if line == "source .venv/bin/activate":
                continue  # PATH above puts this interpreter's bin first
            key = ("up" if "laptop.py up" in line else "down" if "laptop.py down" in line else
                   "job" if line.startswith("ray job submit") else "report" if line.startswith("memsweep report")
                   else line)
            self.commands[key] = line.replace("results/smoke-report", str(tmp / "smoke-report"))
        assert set(self.commands) == {"up", "job", "report", "down"}, laptop_commands()
        up = re.search(r'eval "\$\((.*)\)"', self.commands["up"]).group(1)  # what eval runs
        done = subprocess.run(["bash", "-c", up], env=self.env, cwd=ROOT, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr[-3000:]
        self.env.update(dict(item.split("=", 1) for line in done.stdout.splitlines()
                             for item in shlex.split(line)[1:]))  # the exports eval would set
        state = json.loads((tmp / "state" / "state.json").read_text())
        self.sessions, self.sid = state["sessions"], state["sessions"][1]  # the S3 server's; the Ray head's
        self.endpoint = self.env["AWS_ENDPOINT_URL_S3"]

    def job(self, memsweep_args: str | None = None) -> subprocess.Popen:
        """`ray job submit` of the README's sweep, or of other ``memsweep run`` arguments."""
        line = self.commands["job"]
        if memsweep_args:
            line = line[:line.index("memsweep run")] + "memsweep run " + memsweep_args
        return subprocess.Popen(["bash", "-c", line], env=self.env, cwd=ROOT, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True, start_new_session=True)

    def stop(self) -> subprocess.CompletedProcess:
        """The README's `down`; what it leaves of the sessions `up` started is ended here, and was a bug."""
        done = subprocess.run(["bash", "-c", self.commands["down"]], env=self.env, cwd=ROOT, capture_output=True,
                              text=True, timeout=120)
        left = [pid for sid in self.sessions for pid in session_pids(sid) if _running(pid)]
        for sid in self.sessions:
            kill_session(sid)
        return done, left


@pytest.fixture(scope="module")
def busy_ray():
    """Someone else's Ray on this machine, started with Ray's default ports (its dashboard and dashboard
    agent take theirs, as another memsweep's own Ray does): the laptop cluster must run beside it."""
    tmpdir = tempfile.mkdtemp(prefix="rb", dir="/tmp")  # short: Ray's socket paths must fit 107 bytes
    head = subprocess.Popen([os.path.join(BIN, "ray"), "start", "--head", "--node-ip-address", "127.0.0.1",
                             "--port", str(free_port()), "--num-cpus", "0", "--temp-dir", tmpdir,
                             "--disable-usage-stats"],
                            env={**os.environ, "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_AUTH_MODE": "token"},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        assert head.wait(timeout=120) == 0
        yield head.pid
    finally:
        kill_session(head.pid)
        shutil.rmtree(tmpdir, ignore_errors=True)


@pytest.fixture(scope="module")
def laptop(tmp_path_factory, busy_ray):
    cluster = LaptopCluster(tmp_path_factory.mktemp("laptop"))
    try:
        yield cluster
    finally:
        done, left = cluster.stop()
        assert done.returncode == 0 and "processes stopped" in done.stderr, done.stderr
        assert not left, f"cluster/laptop.py down left processes {left}"
        assert session_alive(busy_ray), "down stopped someone else's Ray"


def _running(pid: int) -> bool:
    """A process that has not exited (a zombie has: only its parent has yet to read its status)."""
    try:
        return pathlib.Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[-1].split()[0] != "Z"
    except OSError:
        return False


def session_alive(sid: int) -> bool:
    """Whether any process of session ``sid`` is alive."""
    return bool(session_pids(sid))


def finish(proc: subprocess.Popen, timeout: float = 400) -> tuple[int, str]:
    try:
        out, _ = proc.communicate(timeout=timeout)
    finally:
        kill_session(proc.pid)
    return proc.returncode, out


def test_readme_laptop_commands_run_the_sweep_through_a_dead_worker_node(laptop):
    """The README's job on a cluster that starts with no worker: time to the first worker and to the
    first result, one worker killed mid-trial, Tune's retry, and every grid point exactly once in S3."""
    fs = s3(laptop.endpoint)
    expected = {c.trial_id for c in PRESETS["smoke"].configs()}
    start = time.time()
    job = laptop.job()
    first_worker = wait_for(lambda: {n for n in raylets(session_pids(laptop.sid)) if n != HEAD_NODE_ID}, 120)
    t_worker = time.time() - start
    assert first_worker, "the autoscaler started no worker node"
    wait_for(lambda: [p for p in parts(fs, "memsweep/smoke/trials") if p.endswith(".parquet")], 180)
    t_result = time.time() - start
    held = wait_for(lambda: (laptop.hold / "held").exists() and (laptop.hold / "held").read_text(), 60)
    assert held and held != HEAD_NODE_ID, "no trial reached the hold point on a worker"
    os.kill(raylets(session_pids(laptop.sid))[held], signal.SIGKILL)  # that node's raylet, mid-trial: the node dies
    code, out = finish(job)

    assert code == 0, out[-4000:]
    assert f"node {held[:6]}..{held[-5:]} died" in out  # the progress line says what happened...
    assert "lost its worker (its process or node died); Tune runs it again" in out  # ...and what Tune does
    assert "waiting for {CPU: 1, GPU: 0.5}: no node has it yet" in out  # before the first worker joined
    assert "4 trials: 4 done, 0 skipped (already there), 0 failed, 1 Tune trials retried" in out
    trials = ds.dataset("memsweep/smoke/trials", filesystem=fs, format="parquet").to_table().to_pandas()
    assert sorted(trials.trial_id) == sorted(expected)  # no row lost, none duplicated
    assert (trials.status == "ok").all() and (trials.device == "cpu").all()  # --device cpu, said so
    (compacted,) = parts(fs, "memsweep/smoke/trials")  # the parts, folded into one file at the end
    assert compacted.startswith("compacted-") and "compacted: trials: 4 files -> 1" in out
    assert "sweep.json" in parts(fs, "memsweep/smoke") and parts(fs, "memsweep/smoke/_tune")

    report = subprocess.run(["bash", "-c", laptop.commands["report"]], env=laptop.env, cwd=ROOT,
                            capture_output=True, text=True, timeout=300)
    assert report.returncode == 0 and (laptop.tmp / "smoke-report" / "report.html").exists(), report.stderr
    lost = len(expected - set(trials.trial_id))
    print(f"\ncluster test bed: first worker node {t_worker:.1f} s after submission, first result "
          f"{t_result:.1f} s; Tune trials retried: {out.count('lost its worker')}; rows lost: {lost}; "
          f"rows duplicated: {len(trials) - trials.trial_id.nunique()}; job done {time.time() - start:.1f} s\n"
          + "\n".join(line for line in out.splitlines() if line.startswith("[memsweep]")))


def test_trials_no_node_can_hold_stop_at_the_start_timeout(laptop):
    job = laptop.job("--preset smoke --address auto --cpus-per-trial 2 --gpus-per-trial 1 --device cpu "
                     "--start-timeout 8 --out s3://memsweep/stuck")
    code, out = finish(job, timeout=180)
    assert code != 0  # the job failed: memsweep exited 1
    assert "waiting for {CPU: 2, GPU: 1}: no node has it yet" in out
    assert "no trial started within 8 s: 4 waiting for {CPU: 2, GPU: 1}: no node has it yet" in out
    assert "Traceback" not in out


def test_a_trial_given_a_gpu_without_cuda_is_an_error_row_not_a_cpu_run(laptop):
    (laptop.hold / "held.lock").touch()  # no held trial here, whichever test ran first
    job = laptop.job("--preset smoke --set seed=0 --address auto --gpus-per-trial 0.5 --out s3://memsweep/nocuda")
    code, out = finish(job, timeout=300)
    assert code != 0 and "2 failed" in out
    trials = ds.dataset("memsweep/nocuda/trials", filesystem=s3(laptop.endpoint), format="parquet").to_table().to_pandas()
    assert len(trials) == 2 and (trials.status == "error").all()
    assert trials.error.str.contains("sees no CUDA device").all() and trials.error.str.contains("--device cpu").all()


def test_a_head_that_takes_no_jobs_is_said_at_up_in_one_line_with_its_cause(tmp_path):
    """`up` submits a job that does nothing before it prints the exports: with the dashboard agent's port
    taken (as another Ray took Ray's fixed 52365), the head takes no job, and `up` says so in one line
    naming the agent's own error, stops what it started and leaves no state behind."""
    import socket
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen()
    # `python cluster/laptop.py up`, its dashboard agent's port (the 4th it takes) the one held here
    up = (f"import importlib.util; spec = importlib.util.spec_from_file_location('laptop', {str(ROOT / 'cluster' / 'laptop.py')!r}); "
          "laptop = importlib.util.module_from_spec(spec); spec.loader.exec_module(laptop); "
          f"free = laptop._free_ports; laptop._free_ports = lambda n: free(n)[:3] + [{holder.getsockname()[1]}] + free(n)[4:]; "
          "laptop.up()")
    try:
        done = subprocess.run([sys.executable, "-c", up], env={**os.environ, "MEMSWEEP_LAPTOP": str(tmp_path / "state")},
                              capture_output=True, text=True, timeout=300)
    finally:
        holder.close()
    err = done.stderr.strip().splitlines()
    assert done.returncode == 1 and len(err) == 1 and not done.stdout, done.stderr
    assert err[0].startswith("cluster/laptop.py: the Ray head takes no jobs (") and "its dashboard agent says" in err[0]
    assert "address already in use" in err[0].lower(), err[0]
    assert not (tmp_path / "state" / "state.json").exists() and (tmp_path / "state" / "dashboard_agent.log").exists()
    assert not with_environ(f"MEMSWEEP_LAPTOP={tmp_path / 'state'}"), "up left processes of what it started"


def with_environ(entry: str) -> list[int]:
    """The live processes whose environment holds ``entry`` (NAME=value): what a process started, and
    what those started, inherit it."""
    found = []
    for pid in (int(e) for e in os.listdir("/proc") if e.isdigit()):
        try:
            if entry.encode() in pathlib.Path(f"/proc/{pid}/environ").read_bytes().split(b"\0") and _running(pid):
                found.append(pid)
        except OSError:
            pass
    return found
