"""The cluster path on one machine: an S3 server (moto) and a Ray head on Ray's fake multi-node
provider (``cluster-local.yaml``: ``cluster.yaml``'s node types, worker nodes started as local processes
when the autoscaler asks for them), every port a free one and every file under one folder, so that it
runs beside any other Ray on the machine. ``down`` stops exactly what ``up`` started.

    eval "$(python cluster/laptop.py up)"    # prints the exports the commands after it need
    python cluster/laptop.py down

The folder is $MEMSWEEP_LAPTOP (default: .laptop-cluster/ in the project): its state.json (ports,
process sessions), the logs of the S3 server and of `ray start`, and the cluster config with its ports.
"""
from __future__ import annotations

import json
import os
import pathlib
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
BIN = pathlib.Path(sys.executable).parent  # moto_server and ray beside this interpreter (.venv/bin)
BUCKET = "memsweep"


def _state_dir() -> pathlib.Path:
    return pathlib.Path(os.environ.get("MEMSWEEP_LAPTOP", ROOT / ".laptop-cluster"))


def _free_ports(n: int) -> list[int]:
    """n distinct free TCP ports on 127.0.0.1 (bound together, so none repeats)."""
    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def _fail(message: str) -> None:
    print(f"cluster/laptop.py: {message}", file=sys.stderr)
    sys.exit(1)


def _session_pids(sid: int) -> list[int]:
    """The live processes of session ``sid`` (zombies, already dead, left out)."""
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = pathlib.Path(f"/proc/{entry}/stat").read_text()
                if os.getsid(int(entry)) == sid and stat.rsplit(")", 1)[-1].split()[0] != "Z":
                    pids.append(int(entry))
            except OSError:
                pass
    return pids


def _stop(state: dict) -> int:
    """SIGKILL every process of the sessions ``up`` started (the S3 server; the Ray head, its daemons and
    the worker nodes its autoscaler started); returns how many there were."""
    sessions = [sid for sid in state.get("sessions", []) if sid > 1 and sid != os.getsid(0)]  # only its own
    killed, end = set(), time.time() + 10
    while time.time() < end:  # again until none is left: a dying head may still be starting a node
        alive = [pid for sid in sessions for pid in _session_pids(sid)]
        if not alive:
            break
        for pid in alive:
            try:
                os.kill(pid, signal.SIGKILL)
                killed.add(pid)
            except OSError:
                pass
        time.sleep(0.2)
    shutil.rmtree(state.get("temp", ""), ignore_errors=True)
    return len(killed)


