"""Results that any tool reads: pandas, pyarrow.dataset, Polars and DuckDB, each called as a user
would (no options), on a folder that held parts of two schema versions (compacted, as a sweep leaves
it) and on a live folder (compacted rows, new parts, a writer's temp file)."""
import os
import re

import duckdb
import pandas as pd
import polars as pl
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.fs as pafs
import pyarrow.parquet as pq
import pytest

import analysis
from study.store import compact
from study.store import folder
from study.store import parts
from study.store import reader as store_reader
from study.store import schema
from study.cli import main
from study.config import ConfigError, TrialConfig
from study.store.schema import TABLES

READERS = {
    "pandas": lambda folder: pd.read_parquet(folder),
    "pyarrow.dataset": lambda folder: ds.dataset(folder, format="parquet").to_table().to_pandas(),
    "polars": lambda folder: pl.read_parquet(os.path.join(folder, "*.parquet")).to_pandas(),
    "duckdb": lambda folder: duckdb.sql(f"SELECT * FROM '{folder}/*.parquet'").df(),
}
V4_ONLY = {"trials": ["memory_frac", "memory_offset_median", "bottleneck_side"],
           "examples": ["memory_found", "memory_offset"]}


def as_schema_3(path) -> None:
    """Rewrite a part as schema 3 wrote it: without schema 4's columns, noise_levels a list column."""
    table = pq.read_table(path)
    table = table.drop_columns([c for c in V4_ONLY.get(path.parent.name, []) if c in table.column_names])
    if "noise_levels" in table.column_names:
        lists = [[float(v) for v in s.split(",")] for s in table["noise_levels"].to_pylist()]
        table = table.set_column(table.column_names.index("noise_levels"), "noise_levels",
                                 pa.array(lists, pa.list_(pa.float64())))
    pq.write_table(table.replace_schema_metadata({"memsweep_schema_version": "3"}), path)


@pytest.fixture
def mixed(planted):
    """The planted results with two of the four trials written by schema 3."""
    out = planted
    old = sorted(os.listdir(out / "trials"))[:2]
    for table in TABLES:
        for name in old:
            as_schema_3(out / table / name)
    return out, [name[:-len(".parquet")] for name in old]


@pytest.mark.parametrize("reader", READERS)
def test_every_reader_reads_a_mixed_version_folder_once_compacted(mixed, reader, capsys):
    out, old = mixed
    with pytest.raises(Exception):  # as parts, the two schemas do not read as one in this tool...
        for table in TABLES:
            got = READERS[reader](str(out / table))
            assert list(got.columns) == TABLES[table].names
    assert main(["compact", str(out)]) == 0  # ...which a sweep's end, or `memsweep compact`, fixes
    for table, declared in TABLES.items():
        got = READERS[reader](str(out / table)).set_index("trial_id")
        assert set(got.columns) == set(declared.names) - {"trial_id"}, table  # every column
        assert got.index.nunique() == 4
        for column in V4_ONLY.get(table, []):  # not measured by schema 3: null, not dropped or made up
            assert got.loc[old, column].isna().all() and got.drop(index=old)[column].notna().all()
    trials = READERS[reader](str(out / "trials"))
    assert (trials.noise_levels == "0.05,0.1,0.2,0.4").all()  # one plain string for every part
    assert TrialConfig.from_row(trials.iloc[0].to_dict()).noise_levels == (0.05, 0.1, 0.2, 0.4)


@pytest.mark.parametrize("reader", READERS)
def test_every_reader_reads_a_live_folder_each_row_once(planted, reader):
    out = planted
    compact.compact(str(out))  # the rows of an earlier run, compacted...
    row = store_reader.read_trial_row(str(out), sorted(store_reader.finished_ids(str(out)))[0])
    parts.write_part(str(out), "trials", "fc-d9-new", [dict(row, trial_id="fc-d9-new", depth=9)])  # ...a new part
    (out / "_tmp" / "trials.fc-d9-w1-x.1234abcd.tmp").write_bytes(b"PAR1 half a file")  # a writer mid-part
    got = READERS[reader](str(out / "trials"))
    assert sorted(got.columns) == sorted(schema.TRIAL_SCHEMA.names)
    assert len(got) == got.trial_id.nunique() == 5 == len(analysis.load(str(out)).trials)


