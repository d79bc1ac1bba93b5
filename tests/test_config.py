"""The trial config: validation messages, ids, round trips."""
import pytest

from study.config import ConfigError, TrialConfig, parse_value

BAD = [
    (dict(arch="mlp"), "unknown arch 'mlp'; known: fc, conv, conv_down"),
    (dict(activation="gelu"), "unknown activation 'gelu'"),
    (dict(dataset="imagenet"), "unknown dataset 'imagenet'"),
    (dict(init="orthogonal"), "unknown init 'orthogonal'"),
    (dict(optimizer="sgd"), "unknown optimizer 'sgd'; did you mean 'gd'? (known: adam, gd)"),
    (dict(depth=0), "depth must be >= 1"),
    (dict(width=-3), "width must be >= 1"),
    (dict(n_train=0), "n_train must be >= 1"),
    (dict(n_heldout=-1), "n_heldout must be >= 0"),
    (dict(depth=2.5), "depth must be int"),
    (dict(depth="8"), "depth must be int"),
    (dict(bias="yes"), "bias must be bool"),
    (dict(depth=True), "depth must be int"),
    (dict(lr=0), "lr must be > 0"),
    (dict(lr=float("nan")), "lr must be a finite number"),
    (dict(loss_tol=-1e-8), "loss_tol must be > 0"),
    (dict(train_noise=-0.1), "train_noise must be >= 0"),
    (dict(mask_frac=1.5), "mask_frac must be in [0, 1]"),
    (dict(noise_levels=()), "noise_levels must be a non-empty list"),
    (dict(noise_levels=(0.1, -0.2)), "noise_levels must be a non-empty list of positive numbers"),
    (dict(noise_levels=("a",)), "noise_levels must be a list of float"),
    (dict(headline_sigma=0.3), "headline_sigma must be one of noise_levels"),
    (dict(image_size=1), "image_size must be >= 2"),
    (dict(channels=2), "channels must be 1 or 3"),
    (dict(kernel_size=4), "kernel_size must be odd"),
    (dict(init="zero", depth=3), "init='zero' needs depth=1"),
    (dict(arch="conv_down", depth=1), "arch='conv_down' needs depth >= 2"),
    (dict(dataset="mnist"), "set data_dir"),
    (dict(data_dir=None, dataset="cifar10"), "set data_dir"),
    (dict(iter_steps=500, iter_max_steps=400), "iter_max_steps must be >= iter_steps (500)"),
    # the tolerances must cohere: match_tol <= memory_tol, iter_tol <= rho_margin * match_tol
    (dict(match_tol=0.1), "match_tol (0.1) must be <= memory_tol (0.05)"),
    (dict(iter_tol=2e-5), "iter_tol (2e-05) must be <= rho_margin * match_tol (1e-05)"),
    (dict(rho_margin=1e-4), "iter_tol (1e-05) must be <= rho_margin * match_tol (1e-06)"),
]


@pytest.mark.parametrize("kwargs, message", BAD, ids=[next(iter(k)) + str(i) for i, (k, _) in enumerate(BAD)])
def test_bad_values_name_the_field(kwargs, message):
    with pytest.raises(ConfigError, match=None) as err:
        TrialConfig(**kwargs)
    assert message in str(err.value)


def test_unknown_field_in_replace_and_parse():
    with pytest.raises(ConfigError, match="unknown config field"):
        TrialConfig().replace(detph=3)
    with pytest.raises(ConfigError, match="unknown config field 'detph'"):
        parse_value("detph", "3")


def test_parse_values_from_text():
    assert parse_value("depth", "8") == 8
    assert parse_value("lr", "1e-3") == 1e-3
    assert parse_value("bias", "false") is False
    assert parse_value("image_size", "none") is None
    assert parse_value("noise_levels", "0.1, 0.2") == (0.1, 0.2)
    with pytest.raises(ConfigError, match="depth must be int, got 'eight'"):
        parse_value("depth", "eight")
    with pytest.raises(ConfigError, match="bias must be true or false"):
        parse_value("bias", "maybe")


def test_trial_id_is_readable_deterministic_and_unique():
    a = TrialConfig(depth=8, activation="selu")
    assert a.trial_id.startswith("fc-d8-w512-selu-n10-s0-")
    assert a.trial_id == TrialConfig(depth=8, activation="selu").trial_id
    assert a.trial_id != a.replace(lr=1e-3).trial_id  # hidden fields still change the id
    # the seeds of one grid point share the suffix, so they group together
    assert a.trial_id.rsplit("-", 1)[1] == a.replace(seed=3).trial_id.rsplit("-", 1)[1]


def test_row_round_trip_and_frozen():
    cfg = TrialConfig(arch="conv", depth=3, noise_levels=(0.1, 0.3), headline_sigma=0.3, image_size=None)
    row = cfg.to_row()
    assert row["noise_levels"] == [0.1, 0.3]
    assert TrialConfig.from_row({**row, "attractor_frac": 0.5, "status": "ok"}) == cfg
    with pytest.raises(Exception):
        cfg.depth = 4


def test_ints_are_accepted_as_floats_and_stored_as_floats():
    cfg = TrialConfig(lr=1, noise_levels=[1, 2], headline_sigma=1)
    assert isinstance(cfg.lr, float) and cfg.noise_levels == (1.0, 2.0)


def test_trial_id_hashes_only_fields_off_their_defaults():
    # so that a field added to TrialConfig later, with a default, leaves every existing id valid
    import hashlib
    import json
    assert TrialConfig().trial_id.endswith("-" + hashlib.sha1(json.dumps({}).encode()).hexdigest()[:6])
    lr = TrialConfig(lr=1e-3)
    assert lr.trial_id.endswith("-" + hashlib.sha1(json.dumps({"lr": 1e-3}).encode()).hexdigest()[:6])


def test_a_huge_grid_is_refused_from_its_axes_before_any_config_is_built(monkeypatch):
    from study.sweep import grid
    from study.sweep import presets

    def no_configs(self):
        raise AssertionError("configs were built")
    monkeypatch.setattr(grid.Grid, "configs", no_configs)
    sets = ["depth=" + ",".join(map(str, range(1, 101))), "width=" + ",".join(map(str, range(1, 101))),
            "seed=" + ",".join(map(str, range(200)))]  # 2 archs x 100 x 100 x 200 = 4,000,000 configs
    with pytest.raises(ConfigError, match="4,000,000 configs"):
        grid.build_grid("local", None, sets)
    assert grid.grid_size(grid.apply_sets(presets.PRESETS["local"], sets)) == 4_000_000
    assert grid.build_grid("local", None, sets, max_configs=4_000_000).axes["seed"] == list(range(200))
