"""Compaction (study/compact.py): every row kept once, atomic under a kill at each named moment,
and a folder that stays a results folder for resume, set-aside and every reader."""
import os
import shutil

import pandas as pd
import pyarrow.parquet as pq
import pytest

import analysis
from study import compact, results
from study.cli import main
from study.results import TABLES, finished_ids


def frames(out) -> dict[str, pd.DataFrame]:
    """Every table, sorted so that two loads of the same rows compare equal."""
    res = analysis.load(str(out))
    keys = {"trials": ["trial_id"], "examples": ["trial_id", "example"], "retrieval": ["trial_id", "start", "sigma"],
            "curves": ["trial_id", "step"]}
    return {t: getattr(res, t).sort_values(keys[t]).reset_index(drop=True) for t in TABLES}


def same(a: dict[str, pd.DataFrame], b: dict[str, pd.DataFrame]) -> None:
    for t in TABLES:
        pd.testing.assert_frame_equal(a[t], b[t])


def files(out, table="trials") -> list[str]:
    return sorted(os.listdir(out / table))


@pytest.fixture
def folder(planted_results, tmp_path):
    out = tmp_path / "res"
    shutil.copytree(planted_results, out)
    return out


def test_compact_keeps_every_row_and_leaves_one_file_per_table(folder, capsys):
    before = frames(folder)
    assert main(["compact", str(folder)]) == 0
    assert "trials: 4 files -> 1 (4 rows); examples: 4 files -> 1 (40 rows)" in capsys.readouterr().out
    for t in TABLES:
        (name,) = files(folder, t)
        assert name.startswith(results.COMPACTED)
        meta = pq.read_schema(folder / t / name).metadata
        assert meta[b"memsweep_schema_version"] == results.SCHEMA_VERSION.encode()
    same(before, frames(folder))
    assert finished_ids(str(folder)) == set(before["trials"].trial_id)
    assert os.listdir(folder / "_tmp") == []
    assert compact.compact(str(folder)).line() == "nothing to compact"  # a second run leaves it alone


def test_large_tables_split_into_files_that_keep_each_trials_rows_together(folder):
    before = frames(folder)
    compact.compact(str(folder), max_bytes=2000)
    assert len(files(folder, "curves")) > 1
    owners = [set(pq.read_table(folder / "curves" / f).column("trial_id").to_pylist()) for f in files(folder, "curves")]
    assert sum(len(o) for o in owners) == len(set().union(*owners)) == 4  # no trial split over two files
    same(before, frames(folder))


class Killed(BaseException):
    pass


@pytest.mark.parametrize("moment", ["written", "journaled", "renamed", "deleted"])
def test_a_kill_at_each_moment_loses_nothing_and_the_next_start_finishes_the_job(folder, monkeypatch, moment):
    before = frames(folder)

    def checkpoint(name):
        if name == f"compact:{moment}":
            raise Killed(name)
    monkeypatch.setattr(results, "checkpoint", checkpoint)
    with pytest.raises(Killed):
        compact.compact(str(folder))
    # killed: memsweep's readers see every row once, and a resumed sweep skips the same trials
    same(before, frames(folder))
    assert finished_ids(str(folder)) == set(before["trials"].trial_id)
    journaled = moment != "written"
    assert os.path.exists(folder / "_tmp" / "compact-trials.json") == journaled  # trials/ goes first
    if moment in ("written", "journaled"):  # nothing renamed yet: the table folder holds the parts alone
        assert not any(f.startswith(results.COMPACTED) for f in files(folder))
        assert len(pd.read_parquet(folder / "trials")) == 4  # an outside reader sees each row once
    # what a sweep's start does (study.sweep._set_aside), then the compaction that was cut short
    monkeypatch.undo()
    assert compact.roll_forward(str(folder)) == int(journaled)
    results.set_aside(str(folder))
    compact.compact(str(folder))
    assert all(len(files(folder, t)) == 1 for t in TABLES) and os.listdir(folder / "_tmp") == []
    same(before, frames(folder))


def test_a_part_written_after_compaction_wins_over_its_compacted_rows(folder):
    compact.compact(str(folder))
    tid = sorted(finished_ids(str(folder)))[0]
    row = results.read_trial_row(str(folder), tid)
    results.write_part(str(folder), "trials", tid, [dict(row, attractor_frac=0.123)])  # a rerun of that trial
    trials = analysis.load(str(folder)).trials
    assert len(trials) == 4 and trials.set_index("trial_id").attractor_frac[tid] == 0.123
    assert results.read_trial_row(str(folder), tid)["attractor_frac"] == 0.123
    compact.compact(str(folder))
    assert analysis.load(str(folder)).trials.set_index("trial_id").attractor_frac[tid] == 0.123


def test_a_part_rewritten_during_compaction_is_kept(folder, monkeypatch):
    tid = sorted(finished_ids(str(folder)))[0]
    row = results.read_trial_row(str(folder), tid)

    def checkpoint(name):  # a rerun writes this trial's part again between the renames and the deletes
        if name == "compact:renamed" and not (folder / "trials" / "rewritten").exists():
            (folder / "trials" / "rewritten").mkdir()  # once: only the trials table's compaction
            results.write_part(str(folder), "trials", tid, [dict(row, attractor_frac=0.5)])
    monkeypatch.setattr(results, "checkpoint", checkpoint)
    compact.compact(str(folder))
    assert f"{tid}.parquet" in files(folder)  # the newer part stayed, and it is what readers see
    assert analysis.load(str(folder)).trials.set_index("trial_id").attractor_frac[tid] == 0.5


def test_error_rows_in_a_compacted_file_are_set_aside_so_their_trials_run_again(folder):
    tid = sorted(finished_ids(str(folder)))[0]
    results.write_part(str(folder), "trials", tid, [dict(results.read_trial_row(str(folder), tid), status="error")])
    compact.compact(str(folder))
    damaged, errored = results.set_aside(str(folder))
    assert (damaged, errored) == ([], [tid])
    assert tid not in finished_ids(str(folder)) and len(finished_ids(str(folder))) == 3
    res = analysis.load(str(folder))
    assert tid not in set(res.trials.trial_id) and tid not in set(res.examples.trial_id)  # all its rows moved
    aside = pd.concat(pd.read_parquet(folder / "_errors" / t) for t in ("trials", "examples"))
    assert set(aside.trial_id) == {tid} and len(aside) == 11  # its row and its 10 example rows, kept