def test_the_trials_table_groups_deduplicates_and_keeps_integers_in_pandas(planted_results):
    trials = analysis.load(str(planted_results)).trials
    config = [f for f in TrialConfig().to_row() if f in trials.columns]
    assert len(trials.drop_duplicates()) == 4 and trials.nunique()["noise_levels"] == 1
    assert trials.groupby(config, dropna=False).ngroups == 4  # every config column, the list field included
    assert trials.depth.dtype == "Int64" and trials.steps.dtype == "Int64"
    assert pd.read_parquet(planted_results / "trials").depth.dtype == "int64"  # and in plain pandas


# --- what memsweep's own readers make of damaged, foreign, older and empty files -------------------

def test_a_damaged_part_is_named_and_skipped_only_when_asked(planted):
    bad = str(planted / "trials" / "fc-zz-truncated.parquet")
    with open(bad, "wb") as fh:
        fh.write(b"PAR1 half a file")  # a part cut short
    with pytest.raises(store_reader.DamagedPartError, match=rf"^{re.escape(bad)}: not a readable Parquet file .*; pass "
                       r"skip_damaged=True \(memsweep report: --skip-damaged\) to skip damaged parts$"):
        store_reader.read_table(str(planted), "trials")
    skipped = []
    with pytest.warns(UserWarning, match=rf"^skipping damaged part {re.escape(bad)}: not a readable Parquet file"):
        table = store_reader.read_table(str(planted), "trials", skip_damaged=True, skipped=skipped)
    assert skipped == [bad] and len(table) == 4 and table.schema.equals(schema.TRIAL_SCHEMA)
    with pytest.warns(UserWarning):
        assert len(store_reader.read_table(str(planted), "trials", skip_damaged=True)) == 4  # no list to report to


def test_a_table_of_damaged_files_only_reads_as_empty_when_skipping(planted):
    for name in os.listdir(planted / "curves"):
        os.remove(planted / "curves" / name)
    for name in ("compacted-20260101T000000-aaaaaa-000.parquet", "fc-zz.parquet"):
        (planted / "curves" / name).write_bytes(b"PAR1 half a file")
    with pytest.warns(UserWarning):
        table = store_reader.read_table(str(planted), "curves", skip_damaged=True)
    assert len(table) == 0 and table.schema.equals(schema.CURVE_SCHEMA)


def test_a_trial_without_retrieval_rows_reads_beside_a_damaged_part(planted):
    parts.write_part(str(planted), "retrieval", "fc-zz-none", [])  # an empty part: a trial with no such rows
    (planted / "retrieval" / "fc-zz-truncated.parquet").write_bytes(b"PAR1 half a file")
    with pytest.warns(UserWarning):  # file by file, because of the damaged part
        table = store_reader.read_table(str(planted), "retrieval", skip_damaged=True)
    assert len(table) == 16 and table.schema.equals(schema.RETRIEVAL_SCHEMA)


