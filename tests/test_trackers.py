"""Trackers are Tune's own logger callbacks (``--log``): they receive each Tune trial's grid point as its
parameters and every config's headline metrics, the same numbers as the Parquet tables. Read back as a
user would: MLflow's runs from its file store, TensorBoard's hyper-parameters from the event files."""
import importlib.util
import struct

import pandas as pd
import pytest

from study.config import ConfigError
from study.sweep import trackers


def test_smoke_sweep_reaches_mlflow_with_its_grid_points_and_metrics(smoke_out, monkeypatch):
    from mlflow.tracking import MlflowClient
    out, _ = smoke_out
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    client = MlflowClient(tracking_uri=f"file:{out / '_mlflow'}")  # the folder's own file store
    runs = client.search_runs([client.get_experiment_by_name("smoke").experiment_id])  # the preset's name
    runs = sorted(runs, key=lambda r: int(r.data.params["depth"]))
    trials = pd.read_parquet(out / "trials")
    assert [r.data.params["depth"] for r in runs] == ["2", "6"]
    for run in runs:
        params, metrics = run.data.params, run.data.metrics
        assert (params["arch"], params["width"], params["activation"]) == ("fc", "64", "leaky_relu")
        rows = trials[trials.depth == int(params["depth"])].set_index("seed")
        assert metrics["attractor_frac_mean"] == pytest.approx(rows.attractor_frac.mean())
        for seed, row in rows.iterrows():
            assert metrics[f"seeds/{seed}/attractor_frac"] == pytest.approx(row.attractor_frac)


def _hparams(path) -> dict:
    """The hyper-parameters in one TensorBoard event file (TFRecord: length, crc, event, crc)."""
    from tensorboardX.proto import event_pb2, plugin_hparams_pb2
    data, i, found = path.read_bytes(), 0, {}
    while i < len(data):
        n = struct.unpack("<Q", data[i:i + 8])[0]
        event = event_pb2.Event()
        event.ParseFromString(data[i + 12:i + 12 + n])
        i += 12 + n + 4
        for value in event.summary.value:
            if value.tag == "_hparams_/session_start_info":
                info = plugin_hparams_pb2.HParamsPluginData()
                info.ParseFromString(value.metadata.plugin_data.content)
                found = {k: v.number_value if v.HasField("number_value") else v.string_value
                         for k, v in info.session_start_info.hparams.items()}
    return found


def test_tensorboard_names_the_grid_point_and_csv_is_written(smoke_out):
    out, _ = smoke_out
    events = sorted((out / "_tune").glob("*/events.out.tfevents.*"))
    assert len(events) == 2 and len(list((out / "_tune").glob("*/progress.csv"))) == 2
    points = sorted((h["depth"], h["width"], h["arch"], h["activation"]) for h in map(_hparams, events))
    assert points == [(2.0, 64.0, "fc", "leaky_relu"), (6.0, 64.0, "fc", "leaky_relu")]


def test_unknown_or_missing_trackers_are_refused_in_one_line(tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    assert trackers.parse("tensorboard, mlflow,tensorboard") == ("tensorboard", "mlflow")
    assert trackers.parse("none") == ()
    with pytest.raises(ConfigError, match=r"^--log tensorbord: unknown tracker 'tensorbord'; "
                                          r"did you mean 'tensorboard'\? \(known: tensorboard, csv, "):
        trackers.parse("tensorbord")
    with pytest.raises(ConfigError, match="set MLFLOW_TRACKING_URI"):
        trackers.check(("mlflow",), "s3://bucket/x")
    if importlib.util.find_spec("wandb") is None:
        with pytest.raises(ConfigError, match=r"^--log wandb needs the wandb package: pip install wandb$"):
            trackers.check(("wandb",), str(tmp_path))
