"""Sweeps: grids from presets / TOML / --set, and real Ray Tune runs of the smoke preset.

The Ray tests run ``memsweep run`` in subprocesses, as a user would (``sessions`` in conftest.py).
"""
import os
import time

import pandas as pd
import pyarrow.parquet as pq
import pytest

from study.config import ConfigError
from study.store.reader import finished_ids
from study.store.schema import TRIAL_SCHEMA
from study.sweep.cost import estimated_costs
from study.sweep.grid import Grid, apply_sets, build_grid, tune_trials, validate
from study.sweep.presets import PRESETS
from study.sweep.engine import grid_points, param_space
from study.trial.run import run_and_write


# --- grids, no Ray ---------------------------------------------------------------------------------

def test_presets_are_valid_grids():
    for name, grid in PRESETS.items():
        configs = grid.configs()
        assert len(configs) == len({c.trial_id for c in configs}), name
    assert len(PRESETS["smoke"].configs()) <= 6


def test_grid_file_and_sets_merge_over_preset(tmp_path):
    toml = tmp_path / "g.toml"
    toml.write_text('per_trial = "seed"\n[axes]\ndepth = [3, 5]\nactivation = ["selu", "tanh"]\n'
                    '[fixed]\nwidth = 48\nnoise_levels = [0.1, 0.2]\n')
    grid = build_grid("smoke", str(toml), ["seed=7", "lr=1e-2,1e-3"])
    assert grid.axes["depth"] == [3, 5] and grid.axes["activation"] == ["selu", "tanh"]
    assert grid.axes["lr"] == [1e-2, 1e-3] and "seed" not in grid.axes and grid.fixed["seed"] == 7
    assert grid.fixed["width"] == 48 and grid.fixed["noise_levels"] == (0.1, 0.2)
    configs = grid.configs()
    assert len(configs) == 2 * 2 * 2 and {c.width for c in configs} == {48}
    assert apply_sets(grid, ["noise_levels=0.1,0.2"]).fixed["noise_levels"] == (0.1, 0.2)  # commas of a list field


def test_the_per_trial_axis_runs_inside_one_tune_trial():
    grid = Grid(axes={"depth": [3, 5], "seed": [0, 1, 2]}, fixed={"width": 16})
    groups = tune_trials(grid, grid.configs())
    assert [[(c.depth, c.seed) for c in g] for g in groups] == [[(5, 0), (5, 1), (5, 2)], [(3, 0), (3, 1), (3, 2)]]
    assert [len(g) for g in tune_trials(Grid(grid.axes, grid.fixed, None), grid.configs())] == [1] * 6
    assert [len(g) for g in tune_trials(Grid(grid.axes, grid.fixed, "depth"), grid.configs())] == [2] * 3


BAD_GRIDS = [
    (dict(preset="nope"), "unknown preset 'nope'"),
    (dict(preset=None), "give --preset NAME or --grid FILE.toml"),
    (dict(preset="smoke", sets=["detph=3"]), "unknown config field 'detph' in --set detph=3; did you mean 'depth'?"),
    (dict(preset="smoke", sets=["depth"]), "expected key=value"),
    (dict(preset="smoke", sets=["depth=0"]), "depth must be >= 1"),
    (dict(preset="smoke", sets=["depth=a,b"]), "depth must be int"),
    (dict(preset="smoke", sets=["arch=mlp"]), "unknown arch 'mlp'"),
    (dict(preset="smoke", sets=["n_train=5000"]), "exceeds"),
    (dict(preset="smoke", sets=["arch=conv_down", "image_size=9"]), "cannot downsample images of side 9"),
    (dict(preset="smoke", sets=["dataset=mnist", "data_dir=/nonexistent"]), "data_dir"),
    (dict(preset="smoke", sets=["depth=2,2"]), "same config twice"),
]


