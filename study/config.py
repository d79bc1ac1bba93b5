"""One memorization trial, described by one frozen, validated object.

Every result row carries the whole config (``TrialConfig.to_row()``), so any row
can be re-run with ``TrialConfig.from_row(row)``. A sweep is a grid over these
fields; nothing else about a trial is configurable.
"""
from __future__ import annotations

import dataclasses
import difflib
import functools
import hashlib
import json
import math
from dataclasses import dataclass, fields
from typing import Any, Iterable, get_args, get_origin, get_type_hints

from .registry import CHOICES, DATASETS


class ConfigError(ValueError):
    """A bad config value. The message names the field and what is allowed."""

    def _render_traceback_(self) -> list[str]:
        # IPython and Jupyter show this in place of the traceback: bad input is one line in a
        # notebook, as it is on the command line (study.cli), not a screen of library frames
        return [f"{type(self).__name__}: {self}"]


def unknown(what: str, name: Any, known: Iterable[str], see: str | None = None, where: str = "") -> str:
    """The one message for a name that is not one of ``known`` (a preset, a config field, a registry name, a
    grid file's key, a tracker, a subcommand or an option), ``where`` it was given (' in --set ...'):
    ``unknown WHAT 'NAME'; did you mean 'X'?`` with the closest known name (difflib), then the known names,
    or, for a long list, where they are listed (``see``: ``memsweep run --help``). With nothing close, the
    known names themselves."""
    known = list(known)
    close = difflib.get_close_matches(str(name), known, n=1)
    head, listed = f"unknown {what} {name!r}{where}", ", ".join(known)
    if not close:
        return f"{head}; known: {listed}"
    return f"{head}; did you mean {close[0]!r}? ({f'every {what}: {see}' if see else 'known: ' + listed})"


