"""`memsweep plan`: counts, resources, destination and a cost estimate, with no Ray; the step-time
model it fits; the launch settings it shares with `memsweep run`."""
import subprocess
import sys

import pytest

from study.sweep.cost import StepModel, forward_flops
from study.sweep.grid import build_grid, tune_trials
from study.sweep.presets import PRESETS
from study.sweep.plan import fit_step_model
from study.sweep.launch import CLUSTER_START_TIMEOUT_S, Launch


def test_fit_step_model_recovers_overhead_and_rate():
    truth = StepModel(overhead_s=2e-3, flops_per_s=5e9)
    points = [(f, truth.seconds(f)) for f in (1e6, 4e7, 3e8)]
    fitted = fit_step_model(points)
    assert fitted.overhead_s == pytest.approx(2e-3) and fitted.flops_per_s == pytest.approx(5e9)


def test_fit_step_model_with_one_shape_or_a_negative_intercept():
    only = fit_step_model([(1e6, 0.01), (1e6, 0.03)])
    assert only.overhead_s == pytest.approx(0.02) and only.seconds(1e9) == pytest.approx(0.02)
    # times that grow faster than the FLOPs would give a negative overhead: the rate alone explains them
    steep = fit_step_model([(1e6, 0.001), (2e6, 0.004)])
    assert steep.overhead_s == 0 and steep.flops_per_s == pytest.approx((3e6 + 6e6) / (0.001 + 0.004))


def test_forward_flops_of_an_fc_net_match_its_layer_sizes():
    cfg = PRESETS["smoke"].configs()[0]  # digits: 64 inputs, width 64, depth 2, 10 examples
    assert forward_flops(cfg) == 2 * (64 * 64 + 64 * 64) * cfg.n_train


def test_tune_trials_group_grid_points_without_the_per_trial_axis():
    grid = PRESETS["paper-fc"]
    configs = grid.configs()
    groups = tune_trials(grid, configs, [1.0] * len(configs))
    assert len(groups) == 945 and len(configs) == 2835
    assert all([c.seed for c in g] == [0, 1, 2] and len({c.replace(seed=0) for c in g}) == 1 for g in groups)
    one_each = build_grid("smoke", None, [])
    assert len(tune_trials(one_each.__class__(one_each.axes, one_each.fixed, None), one_each.configs())) == 4


def test_launch_defaults_follow_where_it_runs(monkeypatch):
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    own = Launch(out="results/x").checked()
    assert own.start_timeout == 0 and own.device == "cpu" and own.out.endswith("/results/x") and own.out.startswith("/")
    joined = Launch(out="s3://b/x", address="auto", gpus_per_trial=0.25).checked()
    assert joined.start_timeout == CLUSTER_START_TIMEOUT_S and joined.device == "cuda" and joined.out == "s3://b/x"
    assert joined.request == {"CPU": 1.0, "GPU": 0.25}
    assert Launch(out="/shared/x", address="auto", shared_fs=True).checked().out == "/shared/x"


def test_plan_prints_counts_resources_destination_and_costliest_first_without_ray(tmp_path):
    code = ("import sys; from study.cli import main; rc = main(sys.argv[1:]); "
            "assert 'ray' not in sys.modules, 'plan imported Ray'; sys.exit(rc)")
    out = subprocess.run([sys.executable, "-c", code, "plan", "--preset", "smoke", "--set", "depth=2,8",
                          "--gpus-per-trial", "0", "--out", str(tmp_path / "o")],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    text = out.stdout
    assert "4 configs in 2 Tune trials (the seed axis runs inside each Tune trial)" in text
    assert "each Tune trial asks for {CPU: 1}, on a Ray of its own on this machine" in text
    assert f"{tmp_path / 'o'}: new" in text
    assert "cpu-hours of training if every trial runs to max_steps (an upper bound" in text
    listed = [line.split()[-1] for line in text.splitlines()[-4:]]
    assert [i.split("-")[1] for i in listed] == ["d8", "d8", "d2", "d2"]  # most expensive first
    assert not (tmp_path / "o").exists()  # nothing written
