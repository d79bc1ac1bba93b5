"""One driver per results folder: the lease ``DIR/_lease.json``.

Every command that writes a results folder as a whole (``memsweep run``, ``refine``, ``compact``,
``trial --out``) takes the folder's lease before it writes anything and gives it back at its end.
A second driver meanwhile is refused with one line naming the holder (its command, pid, host, start
and last heartbeat), exit 2. The holder's heartbeat rewrites the lease every ``HEARTBEAT_S``; a
lease whose heartbeat is older than ``STALE_S``, or whose holder ran on this host and is gone (a
``kill -9``), is stale and taken over, with a line saying whose it was. Ray workers write parts
under the driver's lease.

Taking the lease is one atomic create-if-absent, so two drivers starting together cannot both win:

- on a local disk, a hard link of the written lease to its name, which fails when the name exists:
  atomic on local file systems (and on NFS), and a reader never sees a half-written lease;
- on S3, a PutObject with ``If-None-Match: *``, S3's conditional write: the second writer gets
  412 Precondition Failed. The heartbeat and a takeover are PutObjects with ``If-Match`` the ETag
  read, the release a conditional delete, so a driver never overwrites a lease it no longer holds.
  pyarrow's file systems offer no conditional write (an S3 ``move`` is a copy and a delete), which is
  why the S3 lease goes through boto3. A lease's age on S3 is the server's clock (the response's Date
  minus the object's Last-Modified), so clocks of the drivers' machines need not agree.
"""
from __future__ import annotations

import json
import os
import platform
import sys
import threading
import time
import uuid
from dataclasses import asdict, dataclass
from urllib.parse import parse_qs, urlparse

from ..config import ConfigError

LEASE = "_lease.json"
HEARTBEAT_S = 15.0  # the holder rewrites its lease this often
STALE_S = 120.0     # a lease not rewritten for this long is taken over (eight missed heartbeats)


class LeaseHeld(ConfigError):
    """Another driver holds the results folder."""


@dataclass
class Holder:
    token: str
    command: str
    pid: int
    host: str
    started: str

    def describe(self, age: float) -> str:
        return (f"{self.command!r} (pid {self.pid} on {self.host}, started {self.started}, last heartbeat "
                f"{age:.0f} s ago)")

    def gone(self) -> bool:
        """The holder ran on this host and its process no longer exists."""
        if self.host != platform.node():
            return False
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return True
        except PermissionError:  # another user's live process
            return False
        return False


class _Local:
    """The lease as a file on this machine's disk; its tag is the holder's token."""

    def __init__(self, folder: str):
        self.folder, self.path = folder, os.path.join(folder, LEASE)

    def create(self, body: bytes, token: str) -> str | None:
        """The whole lease appears at once: written to a temp file, then hard-linked into place, which
        fails when the name exists (so a reader never sees a half-written lease)."""
        tmp = f"{self.path}.{token[:8]}.tmp"
        with open(tmp, "wb") as fh:
            fh.write(body)
        try:
            os.link(tmp, self.path)
        except FileExistsError:
            return None
        finally:
            os.unlink(tmp)
        return token

    def read(self) -> tuple[Holder, str, float] | None:
        try:
            with open(self.path, "rb") as fh:
                holder = _holder(fh.read(), self.path)
            age = time.time() - os.stat(self.path).st_mtime
        except FileNotFoundError:
            return None
        return holder, holder.token, age

    def replace(self, body: bytes, tag: str, token: str) -> str | None:
        """Write ``body`` if the lease still holds ``tag``: a check, then an atomic rename. Between the
        two another driver could only have come in by a takeover, which waits STALE_S of silence."""
        now = self.read()
        if now is None or now[1] != tag:
            return None
        tmp = f"{self.path}.{uuid.uuid4().hex[:8]}.tmp"
        with open(tmp, "wb") as fh:
            fh.write(body)
        os.replace(tmp, self.path)
        return token

    def delete(self, tag: str) -> None:
        now = self.read()
        if now is not None and now[1] == tag:
            os.unlink(self.path)


class _S3:
    """The lease as an S3 object, written with S3's conditional requests; its tag is the ETag."""

    def __init__(self, root: str):
        try:
            import boto3
            from botocore.exceptions import BotoCoreError, ClientError
        except ImportError:
            raise ConfigError(f"{root}: the lease of an S3 results folder is written with boto3: pip install "
                              "'memsweep[study]'") from None
        url = urlparse(root)
        query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        endpoint = query.get("endpoint_override")
        if endpoint and "://" not in endpoint:
            endpoint = f"{query.get('scheme', 'https')}://{endpoint}"
        self.client = boto3.client("s3", endpoint_url=endpoint, region_name=query.get("region"))
        self.endpoint = self.client.meta.endpoint_url
        self.bucket, self.key = url.netloc, f"{url.path.strip('/')}/{LEASE}".lstrip("/")
        self.errors = (BotoCoreError, ClientError)
        self.ClientError = ClientError

    def _failed(self, exc: Exception) -> bool:
        return isinstance(exc, self.ClientError) and exc.response["Error"]["Code"] in (
            "PreconditionFailed", "ConditionalRequestConflict", "NoSuchKey", "412")

    def _call(self, fn, **kw):
        try:
            return fn(Bucket=self.bucket, Key=self.key, **kw)
        except self.errors as exc:
            if self._failed(exc):
                return None
            raise OSError(f"{type(exc).__name__}: {exc} (endpoint {self.endpoint})") from None

    def create(self, body: bytes, token: str) -> str | None:
        done = self._call(self.client.put_object, Body=body, IfNoneMatch="*")
        return done and done["ETag"]

    def read(self) -> tuple[Holder, str, float] | None:
        got = self._call(self.client.get_object)
        if got is None:
            return None
        from email.utils import parsedate_to_datetime
        now = parsedate_to_datetime(got["ResponseMetadata"]["HTTPHeaders"]["date"])
        return _holder(got["Body"].read(), f"s3://{self.bucket}/{self.key}"), got["ETag"], \
            (now - got["LastModified"]).total_seconds()

    def replace(self, body: bytes, tag: str, token: str) -> str | None:
        done = self._call(self.client.put_object, Body=body, IfMatch=tag)
        return done and done["ETag"]

    def delete(self, tag: str) -> None:
        self._call(self.client.delete_object, IfMatch=tag)