@pytest.mark.parametrize("kwargs, message", BAD_GRIDS)
def test_bad_grids_fail_before_ray(kwargs, message):
    with pytest.raises(ConfigError) as err:
        validate(build_grid(kwargs["preset"], None, kwargs.get("sets", [])))
    assert message in str(err.value)


@pytest.mark.parametrize("text, message", [
    ("[axes\ndepth = [1]", "not a readable TOML file"),
    ("[axes]\nwdth = [1, 2]", "unknown config field 'wdth' in --grid"),
    ("[axes]\ndepth = 3", "axis 'depth' must be a non-empty list"),
    ("[grid]\ndepth = [3]", "unknown top-level key 'grid'; known: axes, fixed, per_trial"),
    ("[fixed]\ndepth = 'deep'", "depth must be int"),
])
def test_bad_grid_files(tmp_path, text, message):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as err:
        validate(build_grid("smoke", str(path)))
    assert message in str(err.value)


def test_run_and_write_skips_finished_configs(tmp_path):
    grid = Grid(axes={"seed": [0, 1]}, fixed={"depth": 2, "width": 16, "max_steps": 50, "n_random_starts": 4,
                                               "iter_steps": 20})
    configs = grid.configs()
    out = str(tmp_path)
    first = run_and_write(configs[:1], out)
    seen = []
    rows = run_and_write(configs, out, on_done=lambda row, skipped: seen.append((row["trial_id"], skipped)))
    assert first[0]["trial_id"] == configs[0].trial_id
    assert rows[0] is None and rows[1]["trial_id"] == configs[1].trial_id  # the finished one is not rerun
    assert seen == [(configs[0].trial_id, True), (configs[1].trial_id, False)]
    assert finished_ids(out) == {c.trial_id for c in configs}


def test_no_batch_trains_every_config_alone(tmp_path, monkeypatch):

    from study.cli import launch_from_args, parser
    assert launch_from_args(parser().parse_args(["run", "--preset", "smoke"])).batch
    assert not launch_from_args(parser().parse_args(["run", "--preset", "smoke", "--no-batch"])).batch
    configs = Grid(axes={"seed": [0, 1]}, fixed={"depth": 2, "width": 16, "max_steps": 50, "n_random_starts": 4,
                                                  "iter_steps": 20}).configs()
    from study.trial import run
    monkeypatch.setattr(run, "fit", lambda *args: pytest.fail("trained as a batch"))
    rows = run_and_write(configs, str(tmp_path), batch=False)
    assert [r["trial_id"] for r in rows] == [c.trial_id for c in configs] and finished_ids(str(tmp_path)) == set(
        r["trial_id"] for r in rows)


# --- through Ray ------------------------------------------------------------------------------------

def test_smoke_sweep_writes_each_grid_point_once_and_compacts_at_its_end(smoke_out):
    out, text = smoke_out
    expected = {c.trial_id for c in PRESETS["smoke"].configs()}
    assert "compacted: trials: 4 files -> 1 (4 rows)" in text
    (name,) = os.listdir(out / "trials")  # the four parts, folded into one file
    assert name.startswith("compacted-") and finished_ids(str(out)) == expected
    assert pq.read_schema(out / "trials" / name).remove_metadata().equals(TRIAL_SCHEMA)
    trials = pd.read_parquet(out / "trials")
    assert set(trials.trial_id) == expected and (trials.status == "ok").all()
    assert (trials.final_loss < trials.loss_tol).all()  # "ok" means interpolated
    examples = pd.read_parquet(out / "examples")
    assert len(examples) == 10 * len(expected)
    fixed = (examples.fixed_point_residual < 1e-2).groupby(examples.trial_id).mean()  # the examples' own verdicts
    assert trials.set_index("trial_id").fixed_point_frac.to_dict() == fixed.to_dict()
    assert "4/4 trials done, 0 running" in text and "4 trials: 4 done, 0 skipped" in text
    assert "Traceback" not in text and "Configuration for experiment" not in text  # no raw Ray banner


