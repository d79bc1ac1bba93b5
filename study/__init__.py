"""memsweep's study package: one memorization trial, from config to result rows.

Pipeline, one module each: config -> data -> models -> train -> probes -> trial -> results.
"""
from .config import ConfigError, TrialConfig
from .results import SavedModel, load_model
from .trial import TrialResult, run_trial

__all__ = ["ConfigError", "TrialConfig", "TrialResult", "run_trial", "load_model", "SavedModel"]
__version__ = "0.1.0"
