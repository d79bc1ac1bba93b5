"""Where else a sweep is logged: Ray Tune's own logger callbacks, chosen by ``memsweep run --log``.

The Parquet tables of the results folder stay the source of truth: every verdict, table and figure
reads them. A tracker shows what Tune was told: each Tune trial's grid point as its parameters
(``engine.grid_points``), and per config its id, status, seed and headline metrics, every seed's so
far, and their means over the usable seeds (``engine.headline``, ``engine.over_seeds``).

    tensorboard  event files under OUT/_tune/<trial>/, the grid point as hyper-parameters (TBXLoggerCallback)
    csv          OUT/_tune/<trial>/progress.csv (CSVLoggerCallback)
    mlflow       one MLflow run per Tune trial (MLflowLoggerCallback) at MLFLOW_TRACKING_URI, else the file
                 store OUT/_mlflow; its experiment is the preset's name (or "memsweep")
    wandb        one W&B run per Tune trial (WandbLoggerCallback), project WANDB_PROJECT or "memsweep";
                 WANDB_MODE=offline keeps it on this machine

Tune's JSON log (OUT/_tune/<trial>/result.json), which its ``ResultGrid`` reads back, is always written.
"""
from __future__ import annotations

import functools
import importlib.util
import os

from ..config import ConfigError, unknown
from ..store.uri import is_remote

TRACKERS = {"tensorboard": "tensorboardX", "csv": None, "mlflow": "mlflow", "wandb": "wandb"}  # name -> package
DEFAULT = ("tensorboard", "csv")  # what Tune writes unasked


def parse(text: str) -> tuple[str, ...]:
    """'tensorboard,mlflow' -> ('tensorboard', 'mlflow'); 'none' -> (). Raises ConfigError (one line) on
    an unknown name."""
    names = tuple(dict.fromkeys(n.strip() for n in text.split(",") if n.strip()))
    if names == ("none",):
        return ()
    if bad := [n for n in names if n not in TRACKERS]:
        raise ConfigError(f"--log {text}: {unknown('tracker', bad[0], [*TRACKERS, 'none'])}")
    return names


def check(names: tuple[str, ...], out: str) -> None:
    """Raise ConfigError, before anything starts, when a tracker's package is missing or MLflow has
    nowhere to write."""
    for name in names:
        package = TRACKERS[name]
        if package and importlib.util.find_spec(package) is None:
            hint = "mlflow-skinny" if name == "mlflow" else package
            raise ConfigError(f"--log {name} needs the {package} package: pip install {hint}")
    if "mlflow" in names and is_remote(out) and not os.environ.get("MLFLOW_TRACKING_URI"):
        raise ConfigError(f"--log mlflow with --out {out}: set MLFLOW_TRACKING_URI (the file store OUT/_mlflow is "
                          "for a local --out)")


def callbacks(names: tuple[str, ...], out: str, preset: str | None) -> list:
    """Tune's logger callbacks for ``names``, and its JSON logger. Tune adds its default loggers itself
    unless TUNE_DISABLE_AUTO_CALLBACK_LOGGERS is set, which ``Engine.start`` does, so that ``--log`` is
    exactly what is written."""
    from ray.tune.logger import CSVLoggerCallback, JsonLoggerCallback, TBXLoggerCallback
    made = [JsonLoggerCallback()]
    for name in names:
        if name == "tensorboard":
            made.append(_hparams_from_the_grid_point(TBXLoggerCallback)())
        elif name == "csv":
            made.append(CSVLoggerCallback())
        elif name == "mlflow":
            from ray.air.integrations.mlflow import MLflowLoggerCallback
            uri = os.environ.get("MLFLOW_TRACKING_URI")
            if not uri:  # the folder's own file store, which MLflow 3 keeps only when asked (no database needed)
                uri = f"file:{os.path.join(out, '_mlflow')}"
                os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
            made.append(MLflowLoggerCallback(tracking_uri=uri, experiment_name=preset or "memsweep"))
        elif name == "wandb":
            from ray.air.integrations.wandb import WandbLoggerCallback
            made.append(WandbLoggerCallback(project=os.environ.get("WANDB_PROJECT", "memsweep"),
                                            group=preset or "memsweep"))
    return made


@functools.lru_cache(maxsize=None)  # one class, however many sweeps a process runs
def _hparams_from_the_grid_point(base):
    """Tune's TensorBoard logger, whose hyper-parameters are the Tune trial's grid point: Tune logs only
    the values its search resolved (``trial.evaluated_params``), none for points handed to it."""
    class TBXGridPoint(base):
        def log_trial_end(self, trial, failed: bool = False):
            if not trial.evaluated_params:
                trial.evaluated_params = {k: v for k, v in trial.config.items() if k != "_run"}
            super().log_trial_end(trial, failed)
    return TBXGridPoint
