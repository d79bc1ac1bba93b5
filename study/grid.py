"""Grids: which trials a sweep runs, as plain data, checked before anything runs.

A ``Grid`` is ``axes`` (field -> values, their cartesian product) and ``fixed`` (field ->
value) over ``TrialConfig`` fields; ``per_trial`` names the axis one Ray Tune trial runs through
(default ``seed``). ``PRESETS`` are named grids (one per claim of the papers, in a ``-local``
size for 2 CPU cores and a full size for a GPU cluster). ``build_grid`` combines a preset, a
TOML file and ``--set key=value`` overrides; ``validate`` checks every config against its data
and architecture; ``tune_trials`` groups the configs into Tune trials, the expensive ones first.
Nothing here needs Ray.
"""
from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field
from typing import Any

from .config import ACTIVATIONS, ConfigError, TrialConfig, field_names, field_type, parse_value

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib  # type: ignore[no-redef]


@dataclass(frozen=True)
class Grid:
    axes: dict[str, list[Any]]
    fixed: dict[str, Any] = field(default_factory=dict)
    per_trial: str | None = "seed"  # the axis run inside one Tune trial (None: one config per Tune trial)

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
        return cls(blob["axes"], blob.get("fixed", {}), blob.get("per_trial", blob.get("pack", "seed")))


# --- presets: plain data ---------------------------------------------------------------------------
# Digits (64-dim) at lr 1e-3 interpolate in a few hundred Adam steps; depth is where memorization
# appears (fc: no attractors at depth 1-2, most examples at depth >= 8 on 10 digits).
_FAST = {"lr": 1e-3, "loss_tol": 1e-7, "max_steps": 3000}

PRESETS: dict[str, Grid] = {
    # a handful of tiny trials for tests and CI: < 1 minute on 2 cores
    "smoke": Grid(axes={"depth": [2, 6], "seed": [0, 1]},
                  fixed={**_FAST, "width": 64, "loss_tol": 1e-6, "max_steps": 1500, "n_random_starts": 10,
                         "iter_steps": 300}),
    # the README's main job (< 5 min on 2 cores): memorization appears with depth, for fc and conv_down,
    # at two widths. Every shape here interpolates: conv_down cannot fit ten digits at depth 2 (width 32:
    # 609 parameters for 640 values; width 128 fails too), width 32 needs ~12,000 steps, and conv_down
    # at width 64 and depth 4 ends just above 1e-7 after 3,000 steps but fits in ~3,500. Depth 12 and the
    # default 8 noisy starts per example and sigma would take it past 5 minutes (conv_down at depth 3, where
    # nothing is stored, has the slowest probes: its starts drift for thousands of steps)
    "local": Grid(axes={"arch": ["fc", "conv_down"], "depth": [3, 4, 6, 8], "width": [64, 128],
                        "seed": [0, 1, 2]},
                  fixed={**_FAST, "max_steps": 8000, "starts_per_example": 4}),
    # the papers' FC setting, for a GPU cluster: 784-dim-size images, widths 128..2048, depth 1..16
    "paper-fc": Grid(axes={"depth": [1, 2, 3, 4, 6, 8, 10, 12, 16], "width": [128, 256, 512, 1024, 2048],
                           "activation": ["leaky_relu", "selu", "elu", "tanh", "sigmoid", "softplus", "cosid"],
                           "n_train": [1, 10, 100], "seed": [0, 1, 2]},
                     fixed={"image_size": 28, "lr": 1e-4, "loss_tol": 1e-8, "max_steps": 50000}),
    # C3: conv depth vs image side, with and without downsampling, 3x3 filters, 16x16 images
    "paper-conv": Grid(axes={"arch": ["conv", "conv_down"], "depth": [2, 4, 6, 8, 10, 12, 16],
                             "width": [16, 64], "n_train": [1, 10], "seed": [0, 1, 2]},
                       fixed={"image_size": 16, "lr": 1e-4, "loss_tol": 1e-8, "max_steps": 50000}),
}