def _holder(body: bytes, where: str) -> Holder:
    try:
        return Holder(**json.loads(body.decode()))
    except (ValueError, TypeError, UnicodeDecodeError):
        raise ConfigError(f"{where} is not a memsweep lease; if no driver runs on this folder, delete it") from None


class Lease:
    """``with Lease(root, command):`` holds ``root``'s lease for the block (see the module's docstring)."""

    def __init__(self, root: str, command: str | None = None):
        self.root, self.command = root, command or " ".join(["memsweep", *sys.argv[1:]])
        self.holder = Holder(uuid.uuid4().hex, self.command, os.getpid(), platform.node(),
                             time.strftime("%Y-%m-%dT%H:%M:%S%z"))
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._created: str | None = None  # a local folder this lease created, removed again if left empty
        self.lost = False

    def __enter__(self) -> "Lease":
        self.acquire()
        return self

    def __exit__(self, *exc) -> None:
        self.release()

    def acquire(self) -> None:
        self.store = self._open()
        if self.store is None:
            print(f"[memsweep] {self.root}: no lease on this storage (memsweep's lease needs a local disk or S3, "
                  "for their atomic create): make sure no other driver writes there", file=sys.stderr)
            return
        body = json.dumps(asdict(self.holder)).encode()
        for _ in range(3):
            try:
                if tag := self.store.create(body, self.holder.token):
                    self.tag = tag
                    break
                now = self.store.read()
                if now is None:
                    continue  # given back meanwhile: try again
                other, tag, age = now
                if age <= STALE_S and not other.gone():
                    raise LeaseHeld(f"{self.root} is in use by another memsweep driver, {other.describe(age)}: wait "
                                    f"for it to finish or stop it (a lease without a heartbeat for {STALE_S:.0f} s "
                                    "is taken over)")
                if tag := self.store.replace(body, tag, self.holder.token):
                    why = "its process is gone" if other.gone() else f"no heartbeat for {age:.0f} s"
                    print(f"[memsweep] took over the lease of {self.root} from {other.describe(age)}: {why}",
                          file=sys.stderr)
                    self.tag = tag
                    break
            except OSError as exc:
                self._tidy()
                raise ConfigError(f"--out {self.root}: cannot write results there ({exc.strerror or exc})") from None
        else:
            raise LeaseHeld(f"{self.root}: another driver took its lease at the same moment; try again")
        self._thread = threading.Thread(target=self._beat, name="memsweep-lease", daemon=True)
        self._thread.start()

    def _open(self) -> _Local | _S3 | None:
        if "://" in self.root:
            from .uri import filesystem
            filesystem(self.root)  # a malformed URI is one line, before any request
            return _S3(self.root) if self.root.startswith("s3://") else None
        folder = os.path.abspath(self.root)
        if os.path.exists(folder) and not os.path.isdir(folder):
            raise ConfigError(f"--out {self.root} is a file, not a folder")
        try:
            missing = not os.path.exists(folder)
            os.makedirs(folder, exist_ok=True)
        except OSError as exc:
            raise ConfigError(f"--out {self.root}: cannot write results there ({exc.strerror or exc})") from None
        self._created = folder if missing else None
        return _Local(folder)

    def _beat(self) -> None:
        while not self._stop.wait(HEARTBEAT_S):
            try:
                tag = self.store.replace(json.dumps(asdict(self.holder)).encode(), self.tag, self.holder.token)
            except (OSError, ConfigError):
                continue  # storage away for a moment: the next beat tries again
            if tag is None:
                self.lost = True
                print(f"[memsweep] lost the lease of {self.root}: another driver took it over (this one was "
                      f"silent for {STALE_S:.0f} s); its writes now race with that driver's", file=sys.stderr)
                return
            self.tag = tag

    def release(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
            if not self.lost:
                try:
                    self.store.delete(self.tag)
                except OSError:  # storage away: the lease goes stale and is taken over
                    pass
        self._tidy()

    def _tidy(self) -> None:
        if self._created:
            try:
                os.rmdir(self._created)  # only if empty: a refusal leaves no folder behind
            except OSError:
                pass
            self._created = None
