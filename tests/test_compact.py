"""Compaction (study/compact.py): every row kept once, atomic under a kill at each named moment,
and a folder that stays a results folder for resume, set-aside and every reader."""
import os
import re
import shutil
import time

import pandas as pd
import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq
import pytest

import analysis
from study.store import compact
from study.store import folder
from study.store import parts
from study.store import reader
from study.store import schema
from study.store import uri
from study.cli import main
from study.store.reader import finished_ids
from study.store.schema import TABLES


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


def test_compact_keeps_every_row_and_leaves_one_file_per_table(planted, capsys):
    before = frames(planted)
    assert main(["compact", str(planted)]) == 0
    assert "trials: 4 files -> 1 (4 rows); examples: 4 files -> 1 (40 rows)" in capsys.readouterr().out
    for t in TABLES:
        (name,) = files(planted, t)
        assert name.startswith(reader.COMPACTED)
        meta = pq.read_schema(planted / t / name).metadata
        assert meta[b"memsweep_schema_version"] == schema.SCHEMA_VERSION.encode()
    same(before, frames(planted))
    assert finished_ids(str(planted)) == set(before["trials"].trial_id)
    assert os.listdir(planted / "_tmp") == []
    assert compact.compact(str(planted)).line() == "nothing to compact"  # a second run leaves it alone


def test_large_tables_split_into_files_that_keep_each_trials_rows_together(planted):
    before = frames(planted)
    compact.compact(str(planted), max_bytes=2000)
    assert len(files(planted, "curves")) > 1
    owners = [set(pq.read_table(planted / "curves" / f).column("trial_id").to_pylist()) for f in files(planted, "curves")]
    assert sum(len(o) for o in owners) == len(set().union(*owners)) == 4  # no trial split over two files
    same(before, frames(planted))


class Killed(BaseException):
    pass


@pytest.mark.parametrize("moment", ["written", "journaled", "renamed", "deleted"])
def test_a_kill_at_each_moment_loses_nothing_and_the_next_start_finishes_the_job(planted, monkeypatch, moment):
    before = frames(planted)

    def checkpoint(name):
        if name == f"compact:{moment}":
            raise Killed(name)
    monkeypatch.setattr(uri, "fault_point", checkpoint)
    with pytest.raises(Killed):
        compact.compact(str(planted))
    # killed: memsweep's readers see every row once, and a resumed sweep skips the same trials
    same(before, frames(planted))
    assert finished_ids(str(planted)) == set(before["trials"].trial_id)
    journaled = moment != "written"
    assert os.path.exists(planted / "_tmp" / "compact-trials.json") == journaled  # trials/ goes first
    if moment in ("written", "journaled"):  # nothing renamed yet: the table folder holds the parts alone
        assert not any(f.startswith(reader.COMPACTED) for f in files(planted))
        assert len(pd.read_parquet(planted / "trials")) == 4  # an outside reader sees each row once
    # what a sweep's start does (study.sweep._set_aside), then the compaction that was cut short
    monkeypatch.undo()
    assert compact.roll_forward(str(planted)) == int(journaled)
    folder.set_aside(str(planted))
    compact.compact(str(planted))
    assert all(len(files(planted, t)) == 1 for t in TABLES) and os.listdir(planted / "_tmp") == []
    same(before, frames(planted))


def test_a_part_written_after_compaction_wins_over_its_compacted_rows(planted):
    compact.compact(str(planted))
    tid = sorted(finished_ids(str(planted)))[0]
    row = reader.read_trial_row(str(planted), tid)
    parts.write_part(str(planted), "trials", tid, [dict(row, attractor_frac=0.123)])  # a rerun of that trial
    trials = analysis.load(str(planted)).trials
    assert len(trials) == 4 and trials.set_index("trial_id").attractor_frac[tid] == 0.123
    assert reader.read_trial_row(str(planted), tid)["attractor_frac"] == 0.123
    compact.compact(str(planted))
    assert analysis.load(str(planted)).trials.set_index("trial_id").attractor_frac[tid] == 0.123