# One preset per claim of the papers (C1-C6): `cN-local` runs on 2 CPU cores in minutes, `cN` is
# the full size for a GPU cluster. Five seeds: the exact tests the verdicts use cannot say yes at 5%
# from fewer (3 seeds paired by seed: 2^3 = 8 sign patterns, p >= 1/8; 5: p >= 1/32), README "Statistics"
CLAIM_SEEDS = [0, 1, 2, 3, 4]
_C1 = {"depth": 1, "bias": False, "init": "zero", "optimizer": "gd", "final_activation": True,
       "dataset": "gaussian", "image_size": 8, "n_train": 5, "loss_tol": 1e-12}  # GD from A = 0
_C3_LINEAR = {"activation": "identity", "bias": False, "n_train": 1, "n_heldout": 5, "init": "normal",
              "lr": 1e-3, "loss_tol": 1e-8, "max_steps": 20000}  # init std 1/sqrt(fan_in): gain ~1 per layer
PRESETS.update({
    # C1: single layers project onto the (nonlinear) span: f(x) = f(P_X x), no attractors. f = phi(A x)
    # interpolates only data inside phi's range, reached with phi' bounded away from 0: cos(z) - z maps
    # z in [0, 0.74] onto [0, 1] with slope -1 to -1.7, so cosid fits U[0, 1] pixels (~360 GD steps)
    # and digits. tanh, softplus and sigmoid cannot reach N(0, 1) pixels, and on [0, 1] pixels near
    # their range's edge the loss falls as a power law (tanh 2e-5, softplus 2e-4, sigmoid 6e-4 after
    # 3000 steps, measured): they never interpolate, so they are no evidence, and are left out
    "c1-local": Grid(axes={"activation": ["identity", "cosid"], "seed": CLAIM_SEEDS},
                     fixed={**_C1, "dataset": "uniform", "lr": 1.0, "max_steps": 3000}),
    "c1": Grid(axes={"activation": ["identity", "cosid"], "dataset": ["uniform", "digits"], "n_train": [5, 20],
                     "seed": CLAIM_SEEDS},
               fixed={**_C1, "lr": 0.5, "max_steps": 50000}),
    # C2: deep fc nets trained to interpolation are contractive at their training examples
    "c2-local": Grid(axes={"depth": [2, 4, 6, 8, 12], "width": [64, 256], "activation": ["leaky_relu", "selu"],
                           "seed": CLAIM_SEEDS}, fixed={**_FAST}),
    "c2": PRESETS["paper-fc"],
    # C3: conv depth is necessary; downsampling reaches memorization at smaller depth
    # Locally every net here fits ten digits to 1e-7 (a net that does not fit is no evidence): at depth 2
    # neither arch does in 8000 steps, conv_down at depth 4 fits 2 of 3 seeds by 8000, and at depth 12 it
    # needs ~6400 (measured). Fewer starts and 300 iteration steps before the iteration rule's extension
    # keep the probes of stride-1 nets, whose starts drift without converging, near their training time
    "c3-local": Grid(axes={"arch": ["conv", "conv_down"], "depth": [6, 8, 12], "seed": CLAIM_SEEDS},
                     fixed={**_FAST, "width": 32, "max_steps": 10000, "starts_per_example": 4,
                            "n_random_starts": 20, "iter_steps": 300}),
    "c3": PRESETS["paper-conv"],
    # C3's operator study: linear conv nets (identity activation, no bias) on one image, depth against
    # the image side; single-filter (width 1, the theorem's setting) and 8 filters per layer
    # (locally: 8 filters on sides 4 and 8; single filters, and 16x16 images, do not reach MSE 1e-8 in
    # 20000 steps past depth 3, and nets that do not fit are no evidence. conv_down on side 8 at depth 2
    # stalls at MSE 1e-5 to 1e-3 with lr 1e-3, 3e-3 or 1e-2, so the depths start at 3: the stride-1
    # nets there, receptive field 7 on side 8, still test the bound)
    "c3-linear-local": Grid(axes={"arch": ["conv", "conv_down"], "image_size": [4, 8], "depth": [3, 4, 6, 8],
                                  "seed": CLAIM_SEEDS}, fixed={**_C3_LINEAR, "width": 8, "iter_steps": 300}),
    "c3-linear": Grid(axes={"arch": ["conv", "conv_down"], "image_size": [4, 8, 16, 32], "width": [1, 8, 32],
                            "depth": [2, 3, 4, 6, 8, 12, 16, 24, 32], "seed": CLAIM_SEEDS},
                      fixed={**_C3_LINEAR, "max_steps": 100000}),
    # C4: one training example is stored as an attractor across activations, widths, depths
    "c4-local": Grid(axes={"activation": ["leaky_relu", "selu", "elu", "tanh", "softplus", "cosid"],
                           "width": [64, 256], "depth": [3, 6], "seed": CLAIM_SEEDS},
                     fixed={**_FAST, "n_train": 1, "n_heldout": 5}),
    "c4": Grid(axes={"activation": list(ACTIVATIONS[1:]), "width": [128, 512, 2048], "depth": [2, 4, 8, 12],
                     "seed": CLAIM_SEEDS}, fixed={"n_train": 1, "image_size": 28, "lr": 1e-4, "loss_tol": 1e-8,
                                                "max_steps": 50000}),
    # C5: a net trained on a cycle x_0 -> x_1 -> ... -> x_0 stores it; stable iff rho(J ... J) < 1
    "c5-local": Grid(axes={"depth": [2, 4, 8], "n_train": [3, 6], "seed": CLAIM_SEEDS},
                     fixed={**_FAST, "task": "sequence", "width": 256, "activation": "selu", "iter_steps": 300}),
    "c5": Grid(axes={"depth": [2, 4, 8, 12, 16], "width": [256, 1024], "n_train": [3, 10, 30],
                     "activation": ["leaky_relu", "selu"], "seed": CLAIM_SEEDS},
               fixed={"task": "sequence", "image_size": 28, "lr": 1e-4, "loss_tol": 1e-8, "max_steps": 50000}),
    # C6: more depth and more width make the map more contractive: more examples stored
    # (width 32 does not fit 30 digits in 3000 steps at depth 4 or 8; 128 to 512 all fit, measured)
    "c6-local": Grid(axes={"depth": [4, 8], "width": [128, 256, 512], "seed": CLAIM_SEEDS},
                     fixed={**_FAST, "n_train": 30}),
    "c6": Grid(axes={"depth": [4, 8, 12, 16], "width": [256, 1024, 4096], "n_train": [100, 500],
                     "seed": CLAIM_SEEDS},
               fixed={"image_size": 28, "lr": 1e-4, "loss_tol": 1e-8, "max_steps": 100000}),
})


