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
import warnings
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from .config import ConfigError, TrialConfig, field_type

if TYPE_CHECKING:  # torch only where models are saved or loaded: analysis reads results without it
    import torch

SCHEMA_VERSION = "6"  # 2: operator_* and span_dim columns; 3: operator_rest_radius; 4: retrieval of memories
                      # (memory_*, bottleneck_side, confirmed limits, monotone basin radius); 5: list-valued
                      # config fields stored as strings; 6: attractors by their dynamics (decided at the
                      # memory x_i*), cycles, capped starts, kink spread

_ARROW = {str: pa.string(), int: pa.int64(), float: pa.float64(), bool: pa.bool_()}


# Runs once, at import, to build TRIAL_SCHEMA: mutmut picks its mutant at call time, after import, so no
# mutant of it can ever run (TRIAL_SCHEMA's columns are tested through every table read and written).
def _config_fields() -> list[pa.Field]:  # pragma: no mutate block
    """One column per config field; a list-valued field (noise_levels) is stored as the string the
    command line takes ("0.05,0.1"), so that every reader can group, compare and deduplicate on it."""
    return [pa.field(f.name, pa.string() if field_type(f.name)[2] else _ARROW[field_type(f.name)[0]])
            for f in fields(TrialConfig)]


LIST_FIELDS = tuple(f.name for f in fields(TrialConfig) if field_type(f.name)[2])


def flat(row: dict[str, Any]) -> dict[str, Any]:
    """A config row as stored: list values of list-valued fields joined by commas (what
    ``config.parse_value`` and so ``TrialConfig.from_row`` read back)."""
    return {k: ",".join(map(str, v)) if k in LIST_FIELDS and isinstance(v, (list, tuple)) else v
            for k, v in row.items()}


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
    "memory_frac": (pa.float64(), "fraction of training examples with a memory x_i*: iterating from x_i, and from "
                                  "points beside it, converges (confirmed) to one point within memory_tol of x_i"),
    "memory_offset_median": (pa.float64(), "median over examples with a memory of |x_i* - x_i| / |x_i|"),
    "fixed_point_frac": (pa.float64(), "fraction of training examples with r_i < fixed_point_tol"),
    "attractor_frac": (pa.float64(), "fraction with a memory x_i* and rho(J_f(x_i*)) < 1 - rho_margin at it"),
    "attractor_unsure_frac": (pa.float64(), "fraction whose attractor decision flips within 1e-6 of x_i* (a kink)"),
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
    "spurious_frac": (pa.float64(), "held-out + random starts whose confirmed limit is no memory, or that ended "
                                    "on a cycle away from every memory"),
    "unconverged_frac": (pa.float64(), "held-out + random starts with no confirmed limit (diverged, capped, "
                                       "unconfirmed, or cycling around a memory)"),
    "cycle_frac": (pa.float64(), "probe starts (all but the memories' own) that ended on a cycle of period 2-8"),
    "capped_frac": (pa.float64(), "probe starts still moving when iteration stopped (iter_steps, then "
                                  "iter_max_steps for contracting starts): the budget decided them"),
    "iter_steps_median": (pa.float64(), "median steps until each start's outcome was known"),
    "iter_steps_max": (pa.int64(), "the most steps any start took"),
    "span_residual_mean": (pa.float64(), "mean over held-out h of |(I-P_X) f(h)| / |f(h)|"),
    "span_input_sensitivity_mean": (pa.float64(), "mean over held-out h of |f(h) - f(P_X h)| / |f(h)|"),
    "span_dim": (pa.int64(), "rank of the training set (linear nets only)"),
    "operator_near_one": (pa.int64(), "eigenvalues of the net's linear operator with |lambda - 1| < 0.01 (linear nets)"),
    "operator_near_one_in_span": (pa.int64(), "dim of their eigenspace inside span(X) (linear nets; = span_dim "
                                              "for the projection P_X)"),
    "operator_rest_radius": (pa.float64(), "max |lambda| of the operator's other eigenvalues (linear nets; < 1: "
                                           "iteration contracts onto the kept directions)"),
}