def test_a_part_rewritten_during_compaction_is_kept(planted, monkeypatch):
    tid = sorted(finished_ids(str(planted)))[0]
    row = reader.read_trial_row(str(planted), tid)

    def checkpoint(name):  # a rerun writes this trial's part again between the renames and the deletes
        if name == "compact:renamed" and not (planted / "trials" / "rewritten").exists():
            (planted / "trials" / "rewritten").mkdir()  # once: only the trials table's compaction
            parts.write_part(str(planted), "trials", tid, [dict(row, attractor_frac=0.5)])
    monkeypatch.setattr(uri, "fault_point", checkpoint)
    compact.compact(str(planted))
    assert f"{tid}.parquet" in files(planted)  # the newer part stayed, and it is what readers see
    assert analysis.load(str(planted)).trials.set_index("trial_id").attractor_frac[tid] == 0.5


def test_error_rows_in_a_compacted_file_are_set_aside_so_their_trials_run_again(planted):
    tid = sorted(finished_ids(str(planted)))[0]
    parts.write_part(str(planted), "trials", tid, [dict(reader.read_trial_row(str(planted), tid), status="error")])
    compact.compact(str(planted))
    damaged, errored = folder.set_aside(str(planted))
    assert (damaged, errored) == ([], [tid])
    assert tid not in finished_ids(str(planted)) and len(finished_ids(str(planted))) == 3
    res = analysis.load(str(planted))
    assert tid not in set(res.trials.trial_id) and tid not in set(res.examples.trial_id)  # all its rows moved
    aside = pd.concat(pd.read_parquet(planted / "_errors" / t) for t in ("trials", "examples"))
    assert set(aside.trial_id) == {tid} and len(aside) == 11  # its row and its 10 example rows, kept


@pytest.fixture
def store(tmp_path, monkeypatch):
    """Results on storage whose paths are not this machine's (as ``s3://bucket/res`` is ``bucket/res`` to
    pyarrow): ``store://res`` is ``res`` on a SubTreeFileSystem over tmp_path. Code that forgets the
    filesystem and opens such a path on the local disk fails, as it would on a bucket."""
    sub = pafs.SubTreeFileSystem(str(tmp_path), pafs.LocalFileSystem())
    local = uri.filesystem

    def filesystem(root):
        return (sub, root[len("store://"):]) if root.startswith("store://") else local(root)
    for module in (uri, parts, reader, folder, compact):  # each looks up ``filesystem`` as its own name
        monkeypatch.setattr(module, "filesystem", filesystem)
    return tmp_path


def test_results_on_remote_storage_are_read_compacted_and_set_aside_through_its_filesystem(planted_results, store,
                                                                                          monkeypatch):
    shutil.copytree(planted_results, store / "res")
    root = "store://res"
    ids = sorted(finished_ids(root))
    def file_by_file(*args):
        raise AssertionError("a healthy folder is read in one scan, not file by file")
    with monkeypatch.context() as m:
        m.setattr(reader, "read_part", file_by_file)
        assert [len(reader.read_table(root, t)) for t in TABLES] == [4, 40, 16, 400]
    parts.write_part(root, "trials", ids[0], [dict(reader.read_trial_row(root, ids[0]), status="error")])
    (store / "res" / "trials" / "a-truncated.parquet").write_bytes(b"PAR1 half a file")
    with pytest.warns(UserWarning, match="skipping damaged part"):
        assert len(reader.read_table(root, "trials", skip_damaged=True)) == 4  # file by file: the others read
    assert folder.set_aside(root) == (["trials/a-truncated.parquet"], [ids[0]])
    compact.compact(root)
    assert finished_ids(root) == set(ids[1:]) and compact.compact(root).line() == "nothing to compact"
    parts.write_part(root, "trials", ids[1], [dict(reader.read_trial_row(root, ids[1]), status="error")])
    compact.compact(root)  # its error row now sits in a compacted file
    assert folder.set_aside(root) == ([], [ids[1]]) and finished_ids(root) == set(ids[2:])
    assert reader.read_trial_row(root, ids[2])["trial_id"] == ids[2]


