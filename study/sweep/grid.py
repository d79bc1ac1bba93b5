"""Grids: which trials a sweep runs, as plain data, checked before anything runs.

A ``Grid`` is ``axes`` (field -> values, their cartesian product) and ``fixed`` (field ->
value) over ``TrialConfig`` fields; ``per_trial`` names the axis one Ray Tune trial runs through
(default ``seed``). ``PRESETS`` are named grids (one per claim of the papers, in a ``-local``
size for 2 CPU cores and a full size for a GPU cluster; ``presets.py``). ``build_grid`` combines a preset, a
TOML file and ``--set key=value`` overrides; ``validate`` checks every config against its data
and architecture; ``tune_trials`` groups the configs into Tune trials, the expensive ones first.
Nothing here needs Ray.
"""
from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field
from typing import Any

from ..config import DATA_FIELDS, REPLICATE, ConfigError, TrialConfig, check_fields, field_type, parse_value, unknown
from .cost import estimated_costs

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib  # type: ignore[no-redef]


@dataclass(frozen=True)
class Grid:
    axes: dict[str, list[Any]]
    fixed: dict[str, Any] = field(default_factory=dict)
    per_trial: str | None = REPLICATE  # the axis run inside one Tune trial (None: one config per Tune trial)

    def configs(self) -> list[TrialConfig]:
        """Every config of the grid, validated (a bad value raises ConfigError naming its field)."""
        names = list(self.axes)
        return [TrialConfig(**{**self.fixed, **dict(zip(names, values))})  # an axis overrides a fixed value
                for values in itertools.product(*(self.axes[n] for n in names))]

    def to_json(self) -> dict[str, Any]:
        return {"axes": self.axes, "fixed": self.fixed, "per_trial": self.per_trial}

    @classmethod
    def from_json(cls, blob: dict[str, Any]) -> "Grid":
        # "pack": the name sweep.json files of memsweep 0.x gave the per-trial axis
        return cls(blob["axes"], blob.get("fixed", {}), blob.get("per_trial", blob.get("pack", REPLICATE)))


# --- building a grid from preset + TOML + --set ------------------------------------------------------

def _coerce(name: str, value: Any) -> Any:
    """A TOML value for field ``name``: TOML already typed it; strings go through parse_value."""
    if isinstance(value, str):
        return parse_value(name, value)
    _, _, is_tuple = field_type(name)
    return tuple(value) if is_tuple and isinstance(value, list) else value


# Bounds checked before any config is built: a grid is refused with one line when the product of its
# axes exceeds max_configs (``--max-configs``), and a grid file larger than MAX_GRID_BYTES is not read.
MAX_CONFIGS = 1_000_000
MAX_GRID_BYTES = 1 << 20
GRID_KEYS = ("axes", "fixed", "per_trial")  # a grid file's top-level keys


def grid_size(grid: Grid) -> int:
    """How many configs the grid lists: the product of its axes' lengths (no config is built)."""
    return math.prod(len(v) for v in grid.axes.values())