CONFIG_DEFAULTS = flat(TrialConfig().to_row())
# metrics added after schema 1: parts written before them read as null (not measured then)
ADDED_COLUMNS = ("span_dim", "operator_near_one", "operator_near_one_in_span", "operator_rest_radius",
                 "bottleneck_side", "memory_frac", "memory_offset_median",
                 "attractor_unsure_frac", "cycle_frac", "capped_frac", "iter_steps_max")  # the last four: schema 6
ADDED_EXAMPLE_COLUMNS = ("memory_found", "memory_offset",  # schema 4
                         "memory_spectral_radius", "memory_rho_spread", "attractor_unsure",  # schema 6
                         "cycle_frac", "capped_frac")  # schema 6, retrieval

TRIAL_SCHEMA = pa.schema(_config_fields() + [pa.field(k, t) for k, (t, _) in TRIAL_METRICS.items()])

EXAMPLE_SCHEMA = pa.schema([
    ("trial_id", pa.string()), ("example", pa.int64()), ("fixed_point_residual", pa.float64()),
    ("spectral_radius", pa.float64()), ("top_singular_value", pa.float64()),
    ("basin_radius", pa.float64()), ("attractor", pa.bool_()), ("memory_found", pa.bool_()),
    ("memory_offset", pa.float64()), ("memory_spectral_radius", pa.float64()), ("memory_rho_spread", pa.float64()),
    ("attractor_unsure", pa.bool_()),
])

RETRIEVAL_SCHEMA = pa.schema([
    ("trial_id", pa.string()), ("start", pa.string()), ("sigma", pa.float64()), ("n_starts", pa.int64()),
    ("same_frac", pa.float64()), ("any_frac", pa.float64()), ("spurious_frac", pa.float64()),
    ("none_frac", pa.float64()), ("cycle_frac", pa.float64()), ("capped_frac", pa.float64()),
])

CURVE_SCHEMA = pa.schema([("trial_id", pa.string()), ("step", pa.int64()), ("loss", pa.float64())])

TABLES = {"trials": TRIAL_SCHEMA, "examples": EXAMPLE_SCHEMA, "retrieval": RETRIEVAL_SCHEMA, "curves": CURVE_SCHEMA}


def to_table(rows: list[dict[str, Any]], schema: pa.Schema) -> pa.Table:
    """Rows -> a table of exactly ``schema`` (a missing or extra column is a bug: raise)."""
    for row in rows:
        if set(row) != set(schema.names):
            raise ValueError(f"row columns differ from the schema: missing {sorted(set(schema.names) - set(row))}, "
                             f"extra {sorted(set(row) - set(schema.names))}")
    table = pa.Table.from_pylist([flat(row) for row in rows], schema=schema)
    return table.replace_schema_metadata({"memsweep_schema_version": SCHEMA_VERSION})


def is_remote(root: str) -> bool:
    """A URI (s3://, gs://, ...) rather than a path on this machine's disk."""
    return "://" in root


def filesystem(root: str) -> tuple[pafs.FileSystem, str]:
    if is_remote(root):
        path = root.split("://", 1)[1].split("?", 1)[0]
        if any(seg in (".", "..") for seg in path.split("/")):
            raise ConfigError(f"{root}: a URI names its folder plainly; '.' and '..' are not resolved in object "
                              "stores (write s3://BUCKET/PATH)")
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


def checkpoint(name: str) -> None:
    """Named moments of writing results: ``<table>:written`` (a part's temp file is whole),
    ``<table>:renamed`` (the part is in place), and compaction's ``compact:written``, ``compact:journaled``,
    ``compact:renamed``, ``compact:deleted`` (``study.compact``). Does nothing: tests replace it to
    kill a writer exactly there."""


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
    checkpoint(f"{table_name}:written")
    fs.move(tmp, final)  # atomic on POSIX; object stores publish the object whole
    checkpoint(f"{table_name}:renamed")
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
    image_shape: tuple[int, int, int] = (1, 8, 8)  # (C, H, W) of one image


def save_model(path: str, result) -> None:
    import torch
    torch.save({"config": result.config.to_row(), "state_dict": result.model.state_dict(),
                "train_x": result.train_x.cpu(), "image_shape": list(result.image_shape),
                "schema_version": SCHEMA_VERSION}, path)