def test_a_kill_while_setting_aside_errored_rows_leaves_the_trial_to_be_set_aside_again(planted, monkeypatch):
    tid = sorted(finished_ids(str(planted)))[0]
    parts.write_part(str(planted), "trials", tid, [dict(reader.read_trial_row(str(planted), tid), status="error")])
    compact.compact(str(planted))
    (name,) = files(planted, "examples")
    drop, done = folder._drop_rows, []

    def drop_once_then_kill(fs, base, table, file, ids):
        if done:
            raise Killed(table)
        drop(fs, base, table, file, ids)
        done.append(table)
    monkeypatch.setattr(folder, "_drop_rows", drop_once_then_kill)
    with pytest.raises(Killed):
        folder.set_aside(str(planted))
    # its trial row goes last: still there, still 'error', so the next start sets the trial aside again
    assert done == ["examples"] and tid in finished_ids(str(planted))
    monkeypatch.undo()
    assert folder.set_aside(str(planted)) == ([], [tid]) and tid not in finished_ids(str(planted))
    assert os.listdir(planted / "_errors" / "examples") == [name]  # the rows keep the name of their file
    assert set(pd.read_parquet(planted / "_errors" / "examples" / name).trial_id) == {tid}
    assert tid not in set(analysis.load(str(planted)).examples.trial_id)


def test_the_newest_compacted_file_wins_when_two_hold_a_trial(planted):
    compact.compact(str(planted))
    (name,) = files(planted)
    tid = sorted(finished_ids(str(planted)))[0]
    # a later compaction's files are in place and this one is not deleted yet: both hold tid, the later newer
    old = planted / "trials" / "compacted-20260101T000000-aaaaaa-000.parquet"
    os.rename(planted / "trials" / name, old)
    table = pq.read_table(old)
    newer = pa.Table.from_pylist([dict(r, attractor_frac=0.9) for r in table.to_pylist() if r["trial_id"] == tid],
                                 schema=table.schema)
    pq.write_table(newer, planted / "trials" / "compacted-20260101T000001-aaaaaa-000.parquet")
    trials = reader.read_table(str(planted), "trials").to_pandas().set_index("trial_id")
    assert len(trials) == 4 and trials.attractor_frac[tid] == 0.9
    assert reader.read_trial_row(str(planted), tid)["attractor_frac"] == 0.9
    (planted / "trials" / "fc-zz-truncated.parquet").write_bytes(b"PAR1 half a file")  # another trial's, damaged
    assert reader.read_trial_row(str(planted), tid)["attractor_frac"] == 0.9  # not read to find this one


def test_a_folder_of_one_trial_is_compacted_into_files_stamped_with_the_utc_time(planted, monkeypatch):
    from datetime import datetime, timezone
    for tid in sorted(finished_ids(str(planted)))[1:]:
        for t in TABLES:
            os.remove(planted / t / f"{tid}.parquet")
    monkeypatch.setenv("TZ", "America/New_York")  # not UTC: the stamp must not follow the local clock
    time.tzset()
    try:
        assert compact.compact(str(planted)).line().startswith("trials: 1 files -> 1 (1 rows)")
    finally:
        monkeypatch.undo()
        time.tzset()
    for t in TABLES:
        (name,) = files(planted, t)
        stamp = re.fullmatch(r"compacted-(\d{8}T\d{6})-[0-9a-f]{6}-000\.parquet", name).group(1)
        written = datetime.strptime(stamp, "%Y%m%dT%H%M%S").replace(tzinfo=timezone.utc)
        assert abs((datetime.now(timezone.utc) - written).total_seconds()) < 120