@dataclass(frozen=True)
class TrialConfig:
    # --- data -------------------------------------------------------------------------------
    dataset: str = "digits"          # sklearn's 8x8 digits ship in the wheel: real images, offline
    data_dir: str | None = None      # folder holding MNIST IDX / CIFAR-10 python batches
    n_train: int = 10                # the paper's small-n regime: few images, many parameters
    n_heldout: int = 10              # for span residuals and held-out starts
    image_size: int | None = None    # None: the data set's own side (8 for digits)
    channels: int | None = None      # None: the data set's own (1 for digits); 1 on colour = grayscale
    # --- model ------------------------------------------------------------------------------
    arch: str = "fc"
    depth: int = 5                   # number of weight layers
    width: int = 512                 # hidden units (fc) or channels (conv)
    kernel_size: int = 3             # conv only; odd, so "same" padding keeps the size
    down_stages: int | None = None   # conv_down only: stride-2 stages (each mirrored by a 2x upsampling).
                                     # None: depth // 2, as many as the side halves evenly, so deep nets
                                     # squeeze 8x8 digits to 1x1; the row's bottleneck_side says where it ended
    activation: str = "leaky_relu"
    final_activation: bool = False   # apply the activation after the last layer too (C1: f = phi(Ax))
    bias: bool = True
    init: str = "default"            # torch's default, xavier, normal (std = init_scale/sqrt(fan_in)), zero
    init_scale: float = 1.0
    # --- training ---------------------------------------------------------------------------
    optimizer: str = "adam"
    lr: float = 1e-4                 # the papers' Adam setting
    max_steps: int = 5000            # n=10 digits interpolate in ~700 steps at the defaults
    loss_tol: float = 1e-8           # MSE per coordinate; interpolation, not just a low loss
    train_noise: float = 0.0         # Gaussian input noise sigma during training (strengthens attractors)
    task: str = "autoencode"         # autoencode: f(x_i) = x_i; sequence: f(x_i) = x_(i+1 mod n), a cycle (C5)
    seed: int = 0
    # --- probes -----------------------------------------------------------------------------
    fixed_point_tol: float = 1e-2    # r_i = |f(x_i)-x_i|/|x_i| below this counts as a fixed point
    rho_margin: float = 1e-3         # attractor: rho < 1 - rho_margin, so a projection (rho = 1 up to rounding) is not one
    noise_levels: tuple[float, ...] = (0.05, 0.1, 0.2, 0.4)  # per-pixel sigma of noisy starts
    headline_sigma: float = 0.1      # the sigma reported in retrieval_same_frac / retrieval_any_frac
    starts_per_example: int = 8      # noisy starts per (training example, sigma); masked starts per example
                                     # (8: all probes stay under half the default trial's training time)
    mask_frac: float = 0.25          # masked starts: this fraction of pixels replaced by uniform noise
    n_random_starts: int = 50        # uniform random starts; with the held-out ones, the census of where iteration
                                     # ends (1,000 or more for a census: all starts iterate in one batch)
    iter_steps: int = 1000           # x <- f(x) steps every start gets; one still contracting then goes on ...
    iter_max_steps: int = 20000      # ... while it can converge within this many (probes.iterate)
    iter_tol: float = 1e-5           # a start stops when RMS(x_{t+1} - x_t) < iter_tol ...
    confirm_steps: int = 100         # ... and converged if its step has not grown after this many more
    memory_tol: float = 5e-2         # x_i's memory x_i* (the limit from x_i and from points beside it) lies
                                     # within this relative distance of x_i
    match_tol: float = 1e-2          # a limit within this relative distance of x_j* retrieved x_j's memory
    # Coherence (checked below): match_tol <= memory_tol, a memory is resolved more finely than where it
    # may sit; iter_tol <= rho_margin * match_tol, a limit confirmed at step iter_tol of a map contracting
    # at rate 1 - rho_margin lies within iter_tol / rho_margin (RMS) of its fixed point, within match_tol
    # of it for an image of unit RMS. fixed_point_tol only counts fixed points (fixed_point_frac); the
    # attractor is decided at the limit x_i*, never at x_i (probes.attractors)

    def __post_init__(self) -> None:
        _check_types(self)
        for name, registry in CHOICES.items():  # the names of study/registry.py
            _choice(self, name, tuple(registry))
        if self.task == "sequence" and self.n_train < 2:
            raise ConfigError(f"task='sequence' needs n_train >= 2 (a cycle of images), got {self.n_train}")
        for name in ("n_train", "depth", "width", "kernel_size", "max_steps", "iter_steps"):
            _at_least(self, name, 1)
        for name in ("n_heldout", "starts_per_example", "n_random_starts", "seed", "confirm_steps"):
            _at_least(self, name, 0)
        for name in ("lr", "loss_tol", "fixed_point_tol", "iter_tol", "match_tol", "memory_tol", "init_scale"):
            _positive(self, name)
        if not 0.0 <= self.rho_margin < 1.0:
            raise ConfigError(f"rho_margin must be in [0, 1), got {self.rho_margin}")
        if self.iter_max_steps < self.iter_steps:
            raise ConfigError(f"iter_max_steps must be >= iter_steps ({self.iter_steps}), got {self.iter_max_steps}")
        if self.match_tol > self.memory_tol:
            raise ConfigError(f"match_tol ({self.match_tol}) must be <= memory_tol ({self.memory_tol}): a memory "
                              "must be resolved more finely than the distance it may sit from its example")
        if self.iter_tol > self.rho_margin * self.match_tol * (1 + 1e-9):
            raise ConfigError(f"iter_tol ({self.iter_tol}) must be <= rho_margin * match_tol "
                              f"({self.rho_margin * self.match_tol:g}): a limit confirmed at that step of a map "
                              "contracting at 1 - rho_margin could lie farther than match_tol from its fixed point")
        if self.train_noise < 0:
            raise ConfigError(f"train_noise must be >= 0, got {self.train_noise}")
        if not 0.0 <= self.mask_frac <= 1.0:
            raise ConfigError(f"mask_frac must be in [0, 1], got {self.mask_frac}")
        if not self.noise_levels or any(not (s > 0 and math.isfinite(s)) for s in self.noise_levels):
            raise ConfigError(f"noise_levels must be a non-empty list of positive numbers, got {list(self.noise_levels)}")
        if self.headline_sigma not in self.noise_levels:
            raise ConfigError(f"headline_sigma must be one of noise_levels {list(self.noise_levels)}, got {self.headline_sigma}")
        if self.image_size is not None and self.image_size < 2:
            raise ConfigError(f"image_size must be >= 2 (or None for the data set's own), got {self.image_size}")
        if self.channels is not None and self.channels not in (1, 3):
            raise ConfigError(f"channels must be 1 or 3 (or None for the data set's own), got {self.channels}")
        if self.kernel_size % 2 == 0:
            raise ConfigError(f"kernel_size must be odd so that 'same' padding keeps the image size, got {self.kernel_size}")
        if self.init == "zero" and self.depth != 1:
            raise ConfigError("init='zero' needs depth=1: deeper nets get no gradient from an all-zero start "
                              f"(got depth={self.depth})")
        if self.arch == "conv_down" and self.depth < 2:
            raise ConfigError(f"arch='conv_down' needs depth >= 2 (one layer down, one up), got depth={self.depth}")
        if self.down_stages is not None and not 1 <= self.down_stages <= self.depth // 2:
            raise ConfigError(f"down_stages must be between 1 and depth // 2 = {self.depth // 2} (each stride-2 "
                              f"layer is mirrored by an upsampling one), or None; got {self.down_stages}")
        if DATASETS[self.dataset].reads_files and not self.data_dir:
            raise ConfigError(f"dataset={self.dataset!r} reads local files: set data_dir to the folder holding them")

    # --- identity and rows ------------------------------------------------------------------
    @property
    def trial_id(self) -> str:
        """Readable and unique: ``fc-d5-w256-leaky_relu-n10-s0-1a2b3c``.

        The suffix hashes every field not spelled out in front whose value differs from its
        default, so the seeds of one grid point share it, two configs differing in, say, ``lr``
        never collide, and a field added to this class later (with a default) leaves every
        existing id, and so every existing result, valid.
        """
        shown = {"arch", "depth", "width", "activation", "n_train", "seed"}
        rest = {k: v for k, v in self.to_row().items() if k not in shown and v != _DEFAULTS[k]}
        digest = hashlib.sha1(json.dumps(rest, sort_keys=True).encode()).hexdigest()[:6]
        return f"{self.arch}-d{self.depth}-w{self.width}-{self.activation}-n{self.n_train}-s{self.seed}-{digest}"

    def to_row(self) -> dict[str, Any]:
        """The config as plain column values (tuples become lists)."""
        return {f.name: list(v) if isinstance(v := getattr(self, f.name), tuple) else v for f in fields(self)}

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> "TrialConfig":
        """Rebuild a config from a result row (extra columns such as metrics are ignored)."""
        names = {f.name for f in fields(cls)}
        kwargs = {}
        for k, v in row.items():
            if k not in names:
                continue
            if hasattr(v, "tolist"):  # numpy scalars / arrays from pandas
                v = v.tolist()
            if (isinstance(v, float) and math.isnan(v)) or type(v).__name__ == "NAType":  # pandas' missing
                v = None
            kwargs[k] = v
        return cls(**kwargs)

    def replace(self, **changes: Any) -> "TrialConfig":
        check_fields(changes)
        return dataclasses.replace(self, **changes)


