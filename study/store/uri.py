"""Where results live, and how a file gets there whole.

A results folder is a local path or a URI pyarrow understands (``s3://``, ``gs://``); ``filesystem``
resolves either to a pyarrow file system and a base path. Every file memsweep writes into a results
folder goes through ``atomic_write``: written in full under ``_tmp/`` first, then renamed into place,
so a reader never sees half a file (the lease, ``lease.py``, publishes by a hard link or a
conditional write instead).
"""
from __future__ import annotations

import os
import uuid
from typing import Callable

import pyarrow as pa
import pyarrow.fs as pafs

from ..config import ConfigError

def is_remote(root: str) -> bool:
    """A URI (s3://, gs://, ...) rather than a path on this machine's disk."""
    return "://" in root


def filesystem(root: str) -> tuple[pafs.FileSystem, str]:
    if is_remote(root):
        path = root.split("://", 1)[1].split("?", 1)[0]
        if any(seg in (".", "..") for seg in path.split("/")):
            raise ConfigError(f"{root}: a URI names its folder plainly; '.' and '..' are not resolved in object "
                              "stores (write s3://BUCKET/PATH)")
        try:
            return pafs.FileSystem.from_uri(root)
        except (pa.ArrowException, OSError, ValueError) as exc:  # an unknown scheme, a malformed URI
            raise ConfigError(f"{root}: {one_line(exc)}") from None
    return pafs.LocalFileSystem(), os.path.abspath(root)


def one_line(exc: BaseException) -> str:
    """The first line of an exception's message: storage errors from pyarrow run to many lines."""
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


TMP = "_tmp"  # where parts are written before they are renamed into their table: no reader looks there


def fault_point(name: str) -> None:
    """Named moments of writing results: ``<table>:written`` (a part's temp file is whole),
    ``<table>:renamed`` (the part is in place), and compaction's ``compact:written``, ``compact:journaled``,
    ``compact:renamed``, ``compact:deleted`` (``compact.py``). Does nothing: tests replace it
    (``uri.fault_point``, which every writer calls through this module) to kill a writer exactly there."""


def temp_path(base: str, name: str) -> str:
    """A fresh temp file's path under ``base/_tmp/`` (created), for a file to be renamed to ``name``."""
    return f"{base}/{TMP}/{name}.{uuid.uuid4().hex[:8]}.tmp"


def atomic_write(fs: pafs.FileSystem, base: str, dst: str, write: Callable[[str], None],
                 moment: str | None = None) -> str:
    """Make ``dst`` appear whole or not at all: ``write(tmp)`` writes a temp file under ``base/_tmp/``,
    which is then renamed to ``dst`` (atomic on POSIX; an object store publishes the object whole).
    ``moment`` names the ``fault_point``s ``<moment>:written`` and ``<moment>:renamed``."""
    fs.create_dir(f"{base}/{TMP}", recursive=True)
    tmp = temp_path(base, f"{os.path.basename(os.path.dirname(dst))}.{os.path.basename(dst)}")
    write(tmp)
    if moment:
        fault_point(f"{moment}:written")
    fs.move(tmp, dst)
    if moment:
        fault_point(f"{moment}:renamed")
    return dst
