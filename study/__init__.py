"""memsweep's study package: one memorization trial, from config to result rows.

Pipeline, one module each: config -> data -> models -> train (packed: many small nets at once)
-> probes -> trial -> results -> sweep (Ray Tune) -> cli.
"""
from .config import ConfigError, TrialConfig
from .results import SavedModel, load_model
from .trial import TrialResult, run_trial, run_trials

__all__ = ["ConfigError", "TrialConfig", "TrialResult", "run_trial", "run_trials", "load_model", "SavedModel"]
__version__ = "0.1.0"