def load_model(path: str) -> SavedModel:
    """Load a file written by ``memsweep trial --save-model``: rebuild the net from its config, after
    checking that config and that the net fits this machine's memory (``trial.check_memory``)."""
    import torch

    from . import models, trial
    blob = torch.load(path, map_location="cpu", weights_only=True)  # no code runs on load
    try:
        cfg, shape = TrialConfig.from_row(blob["config"]), tuple(int(v) for v in blob["image_shape"])
    except (KeyError, TypeError, ValueError) as exc:
        raise ConfigError(f"{path} is not a model saved by memsweep ({one_line(exc)})") from None
    if len(shape) != 3:
        raise ConfigError(f"{path} is not a model saved by memsweep (image_shape {list(shape)})")
    trial.check_memory(cfg, shape)
    model = models.build(cfg, shape)
    model.load_state_dict(blob["state_dict"])
    model.eval()
    return SavedModel(model, cfg, blob["train_x"], shape)


# --- a results folder as a whole --------------------------------------------------------------------
#
# A table folder holds parts, ``<trial_id>.parquet``, and compacted files, ``compacted-<stamp>-<k>.parquet``
# (``study.compact``). Every memsweep reader goes through ``read_table``: a trial's rows come from its
# part if it has one (written after the last compaction: a rerun), else from the newest compacted file
# that holds it, so each row is read once, also mid-compaction.

COMPACTED = "compacted-"  # no trial id starts so: ids start with the arch


def is_compacted(path: str) -> bool:
    return os.path.basename(path).startswith(COMPACTED)


def listing(root: str, table: str) -> dict[str, int | None]:
    """The data files of one table, parts and compacted files (temp and '_' names excluded), each with
    its modification time in ns, from one listing of the table folder."""
    fs, base = filesystem(root)
    infos = fs.get_file_info(pafs.FileSelector(f"{base}/{table}", allow_not_found=True))
    return {i.path: i.mtime_ns for i in infos if i.type == pafs.FileType.File and i.base_name.endswith(".parquet")
            and not i.base_name.startswith((".", "_"))}


def part_files(root: str, table: str) -> list[str]:
    """The data files of one table, parts and compacted files, sorted (``listing``)."""
    return sorted(listing(root, table))


def finished_ids(root: str) -> set[str]:
    """Trial ids with a row in ``trials/`` (a part or a compacted file): what a resumed sweep skips."""
    fs, _ = filesystem(root)
    ids = set()
    for path in part_files(root, "trials"):
        if is_compacted(path):
            ids.update(pq.read_table(path, columns=["trial_id"], filesystem=fs).column("trial_id").to_pylist())
        else:
            ids.add(os.path.basename(path)[:-len(".parquet")])
    return ids


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


class DamagedPartError(ConfigError):
    """A file in a table folder that cannot be read as the table it belongs to."""


FILE = "__filename"  # the scan's own column: which file a row came from


def read_table(root: str, table: str, skip_damaged: bool = False, skipped: list[str] | None = None,
               ids: list[str] | None = None, files: list[str] | None = None) -> pa.Table:
    """One table, each row once, in the current schema: one ``pyarrow.dataset`` scan of every file (in
    parallel, each opened once); columns a file lacks read as null, config fields as their defaults.
    With ``ids``, only those trials' rows (the scan skips the rest); with ``files``, the table's files
    as the caller listed them (``part_files``), so the folder is not listed again. A file the scan cannot read
    (damaged, or an older schema with another type) sends the table through ``read_part`` file by
    file, which names the file: ``DamagedPartError``, or with ``skip_damaged`` a warning and the path
    appended to ``skipped``. Every memsweep reader of a results folder comes through here."""
    schema = TABLES[table]
    fs, _ = filesystem(root)
    files = part_files(root, table) if files is None else files
    if ids is not None:  # a trial's part is named by its id: other parts need not be opened at all
        wanted = {f"{i}.parquet" for i in ids}
        files = [f for f in files if is_compacted(f) or os.path.basename(f) in wanted]
    if not files:
        return schema.empty_table()
    only = pc.field("trial_id").isin(list(ids)) if ids is not None else None
    try:
        data = ds.dataset(files, schema=schema, format="parquet", filesystem=fs).to_table(
            columns=[*schema.names, FILE], filter=only, use_threads=True)
        if data["trial_id"].null_count:  # a foreign Parquet file scans as rows of nulls
            raise ValueError("a part without trial ids")
    except (pa.ArrowException, OSError, ValueError):
        data = _one_by_one(fs, files, schema, skip_damaged, skipped)
        data = data.filter(only) if only is not None else data
    compacted = [f for f in files if is_compacted(f)]
    for file, tid in _misnamed(data, compacted).items():
        problem = (f"{file}: its rows are of trial {tid}, not of the trial it is named after (a part copied or "
                   "renamed by hand)")
        if not skip_damaged:
            raise DamagedPartError(f"{problem}; move it away, or pass skip_damaged=True to skip it")
        warnings.warn(f"skipping damaged part {problem}", stacklevel=2)
        data = data.filter(pc.not_equal(data[FILE], file))
        if skipped is not None:
            skipped.append(file)
    return _once(_defaults(data), compacted).drop_columns([FILE])


