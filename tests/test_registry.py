"""One registry per extensible concept, and every place that needs its names reads them there: the
config accepts exactly the registry's names, the CLI offers exactly them with their meanings, the torch
side (builders, loaders) has one entry per name, the batching limit and linearity are the entries' own,
the trials table is the config's fields and the metrics' registry, and every claim has its presets.
Adding an architecture, an activation, a data set, a metric or a claim without the rest fails here."""
import pathlib

import pandas as pd
import pytest
import torch

from study import registry
from study.cli import parser
from study.config import ConfigError, TrialConfig, field_names
from study.registry import CHOICES
from study.store.schema import TRIAL_METRICS, TRIAL_SCHEMA

ROOT = pathlib.Path(__file__).resolve().parents[1]
NEEDS = {"mnist": {"data_dir": "somewhere"}, "cifar10": {"data_dir": "somewhere"}, "zero": {"depth": 1}}


def test_the_config_accepts_exactly_the_registrys_names():
    for field, names in CHOICES.items():
        for name in names:
            assert getattr(TrialConfig(**{field: name, **NEEDS.get(name, {})}), field) == name
        with pytest.raises(ConfigError, match=f"^unknown {field} 'nope'; known: {', '.join(names)}$"):
            TrialConfig(**{field: "nope"})


def _option(sub: str, flag: str):
    command = next(a for a in parser()._actions if a.dest == "command").choices[sub]
    return next(a for a in command._actions if flag in a.option_strings)


def test_the_cli_offers_exactly_the_registrys_names_with_their_meanings():
    for field, names in CHOICES.items():
        option = _option("trial", "--" + field.replace("_", "-"))
        assert option.choices == list(names), field
        assert all(f"{name}: {registry.meaning(entry)}" in option.help for name, entry in names.items()), field
    assert _option("run", "--device").choices == list(registry.DEVICES)
    assert _option("trial", "--device").choices == ["auto", *registry.DEVICES]


def test_every_name_has_its_torch_side():
    from study.trial import data, models
    assert list(models.ARCHS) == list(registry.ARCHS)
    assert list(models.ACTIVATIONS) == list(registry.ACTIVATIONS)
    assert set(data.LOADERS).isdisjoint(data.GENERATED)
    assert sorted([*data.LOADERS, *data.GENERATED]) == sorted(registry.DATASETS)
    assert sorted(data.GENERATED) == sorted(n for n, d in registry.DATASETS.items() if d.generated)


@pytest.mark.parametrize("name", list(registry.ACTIVATIONS))
def test_an_activation_is_marked_linear_exactly_when_it_is(name):
    from study.rules import is_linear
    from study.trial import models
    phi, x, y = models.ACTIVATIONS[name](), torch.randn(64) * 3, torch.randn(64) * 3
    additive = torch.allclose(phi(2 * x + 3 * y), 2 * phi(x) + 3 * phi(y), atol=1e-5)
    assert registry.ACTIVATIONS[name].linear == additive
    assert bool(is_linear(name, False)) == additive and not is_linear(name, True)  # a bias makes it affine


@pytest.mark.parametrize("arch", list(registry.ARCHS))
def test_the_cpu_batching_limit_is_the_architectures_own(arch):
    from study.trial.batched import batch_key
    limit, cpu = registry.ARCHS[arch].max_width_cpu, torch.device("cpu")
    cfg = TrialConfig(arch=arch, depth=4)
    assert batch_key(cfg.replace(width=limit + 1), cpu) is None
    assert limit == 0 or batch_key(cfg.replace(width=limit), cpu) is not None
    assert batch_key(cfg.replace(width=limit + 1), torch.device("cuda")) is not None  # on a GPU it always pays


def test_the_trials_table_is_the_configs_fields_and_the_metrics_registry():
    from study.trial.run import empty_metrics
    assert TRIAL_SCHEMA.names == [*field_names(), *TRIAL_METRICS]
    assert list(empty_metrics()) == list(TRIAL_METRICS)  # a trial's row has a place for every metric


def test_every_claim_has_a_local_and_a_full_size_preset():
    from analysis import claims
    from study.sweep.presets import PRESETS
    names = [v.claim for v in claims.verdicts(pd.read_parquet(ROOT / "docs" / "results" / "local.parquet"))]
    assert len(names) == len(claims.CLAIMS) and names[0] == "C1"
    for name in names:
        assert f"{name.lower()}-local" in PRESETS and name.lower() in PRESETS, name