def test_tune_result_grid_holds_each_configs_headline_metrics(smoke_out):
    from ray import tune

    from study.sweep.engine import HEADLINE, _trainable
    out, _ = smoke_out
    grid = tune.Tuner.restore(str(out / "_tune"), trainable=_trainable).get_results()
    reported = pd.concat([r.metrics_dataframe for r in grid])
    trials = pd.read_parquet(out / "trials").set_index("trial_id")
    assert sorted(reported.config_id) == sorted(trials.index) and (reported.status == "ok").all()
    for name in HEADLINE:  # what Tune (and its TensorBoard / W&B / MLflow callbacks) saw is the row's value
        assert reported.set_index("config_id")[name].to_dict() == trials[name].to_dict()
    # one row per grid point, named by its fields, with every seed's metrics, not the last seed's alone
    points = grid.get_dataframe().set_index(["config/depth", "config/width"]).sort_index()
    assert list(points.index) == [(2, 64), (6, 64)] and (points["config/arch"] == "fc").all()
    for (depth, width), point in points.iterrows():
        rows = trials[(trials.depth == depth) & (trials.width == width)].set_index("seed")
        for seed, row in rows.iterrows():
            assert point[f"seeds/{seed}/attractor_frac"] == row.attractor_frac
        assert point["attractor_frac_mean"] == pytest.approx(rows.attractor_frac.mean())  # every seed is usable
    best = grid.get_best_result(metric="attractor_frac_mean", mode="max").config
    assert best["depth"] == points.attractor_frac_mean.idxmax()[0]


def test_rerun_of_finished_sweep_skips_everything_and_other_grid_is_refused(smoke_out, sessions):
    out, _ = smoke_out
    before = {p: os.path.getmtime(out / "trials" / p) for p in os.listdir(out / "trials")}
    code, text = sessions.run("run", "--preset", "smoke", "--out", str(out))
    assert code == 0 and "4 skipped" in text
    assert {p: os.path.getmtime(out / "trials" / p) for p in os.listdir(out / "trials")} == before
    code, text = sessions.run("run", "--preset", "smoke", "--set", "depth=3", "--out", str(out))
    assert code == 2 and "different grid" in text
    assert {p: os.path.getmtime(out / "trials" / p) for p in os.listdir(out / "trials")} == before


def test_failing_trials_are_rows_and_the_sweep_goes_on(tmp_path, sessions):
    out = tmp_path / "fail"
    code, text = sessions.run("run", "--preset", "smoke", "--set", "depth=2", "--set", "seed=0",
                              "--set", "optimizer=gd", "--set", "lr=1e-2,1e6", "--out", str(out), "--log", "none")
    trials = pd.read_parquet(out / "trials").set_index("lr")
    assert trials.loc[1e6, "status"] == "diverged" and pd.isna(trials.loc[1e6, "attractor_frac"])
    assert trials.loc[1e-2, "status"] in ("ok", "not_converged") and pd.notna(trials.loc[1e-2, "attractor_frac"])
    assert code == 0 and "diverged 1" in text  # a diverged trial is a result, not a failure
    logged = {f.name for f in (out / "_tune").rglob("*") if f.is_file()}
    assert "result.json" in logged and not any(n.startswith("events.") or n == "progress.csv" for n in logged)  # --log none


def never_start_ray(*args, **kwargs):
    raise AssertionError("Ray was started before the input was refused")


@pytest.mark.parametrize("extra, message", [
    (["--set", "depth=0"], "depth must be >= 1"),
    (["--gpus-per-trial", "1.5"], "--gpus-per-trial must be between 0 and 1"),
    (["--cpus-per-trial", "0"], "--cpus-per-trial must be > 0"),
    (["--resume"], "--resume: no sweep in"),
    (["--out", "FILE"], "is a file, not a folder"),
])
def test_cli_run_rejects_bad_input_before_ray(tmp_path, capsys, monkeypatch, extra, message):
    from study.cli import main
    from study.sweep import engine
    monkeypatch.setattr(engine, "start_ray", never_start_ray)
    target = tmp_path / "file.txt"
    target.write_text("not a folder")
    argv = ["run", "--preset", "smoke", "--out", str(tmp_path / "o"), *extra]
    argv = [str(target) if a == "FILE" else a for a in argv]
    assert main(argv) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "o" / "_tune").exists()


