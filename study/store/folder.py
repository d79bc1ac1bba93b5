"""A results folder as a whole: its record ``sweep.json``, what is finished in it, setting aside what
cannot be read, clearing it. ``ResultsFolder`` is the folder as one command sees it: opened once, its
manifest read once and its finished trials listed once, then passed down (the driver, the progress
line and each Tune trial take what is finished from it rather than listing the folder again).
"""
from __future__ import annotations

import json
import os
import uuid
import warnings
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from ..config import ConfigError
from ..rules import ERROR
from .reader import finished_ids, is_compacted, is_data_file, part_files, part_problem
from .schema import TABLES, TRIAL_SCHEMA
from .uri import TMP, atomic_write, filesystem, one_line

_UNREAD = object()


class ResultsFolder:
    """One results folder for the length of one command. ``manifest`` is ``sweep.json`` as read at the
    first use (None: there is none); ``finished`` the ids of trials with a row, listed at the first use
    and kept current by the command (``add_finished``, ``set_aside``, ``clear``)."""

    def __init__(self, root: str):
        self.root = root
        self._manifest: Any = _UNREAD
        self._finished: set[str] | None = None
        self.manifest_damaged = False  # sweep.json was there but damaged, and this command goes on without it

    @property
    def manifest(self) -> dict[str, Any] | None:
        if self._manifest is _UNREAD:
            self._manifest = read_manifest(self.root)
        return self._manifest

    def forget_manifest(self) -> None:
        """Go on without a damaged ``sweep.json`` (``--repair``, ``--force``): it reads as absent."""
        self._manifest, self.manifest_damaged = None, True

    @property
    def finished(self) -> set[str]:
        if self._finished is None:
            self._finished = finished_ids(self.root)
        return self._finished

    def add_finished(self, ids) -> None:
        """Trials whose rows this command wrote."""
        self.finished.update(ids)

    def set_aside(self) -> tuple[list[str], list[str]]:
        """``set_aside`` of this folder; what is finished is what it kept."""
        self._finished = set()
        return set_aside(self.root, self._finished)

    def write_manifest(self, manifest: dict[str, Any]) -> None:
        write_manifest(self.root, manifest)
        self._manifest = manifest

    def clear(self) -> None:
        clear(self.root)
        self._manifest, self._finished = None, set()