def _misnamed(data: pa.Table, compacted: list[str]) -> dict[str, str]:
    """Parts (not compacted files) holding a row of a trial other than the one in their name: path ->
    that trial. Every writer names a part by its trial (``write_part``), so such a part was copied."""
    stem = pc.replace_substring_regex(pc.replace_substring_regex(data[FILE], r"^.*/", ""), r"\.parquet$", "")
    bad = pc.and_(pc.invert(pc.is_in(data[FILE], pa.array(compacted, pa.string()))),
                  pc.not_equal(stem, data["trial_id"]))
    return dict(zip(pc.filter(data[FILE], bad).to_pylist(), pc.filter(data["trial_id"], bad).to_pylist()))


def _defaults(data: pa.Table) -> pa.Table:
    """Config fields newer than a file read as null: fill in what its trials ran with, the default."""
    for name, default in CONFIG_DEFAULTS.items():
        if name in data.column_names and default is not None and data[name].null_count:
            i = data.schema.get_field_index(name)
            data = data.set_column(i, data.schema.field(name), pc.fill_null(data[name], default))
    return data


def _once(data: pa.Table, compacted: list[str]) -> pa.Table:
    """Each trial's rows from one file: its part, else the newest compacted file holding it."""
    if not compacted:
        return data  # parts only: one file per trial id
    source, ids = data[FILE], data["trial_id"]
    keep = pc.invert(pc.is_in(source, pa.array(compacted)))  # rows of parts
    seen = pc.unique(pc.filter(ids, keep))
    for path in sorted(compacted, key=os.path.basename, reverse=True):  # newest first
        here = pc.equal(source, path)
        keep = pc.or_(keep, pc.and_(here, pc.invert(pc.is_in(ids, seen))))
        seen = pa.concat_arrays([seen, pc.unique(pc.filter(ids, here))])
    return data.filter(keep)


def read_part(fs: pafs.FileSystem, file: str, schema: pa.Schema) -> pa.Table:
    """One file, checked against its declared schema and brought to it (columns it lacks: null; a list
    column of a schema before 5: its string). Raises DamagedPartError naming the file."""
    problem = part_problem(fs, file, schema)
    if problem:
        raise DamagedPartError(f"{file}: {problem}")
    try:
        table = pq.read_table(file, filesystem=fs)
        for name in schema.names:
            if name not in table.column_names:
                table = table.append_column(schema.field(name), pa.nulls(len(table), schema.field(name).type))
            elif name in LIST_FIELDS and pa.types.is_list(table.schema.field(name).type):
                values = [flat({name: v})[name] for v in table[name].to_pylist()]
                table = table.set_column(table.column_names.index(name), name, pa.array(values, pa.string()))
        table = table.select(schema.names).cast(schema)
        return table.append_column(FILE, pa.array([file] * len(table), pa.string()))
    except (pa.ArrowException, ValueError) as exc:
        raise DamagedPartError(f"{file}: unreadable data or columns of the wrong type ({exc})") from None