def test_force_discards_old_results_and_auto_refuses_stray_ones(tmp_path):
    from study.store import folder
    from study.store.folder import ResultsFolder
    from study.sweep import driver
    from study.sweep.driver import prepare_out
    out = tmp_path / "o"
    (out / "trials").mkdir(parents=True)
    (out / "trials" / "old.parquet").write_bytes(b"x")
    grid = PRESETS["smoke"]
    with pytest.raises(ConfigError, match="holds results without sweep.json"):
        prepare_out(ResultsFolder(str(out)), grid, "auto")
    assert prepare_out(ResultsFolder(str(out)), grid, "force") is False and (out / "trials" / "old.parquet").exists()
    folder.clear(str(out))  # what run_sweep does for --force, once Ray is up
    assert not (out / "trials").exists()
    folder.write_manifest(str(out), driver.sweep_manifest(grid.to_json(), "smoke", 4, []))
    assert prepare_out(ResultsFolder(str(out)), grid, "auto") is True  # same grid: resume
    other = apply_sets(grid, ["depth=3"])
    with pytest.raises(ConfigError, match="different grid"):
        prepare_out(ResultsFolder(str(out)), other, "auto")
    assert prepare_out(ResultsFolder(str(out)), other, "force") is False and (out / "sweep.json").exists()  # checks only


def test_tune_is_handed_the_validated_configs_grouped_most_expensive_first():
    grid = PRESETS["local"]
    configs = grid.configs()
    costs = estimated_costs(configs)
    groups = tune_trials(grid, configs, costs)
    run = {"out": "/x", "cpus": 1, "gpus": 0}
    # Tune is handed each Tune trial's place in ``groups`` (it starts them in that order) and its grid point
    points = grid_points(grid, groups)
    assert [p["group"] for p in points] == list(range(len(groups)))
    assert all({k: v for k, v in p.items() if k != "group"} == {k: getattr(g[0], k) for k in p if k != "group"}
               and "seed" not in p for p, g in zip(points, groups))
    assert {"arch", "depth", "width", "activation", "n_train", "dataset"} <= set(points[0])
    assert param_space(points, run) == {**{k: None for k in points[0]}, "_run": run}
    assert sorted(c.trial_id for g in groups for c in g) == sorted(c.trial_id for c in configs)  # each once
    assert all([c.seed for c in g] == [0, 1, 2] and len({c.replace(seed=0) for c in g}) == 1 for g in groups)
    cost = {c.trial_id: t for c, t in zip(configs, costs)}
    group_costs = [sum(cost[c.trial_id] for c in g) for g in groups]
    assert group_costs == sorted(group_costs, reverse=True) and group_costs[0] > group_costs[-1]
    assert (groups[0][0].arch, groups[0][0].depth, groups[0][0].width) == ("conv_down", 8, 128)  # the costliest


