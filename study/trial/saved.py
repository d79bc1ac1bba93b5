"""Saved models: ``memsweep trial --save-model`` writes one; a figure draws a net from one without
training it. Loading runs no code from the file (``weights_only``) and checks the config and the
net's memory before the net is built.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from ..config import ConfigError, TrialConfig
from ..store.schema import SCHEMA_VERSION
from ..store.uri import one_line
from . import models
from .resources import check_memory


@dataclass
class SavedModel:
    model: torch.nn.Module   # eval mode, on CPU
    config: TrialConfig
    train_x: torch.Tensor    # [n, ...] training examples in the model's input layout, row = example index
    image_shape: tuple[int, int, int] = (1, 8, 8)  # (C, H, W) of one image


def save_model(path: str, result) -> None:
    torch.save({"config": result.config.to_row(), "state_dict": result.model.state_dict(),
                "train_x": result.train_x.cpu(), "image_shape": list(result.image_shape),
                "schema_version": SCHEMA_VERSION}, path)


def load_model(path: str) -> SavedModel:
    """Load a file written by ``memsweep trial --save-model``: rebuild the net from its config, after
    checking that config and that the net fits this machine's memory (``resources.check_memory``)."""
    blob = torch.load(path, map_location="cpu", weights_only=True)  # no code runs on load
    try:
        cfg, shape = TrialConfig.from_row(blob["config"]), tuple(int(v) for v in blob["image_shape"])
    except (KeyError, TypeError, ValueError) as exc:
        raise ConfigError(f"{path} is not a model saved by memsweep ({one_line(exc)})") from None
    if len(shape) != 3:
        raise ConfigError(f"{path} is not a model saved by memsweep (image_shape {list(shape)})")
    check_memory(cfg, shape)
    model = models.build(cfg, shape)
    model.load_state_dict(blob["state_dict"])
    model.eval()
    return SavedModel(model, cfg, blob["train_x"], shape)
