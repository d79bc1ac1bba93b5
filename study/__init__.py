"""memsweep's study package: one memorization trial, from config to result rows.

Pipeline, one module each: config -> data -> models -> train (batched: many small nets at once)
-> probes -> trial -> results -> sweep (Ray Tune) -> cli.
"""
from .config import ConfigError, TrialConfig

_LAZY = {"SavedModel": "results", "load_model": "results", "TrialResult": "trial", "run_trial": "trial",
         "run_trials": "trial"}  # these import torch: loaded on first use, so analysis and --help run without it


def __getattr__(name: str):
    if name in _LAZY:
        import importlib
        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["ConfigError", "TrialConfig", "TrialResult", "run_trial", "run_trials", "load_model", "SavedModel"]
__version__ = "0.1.0"
