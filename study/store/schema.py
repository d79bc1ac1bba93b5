"""The tables of a results folder, declared: one pyarrow schema per table, and the metric columns of
``trials/`` with their meaning (the metrics' registry: ``TRIAL_METRICS``).

    trials/<trial_id>.parquet      one row: the full config + headline metrics
    examples/<trial_id>.parquet    one row per training example
    retrieval/<trial_id>.parquet   one row per (start kind, sigma)
    curves/<trial_id>.parquet      the thinned loss curve

Writers check their rows against these (``to_table``); readers bring every file to them
(``reader.read_table``). Adding a metric is one entry of ``TRIAL_METRICS``: parts written before it
read it as null (not measured then).
"""
from __future__ import annotations

from dataclasses import fields
from typing import Any

import pyarrow as pa

from ..config import TrialConfig, field_type
from ..rules import STATUSES

SCHEMA_VERSION = "8"  # 2: operator_* and span_dim columns; 3: operator_rest_radius; 4: retrieval of memories
                      # (memory_*, bottleneck_side, confirmed limits, monotone basin radius); 5: list-valued
                      # config fields stored as strings; 6: attractors by their dynamics (decided at the
                      # memory x_i*), cycles, capped starts, kink spread; 7: the census of where starts end
                      # (diverged by a bound, not only at overflow; spurious_point_, diverged_, moving_frac
                      # per start kind; the distinct spurious points and their distances); 8: sigma_1 at
                      # the memory (memory_top_singular_value)

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
    "status": (pa.string(), " | ".join(STATUSES)),
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
    "diverged_frac": (pa.float64(), "probe starts whose iterate diverged: non-finite, or RMS(x_t) > 1e3 x the "
                                    "largest start's RMS (probes.divergence_bound)"),
    "spurious_points": (pa.int64(), "distinct spurious fixed points p_k among the held-out + random starts' "
                                    "limits (limits within match_tol of one another are one point)"),
    "spurious_train_rms_median": (pa.float64(), "median_k min_i RMS(p_k - x_i): how far the distinct spurious "
                                                "points lie from the nearest training image (null: none found)"),
    "spurious_mean_rms_median": (pa.float64(), "median_k RMS(p_k - mean_i x_i): how far they lie from the "
                                               "training set's mean image (null: none found)"),
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
# The columns of schema 1 (besides the config fields): every part memsweep ever wrote has them, so a
# file lacking one is not a part of its table. Every column added since (a metric, a config field)
# reads as null (not measured then) or as the field's default in older parts: adding one needs no
# entry here.
SCHEMA_1 = {
    "trials": ("trial_id", "status", "error", "device", "input_dim", "n_params", "final_loss", "steps",
               "train_seconds", "probe_seconds", "spectra_seconds", "iteration_seconds", "span_seconds",
               "fixed_point_frac", "attractor_frac", "fixed_point_residual_max", "spectral_radius_median",
               "spectral_radius_max", "top_singular_median", "spectral_failures", "retrieval_same_frac",
               "retrieval_any_frac", "masked_same_frac", "basin_radius_median", "heldout_to_train_frac",
               "random_to_train_frac", "spurious_frac", "unconverged_frac", "iter_steps_median",
               "span_residual_mean", "span_input_sensitivity_mean"),
    "examples": ("trial_id", "example", "fixed_point_residual", "spectral_radius", "top_singular_value",
                 "basin_radius", "attractor"),
    "retrieval": ("trial_id", "start", "sigma", "n_starts", "same_frac", "any_frac", "spurious_frac", "none_frac"),
    "curves": ("trial_id", "step", "loss"),
}

TRIAL_SCHEMA = pa.schema(_config_fields() + [pa.field(k, t) for k, (t, _) in TRIAL_METRICS.items()])

EXAMPLE_SCHEMA = pa.schema([
    ("trial_id", pa.string()), ("example", pa.int64()), ("fixed_point_residual", pa.float64()),
    ("spectral_radius", pa.float64()), ("top_singular_value", pa.float64()),
    ("basin_radius", pa.float64()), ("attractor", pa.bool_()), ("memory_found", pa.bool_()),
    ("memory_offset", pa.float64()), ("memory_spectral_radius", pa.float64()),
    ("memory_top_singular_value", pa.float64()), ("memory_rho_spread", pa.float64()),
    ("attractor_unsure", pa.bool_()),
])

RETRIEVAL_SCHEMA = pa.schema([
    ("trial_id", pa.string()), ("start", pa.string()), ("sigma", pa.float64()), ("n_starts", pa.int64()),
    ("same_frac", pa.float64()), ("any_frac", pa.float64()), ("spurious_frac", pa.float64()),
    ("none_frac", pa.float64()), ("cycle_frac", pa.float64()), ("capped_frac", pa.float64()),
    ("spurious_point_frac", pa.float64()), ("diverged_frac", pa.float64()), ("moving_frac", pa.float64()),
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


def table_of(schema: pa.Schema) -> str:
    """The name of the table whose schema this is."""
    return next(name for name, s in TABLES.items() if s is schema)
