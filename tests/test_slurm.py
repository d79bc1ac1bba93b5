"""The Slurm path, run for real: a two-node Slurm on one machine (Debian's ``slurm-wlm`` and ``munge``:
a ``munged``, a ``slurmctld`` and two ``slurmd`` on loopback, every file, socket and port the test's own),
the README's Slurm commands as written (``sbatch --wait ... cluster/slurm.sbatch``), one node's raylet
killed (kill -9) while it holds a trial at an injected fault point, and every grid point exactly once.

Each daemon lives in a process session of its own, ended whole by session id; the jobs' processes
(slurmstepd, srun, Ray) are found by the ``SLURM_CONF`` of this test in their environment. Nothing else
on the machine is touched.
"""
import os
import pathlib
import random
import re
import shutil
import signal
import subprocess
import tempfile
import time

import pyarrow.dataset as ds
import pyarrow.fs as pafs
import pytest

from bed import BIN, ROOT, free_port, kill_session, parts, raylets, readme_commands, session_pids, wait_for
from study.sweep.presets import PRESETS

LOCAL = pafs.LocalFileSystem()
DAEMONS = ("munged", "slurmctld", "slurmd", "sbatch", "srun", "squeue", "sinfo")
missing = [d for d in DAEMONS if not (shutil.which(d) or shutil.which(d, path="/usr/sbin"))]
pytestmark = [
    pytest.mark.skipif(bool(missing), reason=f"Debian's slurm-wlm and munge are not installed (no {', '.join(missing)}); "
                                             ".ci/run installs them with apt-get where it can"),
    pytest.mark.skipif(os.geteuid() != 0, reason="slurmd and munged run as root in this test bed"),
]


def sbin(name: str) -> str:
    return shutil.which(name) or shutil.which(name, path="/usr/sbin")


class LoopbackSlurm:
    """munged, slurmctld and two slurmd (nodes n1 and n2, one CPU each) on 127.0.0.1, under ``folder``."""

    def __init__(self, folder: pathlib.Path):
        self.folder = folder
        for sub in ("state", "spool", "log", "munge"):
            (folder / sub).mkdir(mode=0o700)
        os.chmod(folder / "munge", 0o711)  # munged wants its socket's folder searchable by every user
        self.conf = folder / "slurm.conf"
        self.env = {**os.environ, "SLURM_CONF": str(self.conf), "PATH": BIN + os.pathsep + os.environ["PATH"]}
        self.sessions = []
        key, sock = folder / "munge" / "munge.key", folder / "munge" / "sock"
        subprocess.run([sbin("mungekey"), "-c", "-k", str(key)], check=True, capture_output=True)
        os.chmod(key, 0o400)
        self._daemon([sbin("munged"), "-F", "-f", f"--socket={sock}", f"--key-file={key}",
                      f"--pid-file={folder}/munge/pid", f"--seed-file={folder}/munge/seed",
                      f"--log-file={folder}/log/munged.log"], "munged")
        assert wait_for(sock.exists, 20), "munged did not start (log/munged.log)"
        ctld, node1, node2 = free_port(), free_port(), free_port()
        self.conf.write_text(f"""ClusterName=memtest
SlurmctldHost=localhost(127.0.0.1)
SlurmUser=root
SlurmctldPort={ctld}
AuthType=auth/munge
AuthInfo=socket={sock}
StateSaveLocation={folder}/state
SlurmdSpoolDir={folder}/spool/%n
SlurmctldPidFile={folder}/slurmctld.pid
SlurmdPidFile={folder}/slurmd-%n.pid
SlurmctldLogFile={folder}/log/slurmctld.log
SlurmdLogFile={folder}/log/slurmd-%n.log
FirstJobId={random.randrange(10_000, 1_000_000)}
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
MpiDefault=none
NodeName=n1 NodeHostname=localhost NodeAddr=127.0.0.1 Port={node1} CPUs=1 RealMemory=2000 State=UNKNOWN
NodeName=n2 NodeHostname=localhost NodeAddr=127.0.0.1 Port={node2} CPUs=1 RealMemory=2000 State=UNKNOWN
PartitionName=debug Nodes=n1,n2 Default=YES MaxTime=INFINITE State=UP
""")
        self._daemon([sbin("slurmctld"), "-D", "-f", str(self.conf)], "slurmctld")
        for node in ("n1", "n2"):
            self._daemon([sbin("slurmd"), "-D", "-f", str(self.conf), "-N", node], f"slurmd-{node}")
        idle = wait_for(lambda: self.run(["sinfo", "-h", "-o", "%T %D"]).stdout.split() == ["idle", "2"], 60, 0.5)
        assert idle, f"the two nodes did not come up: {self.run(['sinfo']).stdout} (logs in {folder}/log)"

    def _daemon(self, argv: list[str], name: str) -> None:
        with open(self.folder / "log" / f"{name}.out", "w") as out:
            proc = subprocess.Popen(argv, env=self.env, stdout=out, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL, start_new_session=True)
        self.sessions.append(proc.pid)

    def run(self, argv: list[str], **kw) -> subprocess.CompletedProcess:
        return subprocess.run(argv, env=self.env, capture_output=True, text=True, timeout=60, **kw)

    def job_pids(self, job: str | None = None) -> list[int]:
        """The live processes of this Slurm's jobs (of job ``job`` only, if given), slurmstepd included."""
        mark = f"SLURM_CONF={self.conf}".encode()
        found = []
        for entry in os.listdir("/proc"):
            if entry.isdigit() and int(entry) != os.getpid():
                try:
                    env = pathlib.Path(f"/proc/{entry}/environ").read_bytes().split(b"\0")
                    state = pathlib.Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[-1].split()[0]
                except OSError:
                    continue
                if mark in env and state != "Z" and (job is None or f"SLURM_JOB_ID={job}".encode() in env):
                    found.append(int(entry))
        return [p for p in found if p not in self._daemon_pids()]

    def _daemon_pids(self) -> set[int]:
        return {pid for sid in self.sessions for pid in session_pids(sid)}

    def stop(self) -> None:
        for sid in self.sessions:
            kill_session(sid)
        for pid in self.job_pids():
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


