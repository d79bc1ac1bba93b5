"""memsweep's study package: memorization trials, their results on disk, and sweeps of them.

Layers, each a folder (docs/architecture.md draws them):

    config.py, registry.py, rules.py   what a trial is, the names it may use, what counts as memorizing
    trial/    one trial on torch: data -> models -> train (batched) -> probes -> rows (run.py)
    store/    results on disk, no torch: schema, parts, reader, the results folder, compaction, lease
    sweep/    many trials on Ray Tune: grids and presets, cost, launch, engine, driver, progress, refine, plan
    cli.py    the ``memsweep`` command
"""
from .config import ConfigError, TrialConfig

_LAZY = {"SavedModel": "trial.saved", "load_model": "trial.saved", "TrialResult": "trial.run",
         "run_trial": "trial.run", "run_trials": "trial.run"}  # these import torch: loaded on first use


def __getattr__(name: str):
    if name in _LAZY:
        import importlib
        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["ConfigError", "TrialConfig", "TrialResult", "run_trial", "run_trials", "load_model", "SavedModel"]
__version__ = "0.1.0"
