"""Reading a results folder's tables: each row once, in the current schema, damaged files named.

A table folder holds parts, ``<trial_id>.parquet`` (``parts.py``), and compacted files,
``compacted-<stamp>-<k>.parquet`` (``compact.py``). Every memsweep reader goes through ``read_table``:
a trial's rows come from its part if it has one (written after the last compaction: a rerun), else
from the newest compacted file that holds it, so each row is read once, also mid-compaction.
"""
from __future__ import annotations

import os
import warnings
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from ..config import ConfigError
from .schema import CONFIG_DEFAULTS, LIST_FIELDS, SCHEMA_1, TABLES, flat, table_of
from .uri import filesystem

COMPACTED = "compacted-"  # no trial id starts so: ids start with the arch


def is_compacted(path: str) -> bool:
    return os.path.basename(path).startswith(COMPACTED)


def listing(root: str, table: str) -> dict[str, int | None]:
    """The data files of one table, parts and compacted files (temp and '_' names excluded), each with
    its modification time in ns, from one listing of the table folder."""
    fs, base = filesystem(root)
    infos = fs.get_file_info(pafs.FileSelector(f"{base}/{table}", allow_not_found=True))
    return {i.path: i.mtime_ns for i in infos if is_data_file(i)}


def is_data_file(info: pafs.FileInfo) -> bool:
    """A part or a compacted file (not a temp file, not a '_' or '.' name)."""
    return (info.type == pafs.FileType.File and info.base_name.endswith(".parquet")
            and not info.base_name.startswith((".", "_")))


def part_files(root: str, table: str) -> list[str]:
    """The data files of one table, parts and compacted files, sorted (``listing``)."""
    return sorted(listing(root, table))


def finished_ids(root: str) -> set[str]:
    """Trial ids with a row in ``trials/`` (a part or a compacted file): what a resumed sweep skips."""
    fs, _ = filesystem(root)
    ids = set()
    for path in part_files(root, "trials"):
        if is_compacted(path):
            ids.update(pq.read_table(path, columns=["trial_id"], filesystem=fs).column("trial_id").to_pylist())
        else:
            ids.add(os.path.basename(path)[:-len(".parquet")])
    return ids


def part_problem(fs: pafs.FileSystem, path: str, schema: pa.Schema) -> str | None:
    """Why the file at ``path`` is not a readable part of ``schema``'s table (None if it is).
    Reads the Parquet footer only: a truncated, empty or foreign file fails here."""
    try:
        found = pq.read_schema(path, filesystem=fs)
    except (pa.ArrowException, OSError) as exc:
        return f"not a readable Parquet file ({exc})"
    # parts written before a config field or a later metric column existed lack it: readers fill in
    # the field's default (what those trials ran with) or null (not measured then)
    missing = sorted(set(SCHEMA_1[table_of(schema)]) - set(found.names))
    if missing:
        return f"not a memsweep part of this table (missing columns {missing[:5]}{'...' if len(missing) > 5 else ''})"
    return None


class DamagedPartError(ConfigError):
    """A file in a table folder that cannot be read as the table it belongs to."""


FILE = "__filename"  # the scan's own column: which file a row came from


def read_table(root: str, table: str, skip_damaged: bool = False, skipped: list[str] | None = None,
               ids: list[str] | None = None, files: list[str] | None = None) -> pa.Table:
    """One table, each row once, in the current schema: one ``pyarrow.dataset`` scan of every file (in
    parallel, each opened once); columns a file lacks read as null, config fields as their defaults.
    With ``ids``, only those trials' rows (the scan skips the rest); with ``files``, the table's files
    as the caller listed them (``part_files``), so the folder is not listed again. A file the scan cannot read
    (damaged, or an older schema with another type) sends the table through ``read_part`` file by
    file, which names the file: ``DamagedPartError``, or with ``skip_damaged`` a warning and the path
    appended to ``skipped``. Every memsweep reader of a results folder comes through here."""
    schema = TABLES[table]
    fs, _ = filesystem(root)
    files = part_files(root, table) if files is None else files
    if ids is not None:  # a trial's part is named by its id: other parts need not be opened at all
        wanted = {f"{i}.parquet" for i in ids}
        files = [f for f in files if is_compacted(f) or os.path.basename(f) in wanted]
    if not files:
        return schema.empty_table()
    only = pc.field("trial_id").isin(list(ids)) if ids is not None else None
    try:
        data = ds.dataset(files, schema=schema, format="parquet", filesystem=fs).to_table(
            columns=[*schema.names, FILE], filter=only, use_threads=True)
        if data["trial_id"].null_count:  # a foreign Parquet file scans as rows of nulls
            raise ValueError("a part without trial ids")
    except (pa.ArrowException, OSError, ValueError):
        data = _one_by_one(fs, files, schema, skip_damaged, skipped)
        data = data.filter(only) if only is not None else data
    compacted = [f for f in files if is_compacted(f)]
    for file, tid in _misnamed(data, compacted).items():
        problem = (f"{file}: its rows are of trial {tid}, not of the trial it is named after (a part copied or "
                   "renamed by hand)")
        if not skip_damaged:
            raise DamagedPartError(f"{problem}; move it away, or pass skip_damaged=True to skip it")
        warnings.warn(f"skipping damaged part {problem}", stacklevel=2)
        data = data.filter(pc.not_equal(data[FILE], file))
        if skipped is not None:
            skipped.append(file)
    return _once(_defaults(data), compacted).drop_columns([FILE])


