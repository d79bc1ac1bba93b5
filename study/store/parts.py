"""Writing one trial's rows: a part per table, each published whole (``uri.atomic_write``), so a table
folder only ever holds whole parts and any reader (pandas, pyarrow, Polars, DuckDB) can read
``DIR/trials`` while a sweep is still writing; a rerun replaces a part rather than duplicating it.
"""
from __future__ import annotations

from typing import Any

import pyarrow.parquet as pq

from .schema import TABLES, to_table
from .uri import atomic_write, filesystem


def write_part(root: str, table_name: str, trial_id: str, rows: list[dict[str, Any]]) -> str:
    """Write ``rows`` as ``root/table_name/trial_id.parquet`` atomically (``uri.atomic_write``)."""
    fs, base = filesystem(root)
    fs.create_dir(f"{base}/{table_name}", recursive=True)
    data = to_table(rows, TABLES[table_name])
    return atomic_write(fs, base, f"{base}/{table_name}/{trial_id}.parquet",
                        lambda tmp: pq.write_table(data, tmp, filesystem=fs), moment=table_name)


def written(root: str, ids: list[str]) -> set[str]:
    """Those of ``ids`` whose trial row is written as a part, for a Tune trial run again after its worker
    died: each part opened by its own path (on S3 a HEAD request; pyarrow's ``get_file_info`` would add a
    LIST for each part not there), never a listing of the table."""
    fs, base = filesystem(root)
    found = set()
    for i in ids:
        try:
            fs.open_input_file(f"{base}/trials/{i}.parquet").close()
        except FileNotFoundError:
            continue
        found.add(i)
    return found


def write_trial(root: str, result) -> str:
    """Write every table of one ``TrialResult``; the trial row goes last, so its presence means
    the others are complete (the sweep's resume looks only at ``trials/``)."""
    tid = result.trial["trial_id"]
    write_part(root, "examples", tid, result.examples)
    write_part(root, "retrieval", tid, result.retrieval)
    write_part(root, "curves", tid, result.curve)
    return write_part(root, "trials", tid, [result.trial])
