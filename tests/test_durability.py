"""Writing results survives a kill at each named moment (``results.checkpoint``) and a write that
fails halfway: no half part is ever visible, a trial counts as finished only once its trial row is
in place (written last), and loading succeeds throughout."""
import os
from types import SimpleNamespace

import pytest

import analysis
from study import results
from study.results import TABLES, finished_ids, write_trial

ORDER = ["examples", "retrieval", "curves", "trials"]  # the trial row last: its presence means the rest is whole


class Killed(BaseException):
    pass


@pytest.fixture(scope="module")
def one(planted_results):
    """One smoke trial's rows, as ``write_trial`` takes them (a TrialResult's row fields)."""
    rows = {t: results.read_table(str(planted_results), t).to_pylist() for t in TABLES}
    tid = rows["trials"][0]["trial_id"]
    pick = {t: [r for r in rows[t] if r["trial_id"] == tid] for t in TABLES}
    return SimpleNamespace(trial=pick["trials"][0], examples=pick["examples"], retrieval=pick["retrieval"],
                           curve=pick["curves"])


def visible(out) -> dict[str, list[str]]:
    return {t: sorted(os.listdir(out / t)) if (out / t).exists() else [] for t in TABLES}


def test_a_trials_parts_are_written_in_order_with_the_trial_row_last(one, tmp_path, monkeypatch):
    moments = []
    monkeypatch.setattr(results, "checkpoint", moments.append)
    write_trial(str(tmp_path), one)
    assert moments == [f"{t}:{m}" for t in ORDER for m in ("written", "renamed")]


@pytest.mark.parametrize("moment", [f"{t}:{m}" for t in ORDER for m in ("written", "renamed")])
def test_a_kill_at_each_moment_of_a_write_leaves_whole_parts_and_a_readable_folder(one, tmp_path, monkeypatch, moment):
    out = tmp_path / "res"
    results.write_manifest(str(out), {"preset": "test", "finished": None})  # a sweep's folder, from its start
    tid = one.trial["trial_id"]

    def checkpoint(name):
        if name == moment:
            raise Killed(name)
    monkeypatch.setattr(results, "checkpoint", checkpoint)
    with pytest.raises(Killed):
        write_trial(str(out), one)
    done = moment == "trials:renamed"
    assert finished_ids(str(out)) == ({tid} if done else set())  # a resumed sweep reruns it unless its row is in
    table, step = moment.split(":")
    placed = ORDER[:ORDER.index(table) + (step == "renamed")]
    assert visible(out) == {t: [f"{tid}.parquet"] if t in placed else [] for t in TABLES}  # whole parts only
    res = analysis.load(str(out))
    assert len(res.trials) == int(done) and len(res.examples) == (len(one.examples) if done else 0)
    monkeypatch.undo()
    results.set_aside(str(out))  # a resumed sweep's start, then the trial runs again
    write_trial(str(out), one)
    assert os.listdir(out / "_tmp") == [] and len(analysis.load(str(out)).examples) == len(one.examples)


def test_a_write_that_fails_halfway_shows_no_part_and_changes_nothing(one, tmp_path, monkeypatch):
    out = tmp_path / "res"
    write_trial(str(out), one)
    before = visible(out)
    written = []

    def disk_full(table, where, **kw):  # the storage fails while the bytes go out
        written.append(where)
        with open(where, "wb") as fh:
            fh.write(b"PAR1 half a file")
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(results.pq, "write_table", disk_full)
    again = SimpleNamespace(trial=dict(one.trial, trial_id="fc-d9-other"), examples=[dict(e, trial_id="fc-d9-other")
                        for e in one.examples], retrieval=[], curve=[])
    with pytest.raises(OSError):
        write_trial(str(out), again)
    assert written[0].startswith(str(out / "_tmp"))  # the half file never entered a table folder
    assert visible(out) == before and finished_ids(str(out)) == {one.trial["trial_id"]}
    assert len(analysis.load(str(out)).trials) == 1
    monkeypatch.undo()
    results.set_aside(str(out))  # what a resumed sweep does first: the half file goes
    assert os.listdir(out / "_tmp") == []