def _misnamed(data: pa.Table, compacted: list[str]) -> dict[str, str]:
    """Parts (not compacted files) holding a row of a trial other than the one in their name: path ->
    that trial. Every writer names a part by its trial (``write_part``), so such a part was copied."""
    stem = pc.replace_substring_regex(pc.replace_substring_regex(data[FILE], r"^.*/", ""), r"\.parquet$", "")
    bad = pc.and_(pc.invert(pc.is_in(data[FILE], pa.array(compacted, pa.string()))),
                  pc.not_equal(stem, data["trial_id"]))
    return dict(zip(pc.filter(data[FILE], bad).to_pylist(), pc.filter(data["trial_id"], bad).to_pylist()))


def _defaults(data: pa.Table) -> pa.Table:
    """Config fields newer than a file read as null: fill in what its trials ran with, the default."""
    for name, default in CONFIG_DEFAULTS.items():
        if name in data.column_names and default is not None and data[name].null_count:
            i = data.schema.get_field_index(name)
            data = data.set_column(i, data.schema.field(name), pc.fill_null(data[name], default))
    return data


def _once(data: pa.Table, compacted: list[str]) -> pa.Table:
    """Each trial's rows from one file: its part, else the newest compacted file holding it."""
    if not compacted:
        return data  # parts only: one file per trial id
    source, ids = data[FILE], data["trial_id"]
    keep = pc.invert(pc.is_in(source, pa.array(compacted)))  # rows of parts
    seen = pc.unique(pc.filter(ids, keep))
    for path in sorted(compacted, key=os.path.basename, reverse=True):  # newest first
        here = pc.equal(source, path)
        keep = pc.or_(keep, pc.and_(here, pc.invert(pc.is_in(ids, seen))))
        seen = pa.concat_arrays([seen, pc.unique(pc.filter(ids, here))])
    return data.filter(keep)


def read_part(fs: pafs.FileSystem, file: str, schema: pa.Schema) -> pa.Table:
    """One file, checked against its declared schema and brought to it (columns it lacks: null; a list
    column of a schema before 5: its string). Raises DamagedPartError naming the file."""
    problem = part_problem(fs, file, schema)
    if problem:
        raise DamagedPartError(f"{file}: {problem}")
    try:
        table = pq.read_table(file, filesystem=fs)
        for name in schema.names:
            if name not in table.column_names:
                table = table.append_column(schema.field(name), pa.nulls(len(table), schema.field(name).type))
            elif name in LIST_FIELDS and pa.types.is_list(table.schema.field(name).type):
                values = [flat({name: v})[name] for v in table[name].to_pylist()]
                table = table.set_column(table.column_names.index(name), name, pa.array(values, pa.string()))
        table = table.select(schema.names).cast(schema)
        return table.append_column(FILE, pa.array([file] * len(table), pa.string()))
    except (pa.ArrowException, ValueError) as exc:
        raise DamagedPartError(f"{file}: unreadable data or columns of the wrong type ({exc})") from None


def _one_by_one(fs: pafs.FileSystem, files: list[str], schema: pa.Schema, skip_damaged: bool,
                skipped: list[str] | None) -> pa.Table:
    parts = []
    for file in files:
        try:
            parts.append(read_part(fs, file, schema))
        except DamagedPartError as exc:
            if not skip_damaged:
                raise DamagedPartError(f"{exc}; pass skip_damaged=True (memsweep report: --skip-damaged) to "
                                       "skip damaged parts") from None
            warnings.warn(f"skipping damaged part {exc}", stacklevel=4)
            if skipped is not None:
                skipped.append(file)
    return pa.concat_tables(parts) if parts else schema.empty_table().append_column(FILE, pa.array([], pa.string()))


def read_trial_row(root: str, trial_id: str) -> dict[str, Any]:
    """One trial's row (``read_table``'s rule: its part, else the newest compacted file holding it)."""
    rows = read_table(root, "trials", ids=[trial_id]).to_pylist()
    if not rows:
        raise KeyError(f"no row of trial {trial_id} in {root}/trials")
    return rows[0]


def read_trials(root: str, columns: list[str] | None = None):
    """``trials/`` as a pandas DataFrame, each trial once (empty when there are none yet)."""
    table = read_table(root, "trials")
    return (table.select(columns) if columns else table).to_pandas()
