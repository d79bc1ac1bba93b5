"""Results on disk: declared Parquet schemas, atomic per-trial parts, saved models.

Layout under a results folder (local path or a URI pyarrow understands, e.g. s3://):

    trials/<trial_id>.parquet      one row: the full config + headline metrics
    examples/<trial_id>.parquet    one row per training example
    retrieval/<trial_id>.parquet   one row per (start kind, sigma)
    curves/<trial_id>.parquet      the thinned loss curve

Each part is written to a temp file in ``DIR/_tmp/`` and renamed into its table folder, so
a table folder holds only whole parts and a rerun replaces rather than duplicates: any
reader (pandas, pyarrow, Polars, DuckDB) can read ``DIR/trials`` while a sweep is still
writing.
"""
from __future__ import annotations

import os
import uuid
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from .config import ConfigError, TrialConfig, field_type

if TYPE_CHECKING:  # torch only where models are saved or loaded: analysis reads results without it
    import torch

SCHEMA_VERSION = "4"  # 2: operator_* and span_dim columns; 3: operator_rest_radius; 4: retrieval of memories
                      # (memory_*, bottleneck_side, confirmed limits, monotone basin radius)

_ARROW = {str: pa.string(), int: pa.int64(), float: pa.float64(), bool: pa.bool_()}


def _config_fields() -> list[pa.Field]:
    out = []
    for f in fields(TrialConfig):
        base, _, is_tuple = field_type(f.name)
        out.append(pa.field(f.name, pa.list_(_ARROW[base]) if is_tuple else _ARROW[base]))
    return out


# name -> (type, meaning); units are in the names where they matter
TRIAL_METRICS: dict[str, tuple[pa.DataType, str]] = {
    "trial_id": (pa.string(), "readable unique id of the config (TrialConfig.trial_id)"),
    "status": (pa.string(), "ok | not_converged | diverged | error"),
    "error": (pa.string(), "exception and traceback when status = error"),
    "device": (pa.string(), "cpu or cuda"),
    "input_dim": (pa.int64(), "d = C*H*W"),
    "n_params": (pa.int64(), "trainable parameters"),
    "final_loss": (pa.float64(), "training MSE per coordinate at the last step"),
    "steps": (pa.int64(), "optimizer steps taken"),
    "train_seconds": (pa.float64(), "wall time of training"),
    "probe_seconds": (pa.float64(), "wall time of all probes"),
    "spectra_seconds": (pa.float64(), "wall time of the Jacobian spectra"),
    "iteration_seconds": (pa.float64(), "wall time of iterating all starts"),
    "span_seconds": (pa.float64(), "wall time of the span probes"),
    "bottleneck_side": (pa.int64(), "side of the smallest feature map (conv_down: after down_stages halvings; fc: "
                                    "the width)"),
    "memory_frac": (pa.float64(), "fraction of training examples with a memory x_i*: iterating from x_i converges "
                                  "(confirmed) within memory_tol of x_i"),
    "memory_offset_median": (pa.float64(), "median over examples with a memory of |x_i* - x_i| / |x_i|"),
    "fixed_point_frac": (pa.float64(), "fraction of training examples with r_i < fixed_point_tol"),
    "attractor_frac": (pa.float64(), "fraction with r_i < fixed_point_tol and rho(J_f(x_i)) < 1 - rho_margin"),
    "fixed_point_residual_max": (pa.float64(), "max_i |f(x_i)-x_i|/|x_i|"),
    "spectral_radius_median": (pa.float64(), "median_i rho(J_f(x_i))"),
    "spectral_radius_max": (pa.float64(), "max_i rho(J_f(x_i))"),
    "top_singular_median": (pa.float64(), "median_i sigma_1(J_f(x_i))"),
    "spectral_failures": (pa.int64(), "eigen/singular solves that did not converge (NaN values)"),
    "retrieval_same_frac": (pa.float64(), "noisy starts at headline_sigma whose confirmed limit is their own "
                                          "example's memory x_i* (within match_tol)"),
    "retrieval_any_frac": (pa.float64(), "noisy starts at headline_sigma whose limit is any example's memory"),
    "masked_same_frac": (pa.float64(), "masked starts whose limit is their own example's memory"),
    "basin_radius_median": (pa.float64(), "median over examples of the basin radius (see examples)"),
    "heldout_to_train_frac": (pa.float64(), "held-out starts whose limit is a memory"),
    "random_to_train_frac": (pa.float64(), "uniform random starts whose limit is a memory"),
    "spurious_frac": (pa.float64(), "held-out + random starts whose confirmed limit is no memory"),
    "unconverged_frac": (pa.float64(), "held-out + random starts with no confirmed limit within iter_steps"),
    "iter_steps_median": (pa.float64(), "median steps to convergence over all starts"),
    "span_residual_mean": (pa.float64(), "mean over held-out h of |(I-P_X) f(h)| / |f(h)|"),
    "span_input_sensitivity_mean": (pa.float64(), "mean over held-out h of |f(h) - f(P_X h)| / |f(h)|"),
    "span_dim": (pa.int64(), "rank of the training set (linear nets only)"),
    "operator_near_one": (pa.int64(), "eigenvalues of the net's linear operator with |lambda - 1| < 0.01 (linear nets)"),
    "operator_near_one_in_span": (pa.int64(), "dim of their eigenspace inside span(X) (linear nets; = span_dim "
                                              "for the projection P_X)"),
    "operator_rest_radius": (pa.float64(), "max |lambda| of the operator's other eigenvalues (linear nets; < 1: "
                                           "iteration contracts onto the kept directions)"),
}