def set_aside(root: str, finished: set[str] | None = None) -> tuple[list[str], list[str]]:
    """Before a sweep (re)starts, so that those grid points run again: move table files that are not
    readable (truncated, empty, another schema) to ``_damaged/<table>/``, and with a damaged part of
    another table every part and row of its trial, which is incomplete; move the rows of trials
    that ended in ``error`` (an exception, a node without CUDA: a fault of the run, not a result) to
    ``_errors/<table>/``: a part whole, a compacted file's rows by rewriting it without them; delete
    the temp files that a killed writer left in ``_tmp/``. Nothing is read as data or deleted
    silently. Returns the names of the damaged files and of the errored trials; ``finished``, when
    given, receives the trials with a row after that, from the same pass over ``trials/``."""
    fs, base = filesystem(root)
    damaged, errored, finished = [], [], finished if finished is not None else set()
    for info in fs.get_file_info(pafs.FileSelector(f"{base}/{TMP}", allow_not_found=True)):
        if info.type == pafs.FileType.File and info.base_name.endswith(".tmp"):
            fs.delete_file(info.path)  # a writer killed before its rename
    # a damaged part of another table: its trial is incomplete, so all of that trial leaves (its trial row
    # first, as a resume reads only trials/) and runs again
    for table in (t for t in TABLES if t != "trials"):
        for path in part_files(root, table):
            if is_compacted(path) or not part_problem(fs, path, TABLES[table]):
                continue
            tid = os.path.basename(path).removesuffix(".parquet")
            for other in ["trials", *(t for t in TABLES if t != "trials")]:
                part = f"{base}/{other}/{tid}.parquet"
                if fs.get_file_info(part).type == pafs.FileType.File:
                    _move(fs, part, f"{base}/_damaged/{other}/{tid}.parquet")
                else:
                    for file in filter(is_compacted, part_files(root, other)):
                        _drop_rows(fs, base, other, file, {tid}, "_damaged")
            damaged.append(f"{table}/{os.path.basename(path)}")
    trial_files = fs.get_file_info(pafs.FileSelector(f"{base}/trials", allow_not_found=True))  # the one listing
    for info in trial_files:
        if info.type == pafs.FileType.File and info.base_name.startswith(".") and info.base_name.endswith(".tmp"):
            fs.delete_file(info.path)  # left in the table folder by a writer older than _tmp/
    for path in sorted(i.path for i in trial_files if is_data_file(i)):
        name = os.path.basename(path)
        if part_problem(fs, path, TRIAL_SCHEMA):
            _move(fs, path, f"{base}/_damaged/trials/{name}")
            damaged.append(f"trials/{name}")
            continue
        rows = pq.read_table(path, columns=["trial_id", "status"], filesystem=fs).to_pylist()
        if not is_compacted(path) and any(r["trial_id"] != name.removesuffix(".parquet") for r in rows):
            _move(fs, path, f"{base}/_damaged/trials/{name}")  # another trial's rows, copied under this name
            damaged.append(f"trials/{name}")
            continue
        bad = {r["trial_id"] for r in rows if r["status"] == ERROR}
        if bad and not is_compacted(path):
            _move(fs, path, f"{base}/_errors/trials/{name}")
        elif bad:
            for table in [*(t for t in TABLES if t != "trials"), "trials"]:  # trials last: resume reads it
                for file in filter(is_compacted, part_files(root, table)):
                    _drop_rows(fs, base, table, file, bad)
        errored.extend(sorted(bad))
        finished.update(r["trial_id"] for r in rows if r["trial_id"] not in bad)
    return damaged, errored


def _move(fs: pafs.FileSystem, src: str, dst: str) -> None:
    fs.create_dir(os.path.dirname(dst), recursive=True)
    fs.move(src, dst)


def _drop_rows(fs: pafs.FileSystem, base: str, table: str, file: str, ids: set[str], to: str = "_errors") -> None:
    """Rewrite compacted ``file`` without the rows of ``ids``, which go to ``<to>/<table>/`` first."""
    data = pq.read_table(file, filesystem=fs)
    out = pc.is_in(data["trial_id"], pa.array(sorted(ids)))
    if not pc.any(out).as_py():
        return
    name = os.path.basename(file)
    for rows, dst in [(data.filter(out), f"{base}/{to}/{table}/{name}"), (data.filter(pc.invert(out)), file)]:
        fs.create_dir(os.path.dirname(dst), recursive=True)
        atomic_write(fs, base, dst, lambda tmp: pq.write_table(rows, tmp, filesystem=fs))  # replaces the file whole


MANIFEST = "sweep.json"


def check_writable(root: str) -> None:
    """Write and delete a small probe object under ``root``: a real write, not a permission check
    (root passes access checks on read-only file systems; a bucket may exist yet refuse writes).
    Raises ConfigError with one line naming the storage's complaint."""
    fs, base = filesystem(root)
    probe = f"{base}/.write-test-{uuid.uuid4().hex[:8]}"
    try:
        fs.create_dir(base, recursive=True)
        with fs.open_output_stream(probe) as fh:
            fh.write(b"ok")
        fs.delete_file(probe)
    except (OSError, pa.ArrowException) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else one_line(exc)
        raise ConfigError(f"--out {root}: cannot write results there ({reason})") from None