def up() -> None:
    folder = _state_dir()
    if (folder / "state.json").exists():
        _fail(f"already up ({folder}/state.json); run `python cluster/laptop.py down` first")
    folder.mkdir(parents=True, exist_ok=True)
    s3, gcs, dashboard, agent, client = _free_ports(5)
    temp = tempfile.mkdtemp(prefix="rl", dir="/tmp")  # short: Ray's socket paths must fit 107 bytes
    config = (ROOT / "cluster-local.yaml").read_text().replace("127.0.0.1:6392", f"127.0.0.1:{gcs}")
    (folder / "cluster-local.yaml").write_text(config)
    exports = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",  # Ray on 127.0.0.1 only
               "RAY_AUTH_MODE": "token",
               "RAY_API_SERVER_ADDRESS": f"http://127.0.0.1:{dashboard}",  # where `ray job submit` goes
               "AWS_ENDPOINT_URL_S3": f"http://127.0.0.1:{s3}", "AWS_ACCESS_KEY_ID": "local",
               "AWS_SECRET_ACCESS_KEY": "local", "AWS_DEFAULT_REGION": "us-east-1"}
    # the head and its nodes run jobs' commands (memsweep) from this interpreter's folder
    env = {**os.environ, **exports, "PATH": str(BIN) + os.pathsep + os.environ.get("PATH", "")}
    state = {"sessions": [], "temp": temp, "ports": {"s3": s3, "gcs": gcs, "dashboard": dashboard,
                                                     "dashboard_agent": agent, "client_server": client}}
    (folder / "state.json").write_text(json.dumps(state))
    try:
        with open(folder / "moto.log", "w") as log:
            moto = subprocess.Popen([str(BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(s3)], env=env,
                                    stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        state["sessions"].append(moto.pid)
        (folder / "state.json").write_text(json.dumps(state))
        _bucket(env, folder)
        with open(folder / "ray-start.log", "w") as log:
            head = subprocess.Popen(
                [str(BIN / "ray"), "start", "--head", "--node-ip-address", "127.0.0.1", "--port", str(gcs),
                 "--num-cpus", "0", "--autoscaling-config", str(folder / "cluster-local.yaml"),
                 "--dashboard-host", "127.0.0.1", "--dashboard-port", str(dashboard),
                 "--dashboard-agent-listen-port", str(agent), "--ray-client-server-port", str(client),
                 "--temp-dir", temp, "--disable-usage-stats"],
                env={**env, "RAY_FAKE_CLUSTER": "1"}, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        state["sessions"].append(head.pid)
        (folder / "state.json").write_text(json.dumps(state))
        if head.wait(timeout=180) != 0:
            lines = (folder / "ray-start.log").read_text().strip().splitlines()
            raise RuntimeError(f"ray start failed: {lines[-1] if lines else 'no output'} (see {folder}/ray-start.log)")
        _takes_jobs(exports, temp, folder)
    except BaseException as exc:  # whatever stops `up` half-way (Ctrl-C too), nothing it started is left
        _stop(state)
        (folder / "state.json").unlink()
        if not isinstance(exc, Exception):
            raise
        _fail(str(exc))
    print("\n".join(f"export {k}={shlex.quote(v)}" for k, v in exports.items()))
    print(f"cluster/laptop.py: up: S3 at 127.0.0.1:{s3} (bucket {BUCKET}), Ray head at 127.0.0.1:{gcs}, "
          f"jobs at http://127.0.0.1:{dashboard}; `python cluster/laptop.py down` stops them", file=sys.stderr)


def _takes_jobs(exports: dict, temp: str, folder: pathlib.Path) -> None:
    """Submit a job that does nothing and wait for it to succeed. A head whose dashboard agent did not
    start (its port taken by another Ray, say) refuses every job with Ray's "No available agent to submit
    job", its cause only in the agent's log: this says both, in one line, before anyone submits."""
    os.environ.update(exports)  # token auth, as `ray job submit` will use it
    from ray.job_submission import JobStatus, JobSubmissionClient
    try:
        client = JobSubmissionClient(exports["RAY_API_SERVER_ADDRESS"])
        job = client.submit_job(entrypoint="true")
        end = time.time() + 120
        while (status := client.get_job_status(job)) not in (JobStatus.SUCCEEDED, JobStatus.FAILED,
                                                             JobStatus.STOPPED) and time.time() < end:
            time.sleep(0.5)
        if status != JobStatus.SUCCEEDED:
            raise RuntimeError(f"a job that does nothing ended {status.value}")
    except Exception as exc:  # Ray's client raises several kinds (HTTP 500, authentication, connection)
        said = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise RuntimeError(f"the Ray head takes no jobs ({said[:200]}){_agent_cause(temp, folder)}") from None


def _agent_cause(temp: str, folder: pathlib.Path) -> str:
    """'; its dashboard agent says: <its last error line> (see <log>)', or '' when its log has none. The
    log is kept in ``folder``: Ray's temp folder goes when ``up`` stops what it started."""
    for log in sorted(pathlib.Path(temp).glob("session_*/logs/dashboard_agent.log")):
        kept = shutil.copy(log, folder / "dashboard_agent.log")
        errors = [line.strip() for line in log.read_text(errors="replace").splitlines()
                  if "Error" in line or "error" in line]
        if errors:
            return f"; its dashboard agent says: {errors[-1][:300]} (see {kept})"
    return ""


def _bucket(env: dict, folder: pathlib.Path) -> None:
    """Create the bucket once the S3 server answers (within 30 s)."""
    code = f"import boto3; boto3.client('s3').create_bucket(Bucket={BUCKET!r})"
    end = time.time() + 30
    while time.time() < end:
        if subprocess.run([sys.executable, "-c", code], env=env, capture_output=True).returncode == 0:
            return
        time.sleep(0.5)
    raise RuntimeError(f"the S3 server did not answer within 30 s (see {folder}/moto.log)")


def down() -> None:
    folder = _state_dir()
    if not (folder / "state.json").exists():
        _fail(f"not up (no {folder}/state.json)")
    killed = _stop(json.loads((folder / "state.json").read_text()))
    (folder / "state.json").unlink()
    print(f"cluster/laptop.py: down: {killed} processes stopped", file=sys.stderr)


if __name__ == "__main__":
    commands = {"up": up, "down": down}
    if len(sys.argv) != 2 or sys.argv[1] not in commands:
        _fail("usage: python cluster/laptop.py up|down")
    commands[sys.argv[1]]()
