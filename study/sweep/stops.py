"""How a sweep stops early: each cause as one exception whose message is one line (every finished row
is kept), the storage errors a retry cannot remove, SIGTERM routed like Ctrl-C, and the cause of a Tune
trial's failure read from its trace.
"""
from __future__ import annotations

import errno
import re
import signal
import threading


class SweepStopped(RuntimeError):
    """The sweep stopped early for a cause its message names in one line; every finished row is kept."""


class StartTimeout(SweepStopped):
    """No trial started within ``--start-timeout`` seconds."""


class StorageFailed(SweepStopped):
    """A trial could not write its results for a cause that a retry cannot remove (``NO_RETRY``)."""


NO_RETRY = {errno.ENOSPC: "disk full", errno.EDQUOT: "disk quota exceeded", errno.EROFS: "read-only file system",
            errno.EACCES: "permission denied", errno.EPERM: "operation not permitted"}


def storage_errno(exc: BaseException) -> int | None:
    """The errno of a failed write: OSError's own, or the one pyarrow names in its message ("[errno 28]")."""
    if isinstance(exc, OSError) and exc.errno:
        return exc.errno
    found = re.search(r"\[errno (\d+)\]", str(exc), re.IGNORECASE)
    return int(found.group(1)) if found else None


class Interrupted(KeyboardInterrupt):
    """SIGTERM, raised in the main thread as Ctrl-C raises KeyboardInterrupt, so that a sweep stops the
    same way for both: its ``finally`` blocks run (Ray shut down, the lease given back) and every
    finished row stays. Ray's driver handler would call sys.exit instead, and its shutdown then aborts."""

    signum = signal.SIGTERM


def raise_on_sigterm() -> None:
    """Route SIGTERM to ``Interrupted`` (main thread only; ``ray.init`` installs a handler of its own,
    so the sweep calls this again once Ray is up)."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _sigterm)


def _sigterm(signum, frame) -> None:
    SIGNALLED.append(signum)  # Ray's compiled code may re-raise it as a plain KeyboardInterrupt
    raise Interrupted()


SIGNALLED: list[int] = []  # the SIGTERMs this process received (``Interrupted``)


WORKER_DIED = ("ActorDiedError", "RayActorError", "WorkerCrashedError", "NodeDiedError", "ActorUnavailableError",
               "node has died", "worker died", "actor died",
               "The actor is temporarily unavailable")  # Tune records only this text when the actor's node dies


def failure_cause(error_file: str | None) -> str | None:
    """The cause of a Tune trial's failure from its error trace (``Trial.error_file``): Ray's memory
    monitor named as such, else the trace's last line; None when its worker died (``WORKER_DIED``: a
    crash, a lost node) or nothing was recorded."""
    try:
        with open(error_file or "") as fh:
            lines = [line.strip() for line in fh if line.strip()]
    except OSError:
        return None
    if any("OutOfMemoryError" in line for line in lines):
        return "its worker was killed for lack of memory by Ray's memory monitor: lower --max-concurrent or the nets"
    last = lines[-1] if lines else ""
    return None if not last or any(name in line for line in lines for name in WORKER_DIED) else last[:300]