def _one_by_one(fs: pafs.FileSystem, files: list[str], schema: pa.Schema, skip_damaged: bool,
                skipped: list[str] | None) -> pa.Table:
    parts = []
    for file in files:
        try:
            parts.append(read_part(fs, file, schema))
        except DamagedPartError as exc:
            if not skip_damaged:
                raise DamagedPartError(f"{exc}; pass skip_damaged=True (memsweep report: --skip-damaged) to "
                                       "skip damaged parts") from None
            warnings.warn(f"skipping damaged part {exc}", stacklevel=4)
            if skipped is not None:
                skipped.append(file)
    return pa.concat_tables(parts) if parts else schema.empty_table().append_column(FILE, pa.array([], pa.string()))


def set_aside(root: str) -> tuple[list[str], list[str]]:
    """Before a sweep (re)starts, so that those grid points run again: move table files that are not
    readable (truncated, empty, another schema) to ``_damaged/<table>/``, and with a damaged part of
    another table every part and row of its trial, which is incomplete; move the rows of trials
    that ended in ``error`` (an exception, a node without CUDA: a fault of the run, not a result) to
    ``_errors/<table>/``: a part whole, a compacted file's rows by rewriting it without them; delete
    the temp files that a killed writer left in ``_tmp/``. Nothing is read as data or deleted
    silently. Returns the names of the damaged files and of the errored trials."""
    fs, base = filesystem(root)
    damaged, errored = [], []
    for info in fs.get_file_info(pafs.FileSelector(f"{base}/{TMP}", allow_not_found=True)):
        if info.type == pafs.FileType.File and info.base_name.endswith(".tmp"):
            fs.delete_file(info.path)  # a writer killed before its rename
    for info in fs.get_file_info(pafs.FileSelector(f"{base}/trials", allow_not_found=True)):
        if info.type == pafs.FileType.File and info.base_name.startswith(".") and info.base_name.endswith(".tmp"):
            fs.delete_file(info.path)  # left in the table folder by a writer older than _tmp/
    # a damaged part of another table: its trial is incomplete, so all of that trial leaves (its trial row
    # first, as a resume reads only trials/) and runs again
    for table in (t for t in TABLES if t != "trials"):
        for path in part_files(root, table):
            if is_compacted(path) or not part_problem(fs, path, TABLES[table]):
                continue
            tid = os.path.basename(path).removesuffix(".parquet")
            for other in ["trials", *(t for t in TABLES if t != "trials")]:
                part = f"{base}/{other}/{tid}.parquet"
                if fs.get_file_info(part).type == pafs.FileType.File:
                    _move(fs, part, f"{base}/_damaged/{other}/{tid}.parquet")
                else:
                    for file in filter(is_compacted, part_files(root, other)):
                        _drop_rows(fs, base, other, file, {tid}, "_damaged")
            damaged.append(f"{table}/{os.path.basename(path)}")
    for path in part_files(root, "trials"):
        name = os.path.basename(path)
        if part_problem(fs, path, TRIAL_SCHEMA):
            _move(fs, path, f"{base}/_damaged/trials/{name}")
            damaged.append(f"trials/{name}")
            continue
        rows = pq.read_table(path, columns=["trial_id", "status"], filesystem=fs).to_pylist()
        if not is_compacted(path) and any(r["trial_id"] != name.removesuffix(".parquet") for r in rows):
            _move(fs, path, f"{base}/_damaged/trials/{name}")  # another trial's rows, copied under this name
            damaged.append(f"trials/{name}")
            continue
        bad = {r["trial_id"] for r in rows if r["status"] == "error"}
        if bad and not is_compacted(path):
            _move(fs, path, f"{base}/_errors/trials/{name}")
        elif bad:
            for table in [*(t for t in TABLES if t != "trials"), "trials"]:  # trials last: resume reads it
                for file in filter(is_compacted, part_files(root, table)):
                    _drop_rows(fs, base, table, file, bad)
        errored.extend(sorted(bad))
    return damaged, errored


def _move(fs: pafs.FileSystem, src: str, dst: str) -> None:
    fs.create_dir(os.path.dirname(dst), recursive=True)
    fs.move(src, dst)