def read_grid_file(path: str, base: Grid | None) -> Grid:
    """TOML: optional ``per_trial = "seed"`` (or "none"), an ``[axes]`` table of lists, a ``[fixed]`` table."""
    try:
        with open(path, "rb") as fh:
            raw = fh.read(MAX_GRID_BYTES + 1)  # at most this much, even from a device or a pipe
        if len(raw) > MAX_GRID_BYTES:
            raise ConfigError(f"--grid {path}: larger than {MAX_GRID_BYTES // 1024} KiB; a grid file lists axes "
                              "and values, not data")
        blob = tomllib.loads(raw.decode("utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"--grid {path}: no such file") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError, IsADirectoryError) as exc:
        raise ConfigError(f"--grid {path}: not a readable TOML file ({exc})") from None
    if extra := [key for key in blob if key not in GRID_KEYS]:
        raise ConfigError(f"--grid {path}: {unknown('top-level key', extra[0], GRID_KEYS)}")
    axes, fixed = blob.get("axes", {}), blob.get("fixed", {})
    if not isinstance(axes, dict) or not isinstance(fixed, dict):
        raise ConfigError(f"--grid {path}: [axes] and [fixed] must be tables")
    check_fields(axes, f" in --grid {path} [axes]")
    check_fields(fixed, f" in --grid {path} [fixed]")
    for name, values in axes.items():
        if not isinstance(values, list) or not values:
            raise ConfigError(f"--grid {path}: axis {name!r} must be a non-empty list, got {values!r}")
    grid = base or Grid(axes={})
    new_axes = {k: v for k, v in grid.axes.items() if k not in fixed}
    new_axes.update({k: [_coerce(k, v) for v in vals] for k, vals in axes.items()})
    new_fixed = {k: v for k, v in grid.fixed.items() if k not in axes}
    new_fixed.update({k: _coerce(k, v) for k, v in fixed.items()})
    per_trial = blob.get("per_trial", grid.per_trial)
    return Grid(new_axes, new_fixed, None if per_trial in (None, "none") else per_trial)


def apply_sets(grid: Grid, sets: list[str], max_configs: int = MAX_CONFIGS) -> Grid:
    """``key=value`` fixes a field; ``key=v1,v2`` makes it an axis (a list field takes the commas itself);
    an axis of more than ``max_configs`` values is refused before its values are parsed."""
    axes, fixed = dict(grid.axes), dict(grid.fixed)
    for item in sets:
        key, sep, text = item.partition("=")
        key = key.strip().replace("-", "_")
        if not sep:
            raise ConfigError(f"--set {item!r}: expected key=value")
        check_fields([key], f" in --set {item}")
        _, _, is_tuple = field_type(key)
        if "," in text and not is_tuple:
            if text.count(",") >= max_configs:
                raise ConfigError(f"--set {key}=...: {text.count(',') + 1:,} values, more than a grid may have "
                                  f"({max_configs:,} configs)")
            axes[key] = [parse_value(key, t) for t in text.split(",")]
            fixed.pop(key, None)
        else:
            fixed[key] = parse_value(key, text)
            axes.pop(key, None)
    return Grid(axes, fixed, grid.per_trial)


def build_grid(preset: str | None, grid_file: str | None = None, sets: list[str] = (),
               max_configs: int = MAX_CONFIGS) -> Grid:
    from .presets import PRESETS  # the presets are Grids: they import this module
    if preset is None and grid_file is None:
        raise ConfigError("give --preset NAME or --grid FILE.toml")
    if preset is not None and preset not in PRESETS:
        raise ConfigError(unknown("preset", preset, PRESETS, "memsweep run --help"))
    grid = PRESETS[preset] if preset else None
    if grid_file:
        grid = read_grid_file(grid_file, grid)
    grid = apply_sets(grid, list(sets), max_configs)
    if grid.per_trial is not None:
        check_fields([grid.per_trial], " as per_trial (a config field, or none)")
    size = grid_size(grid)
    if size > max_configs:
        raise ConfigError(f"the grid lists {size:,} configs (the product of its axes), over the limit "
                          f"of {max_configs:,}: split it, or raise the limit with --max-configs")
    return grid


def validate(grid: Grid) -> list[TrialConfig]:
    """Every config of the grid, checked against its data, its architecture and this machine's memory
    (``trial.resources.check_memory``): all before Ray starts, and before any model or image is built."""
    from ..trial import data, models, resources
    configs = grid.configs()
    if len({c.trial_id for c in configs}) != len(configs):
        raise ConfigError("the grid lists the same config twice (a repeated axis value?)")
    shapes: dict[tuple, tuple[int, int, int]] = {}
    available = resources.node_memory()
    for cfg in configs:
        key = tuple(getattr(cfg, f) for f in DATA_FIELDS)
        if key not in shapes:
            data.check(cfg)
            shapes[key] = data.pool_shape(cfg)[1:]
        models.check(cfg, shapes[key])
        resources.check_memory(cfg, shapes[key], available)
    return configs


# --- Tune trials: a grid point's seeds together, expensive grid points first -----------------------

def tune_trials(grid: Grid, configs: list[TrialConfig], costs: list[float] | None = None) -> list[list[TrialConfig]]:
    """The configs grouped into Tune trials, most expensive first.

    Configs equal in every field but the grid's ``per_trial`` axis form one Tune trial, run in
    grid order inside it. The Tune trials are sorted by their summed estimated cost (``costs``, one
    per config; default ``estimated_costs``), largest first, ties in grid order: Tune starts them in
    that order, so a sweep ends on its cheapest trials instead of one long trial running alone
    while the other workers idle."""
    costs = costs if costs is not None else estimated_costs(configs)
    groups: dict[tuple, list[int]] = {}
    for i, cfg in enumerate(configs):
        key = tuple((k, str(v)) for k, v in cfg.to_row().items() if k != grid.per_trial)
        groups.setdefault(key, []).append(i)
    ordered = sorted(groups.values(), key=lambda idx: -sum(costs[i] for i in idx))  # stable: ties keep grid order
    return [[configs[i] for i in idx] for idx in ordered]