CONFIG_DEFAULTS = TrialConfig().to_row()
# metrics added after schema 1: parts written before them read as null (not measured then)
ADDED_COLUMNS = ("span_dim", "operator_near_one", "operator_near_one_in_span", "operator_rest_radius",
                 "bottleneck_side", "memory_frac", "memory_offset_median")
ADDED_EXAMPLE_COLUMNS = ("memory_found", "memory_offset")  # schema 4

TRIAL_SCHEMA = pa.schema(_config_fields() + [pa.field(k, t) for k, (t, _) in TRIAL_METRICS.items()])

EXAMPLE_SCHEMA = pa.schema([
    ("trial_id", pa.string()), ("example", pa.int64()), ("fixed_point_residual", pa.float64()),
    ("spectral_radius", pa.float64()), ("top_singular_value", pa.float64()),
    ("basin_radius", pa.float64()), ("attractor", pa.bool_()), ("memory_found", pa.bool_()),
    ("memory_offset", pa.float64()),
])

RETRIEVAL_SCHEMA = pa.schema([
    ("trial_id", pa.string()), ("start", pa.string()), ("sigma", pa.float64()), ("n_starts", pa.int64()),
    ("same_frac", pa.float64()), ("any_frac", pa.float64()), ("spurious_frac", pa.float64()),
    ("none_frac", pa.float64()),
])

CURVE_SCHEMA = pa.schema([("trial_id", pa.string()), ("step", pa.int64()), ("loss", pa.float64())])

TABLES = {"trials": TRIAL_SCHEMA, "examples": EXAMPLE_SCHEMA, "retrieval": RETRIEVAL_SCHEMA, "curves": CURVE_SCHEMA}


def to_table(rows: list[dict[str, Any]], schema: pa.Schema) -> pa.Table:
    """Rows -> a table of exactly ``schema`` (a missing or extra column is a bug: raise)."""
    for row in rows:
        if set(row) != set(schema.names):
            raise ValueError(f"row columns differ from the schema: missing {sorted(set(schema.names) - set(row))}, "
                             f"extra {sorted(set(row) - set(schema.names))}")
    table = pa.Table.from_pylist(rows, schema=schema)
    return table.replace_schema_metadata({"memsweep_schema_version": SCHEMA_VERSION})


def is_remote(root: str) -> bool:
    """A URI (s3://, gs://, ...) rather than a path on this machine's disk."""
    return "://" in root


def filesystem(root: str) -> tuple[pafs.FileSystem, str]:
    if is_remote(root):
        try:
            return pafs.FileSystem.from_uri(root)
        except (pa.ArrowException, OSError, ValueError) as exc:  # an unknown scheme, a malformed URI
            raise ConfigError(f"{root}: {one_line(exc)}") from None
    return pafs.LocalFileSystem(), os.path.abspath(root)


def one_line(exc: BaseException) -> str:
    """The first line of an exception's message: storage errors from pyarrow run to many lines."""
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


TMP = "_tmp"  # where parts are written before they are renamed into their table: no reader looks there


def write_part(root: str, table_name: str, trial_id: str, rows: list[dict[str, Any]]) -> str:
    """Write ``rows`` as ``root/table_name/trial_id.parquet`` atomically: to ``root/_tmp/`` first, then
    renamed into place, so a table folder only ever holds whole parts (any reader, mid-sweep)."""
    fs, base = filesystem(root)
    folder = f"{base}/{table_name}"
    fs.create_dir(folder, recursive=True)
    fs.create_dir(f"{base}/{TMP}", recursive=True)
    final = f"{folder}/{trial_id}.parquet"
    tmp = f"{base}/{TMP}/{table_name}.{trial_id}.{uuid.uuid4().hex[:8]}.tmp"
    pq.write_table(to_table(rows, TABLES[table_name]), tmp, filesystem=fs)
    fs.move(tmp, final)  # atomic on POSIX; object stores publish the object whole
    return final