def open_results(root: str) -> dict[str, Any] | None:
    """Check that ``root`` is a results folder and return its manifest (None for a folder written by
    ``memsweep trial``). A missing or unreadable folder (no such bucket, no credentials), or one that
    holds neither ``sweep.json`` nor a table, raises ConfigError with one line saying which."""
    fs, base = filesystem(root)
    try:
        kind = fs.get_file_info(base).type
        if kind == pafs.FileType.NotFound:
            raise ConfigError(f"no results folder at {root}")
        if kind != pafs.FileType.Directory:
            raise ConfigError(f"{root} is a file, not a results folder")
        try:
            manifest = read_manifest(root)
        except DamagedManifest as exc:  # the rows are still readable: say so, and read them
            warnings.warn(str(exc), stacklevel=2)
            manifest = None
        if manifest is None and not any(part_files(root, t) for t in TABLES):
            hint = " (give the folder above it)" if os.path.basename(base.rstrip("/")) in TABLES else ""
            raise ConfigError(f"{root} holds no memsweep results: no sweep.json and no table parts{hint}")
    except (OSError, pa.ArrowException) as exc:
        raise ConfigError(f"cannot read {root}: {one_line(exc)}") from None
    return manifest


def write_manifest(root: str, manifest: dict[str, Any]) -> None:
    fs, base = filesystem(root)
    fs.create_dir(base, recursive=True)

    def write(tmp: str) -> None:
        with fs.open_output_stream(tmp) as fh:
            fh.write(json.dumps(manifest, indent=2, default=str).encode())
    atomic_write(fs, base, f"{base}/{MANIFEST}", write)


class DamagedManifest(ConfigError):
    """A ``sweep.json`` that is not the record memsweep wrote (truncated, hand-edited)."""


MANIFEST_MAX_BYTES = 16 * 2**20  # far above any sweep's record; a larger file is not one


def read_manifest(root: str) -> dict[str, Any] | None:
    """The sweep's record, ``sweep.json``; None when there is none. Raises DamagedManifest (one line,
    naming the repair) when it is not a JSON object with a ``grid`` table."""
    fs, base = filesystem(root)
    info = fs.get_file_info(f"{base}/{MANIFEST}")
    if info.type != pafs.FileType.File:
        return None
    why = f"{info.size:,} bytes" if info.size > MANIFEST_MAX_BYTES else None
    if why is None:
        with fs.open_input_stream(f"{base}/{MANIFEST}") as fh:
            try:
                manifest = json.loads(fh.read().decode())
                if not (isinstance(manifest, dict) and isinstance(manifest.get("grid"), dict)
                        and isinstance(manifest["grid"].get("axes"), dict)):
                    why = "no grid recorded"
            except (UnicodeDecodeError, json.JSONDecodeError) as exc:
                why = f"not JSON: {exc}"
    if why:
        raise damaged_manifest(root, why)
    return manifest


def damaged_manifest(root: str, why: str) -> DamagedManifest:
    return DamagedManifest(f"{root}/{MANIFEST} is damaged ({why}); `memsweep run --repair` with the grid that "
                           "wrote it rebuilds it and keeps every finished row")


TUNE = "_tune"  # Ray Tune's own record of the last run (its ResultGrid): memsweep never reads it back


def clear_tune(root: str) -> None:
    """Remove Ray Tune's record of an earlier run, before a new run of the sweep writes its own."""
    fs, base = filesystem(root)
    if fs.get_file_info(f"{base}/{TUNE}").type == pafs.FileType.Directory:
        fs.delete_dir(f"{base}/{TUNE}")


def clear(root: str) -> None:
    """Remove a sweep's results, Tune state and manifest (``memsweep run --force``)."""
    fs, base = filesystem(root)
    for name in [*TABLES, TUNE, "_damaged", "models"]:
        if fs.get_file_info(f"{base}/{name}").type == pafs.FileType.Directory:
            fs.delete_dir(f"{base}/{name}")
    if fs.get_file_info(f"{base}/{MANIFEST}").type == pafs.FileType.File:
        fs.delete_file(f"{base}/{MANIFEST}")
