"""Writing results survives a kill at each named moment (``uri.fault_point``) and a write that
fails halfway: no half part is ever visible, a trial counts as finished only once its trial row is
in place (written last), and loading succeeds throughout."""
import json
import os
import re
from types import SimpleNamespace

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import analysis
from study.store import folder
from study.store import parts
from study.store import reader
from study.store import schema
from study.store import uri
from study.sweep import driver
from study.trial import saved
from study.config import ConfigError, TrialConfig
from study.store.parts import write_trial
from study.store.reader import finished_ids
from study.store.schema import TABLES

ORDER = ["examples", "retrieval", "curves", "trials"]  # the trial row last: its presence means the rest is whole


class Killed(BaseException):
    pass


@pytest.fixture(scope="module")
def one(planted_results):
    """One smoke trial's rows, as ``write_trial`` takes them (a TrialResult's row fields)."""
    rows = {t: reader.read_table(str(planted_results), t).to_pylist() for t in TABLES}
    tid = rows["trials"][0]["trial_id"]
    pick = {t: [r for r in rows[t] if r["trial_id"] == tid] for t in TABLES}
    return SimpleNamespace(trial=pick["trials"][0], examples=pick["examples"], retrieval=pick["retrieval"],
                           curve=pick["curves"])


def visible(out) -> dict[str, list[str]]:
    return {t: sorted(os.listdir(out / t)) if (out / t).exists() else [] for t in TABLES}


def test_a_trials_parts_are_written_in_order_with_the_trial_row_last(one, tmp_path, monkeypatch):
    moments = []
    monkeypatch.setattr(uri, "fault_point", moments.append)
    write_trial(str(tmp_path), one)
    assert moments == [f"{t}:{m}" for t in ORDER for m in ("written", "renamed")]


@pytest.mark.parametrize("moment", [f"{t}:{m}" for t in ORDER for m in ("written", "renamed")])
def test_a_kill_at_each_moment_of_a_write_leaves_whole_parts_and_a_readable_folder(one, tmp_path, monkeypatch, moment):
    out = tmp_path / "res"
    # a sweep's folder, from its start
    folder.write_manifest(str(out), {"preset": "test", "grid": {"axes": {"depth": [2]}}, "finished": None})
    tid = one.trial["trial_id"]

    def checkpoint(name):
        if name == moment:
            raise Killed(name)
    monkeypatch.setattr(uri, "fault_point", checkpoint)
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
    folder.set_aside(str(out))  # a resumed sweep's start, then the trial runs again
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
    monkeypatch.setattr(parts.pq, "write_table", disk_full)
    again = SimpleNamespace(trial=dict(one.trial, trial_id="fc-d9-other"), examples=[dict(e, trial_id="fc-d9-other")
                        for e in one.examples], retrieval=[], curve=[])
    with pytest.raises(OSError):
        write_trial(str(out), again)
    assert written[0].startswith(str(out / "_tmp"))  # the half file never entered a table folder
    assert visible(out) == before and finished_ids(str(out)) == {one.trial["trial_id"]}
    assert len(analysis.load(str(out)).trials) == 1
    monkeypatch.undo()
    folder.set_aside(str(out))  # what a resumed sweep does first: the half file goes
    assert os.listdir(out / "_tmp") == []


# --- set-aside, clearing, the manifest, the write probe and saved models ----------------------------

def test_set_aside_moves_damaged_files_and_errored_parts_and_deletes_only_writers_temp_files(planted, tmp_path):
    out = planted
    ids = sorted(finished_ids(str(out)))
    errored = ids[-1]  # its part sorts after the two damaged files: the loop goes on past them
    parts.write_part(str(out), "trials", errored, [dict(reader.read_trial_row(str(out), errored), status="error")])
    (out / "trials" / "a-truncated.parquet").write_bytes(b"PAR1 half a file")  # a part cut short
    pq.write_table(pa.table({"x": [1]}), out / "trials" / "b-foreign.parquet")  # not a memsweep part
    (out / "_tmp" / "trials.fc-d2.1234abcd.tmp").write_bytes(b"PAR1 half")  # a writer killed before its rename
    (out / "_tmp" / "notes.txt").write_text("someone's")  # not a writer's temp file: stays
    (out / "trials" / ".fc-d2.parquet.5678.tmp").write_bytes(b"PAR1")  # an older writer's temp, in the table folder
    (out / "trials" / "keep.tmp").write_text("someone's")  # not hidden: not a writer's, stays
    assert folder.set_aside(str(out)) == (["trials/a-truncated.parquet", "trials/b-foreign.parquet"], [errored])
    assert sorted(os.listdir(out / "_damaged" / "trials")) == ["a-truncated.parquet", "b-foreign.parquet"]
    assert os.listdir(out / "_errors" / "trials") == [f"{errored}.parquet"]  # kept whole, out of the way
    assert os.listdir(out / "_tmp") == ["notes.txt"]
    assert sorted(os.listdir(out / "trials")) == sorted([f"{t}.parquet" for t in ids[:-1]] + ["keep.tmp"])
    assert finished_ids(str(out)) == set(ids[:-1])  # the errored trial runs again
    assert folder.set_aside(str(tmp_path / "new")) == ([], [])  # a first start: no folder, no _tmp/ yet