def write_trial(root: str, result) -> str:
    """Write every table of one ``TrialResult``; the trial row goes last, so its presence means
    the others are complete (the sweep's resume looks only at ``trials/``)."""
    tid = result.trial["trial_id"]
    write_part(root, "examples", tid, result.examples)
    write_part(root, "retrieval", tid, result.retrieval)
    write_part(root, "curves", tid, result.curve)
    return write_part(root, "trials", tid, [result.trial])


# --- saved models ------------------------------------------------------------------------------

@dataclass
class SavedModel:
    model: torch.nn.Module   # eval mode, on CPU
    config: TrialConfig
    train_x: torch.Tensor    # [n, ...] training examples in the model's input layout, row = example index


def save_model(path: str, result) -> None:
    import torch
    torch.save({"config": result.config.to_row(), "state_dict": result.model.state_dict(),
                "train_x": result.train_x.cpu(), "image_shape": list(result.image_shape),
                "schema_version": SCHEMA_VERSION}, path)


def load_model(path: str) -> SavedModel:
    """Load a file written by ``memsweep trial --save-model``: rebuild the net from its config."""
    import torch

    from . import models
    blob = torch.load(path, map_location="cpu", weights_only=True)  # no code runs on load
    cfg = TrialConfig.from_row(blob["config"])
    model = models.build(cfg, tuple(blob["image_shape"]))
    model.load_state_dict(blob["state_dict"])
    model.eval()
    return SavedModel(model, cfg, blob["train_x"])


# --- a results folder as a whole --------------------------------------------------------------------

def part_files(root: str, table: str) -> list[str]:
    """The finished parts of one table, sorted (hidden temp files and '_' names excluded)."""
    fs, base = filesystem(root)
    infos = fs.get_file_info(pafs.FileSelector(f"{base}/{table}", allow_not_found=True))
    return sorted(i.path for i in infos if i.type == pafs.FileType.File and i.base_name.endswith(".parquet")
                  and not i.base_name.startswith((".", "_")))


def finished_ids(root: str) -> set[str]:
    """Trial ids with a ``trials/`` part: the trials a resumed sweep does not run again."""
    return {os.path.basename(p)[:-len(".parquet")] for p in part_files(root, "trials")}


def part_problem(fs: pafs.FileSystem, path: str, schema: pa.Schema) -> str | None:
    """Why the file at ``path`` is not a readable part of ``schema``'s table (None if it is).
    Reads the Parquet footer only: a truncated, empty or foreign file fails here."""
    try:
        found = pq.read_schema(path, filesystem=fs)
    except (pa.ArrowException, OSError) as exc:
        return f"not a readable Parquet file ({exc})"
    # parts written before a config field or a later metric column existed lack it: readers fill in
    # the field's default (what those trials ran with) or null (not measured then)
    missing = sorted(set(schema.names) - set(found.names) - set(CONFIG_DEFAULTS) - set(ADDED_COLUMNS)
                     - set(ADDED_EXAMPLE_COLUMNS))
    if missing:
        return f"not a memsweep part of this table (missing columns {missing[:5]}{'...' if len(missing) > 5 else ''})"
    return None


def set_aside(root: str) -> tuple[list[str], list[str]]:
    """Before a sweep (re)starts, so that those grid points run again: move ``trials/`` parts that are
    not readable parts (truncated, empty, another schema) to ``_damaged/trials/``, and parts whose
    trial ended in ``error`` (an exception, a node without CUDA: a fault of the run, not a result)
    to ``_errors/trials/``; delete the temp files that a killed writer left in ``_tmp/``. Nothing is read as
    data or deleted silently. Returns the names of the damaged and of the errored parts moved."""
    fs, base = filesystem(root)
    folder = f"{base}/trials"
    damaged, errored = [], []
    for info in fs.get_file_info(pafs.FileSelector(f"{base}/{TMP}", allow_not_found=True)):
        if info.type == pafs.FileType.File and info.base_name.endswith(".tmp"):
            fs.delete_file(info.path)  # a writer killed before its rename
    for info in fs.get_file_info(pafs.FileSelector(folder, allow_not_found=True)):
        if info.type != pafs.FileType.File:
            continue
        if info.base_name.startswith(".") and info.base_name.endswith(".tmp"):
            fs.delete_file(info.path)  # left in the table folder by a writer older than _tmp/
            continue
        if not info.base_name.endswith(".parquet") or info.base_name.startswith((".", "_")):
            continue
        if part_problem(fs, info.path, TRIAL_SCHEMA):
            aside, names = "_damaged", damaged
        elif "error" in pq.read_table(info.path, columns=["status"], filesystem=fs).column("status").to_pylist():
            aside, names = "_errors", errored
        else:
            continue
        fs.create_dir(f"{base}/{aside}/trials", recursive=True)
        fs.move(info.path, f"{base}/{aside}/trials/{info.base_name}")
        names.append(info.base_name)
    return damaged, errored