def test_max_bytes_bounds_each_file_without_splitting_a_trial(planted):
    compact.compact(str(planted), max_bytes=reader.read_table(str(planted), "trials").nbytes // 2)
    owners = [pq.read_table(planted / "trials" / f).column("trial_id").to_pylist() for f in files(planted)]
    assert [len(o) for o in owners] == [2, 2]  # half the bytes: two trials a file
    compact.compact(str(planted), max_bytes=1)  # smaller than a row: each trial a file of its own
    for t, rows in [("trials", 1), ("examples", 10), ("curves", 100)]:
        owners = [pq.read_table(planted / t / f).column("trial_id").to_pylist() for f in files(planted, t)]
        assert len(owners) == 4 and all(len(o) == rows and len(set(o)) == 1 for o in owners), t
    for t in TABLES:  # two trials left: two rows of trials/, still one file each
        for f in files(planted, t)[2:]:
            os.remove(planted / t / f)
    compact.compact(str(planted), max_bytes=1)
    assert [pq.read_metadata(planted / "trials" / f).num_rows for f in files(planted)] == [1, 1]


def test_a_journal_cut_short_is_ignored_and_a_folder_without_tmp_has_nothing_to_roll_forward(planted, tmp_path):
    assert compact.roll_forward(str(tmp_path / "new")) == 0  # a first start: no _tmp/ yet
    (planted / "_tmp" / "compact-trials.json.1234abcd.tmp").write_text('{"moves": [["')  # killed mid-journal
    assert compact.roll_forward(str(planted)) == 0
    folder.set_aside(str(planted))
    assert os.listdir(planted / "_tmp") == []


def test_size_line_counts_the_data_files_of_every_table_in_mebibytes(tmp_path):
    (tmp_path / "trials").mkdir()
    (tmp_path / "trials" / "fc-a.parquet").write_bytes(b"\0" * (3 * 2**19))  # 1.5 MiB
    for name in ("notes.txt", ".fc-b.parquet", "_fc-c.parquet"):  # not data files: not counted
        (tmp_path / "trials" / name).write_bytes(b"\0" * 2**20)
    assert compact.size_line(str(tmp_path)) == "1 files, 1.5 MB"
    assert compact.size_line(str(tmp_path / "new")) == "0 files, 0.0 MB"


def test_a_damaged_part_of_any_table_sends_its_whole_trial_to_damaged_and_back_into_the_grid(planted):
    """A zero-byte examples part used to block compaction for ever, its trial counted as finished: now
    a sweep's start moves every part of that trial to _damaged/ (its trial row first), so it runs again."""
    ids = sorted(finished_ids(str(planted)))
    (planted / "examples" / f"{ids[1]}.parquet").write_bytes(b"")
    with pytest.raises(reader.DamagedPartError):
        compact.compact(str(planted))
    damaged, errored = folder.set_aside(str(planted))
    assert damaged == [f"examples/{ids[1]}.parquet"] and errored == []
    assert finished_ids(str(planted)) == set(ids) - {ids[1]}
    assert (planted / "_damaged" / "examples" / f"{ids[1]}.parquet").exists()  # kept for a look
    for table in ("trials", "retrieval", "curves"):  # a part moved whole, or its rows out of a compacted file
        aside = pd.concat(pd.read_parquet(f) for f in (planted / "_damaged" / table).iterdir())
        assert set(aside.trial_id) == {ids[1]}, table
    compact.compact(str(planted))
    res = analysis.load(str(planted))
    assert ids[1] not in set(res.examples.trial_id) | set(res.trials.trial_id) and len(res.trials) == 3


@pytest.mark.parametrize("table", ["trials", "examples"])
def test_a_part_copied_under_another_trials_name_is_refused_at_compaction(planted, table, capsys):
    ids = sorted(finished_ids(str(planted)))
    fake = planted / table / f"{ids[0][:-6]}zzzzzz.parquet"  # named as a trial of the grid that is not this one
    shutil.copy(planted / table / f"{ids[0]}.parquet", fake)
    assert main(["compact", str(planted)]) == 2
    err = capsys.readouterr().err
    last = err.strip().splitlines()[-1]
    assert "Traceback" not in err and last.startswith("memsweep: error: ") and f"its rows are of trial {ids[0]}, " \
        "not of the trial it is named after" in last
    assert fake.exists() and len(files(planted, table)) == 5  # nothing compacted, nothing lost
    with pytest.warns(UserWarning, match="skipping damaged part"):
        assert len(analysis.load(str(planted), skip_damaged=True).trials) == 4
    if table == "trials":  # a sweep's start sets it aside, and the next compaction goes through
        assert folder.set_aside(str(planted))[0] == [f"trials/{fake.name}"]
        assert main(["compact", str(planted)]) == 0 and len(analysis.load(str(planted)).trials) == 4