def test_clear_removes_a_sweeps_results_and_keeps_everything_else(planted):
    out = planted
    for name in ("_tune", "_damaged", "models", "_errors"):
        (out / name).mkdir()
        (out / name / "f").write_text("x")
    (out / "notes.txt").write_text("someone's")
    folder.clear(str(out))
    assert sorted(os.listdir(out)) == ["_errors", "_tmp", "notes.txt"]  # set-aside rows and others' files stay
    folder.clear(str(out))  # again, with nothing left to remove
    assert sorted(os.listdir(out)) == ["_errors", "_tmp", "notes.txt"]


def test_check_writable_writes_a_probe_and_says_in_one_line_why_it_cannot(tmp_path):
    root = tmp_path / "new" / "res"  # two levels that do not exist yet
    folder.check_writable(str(root))
    assert root.is_dir() and os.listdir(root) == []  # the probe is deleted
    (tmp_path / "file").write_text("x")
    bad = str(tmp_path / "file" / "res")
    with pytest.raises(ConfigError, match=rf"^--out {re.escape(bad)}: cannot write results there \(Cannot create "
                                          r"directory .*Not a directory\)$"):  # the storage's words, no errno prefix
        folder.check_writable(bad)
    with pytest.raises(ConfigError, match=r"cannot write results there \(Embedded NUL char in path"):
        folder.check_writable(str(tmp_path / "a\x00b"))  # pyarrow refuses the path itself (not an OSError)


def test_one_line_is_the_first_line_of_a_message_or_the_exceptions_name():
    assert uri.one_line(OSError("  bucket missing\nstatus 404\nrequest id 7  ")) == "bucket missing"
    assert uri.one_line(OSError()) == "OSError"
    assert uri.one_line(ValueError("   ")) == "ValueError"