def field_names() -> list[str]:
    return [f.name for f in fields(TrialConfig)]


def check_fields(names: Iterable[str], where: str = "") -> None:
    """Raise ConfigError naming the first of ``names`` that is no config field (``where``: ' in --set ...')."""
    known = field_names()
    for name in names:
        if name not in known:
            raise ConfigError(unknown("config field", name, known, "memsweep trial --help", where))


@functools.lru_cache(maxsize=None)
def field_type(name: str) -> tuple[type, bool, bool]:
    """(base type, is optional, is a tuple) of a config field, from its annotation."""
    ann = get_type_hints(TrialConfig)[name]
    optional = False
    args = get_args(ann)
    if type(None) in args:
        optional = True
        ann = next(a for a in args if a is not type(None))
    if get_origin(ann) is tuple:
        return get_args(ann)[0], optional, True
    return ann, optional, False


def parse_value(name: str, text: str) -> Any:
    """Parse a command-line string for field ``name`` (``none`` for optional, commas for lists)."""
    check_fields([name])
    base, optional, is_tuple = field_type(name)
    if optional and text.strip().lower() in ("none", "null", ""):
        return None
    if is_tuple:
        return tuple(_parse_scalar(name, base, t) for t in text.split(",") if t.strip())
    return _parse_scalar(name, base, text)


