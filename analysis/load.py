"""Read a results folder (local path or URI) into tidy pandas DataFrames.

    res = analysis.load("results/local")
    res.trials      # one row per trial: full config + metrics
    res.examples    # one row per (trial, training example)
    res.retrieval   # one row per (trial, start kind, sigma)
    res.curves      # thinned loss curves
    res.manifest    # sweep.json (None for folders written by `memsweep trial`)

Safe on a sweep that is still running: only whole parts are visible (parts are renamed into
place whole; temp files sit outside the table folders), and only the rows of trials whose
``trials/`` row is written (it is written last). Strict about damage: a part that is not
readable Parquet of the declared schema raises ``DamagedPartError`` naming the file, unless
``skip_damaged=True``, which skips it with a warning.
"""
from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
import pyarrow as pa

from study.store.folder import open_results
from study.store.reader import DamagedPartError, read_table
from study.store.schema import TABLES

__all__ = ["DamagedPartError", "Results", "load", "load_table"]


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


def load_table(path: str, table: str, skip_damaged: bool = False, skipped: list[str] | None = None) -> pd.DataFrame:
    """One table as pandas, each row once (``study.store.reader.read_table``: one parallel scan of parts
    and compacted files in the current schema). Integers stay integers (pandas' nullable Int64)."""
    data = read_table(path, table, skip_damaged, skipped)
    return data.to_pandas(types_mapper={pa.int64(): pd.Int64Dtype()}.get)


def load(path: str, skip_damaged: bool = False) -> Results:
    """All tables of a results folder. ``path`` may be local or a URI (s3://, gs://, ...).

    A path that is not a results folder (missing, unreadable, neither ``sweep.json`` nor a table)
    raises ``study.ConfigError`` with one line saying which; a sweep with no finished trial yet
    loads as empty tables."""
    manifest = open_results(path)
    skipped: list[str] = []
    tables = {name: load_table(path, name, skip_damaged, skipped) for name in TABLES}
    done = tables["trials"].trial_id
    for name in TABLES:  # a trial's other rows count once its trial row is written, last
        tables[name] = tables[name][tables[name].trial_id.isin(done)].reset_index(drop=True)
    return Results(path, tables["trials"], tables["examples"], tables["retrieval"], tables["curves"],
                   manifest, skipped)