def test_file_uris_relative_paths_and_unknown_schemes_reach_the_right_storage(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    grid = {"axes": {"depth": [2]}}
    folder.write_manifest(f"file://{tmp_path}/uri", {"preset": "a", "grid": grid})  # a URI of this machine's disk
    folder.write_manifest("rel", {"preset": "b", "grid": grid})  # a path relative to the working directory
    assert json.loads((tmp_path / "uri" / "sweep.json").read_text()) == {"preset": "a", "grid": grid}
    assert folder.read_manifest("rel") == {"preset": "b", "grid": grid}
    assert sorted(os.listdir(tmp_path)) == ["rel", "uri"]
    with pytest.raises(ConfigError, match=r"^nosuch://x/y: Unrecognized filesystem type in URI: nosuch://x/y$"):
        uri.filesystem("nosuch://x/y")


def test_the_manifest_is_written_whole_indented_for_people_and_with_any_value_as_text(tmp_path):
    out = tmp_path / "a" / "b"  # parents made as needed
    folder.write_manifest(str(out), {"preset": "p", "out": tmp_path, "grid": {"axes": {}}})
    text = (out / "sweep.json").read_text()
    assert text.startswith('{\n  "preset": "p",\n  "out": ')  # one key a line, two spaces
    assert folder.read_manifest(str(out)) == {"preset": "p", "out": str(tmp_path), "grid": {"axes": {}}}
    assert sorted(os.listdir(out)) == ["_tmp", "sweep.json"] and os.listdir(out / "_tmp") == []  # no temp file left


def test_the_sweep_manifest_records_the_grid_the_command_and_what_it_ran_on(monkeypatch):
    import importlib.metadata
    import platform
    from datetime import datetime, timezone

    import torch

    import study
    grid = {"depth": [2, 6], "seed": [0, 1]}
    m = driver.sweep_manifest(grid, "smoke", 4, ["memsweep", "run", "--preset", "smoke"])
    assert {k: m[k] for k in ("preset", "grid", "n_trials", "command", "schema_version", "finished")} == {
        "preset": "smoke", "grid": grid, "n_trials": 4, "command": "memsweep run --preset smoke",
        "schema_version": schema.SCHEMA_VERSION, "finished": None}
    assert m["versions"] == {"memsweep": study.__version__, "torch": torch.__version__,
                             "ray": importlib.metadata.version("ray"), "pyarrow": pa.__version__,
                             "python": platform.python_version()}
    assert m["host"] == {"name": platform.node(), "platform": platform.platform(), "cpus": os.cpu_count(),
                         "cuda_devices": torch.cuda.device_count()}
    started = datetime.strptime(m["started"], "%Y-%m-%dT%H:%M:%S%z")  # local time with its offset
    assert abs((datetime.now(timezone.utc) - started).total_seconds()) < 120
    assert set(m) == {"preset", "grid", "n_trials", "command", "schema_version", "versions", "host", "started",
                      "finished"}

    def no_ray(name):
        if name == "ray":
            raise importlib.metadata.PackageNotFoundError(name)
        return "0"
    monkeypatch.setattr(importlib.metadata, "version", no_ray)
    assert driver.sweep_manifest(grid, None, 4, [])["versions"]["ray"] is None  # a machine without Ray


def small_net():
    """A 2-layer net as a trial leaves it: built from its config, then trained (here: weights moved by hand)."""
    import torch

    from study.trial import models
    cfg = TrialConfig(depth=2, width=8)
    net = models.build(cfg, (1, 8, 8))
    with torch.no_grad():
        for p in net.parameters():
            p.add_(0.5)  # not the init that rebuilding from the config gives
    return SimpleNamespace(config=cfg, model=net, train_x=torch.rand(3, 64), image_shape=(1, 8, 8))


def test_a_saved_model_loads_as_the_trained_net_with_its_config_and_training_set(tmp_path):
    import torch
    trained = small_net()
    path = str(tmp_path / "m.pt")
    saved.save_model(path, trained)
    back = saved.load_model(path)
    assert back.config == trained.config and not back.model.training
    torch.testing.assert_close(back.train_x, trained.train_x)
    torch.testing.assert_close(back.model(back.train_x), trained.model(trained.train_x))
    assert torch.load(path, weights_only=True)["schema_version"] == schema.SCHEMA_VERSION  # which schema wrote it


def test_a_model_saved_on_a_gpu_loads_on_a_machine_without_one(tmp_path):
    import torch
    trained = small_net()
    path = str(tmp_path / "m.pt")
    saved.save_model(path, trained)
    on_gpu(path)  # the file as a trial on a GPU writes it: the state dict's storages tagged cuda:0
    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError, match="CUDA"):
            torch.load(path, weights_only=True)  # as saved, it would need a GPU
    back = saved.load_model(path)
    assert next(back.model.parameters()).device.type == "cpu"
    torch.testing.assert_close(back.model(back.train_x), trained.model(trained.train_x))


def on_gpu(path: str) -> None:
    """Rewrite a torch file so that its storages say they were saved on cuda:0 (no GPU needed)."""
    import zipfile
    with zipfile.ZipFile(path) as z:
        entries = [(info, z.read(info)) for info in z.infolist()]
    with zipfile.ZipFile(path, "w") as z:
        for info, data in entries:
            if info.filename.endswith("/data.pkl"):
                assert b"X\x03\x00\x00\x00cpu" in data
                data = data.replace(b"X\x03\x00\x00\x00cpu", b"X\x06\x00\x00\x00cuda:0")
            z.writestr(info, data)


def test_loading_a_model_runs_no_code_from_the_file(tmp_path):
    import fractions

    import torch
    trained = small_net()
    path = str(tmp_path / "m.pt")
    saved.save_model(path, trained)
    blob = torch.load(path, weights_only=True)
    torch.save({**blob, "note": fractions.Fraction(1, 3)}, path)  # an object whose unpickling calls its class
    with pytest.raises(Exception, match="Weights only load failed"):
        saved.load_model(path)


def test_rows_become_a_table_of_exactly_the_schema_or_are_refused_naming_the_columns(one):
    table = schema.to_table([one.trial], schema.TRIAL_SCHEMA)
    assert table.schema.remove_metadata().equals(schema.TRIAL_SCHEMA)  # declared types, also for None values
    assert table.schema.metadata == {b"memsweep_schema_version": schema.SCHEMA_VERSION.encode()}
    assert table.to_pylist()[0]["noise_levels"] == "0.05,0.1,0.2,0.4"  # a list field as the command line writes it
    typo = {("stauts" if k == "status" else k): v for k, v in one.trial.items()}
    with pytest.raises(ValueError, match=r"^row columns differ from the schema: missing \['status'\], "
                                         r"extra \['stauts'\]$"):
        schema.to_table([typo], schema.TRIAL_SCHEMA)
    with pytest.raises(pa.ArrowTypeError):  # a list where the schema has a string is a bug too, not text
        schema.to_table([dict(one.trial, device=["cpu"])], schema.TRIAL_SCHEMA)