def _parse_scalar(name: str, base: type, text: str) -> Any:
    text = text.strip()
    if base is bool:
        if text.lower() in ("true", "1", "yes", "on"):
            return True
        if text.lower() in ("false", "0", "no", "off"):
            return False
        raise ConfigError(f"{name} must be true or false, got {text!r}")
    try:
        return base(text)
    except ValueError:
        raise ConfigError(f"{name} must be {base.__name__}, got {text!r}") from None


def _check_types(cfg: TrialConfig) -> None:
    for f in fields(cfg):
        value = getattr(cfg, f.name)
        base, optional, is_tuple = field_type(f.name)
        if value is None:
            if optional:
                continue
            raise ConfigError(f"{f.name} must be set (got None)")
        if is_tuple:
            if isinstance(value, str):  # as stored in a results table: "0.05,0.1"
                value = parse_value(f.name, value)
            if isinstance(value, list):
                value = tuple(value)
                object.__setattr__(cfg, f.name, value)
            if not isinstance(value, tuple) or not all(_is(v, base) for v in value):
                raise ConfigError(f"{f.name} must be a list of {base.__name__}, got {value!r}")
            object.__setattr__(cfg, f.name, tuple(base(v) for v in value))
            continue
        if not _is(value, base):
            raise ConfigError(f"{f.name} must be {base.__name__}, got {type(value).__name__} {value!r}")
        if base is float:
            if not math.isfinite(value):
                raise ConfigError(f"{f.name} must be a finite number, got {value!r}")
            object.__setattr__(cfg, f.name, float(value))


def _is(value: Any, base: type) -> bool:
    if base is float:  # an int is a fine float; a bool is not a number here
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if base is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, base)


def _choice(cfg: TrialConfig, name: str, allowed: tuple[str, ...]) -> None:
    if getattr(cfg, name) not in allowed:
        raise ConfigError(unknown(name, getattr(cfg, name), allowed))


def _at_least(cfg: TrialConfig, name: str, low: int) -> None:
    if getattr(cfg, name) < low:
        raise ConfigError(f"{name} must be >= {low}, got {getattr(cfg, name)}")


def _positive(cfg: TrialConfig, name: str) -> None:
    if not getattr(cfg, name) > 0:
        raise ConfigError(f"{name} must be > 0, got {getattr(cfg, name)}")


_DEFAULTS = TrialConfig().to_row()  # what trial ids are relative to


# --- how configs group: every grouping of configs in memsweep reads these ------------------------------
REPLICATE = "seed"  # the unit of replication: configs differing only here are one grid point's networks
DEPTH = "depth"     # the axis along which the onset of memorization is sought
NAMED = ("arch", "width", "activation", "n_train", "dataset")  # named in every group's label, varying or not
DATA_FIELDS = ("dataset", "data_dir", "n_train", "n_heldout", "image_size", "channels")  # set the image pool
NET_FIELDS = ("arch", "image_size", "channels", "depth", "width", "activation", "final_activation", "bias",
              "kernel_size", "down_stages", "optimizer")  # nets equal here train as one batch (trial/batched.py)
STEP_FIELDS = ("dataset", "image_size", "channels", "arch", "depth", "width", "kernel_size",
               "n_train")  # set one training step's work (sweep/cost.py): equal here, equal cost per step
