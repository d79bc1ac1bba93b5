"""Test bed for the cluster path on one machine: free loopback ports, processes found and ended by
their process session (never by name, never `ray stop`), Ray's fake nodes found by their raylets,
an S3 server (moto) on loopback, and the README's laptop commands read back as the tests run them."""
from __future__ import annotations

import os
import pathlib
import re
import signal
import socket
import sys
import time

import pyarrow.fs as pafs

ROOT = pathlib.Path(__file__).resolve().parents[1]
BIN = os.path.dirname(sys.executable)
HEAD_NODE_ID = "f" * 51 + "00000"  # the fake provider's id for the head (node_provider.FAKE_HEAD_NODE_ID)


def free_port() -> int:
    """A free TCP port on 127.0.0.1 (from the ephemeral range, so never among Ray's worker ports)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def session_pids(sid: int) -> list[int]:
    """Every process in process session ``sid``."""
    pids = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                if os.getsid(int(name)) == sid:
                    pids.append(int(name))
            except (ProcessLookupError, PermissionError):
                pass
    return pids


def kill_session(sid: int) -> None:
    """SIGKILL every process of a session this test started (never the test's own session)."""
    if sid <= 1 or sid == os.getsid(0):
        raise ValueError(f"refusing to end session {sid}: not one this test started")
    for pid in session_pids(sid):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def raylets(pids: list[int]) -> dict[str, int]:
    """node id -> raylet pid, for the Ray nodes whose raylets are among ``pids``."""
    found = {}
    for pid in pids:
        try:
            args = pathlib.Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
        except OSError:
            continue
        if args and args[0].endswith("/raylet"):
            node = next((a.split("=", 1)[1] for a in args if a.startswith("--node_id=")), None)
            if node:
                found[node] = pid
    return found


def s3(endpoint: str) -> pafs.S3FileSystem:
    """A pyarrow view of the moto server at ``endpoint`` (http://127.0.0.1:PORT)."""
    return pafs.S3FileSystem(endpoint_override=endpoint, scheme="http", access_key="local", secret_key="local",
                             region="us-east-1", allow_bucket_creation=True)


def parts(fs: pafs.FileSystem, folder: str) -> list[str]:
    """Names of the objects directly under ``folder`` (no such folder: none)."""
    infos = fs.get_file_info(pafs.FileSelector(folder, allow_not_found=True))
    return sorted(i.base_name for i in infos if i.type == pafs.FileType.File)


def wait_for(check, timeout: float, every: float = 0.25):
    """Poll ``check()`` until it returns something truthy; that value, or None at the timeout."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = check()
        if value:
            return value
        time.sleep(every)
    return None


def readme_commands(heading: str, block: int = 0) -> list[str]:
    """The commands of the ``block``-th bash block under the README's ``heading``, one per entry
    (continuation lines joined)."""
    text = (ROOT / "README.md").read_text()
    section = text[text.index(heading):]
    code = re.findall(r"```bash\n(.*?)```", section, flags=re.S)[block]
    return [line.strip() for line in code.replace("\\\n", " ").splitlines() if line.strip()]


def laptop_commands() -> list[str]:
    """The README's "cluster path on a laptop" commands."""
    return readme_commands("### The cluster path on a laptop")