def test_progress_eta_weighs_finished_work_by_its_estimated_cost(tmp_path, monkeypatch):
    from types import SimpleNamespace

    from study.sweep import progress as sweep
    grid = Grid(axes={"depth": [8, 2], "seed": [0, 1]}, fixed={"width": 16})
    configs = grid.configs()
    costs = [9.0 if c.depth == 8 else 1.0 for c in configs]  # the deep group is 9x the shallow one
    progress = sweep.Progress([c.trial_id for c in configs], set(), costs,
                              groups=[[c.trial_id for c in configs if c.depth == d] for d in (8, 2)])
    progress.setup()
    run = {"out": str(tmp_path), "cpus": 1, "gpus": 0}
    packs = [SimpleNamespace(trial_id=f"t{d}", status="RUNNING", config={"group": i, "_run": run})
             for i, d in enumerate((8, 2))]
    lines = []
    monkeypatch.setattr(sweep.sys, "stderr", SimpleNamespace(write=lines.append, flush=lambda: None))
    progress.first_run = time.time() - 90  # the deep group took 90 s from the first trial's start
    deep = [c.trial_id for c in configs if c.depth == 8]
    progress.count(packs[0], {"configs_done": 2, "done_ids": ",".join(deep)}, packs)
    progress.show(packs)
    assert "2/4 trials done, 2 running" in lines[-1]  # the shallow group's two configs
    assert "ETA 10s" in lines[-1]  # 90 s x (1 left / 9 done), where counting configs says 90 s
    assert sweep.eta_seconds(90, 9, 10) == pytest.approx(10) and sweep.eta_seconds(5, 0, 10) != sweep.eta_seconds(5, 0, 10)


def test_joining_a_cluster_through_ray_address_needs_shared_storage(tmp_path, capsys, monkeypatch):
    """Under `ray job submit` RAY_ADDRESS is set: a local --out would scatter parts over the nodes' disks."""
    from study.cli import main
    monkeypatch.setenv("RAY_ADDRESS", "127.0.0.1:6379")
    assert main(["run", "--preset", "smoke", "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "give shared storage (--out s3://BUCKET/PATH or gs://BUCKET/PATH), or --shared-fs" in err
    assert not (tmp_path / "o").exists()


def test_a_gpu_asked_of_a_machine_without_one_is_refused_before_any_trial(tmp_path, sessions):
    import torch
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    code, text = sessions.run("run", "--preset", "smoke", "--gpus-per-trial", "0.5", "--out", str(tmp_path / "o"))
    assert code == 2 and "each trial asks for {CPU: 1, GPU: 0.5}, but this machine offers Ray {CPU: " in text
    assert "GPU: 0}" in text and "Traceback" not in text
    assert not (tmp_path / "o").exists()  # refused after Ray started, and no empty folder left behind


def test_resuming_a_folder_of_the_earlier_attractor_rule_says_so_and_upgrades_it(planted_results, tmp_path, capsys):
    import shutil

    from study.store import folder
    from study.store import schema
    from study.store.folder import ResultsFolder
    from study.sweep import driver
    out = tmp_path / "old"
    shutil.copytree(planted_results, out)
    folder.write_manifest(str(out), {"preset": "planted", "grid": {"axes": {"depth": [2]}}, "schema_version": "5"})
    driver._set_aside(ResultsFolder(str(out)), upgrade=True)
    err = capsys.readouterr().err
    assert f"{out} was written by schema 5" in err and "--force starts the folder over" in err
    assert len(finished_ids(str(out))) == 4  # nothing lost: the trials are compacted into the current schema
    folder.write_manifest(str(out), {"preset": "planted", "grid": {"axes": {"depth": [2]}}, "schema_version": schema.SCHEMA_VERSION})
    driver._set_aside(ResultsFolder(str(out)), upgrade=True)
    assert "was written by schema" not in capsys.readouterr().err


def test_memsweeps_own_ray_takes_no_fixed_port_from_other_rays(tmp_path):
    """Ray's dashboard agent listens on 52365 unless told otherwise, which ray.init cannot: memsweep's own
    Ray held it, and a Ray started after it (a laptop cluster's head) could not submit jobs."""
    import subprocess
    import sys
    code = ("from study.sweep.launch import Launch, start_ray\n"
            f"ray = start_ray(Launch(out={str(tmp_path)!r}).checked(), False)\n"
            "print('agent port', ray.nodes()[0]['DashboardAgentListenPort'])\nray.shutdown()")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          start_new_session=True)
    port = int(done.stdout.split("agent port")[1]) if "agent port" in done.stdout else None
    assert port is not None and port != 52365, done.stderr[-2000:]
