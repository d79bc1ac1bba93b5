"""Bad input catalogue: each malformed command gives one clear line and exit code 2 before any
compute (no Ray start, no trial), and touches no results."""
import os

import pytest

from study.store import folder
from study.sweep import driver, engine
from study.trial import run
from study.cli import main
from study.sweep.presets import PRESETS

RUN = ["run", "--preset", "smoke"]
CASES = [
    # (argv, message); OUT is the results folder, FILE a plain file, GRID a TOML file with the given text
    (["run", "--preset", "nope"], "unknown preset 'nope'"),
    (["run"], "give --preset NAME or --grid FILE.toml"),
    ([*RUN, "--set", "detph=3"], "unknown config field 'detph' in --set detph=3; did you mean 'depth'?"),
    ([*RUN, "--set", "depth"], "expected key=value"),
    ([*RUN, "--set", "depth=0"], "depth must be >= 1"),
    ([*RUN, "--set", "depth=-2"], "depth must be >= 1"),
    ([*RUN, "--set", "width=0"], "width must be >= 1"),
    ([*RUN, "--set", "depth=2.5"], "depth must be int"),
    ([*RUN, "--set", "lr=fast"], "lr must be float"),
    ([*RUN, "--set", "bias=maybe"], "bias must be true or false"),
    ([*RUN, "--set", "arch=mlp"], "unknown arch 'mlp'; known: fc, conv, conv_down"),
    ([*RUN, "--log", "tensorbord"], "unknown tracker 'tensorbord'"),
    ([*RUN, "--set", "activation=gelu"], "unknown activation 'gelu'"),
    ([*RUN, "--set", "optimizer=sgd"], "unknown optimizer 'sgd'; did you mean 'gd'? (known: adam, gd)"),
    ([*RUN, "--set", "n_train=5000"], "exceeds"),
    ([*RUN, "--set", "arch=conv_down", "--set", "image_size=9"], "cannot downsample images of side 9"),
    # every config is checked, not one per (data, arch, depth): down_stages=1,3 was passed, 3,1 refused
    (["plan", "--preset", "smoke", "--set", "arch=conv_down", "--set", "depth=6", "--set", "image_size=4",
      "--set", "down_stages=1,3"], "down_stages=3 halves images of side 4 more often than it divides evenly"),
    ([*RUN, "--set", "dataset=mnist", "--set", "data_dir=/nonexistent/mnist"], "data_dir"),
    ([*RUN, "--set", "dataset=mnist"], "set data_dir"),
    ([*RUN, "--set", "depth=2,2"], "same config twice"),
    ([*RUN, "--set", "loss_tol=-1"], "loss_tol must be > 0"),
    ([*RUN, "--set", "noise_levels=0.1,-0.2"], "noise_levels must be a non-empty list of positive numbers"),
    ([*RUN, "--set", "headline_sigma=0.3"], "headline_sigma must be one of noise_levels"),
    ([*RUN, "--set", "kernel_size=4"], "kernel_size must be odd"),
    ([*RUN, "--set", "init=zero"], "init='zero' needs depth=1"),
    ([*RUN, "--set", "mask_frac=2"], "mask_frac must be in [0, 1]"),
    (["run", "--grid", "/nonexistent/grid.toml"], "no such file"),
    (["run", "--grid", "GRID:[axes\ndepth = [1]"], "not a readable TOML file"),
    (["run", "--grid", "GRID:[axes]\nwdth = [1, 2]"], "unknown config field 'wdth' in --grid"),
    (["run", "--grid", "GRID:[axes]\ndepth = 3"], "axis 'depth' must be a non-empty list"),
    (["run", "--grid", "GRID:[sweep]\ndepth = [3]"], "unknown top-level key 'sweep'"),
    (["run", "--grid", "GRID:[fixed]\ndepth = 'deep'"], "depth must be int"),
    ([*RUN, "--out", "FILE"], "is a file, not a folder"),
    ([*RUN, "--out", "OLD", "--set", "depth=3"], "holds a sweep of a different grid"),
    ([*RUN, "--resume"], "--resume: no sweep in"),
    ([*RUN, "--cpus-per-trial", "0"], "--cpus-per-trial must be > 0"),
    ([*RUN, "--gpus-per-trial", "1.5"], "--gpus-per-trial must be between 0 and 1"),
    ([*RUN, "--gpus-per-trial", "2"], "--gpus-per-trial must be between 0 and 1"),
    ([*RUN, "--gpus-per-trial", "-1"], "--gpus-per-trial must be between 0 and 1"),
    ([*RUN, "--max-concurrent", "0"], "--max-concurrent must be >= 1"),
    ([*RUN, "--out", "/proc/memsweep-results"], "cannot write results there"),
    (["trial", "--depth", "0"], "depth must be >= 1"),
    (["trial", "--n-train", "5000"], "exceeds"),
    (["trial", "--arch", "conv_down", "--image-size", "9", "--depth", "4"], "cannot downsample images of side 9"),
    (["trial", "--save-model"], "--save-model without a path needs --out"),
    (["trial", "--out", "FILE"], "cannot write results there"),
    ([*RUN, "--address", "127.0.0.1:6379"], "is a folder on this machine, but the sweep joins a Ray cluster"),
    ([*RUN, "--device", "cuda"], "--device cuda needs --gpus-per-trial > 0"),
    ([*RUN, "--max-failures", "-1"], "--max-failures must be >= 0"),
    ([*RUN, "--start-timeout", "-5"], "--start-timeout must be >= 0 seconds"),
    (["plan", "--preset", "smoke", "--address", "auto"], "give shared storage (--out s3://BUCKET/PATH"),
    (["plan", "--preset", "smoke", "--set", "depth=0"], "depth must be >= 1"),
    (["plan", "--preset", "smoke", "--set", "depth=" + ",".join(map(str, range(1, 1001))),
      "--set", "width=" + ",".join(map(str, range(1, 2001)))], "4,000,000 configs (the product of its axes), over"),
    ([*RUN, "--max-configs", "3"], "lists 4 configs (the product of its axes), over the limit of 3"),
    ([*RUN, "--set", "seed=" + "1," * 1_000_000 + "1"], "1,000,001 values, more than a grid may have"),
    (["run", "--grid", "/dev/zero"], "larger than 1024 KiB"),
    (["plan", "--preset", "smoke", "--set", "width=65536", "--set", "depth=12"], "of memory here"),
    ([*RUN, "--set", "width=9223372036854775807"], "of memory here"),
    ([*RUN, "--set", "dataset=gaussian", "--set", "image_size=100000"], "of memory here"),
    (["trial", "--width", "65536", "--depth", "12"], "of memory here"),
    (["report", "/nonexistent/results"], "no results folder at"),
    (["report", "EMPTY"], "holds no memsweep results"),
    (["report", "OLD"], "not a readable Parquet file"),
    (["report", "s3://bucket/results"], "is remote: give --out"),
    (["report", "OLD", "--out", "FILE"], "cannot write the report there"),
    (["report", "OLD", "--out", "/proc/memsweep-report"], "cannot write the report there"),
    ([*RUN, "--out", "s3://bucket/../x"], "'.' and '..' are not resolved in object stores"),
    (["trial", "--out", "s3://bucket/a/../../x"], "'.' and '..' are not resolved in object stores"),
]


