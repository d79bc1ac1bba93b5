"""Compaction: fold a results folder's one-file-per-trial parts into a few large files per table.

A sweep writes one small part per trial and table (``parts.write_part``); thousands of them are
slow for every reader (each file is opened and its footer parsed), and parts of two schema versions
read wrong in tools that take the first file's schema. ``compact`` rewrites each table as
``compacted-<stamp>-<k>.parquet`` files of at most ``MAX_BYTES`` each, in the current schema with
missing columns filled, and removes what it folded in. ``memsweep run`` compacts at its end, and at
its start when the folder was written by an older schema.

Atomic, in this order, per table:

1. read every file with ``reader.read_table`` (each row once) and write the new files to ``_tmp/``;
2. write a journal, ``_tmp/compact-<table>.json``: the renames to make and the files to delete;
3. rename the new files into the table folder;
4. delete the folded files (a part rewritten meanwhile, by a rerun, is kept: it is newer);
5. delete the journal.

A kill before 2 leaves only temp files (a sweep's start deletes them); after 2, ``roll_forward``
(run by ``compact`` and by a sweep's start) finishes 3-5. Between 3 and 4 a trial's rows sit in its
part and in a compacted file: memsweep's readers take them once (``reader.read_table``); a reader
of its own (pandas, Polars, DuckDB) sees them twice during that moment only.
"""
from __future__ import annotations

import json
import os
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from .reader import COMPACTED, is_compacted, listing, part_files, read_table
from .schema import SCHEMA_VERSION, TABLES
from . import uri
from .uri import TMP, atomic_write, filesystem

MAX_BYTES = 128 * 2**20  # per compacted file, counted in memory (the Parquet file is smaller)


@dataclass
class Compacted:
    files_in: dict[str, int] = field(default_factory=dict)   # table -> files folded in
    files_out: dict[str, int] = field(default_factory=dict)  # table -> compacted files written
    rows: dict[str, int] = field(default_factory=dict)       # table -> rows

    def line(self) -> str:
        done = [t for t in TABLES if self.files_in.get(t)]
        if not done:
            return "nothing to compact"
        return "; ".join(f"{t}: {self.files_in[t]} files -> {self.files_out[t]} ({self.rows[t]} rows)" for t in done)


def compact(root: str, max_bytes: int = MAX_BYTES) -> Compacted:
    """Rewrite each table of ``root`` as a few compacted files (see the module's docstring).
    A table that is already one compacted file of the current schema is left alone."""
    roll_forward(root)
    summary = Compacted()
    for table in TABLES:
        listed = listing(root, table)
        files = sorted(listed)
        if not files or (len(files) == 1 and is_compacted(files[0]) and _current(root, files[0])):
            continue
        written = _compact_table(root, table, listed, max_bytes)
        summary.files_in[table], summary.files_out[table], summary.rows[table] = len(files), *written
    return summary


def _current(root: str, path: str) -> bool:
    fs, _ = filesystem(root)
    meta = pq.read_schema(path, filesystem=fs).metadata or {}
    return meta.get(b"memsweep_schema_version") == SCHEMA_VERSION.encode()


def _compact_table(root: str, table: str, listed: dict[str, int | None], max_bytes: int) -> tuple[int, int]:
    """Steps 1-5 for one table whose files (path -> mtime) are ``listed``: the rows of exactly those files."""
    fs, base = filesystem(root)
    data = read_table(root, table, files=sorted(listed))
    stamp = f"{time.strftime('%Y%m%dT%H%M%S', time.gmtime())}-{uuid.uuid4().hex[:6]}"
    moves = []
    fs.create_dir(f"{base}/{TMP}", recursive=True)
    for k, chunk in enumerate(_chunks(data, max_bytes)):
        name = f"{COMPACTED}{stamp}-{k:03d}.parquet"
        tmp = f"{base}/{TMP}/{table}.{name}.tmp"
        pq.write_table(chunk.replace_schema_metadata({"memsweep_schema_version": SCHEMA_VERSION}),
                       tmp, filesystem=fs)
        moves.append((tmp, f"{base}/{table}/{name}"))
    uri.fault_point("compact:written")
    _write_json(fs, base, _journal(base, table), {"moves": moves, "delete": [[p, t] for p, t in sorted(listed.items())]})
    uri.fault_point("compact:journaled")
    _complete(fs, _journal(base, table))
    return len(moves), len(data)


def _chunks(data: pa.Table, max_bytes: int) -> list[pa.Table]:
    """Runs of whole trials, each of at most about ``max_bytes`` (a trial's rows stay in one file)."""
    if data.nbytes <= max_bytes or len(data) < 2:
        return [data]
    data = data.sort_by("trial_id")
    per_row = data.nbytes / len(data)
    ids = data["trial_id"].to_pylist()
    out, start = [], 0
    while start < len(data):
        end = min(len(data), start + max(1, int(max_bytes / per_row)))
        while end < len(data) and ids[end] == ids[end - 1]:
            end += 1
        out.append(data.slice(start, end - start))
        start = end
    return out


def _mtimes(fs: pafs.FileSystem, folder: str) -> dict[str, int | None]:
    """path -> modification time of the files in ``folder``, from one listing."""
    return {i.path: i.mtime_ns for i in fs.get_file_info(pafs.FileSelector(folder, allow_not_found=True))
            if i.type == pafs.FileType.File}


def _journal(base: str, table: str) -> str:
    return f"{base}/{TMP}/compact-{table}.json"


def _write_json(fs: pafs.FileSystem, base: str, path: str, obj) -> None:
    def write(tmp: str) -> None:
        with fs.open_output_stream(tmp) as fh:
            fh.write(json.dumps(obj).encode())
    atomic_write(fs, base, path, write)


def _complete(fs: pafs.FileSystem, journal: str) -> None:
    """Steps 3-5 from a journal; safe to repeat. The folded files are deleted only once every new
    file is in place; a file rewritten since the journal was written (another mtime) is kept."""
    with fs.open_input_stream(journal) as fh:
        plan = json.loads(fh.read().decode())
    for tmp, final in plan["moves"]:
        if fs.get_file_info(tmp).type == pafs.FileType.File:
            fs.move(tmp, final)
    uri.fault_point("compact:renamed")
    if all(fs.get_file_info(final).type == pafs.FileType.File for _, final in plan["moves"]):
        now = _mtimes(fs, os.path.dirname(plan["moves"][0][1])) if plan["moves"] else {}
        with ThreadPoolExecutor(16) as pool:  # on an object store each delete is a request
            list(pool.map(fs.delete_file, [path for path, mtime_ns in plan["delete"] if now.get(path) == mtime_ns]))
    uri.fault_point("compact:deleted")
    fs.delete_file(journal)


def roll_forward(root: str) -> int:
    """Finish compactions a kill interrupted after their journal was written; returns how many."""
    fs, base = filesystem(root)
    journals = [i.path for i in fs.get_file_info(pafs.FileSelector(f"{base}/{TMP}", allow_not_found=True))
                if i.base_name.startswith("compact-") and i.base_name.endswith(".json")]
    for journal in journals:
        _complete(fs, journal)
    return len(journals)


def size_line(root: str) -> str:
    """'N files, M MB' over the tables of ``root``: what ``memsweep compact`` prints before and after."""
    fs, _ = filesystem(root)
    files = [f for t in TABLES for f in part_files(root, t)]
    size = sum(i.size or 0 for i in fs.get_file_info(files)) if files else 0
    return f"{len(files)} files, {size / 2**20:.1f} MB"