@pytest.fixture(scope="module")
def slurm():
    folder = pathlib.Path(tempfile.mkdtemp(prefix="slurm", dir="/tmp"))
    cluster = LoopbackSlurm(folder)
    try:
        yield cluster
    finally:
        cluster.stop()
        for temp in pathlib.Path("/tmp").glob("ray-*-n[12]"):  # the job's Ray temp folders, this Slurm's ids
            if temp.stat().st_mtime >= folder.stat().st_mtime - 1:
                shutil.rmtree(temp, ignore_errors=True)
        shutil.rmtree(folder, ignore_errors=True)


def test_readme_slurm_commands_run_the_sweep_through_a_dead_node(slurm, tmp_path):
    """The README's sbatch line on two nodes: time to the first result, one node's Ray killed mid-trial,
    Tune's retry on the other, every grid point exactly once, the report, and no process left behind."""
    lines = readme_commands("### On a Slurm cluster", block=1)
    assert lines[0] == "source .venv/bin/activate" and len(lines) == 3, lines
    sbatch, report = lines[1], lines[2]
    assert sbatch.startswith("sbatch --wait ") and report.startswith("memsweep report ")
    sbatch = sbatch.replace("cluster/slurm.sbatch", str(ROOT / "cluster" / "slurm.sbatch"))  # run from tmp_path
    hold = tmp_path / "hold"
    hold.mkdir()
    env = {**slurm.env, "MEMSWEEP_FAULT_HOLD": str(hold),  # the first trial on a worker node to write holds there
           "RAY_health_check_period_ms": "1000", "RAY_health_check_failure_threshold": "3"}  # dead node in seconds
    out = tmp_path / "results" / "slurm-smoke"
    expected = {c.trial_id for c in PRESETS["smoke"].configs()}

    start = time.time()
    submit = subprocess.Popen(["bash", "-c", sbatch], env=env, cwd=tmp_path, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        job = wait_for(lambda: [p.name.split("-")[1].split(".")[0] for p in tmp_path.glob("memsweep-*.log")], 60)
        assert job, "sbatch started no job"
        job = job[0]
        wait_for(lambda: [p for p in parts(LOCAL, str(out / "trials")) if p.endswith(".parquet")], 180)
        t_result = time.time() - start
        held = wait_for(lambda: (hold / "held").exists() and (hold / "held").read_text(), 120)
        assert held, "no trial held on a worker node"
        nodes = raylets(slurm.job_pids(job))
        assert len(nodes) == 2 and held in nodes, nodes
        os.kill(nodes[held], signal.SIGKILL)  # that node's raylet, mid-trial: the node dies
        stdout, _ = submit.communicate(timeout=400)
    finally:
        kill_session(submit.pid)
    t_done = time.time() - start
    log = (tmp_path / f"memsweep-{job}.log").read_text()

    assert submit.returncode == 0, stdout + log[-4000:]  # sbatch --wait: the job's exit code
    assert "memsweep run exited 0" in log
    assert f"node {held[:6]}..{held[-5:]} died" in log
    assert "lost its worker (its process or node died); Tune runs it again" in log
    assert "4 trials: 4 done, 0 skipped (already there), 0 failed, 1 Tune trials retried" in log
    assert "Traceback" not in log  # Ray's own lines are in the per-node logs
    trials = ds.dataset(str(out / "trials"), format="parquet").to_table().to_pandas()
    assert sorted(trials.trial_id) == sorted(expected)  # no row lost, none duplicated
    assert (trials.status == "ok").all()
    assert sorted(parts(LOCAL, str(out / "trials")))[0].startswith("compacted-")
    left = wait_for(lambda: not slurm.job_pids(job), 60)
    assert left, f"the job left processes: {slurm.job_pids(job)}"

    report = report.replace("results/", f"{tmp_path}/results/")
    done = subprocess.run(["bash", "-c", report], env=env, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0 and (tmp_path / "results" / "slurm-smoke-report" / "report.html").exists(), done.stderr
    retried = int(re.search(r"(\d+) Tune trials retried", log).group(1))
    print(f"\nslurm test bed: first result {t_result:.1f} s after sbatch; job done {t_done:.1f} s; rows "
          f"{len(trials)} of {len(expected)} (duplicated {len(trials) - trials.trial_id.nunique()}); "
          f"Tune trials retried {retried}")