@pytest.fixture(scope="module")
def old_sweep(tmp_path_factory):
    """A results folder holding a (fake, finished) smoke sweep, to check a refusal touches nothing."""
    out = tmp_path_factory.mktemp("old")
    grid = PRESETS["smoke"]
    folder.write_manifest(str(out), driver.sweep_manifest(grid.to_json(), "smoke", 4, ["test"]))
    (out / "trials").mkdir()
    (out / "trials" / "keep.parquet").write_bytes(b"a part")
    return out


def _fill(argv, tmp_path, old_sweep):
    out = []
    for a in argv:
        if a == "FILE":
            (tmp_path / "plain.txt").write_text("a file")
            a = str(tmp_path / "plain.txt")
        elif a == "OLD":
            a = str(old_sweep)
        elif a == "EMPTY":
            (tmp_path / "empty").mkdir()
            a = str(tmp_path / "empty")
        elif a.startswith("GRID:"):
            (tmp_path / "grid.toml").write_text(a[5:])
            a = str(tmp_path / "grid.toml")
        out.append(a)
    if out[0] == "run" and "--out" not in out:
        out += ["--out", str(tmp_path / "out")]
    return out


@pytest.mark.parametrize("argv, message", CASES, ids=[f"{i:02d}" for i in range(len(CASES))])
def test_bad_input_is_one_clear_line_and_exit_2(argv, message, tmp_path, capsys, monkeypatch, old_sweep):


    def never_start_ray(*args, **kwargs):
        raise AssertionError("Ray was started before the input was refused")
    monkeypatch.setattr(engine, "start_ray", never_start_ray)
    monkeypatch.setattr(run, "run_trial", lambda *a, **k: (_ for _ in ()).throw(AssertionError("a trial ran")))
    before = {n: os.stat(old_sweep / "trials" / n).st_mtime_ns for n in os.listdir(old_sweep / "trials")}
    manifest = (old_sweep / "sweep.json").read_text()
    code = main(_fill(argv, tmp_path, old_sweep))
    err = capsys.readouterr().err
    assert code == 2
    assert message in err, err
    assert err.count("\n") == 1 and "Traceback" not in err  # one line
    assert not (tmp_path / "out").exists()  # nothing created
    assert {n: os.stat(old_sweep / "trials" / n).st_mtime_ns for n in os.listdir(old_sweep / "trials")} == before
    assert (old_sweep / "sweep.json").read_text() == manifest