def read_trial_row(root: str, trial_id: str) -> dict[str, Any]:
    """One trial's row from its ``trials/`` part."""
    fs, base = filesystem(root)
    return pq.read_table(f"{base}/trials/{trial_id}.parquet", filesystem=fs).to_pylist()[0]


def read_trials(root: str, columns: list[str] | None = None):
    """``trials/`` as a pandas DataFrame (empty when there are none yet)."""
    import pandas as pd
    if not finished_ids(root):
        return pd.DataFrame(columns=columns or TRIAL_SCHEMA.names)
    fs, base = filesystem(root)
    return pq.read_table(f"{base}/trials", columns=columns, filesystem=fs).to_pandas()


MANIFEST = "sweep.json"


def sweep_manifest(grid: dict[str, Any], preset: str | None, n_trials: int, argv: list[str]) -> dict[str, Any]:
    """What ``sweep.json`` records: the grid, versions, when, where."""
    import importlib.metadata
    import platform
    import time

    import torch

    from . import __version__
    try:
        ray_version = importlib.metadata.version("ray")
    except importlib.metadata.PackageNotFoundError:
        ray_version = None
    return {
        "preset": preset, "grid": grid, "n_trials": n_trials, "command": " ".join(argv),
        "schema_version": SCHEMA_VERSION,
        "versions": {"memsweep": __version__, "torch": torch.__version__, "ray": ray_version,
                     "pyarrow": pa.__version__, "python": platform.python_version()},
        "host": {"name": platform.node(), "platform": platform.platform(), "cpus": os.cpu_count(),
                 "cuda_devices": torch.cuda.device_count()},
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "finished": None,
    }


def check_writable(root: str) -> None:
    """Write and delete a small probe object under ``root``: a real write, not a permission check
    (root passes access checks on read-only file systems; a bucket may exist yet refuse writes).
    Raises ConfigError with one line naming the storage's complaint."""
    fs, base = filesystem(root)
    probe = f"{base}/.write-test-{uuid.uuid4().hex[:8]}"
    try:
        fs.create_dir(base, recursive=True)
        with fs.open_output_stream(probe) as fh:
            fh.write(b"ok")
        fs.delete_file(probe)
    except (OSError, pa.ArrowException) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else one_line(exc)
        raise ConfigError(f"--out {root}: cannot write results there ({reason})") from None


def open_results(root: str) -> dict[str, Any] | None:
    """Check that ``root`` is a results folder and return its manifest (None for a folder written by
    ``memsweep trial``). A missing or unreadable folder (no such bucket, no credentials), or one that
    holds neither ``sweep.json`` nor a table, raises ConfigError with one line saying which."""
    fs, base = filesystem(root)
    try:
        kind = fs.get_file_info(base).type
        if kind == pafs.FileType.NotFound:
            raise ConfigError(f"no results folder at {root}")
        if kind != pafs.FileType.Directory:
            raise ConfigError(f"{root} is a file, not a results folder")
        manifest = read_manifest(root)
        if manifest is None and not any(part_files(root, t) for t in TABLES):
            hint = " (give the folder above it)" if os.path.basename(base.rstrip("/")) in TABLES else ""
            raise ConfigError(f"{root} holds no memsweep results: no sweep.json and no table parts{hint}")
    except (OSError, pa.ArrowException) as exc:
        raise ConfigError(f"cannot read {root}: {one_line(exc)}") from None
    return manifest


def write_manifest(root: str, manifest: dict[str, Any]) -> None:
    import json
    fs, base = filesystem(root)
    fs.create_dir(base, recursive=True)
    tmp = f"{base}/.{MANIFEST}.{uuid.uuid4().hex[:8]}.tmp"
    with fs.open_output_stream(tmp) as fh:
        fh.write(json.dumps(manifest, indent=2, default=str).encode())
    fs.move(tmp, f"{base}/{MANIFEST}")


def read_manifest(root: str) -> dict[str, Any] | None:
    import json
    fs, base = filesystem(root)
    if fs.get_file_info(f"{base}/{MANIFEST}").type != pafs.FileType.File:
        return None
    with fs.open_input_stream(f"{base}/{MANIFEST}") as fh:
        return json.loads(fh.read().decode())


def clear(root: str) -> None:
    """Remove a sweep's results, Tune state and manifest (``memsweep run --force``)."""
    fs, base = filesystem(root)
    for name in [*TABLES, "_tune", "_damaged", "models"]:
        if fs.get_file_info(f"{base}/{name}").type == pafs.FileType.Directory:
            fs.delete_dir(f"{base}/{name}")
    if fs.get_file_info(f"{base}/{MANIFEST}").type == pafs.FileType.File:
        fs.delete_file(f"{base}/{MANIFEST}")