def test_files_that_are_not_parts_of_their_table_are_refused_with_the_reason(planted):
    fs = pafs.LocalFileSystem()
    tid = sorted(store_reader.finished_ids(str(planted)))[0]
    full = pq.read_table(planted / "trials" / f"{tid}.parquet")
    metrics = sorted(set(schema.SCHEMA_1["trials"]) - {"trial_id"})  # what every part must have
    for n, tail in [(5, ""), (6, "...")]:  # at most five named
        path = str(planted / f"missing{n}.parquet")
        pq.write_table(full.drop_columns(metrics[:n]), path)
        assert store_reader.part_problem(fs, path, schema.TRIAL_SCHEMA) == (
            f"not a memsweep part of this table (missing columns {metrics[:5]}{tail})")
        with pytest.raises(store_reader.DamagedPartError, match=rf"^{re.escape(path)}: not a memsweep part"):
            store_reader.read_part(fs, path, schema.TRIAL_SCHEMA)
    path = str(planted / "wrong-type.parquet")
    pq.write_table(full.set_column(full.column_names.index("depth"), "depth", pa.array(["deep"])), path)
    with pytest.raises(store_reader.DamagedPartError,
                       match=rf"^{re.escape(path)}: unreadable data or columns of the wrong type \("):
        store_reader.read_part(fs, path, schema.TRIAL_SCHEMA)
    with pytest.raises(KeyError, match="no row of trial fc-nothing in "):
        store_reader.read_trial_row(str(planted), "fc-nothing")


def test_a_part_older_than_a_config_field_reads_as_the_default_it_ran_with(planted):
    old, new = sorted(store_reader.finished_ids(str(planted)))[:2]
    path = planted / "trials" / f"{old}.parquet"
    pq.write_table(pq.read_table(path).drop_columns(["task", "kernel_size", "down_stages"]), path)
    path = planted / "trials" / f"{new}.parquet"
    pq.write_table(pq.read_table(path).set_column(schema.TRIAL_SCHEMA.get_field_index("task"), "task",
                                                  pa.array(["sequence"])), path)
    trials = store_reader.read_table(str(planted), "trials").to_pandas().set_index("trial_id")
    assert trials.task[old] == "autoencode" and trials.kernel_size[old] == 3  # the defaults then
    assert trials.task[new] == "sequence" and pd.isna(trials.down_stages[old])  # None: no default to fill in
    row = store_reader.read_trial_row(str(planted), old)
    assert row["task"] == "autoencode" and row["kernel_size"] == 3 and row["down_stages"] is None


def test_a_part_stored_with_narrower_types_reads_in_the_declared_schema(planted):
    for name in sorted(os.listdir(planted / "trials")):  # every part rewritten by a tool that narrowed the integers
        table = pq.read_table(planted / "trials" / name)
        pq.write_table(table.cast(pa.schema([pa.field(f.name, pa.int32() if f.type == pa.int64() else f.type)
                                             for f in table.schema])), planted / "trials" / name)
    assert store_reader.read_table(str(planted), "trials").schema.equals(schema.TRIAL_SCHEMA)


def test_read_trials_gives_each_trial_once_as_a_dataframe(planted_results, tmp_path):
    trials = store_reader.read_trials(str(planted_results))
    assert list(trials.columns) == schema.TRIAL_SCHEMA.names and trials.trial_id.nunique() == len(trials) == 4
    status = store_reader.read_trials(str(planted_results), columns=["trial_id", "status"])
    assert list(status.columns) == ["trial_id", "status"] and (status.status == "ok").all()
    assert store_reader.read_trials(str(tmp_path / "new")).empty  # before the first trial


def test_open_results_says_in_one_line_what_is_not_a_results_folder(planted_results, tmp_path):
    assert folder.open_results(str(planted_results))["preset"] == "planted"
    (tmp_path / "file").write_text("x")
    (tmp_path / "empty").mkdir()
    (tmp_path / "odd").mkdir()
    (tmp_path / "odd" / "trials").write_text("x")  # a file where the table folder should be
    for root, message in [
            (tmp_path / "none", "no results folder at {}$"),
            (tmp_path / "file", "{} is a file, not a results folder$"),
            (tmp_path / "empty", "{} holds no memsweep results: no sweep.json and no table parts$"),
            (planted_results / "trials", "{} holds no memsweep results: no sweep.json and no table parts "
                                         r"\(give the folder above it\)$"),
            (tmp_path / "odd", "cannot read {}: .*Cannot list directory")]:
        with pytest.raises(ConfigError, match="^" + message.format(re.escape(str(root)))):
            folder.open_results(str(root))