# The memorization boundary (onset depth against width and n) at image sizes near the papers': 25x25
# faces (lfw, 625 dims) and 32x32 grayscale photo tiles (1024 dims), against 8x8 digits (64 dims)
# and random images of each size. Made for `memsweep refine` (its depth axis is the candidates);
# `memsweep run` trains the dense grid. The -local sizes are for 2 CPU cores: widths 256-1024,
# n_train 1 and 10, fewer probe starts and 300 iteration steps (width 2048 and n_train = 50 are
# minutes per trial there). The full sizes are for a GPU cluster, with the papers' Adam lr 1e-4.
_BOUNDARY_LOCAL = {"lr": 3e-4, "loss_tol": 1e-7, "max_steps": 5000, "starts_per_example": 4, "n_random_starts": 20,
                   "iter_steps": 300}  # lr 1e-3 stalls above 1e-7 on the photo tiles, 1e-4 needs > 5000 steps
_BOUNDARY_FULL = {"lr": 1e-4, "loss_tol": 1e-8, "max_steps": 50000}
_BOUNDARY_AXES_LOCAL = {"depth": list(range(1, 13)), "width": [256, 512, 1024], "n_train": [1, 10],
                        "seed": [0, 1, 2]}
_BOUNDARY_AXES = {"depth": list(range(1, 13)), "width": [256, 512, 1024, 2048], "n_train": [1, 10, 50],
                  "seed": [0, 1, 2]}