@pytest.mark.parametrize("damage", ['{"grid": {"axes": {"dep', "[]", '{"grid": {"fixed": {"depth": "deep"}}}', "\udcff"])
def test_a_damaged_sweep_json_is_one_line_and_repair_keeps_every_row(damage, smoke_results, tmp_path, capsys,
                                                                       monkeypatch):
    """Truncated or hand-edited: run says so in one line and names --repair; the report still reads the
    rows; --repair with the grid that wrote them rebuilds sweep.json and loses no row, and --repair with
    another grid is refused."""
    import shutil
    import warnings

    import analysis

    monkeypatch.setattr(engine, "start_ray", lambda *a, **k: (_ for _ in ()).throw(AssertionError("Ray started")))
    out = tmp_path / "res"
    shutil.copytree(smoke_results, out)
    rows = sorted(analysis.load(str(out)).trials.trial_id)
    (out / "sweep.json").write_bytes(damage.encode("utf-8", "surrogateescape"))
    argv = ["run", "--preset", "smoke", "--set", "seed=0,1,2", "--out", str(out)]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "sweep.json is damaged" in err and "--repair" in err
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert sorted(analysis.load(str(out)).trials.trial_id) == rows
    assert any("sweep.json is damaged" in str(w.message) for w in caught)
    assert main(["run", "--preset", "smoke", "--out", str(out), "--repair"]) == 2  # seeds 1, 2 are no config of it
    assert "finished rows in" in capsys.readouterr().err
    assert main([*argv, "--repair"]) == 0
    manifest = folder.read_manifest(str(out))
    assert manifest["repaired"] and manifest["n_trials"] == len(rows) == 6
    assert sorted(analysis.load(str(out)).trials.trial_id) == rows
    assert main([*argv, "--repair"]) == 2 and "is intact" in capsys.readouterr().err
