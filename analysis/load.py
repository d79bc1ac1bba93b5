"""Read a results folder (local path or URI) into tidy pandas DataFrames.

    res = analysis.load("results/local")
    res.trials      # one row per trial: full config + metrics
    res.examples    # one row per (trial, training example)
    res.retrieval   # one row per (trial, start kind, sigma)
    res.curves      # thinned loss curves
    res.manifest    # sweep.json (None for folders written by `memsweep trial`)

Safe on a sweep that is still running: only finished parts are visible (parts are renamed
into place whole; hidden temp files are ignored). Strict about damage: a part that is not
readable Parquet of the declared schema raises ``DamagedPartError`` naming the file, unless
``skip_damaged=True``, which skips it with a warning.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass

import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from study.config import ConfigError
from study.results import CONFIG_DEFAULTS, TABLES, filesystem, open_results, part_files, part_problem


class DamagedPartError(ConfigError):
    """A part file that cannot be read as the table it belongs to."""


@dataclass
class Results:
    path: str
    trials: pd.DataFrame
    examples: pd.DataFrame
    retrieval: pd.DataFrame
    curves: pd.DataFrame
    manifest: dict | None
    skipped: list[str]  # damaged parts skipped under skip_damaged=True

    def __repr__(self) -> str:
        return (f"Results({self.path!r}: {len(self.trials)} trials, {len(self.examples)} example rows, "
                f"{len(self.retrieval)} retrieval rows, {len(self.curves)} curve points)")


def read_part(fs: pafs.FileSystem, file: str, schema: pa.Schema) -> pa.Table:
    """One part, checked against its declared schema. Raises DamagedPartError naming the file."""
    problem = part_problem(fs, file, schema)
    if problem:
        raise DamagedPartError(f"{file}: {problem}")
    try:
        table = pq.read_table(file, filesystem=fs)
        for name in schema.names:  # columns added since this part was written: defaults, or null
            if name not in table.column_names:
                fill = CONFIG_DEFAULTS.get(name)  # None for a metric: not measured by that version
                table = table.append_column(schema.field(name), pa.array([fill] * len(table), schema.field(name).type))
        return table.select(schema.names).cast(schema)
    except (pa.ArrowException, ValueError) as exc:
        raise DamagedPartError(f"{file}: unreadable data or columns of the wrong type ({exc})") from None


def load_table(path: str, table: str, skip_damaged: bool = False, skipped: list[str] | None = None) -> pd.DataFrame:
    """One table: every part in one ``pyarrow.dataset`` scan (in parallel, each file opened once) with
    the current schema, so columns a part lacks read as null, then config fields a part lacks as their
    defaults. Integers stay integers (pandas' nullable Int64). A part that the scan cannot read (damaged,
    or an older schema with another type) sends the table through ``read_part`` file by file, which
    names the file."""
    schema = TABLES[table]
    fs, _ = filesystem(path)
    files = part_files(path, table)
    if not files:
        return _pandas(schema.empty_table())
    try:
        data = ds.dataset(files, schema=schema, format="parquet", filesystem=fs).to_table(use_threads=True)
        if data["trial_id"].null_count:  # a foreign Parquet file scans as rows of nulls
            raise ValueError("a part without trial ids")
    except (pa.ArrowException, OSError, ValueError):
        data = _one_by_one(fs, files, schema, skip_damaged, skipped)
    df = _pandas(data)
    for name, default in CONFIG_DEFAULTS.items():  # config fields newer than a part: what it ran with
        if name in df.columns and default is not None and (missing := df[name].isna()).any():
            if isinstance(default, list):
                df.loc[missing, name] = pd.Series([default] * int(missing.sum()), index=df.index[missing], dtype=object)
            else:
                df.loc[missing, name] = default
    return df


def _pandas(table: pa.Table) -> pd.DataFrame:
    return table.to_pandas(types_mapper={pa.int64(): pd.Int64Dtype()}.get)


def _one_by_one(fs: pafs.FileSystem, files: list[str], schema: pa.Schema, skip_damaged: bool,
                skipped: list[str] | None) -> pa.Table:
    parts = []
    for file in files:
        try:
            parts.append(read_part(fs, file, schema))
        except DamagedPartError as exc:
            if not skip_damaged:
                raise DamagedPartError(f"{exc}; pass skip_damaged=True (memsweep report: --skip-damaged) to skip damaged parts") from None
            warnings.warn(f"skipping damaged part {exc}", stacklevel=3)
            if skipped is not None:
                skipped.append(file)
    return pa.concat_tables(parts) if parts else schema.empty_table()


def load(path: str, skip_damaged: bool = False) -> Results:
    """All tables of a results folder. ``path`` may be local or a URI (s3://, gs://, ...).

    A path that is not a results folder (missing, unreadable, neither ``sweep.json`` nor a table)
    raises ``study.ConfigError`` with one line saying which; a sweep with no finished trial yet
    loads as empty tables."""
    manifest = open_results(path)
    skipped: list[str] = []
    tables = {name: load_table(path, name, skip_damaged, skipped) for name in TABLES}
    return Results(path, tables["trials"], tables["examples"], tables["retrieval"], tables["curves"],
                   manifest, skipped)