_IMAGES = {"digits": {"dataset": "digits"}, "lfw": {"dataset": "lfw"},
           "photos": {"dataset": "photos", "image_size": 32, "channels": 1}}
for _name, _data in _IMAGES.items():
    PRESETS[f"boundary-{_name}-local"] = Grid(axes=_BOUNDARY_AXES_LOCAL, fixed={**_BOUNDARY_LOCAL, **_data})
    PRESETS[f"boundary-{_name}"] = Grid(axes=_BOUNDARY_AXES, fixed={**_BOUNDARY_FULL, **_data})
# the control: i.i.d. uniform pixels at each of the three sizes (64, 625, 1024 dims)
PRESETS["boundary-random-local"] = Grid(axes={**_BOUNDARY_AXES_LOCAL, "image_size": [8, 25, 32]},
                                        fixed={**_BOUNDARY_LOCAL, "dataset": "uniform"})
PRESETS["boundary-random"] = Grid(axes={**_BOUNDARY_AXES, "image_size": [8, 25, 32]},
                                  fixed={**_BOUNDARY_FULL, "dataset": "uniform"})
# conv and conv_down on the 32x32 photo tiles; locally one training image (ten do not fit 1e-7 in
# 3000 steps on 2 cores)
PRESETS["boundary-conv-local"] = Grid(axes={"arch": ["conv", "conv_down"], "depth": [2, 4, 6, 8, 10, 12],
                                            "width": [16, 32], "seed": [0, 1, 2]},
                                      fixed={**_BOUNDARY_LOCAL, **_IMAGES["photos"], "n_train": 1})
PRESETS["boundary-conv"] = Grid(axes={"arch": ["conv", "conv_down"], "depth": [2, 4, 6, 8, 10, 12, 16],
                                      "width": [16, 32, 64, 128], "n_train": [1, 10, 50], "seed": [0, 1, 2]},
                                fixed={**_BOUNDARY_FULL, **_IMAGES["photos"]})

# --- building a grid from preset + TOML + --set ------------------------------------------------------

def _coerce(name: str, value: Any) -> Any:
    """A TOML value for field ``name``: TOML already typed it; strings go through parse_value."""
    if isinstance(value, str):
        return parse_value(name, value)
    _, _, is_tuple = field_type(name)
    return tuple(value) if is_tuple and isinstance(value, list) else value


def _check_names(names, where: str) -> None:
    unknown = sorted(set(names) - set(field_names()))
    if unknown:
        raise ConfigError(f"unknown config field(s) {unknown} in {where}; known fields: {', '.join(field_names())}")


# Bounds checked before any config is built: a grid is refused with one line when the product of its
# axes exceeds max_configs (``--max-configs``), and a grid file larger than MAX_GRID_BYTES is not read.
MAX_CONFIGS = 1_000_000
MAX_GRID_BYTES = 1 << 20


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
    extra = sorted(set(blob) - {"axes", "fixed", "per_trial"})
    if extra:
        raise ConfigError(f"--grid {path}: unknown top-level key(s) {extra}; allowed: axes, fixed, per_trial")
    axes, fixed = blob.get("axes", {}), blob.get("fixed", {})
    if not isinstance(axes, dict) or not isinstance(fixed, dict):
        raise ConfigError(f"--grid {path}: [axes] and [fixed] must be tables")
    _check_names(axes, f"--grid {path} [axes]")
    _check_names(fixed, f"--grid {path} [fixed]")
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
        _check_names([key], f"--set {item}")
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
    if preset is None and grid_file is None:
        raise ConfigError("give --preset NAME or --grid FILE.toml")
    if preset is not None and preset not in PRESETS:
        raise ConfigError(f"unknown preset {preset!r}; presets: {', '.join(PRESETS)}")
    grid = PRESETS[preset] if preset else None
    if grid_file:
        grid = read_grid_file(grid_file, grid)
    grid = apply_sets(grid, list(sets), max_configs)
    if grid.per_trial is not None and grid.per_trial not in field_names():
        raise ConfigError(f"per_trial must be a config field or none, got {grid.per_trial!r}")
    size = grid_size(grid)
    if size > max_configs:
        raise ConfigError(f"the grid lists {size:,} configs (the product of its axes), over the limit "
                          f"of {max_configs:,}: split it, or raise the limit with --max-configs")
    return grid