def _drop_rows(fs: pafs.FileSystem, base: str, table: str, file: str, ids: set[str], to: str = "_errors") -> None:
    """Rewrite compacted ``file`` without the rows of ``ids``, which go to ``<to>/<table>/`` first."""
    data = pq.read_table(file, filesystem=fs)
    out = pc.is_in(data["trial_id"], pa.array(sorted(ids)))
    if not pc.any(out).as_py():
        return
    name = os.path.basename(file)
    for rows, dst in [(data.filter(out), f"{base}/{to}/{table}/{name}"), (data.filter(pc.invert(out)), file)]:
        fs.create_dir(f"{base}/{TMP}", recursive=True)
        tmp = f"{base}/{TMP}/{table}.{name}.{uuid.uuid4().hex[:8]}.tmp"
        pq.write_table(rows, tmp, filesystem=fs)
        _move(fs, tmp, dst)  # the rename replaces the file whole


def read_trial_row(root: str, trial_id: str) -> dict[str, Any]:
    """One trial's row (``read_table``'s rule: its part, else the newest compacted file holding it)."""
    rows = read_table(root, "trials", ids=[trial_id]).to_pylist()
    if not rows:
        raise KeyError(f"no row of trial {trial_id} in {root}/trials")
    return rows[0]


def read_trials(root: str, columns: list[str] | None = None):
    """``trials/`` as a pandas DataFrame, each trial once (empty when there are none yet)."""
    table = read_table(root, "trials")
    return (table.select(columns) if columns else table).to_pandas()


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
        try:
            manifest = read_manifest(root)
        except DamagedManifest as exc:  # the rows are still readable: say so, and read them
            warnings.warn(str(exc), stacklevel=2)
            manifest = None
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


class DamagedManifest(ConfigError):
    """A ``sweep.json`` that is not the record memsweep wrote (truncated, hand-edited)."""


MANIFEST_MAX_BYTES = 16 * 2**20  # far above any sweep's record; a larger file is not one


def read_manifest(root: str) -> dict[str, Any] | None:
    """The sweep's record, ``sweep.json``; None when there is none. Raises DamagedManifest (one line,
    naming the repair) when it is not a JSON object with a ``grid`` table."""
    import json
    fs, base = filesystem(root)
    info = fs.get_file_info(f"{base}/{MANIFEST}")
    if info.type != pafs.FileType.File:
        return None
    why = f"{info.size:,} bytes" if info.size > MANIFEST_MAX_BYTES else None
    if why is None:
        with fs.open_input_stream(f"{base}/{MANIFEST}") as fh:
            try:
                manifest = json.loads(fh.read().decode())
                if not (isinstance(manifest, dict) and isinstance(manifest.get("grid"), dict)
                        and isinstance(manifest["grid"].get("axes"), dict)):
                    why = "no grid recorded"
            except (UnicodeDecodeError, json.JSONDecodeError) as exc:
                why = f"not JSON: {exc}"
    if why:
        raise damaged_manifest(root, why)
    return manifest


def damaged_manifest(root: str, why: str) -> DamagedManifest:
    return DamagedManifest(f"{root}/{MANIFEST} is damaged ({why}); `memsweep run --repair` with the grid that "
                           "wrote it rebuilds it and keeps every finished row")


TUNE = "_tune"  # Ray Tune's own record of the last run (its ResultGrid): memsweep never reads it back


def clear_tune(root: str) -> None:
    """Remove Ray Tune's record of an earlier run, before a new run of the sweep writes its own."""
    fs, base = filesystem(root)
    if fs.get_file_info(f"{base}/{TUNE}").type == pafs.FileType.Directory:
        fs.delete_dir(f"{base}/{TUNE}")


def clear(root: str) -> None:
    """Remove a sweep's results, Tune state and manifest (``memsweep run --force``)."""
    fs, base = filesystem(root)
    for name in [*TABLES, TUNE, "_damaged", "models"]:
        if fs.get_file_info(f"{base}/{name}").type == pafs.FileType.Directory:
            fs.delete_dir(f"{base}/{name}")
    if fs.get_file_info(f"{base}/{MANIFEST}").type == pafs.FileType.File:
        fs.delete_file(f"{base}/{MANIFEST}")