def validate(grid: Grid) -> list[TrialConfig]:
    """Every config of the grid, checked against its data, its architecture and this machine's memory
    (``trial.check_memory``): all before Ray starts, and before any model or image is built."""
    from . import data, models, trial
    configs = grid.configs()
    if len({c.trial_id for c in configs}) != len(configs):
        raise ConfigError("the grid lists the same config twice (a repeated axis value?)")
    shapes: dict[tuple, tuple[int, int, int]] = {}
    available = trial.node_memory()
    for cfg in configs:
        key = (cfg.dataset, cfg.data_dir, cfg.n_train, cfg.n_heldout, cfg.image_size, cfg.channels)
        if key not in shapes:
            data.check(cfg)
            shapes[key] = data.pool_shape(cfg)[1:]
        models.check(cfg, shapes[key])
        trial.check_memory(cfg, shapes[key], available)
    return configs


# --- ordering: expensive grid points first ----------------------------------------------------------

STEP_OVERHEAD_S = 1e-3  # optimizer + Python per training step, measured ~1 ms for small nets on 1 thread
FLOPS_PER_S = 1e11      # a rough single-thread float32 rate; ordering needs only the estimates' ratios


@dataclass(frozen=True)
class StepModel:
    """Seconds per training step = overhead_s + 3 x forward FLOPs / flops_per_s (forward, backward ~2x
    forward). The defaults are rough; ``study.plan.calibrate`` fits both to steps timed on a machine."""
    overhead_s: float = STEP_OVERHEAD_S
    flops_per_s: float = FLOPS_PER_S

    def seconds(self, forward_flops: float) -> float:
        return self.overhead_s + 3 * forward_flops / self.flops_per_s


def forward_flops(cfg: TrialConfig) -> float:
    """FLOPs of one forward pass over the n_train training examples: sum over weight layers of
    2 x weights x output positions x n_train, the output sizes taken from a forward pass on meta
    tensors (shapes only, nothing is computed)."""
    import torch

    from . import data, models
    shape = data.pool_shape(cfg)[1:]
    flops = 0

    def count(module, inputs, output):
        nonlocal flops
        positions = output[0, 0].numel()  # 1 for a Linear, H_out x W_out for a Conv2d
        flops += 2 * module.weight.numel() * positions * output.shape[0]

    with torch.device("meta"):
        model = models.ARCHS[cfg.arch](cfg, shape)
        for m in model.modules():
            if isinstance(m, (torch.nn.Linear, torch.nn.Conv2d)):
                m.register_forward_hook(count)
        model(models.to_input(torch.empty(cfg.n_train, *shape), cfg.arch))
    return float(flops)


def estimated_seconds(cfg: TrialConfig, model: StepModel = StepModel()) -> float:
    """An upper bound on a trial's training time: max_steps steps of ``model.seconds(forward_flops)``."""
    return cfg.max_steps * model.seconds(forward_flops(cfg))


def shape_flops(configs: list[TrialConfig]) -> dict[tuple, float]:
    """``forward_flops`` per shape of work (``shape_key``): computed once, not per seed or lr."""
    flops: dict[tuple, float] = {}
    for cfg in configs:
        if shape_key(cfg) not in flops:
            flops[shape_key(cfg)] = forward_flops(cfg)
    return flops


def estimated_costs(configs: list[TrialConfig], model: StepModel = StepModel()) -> list[float]:
    """``estimated_seconds`` of each config."""
    flops = shape_flops(configs)
    return [cfg.max_steps * model.seconds(flops[shape_key(cfg)]) for cfg in configs]


def shape_key(cfg: TrialConfig) -> tuple:
    """The fields that set a training step's work: configs equal here cost the same per step."""
    return (cfg.dataset, cfg.image_size, cfg.channels, cfg.arch, cfg.depth, cfg.width, cfg.kernel_size,
            cfg.n_train)


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
