"""What a trial shows: pure functions from the trials table to per-trial flags and tidy summaries.

Vocabulary. A trial *memorizes* when its training examples are attractors that iteration
retrieves (``memorized``; the criterion is a parameter). Which trials count as evidence, the
memorization rate of a grid point and its onset depth are ``analysis.evidence``'s, defined there
once; this module names the axes of a sweep (``varying``, ``groups``) and what one trial shows.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from study.config import DEPTH, NAMED, REPLICATE, field_names, field_type
from study import rules
from study.rules import acts_like_projection, keeps_span



def varying(trials: pd.DataFrame) -> list[str]:
    """The config fields (scalar ones: list-valued probe settings such as noise_levels are not axes
    here) that take more than one value in ``trials``: the sweep's own axes, seed included."""
    return [c for c in field_names() if c in trials.columns and not field_type(c)[2]
            and trials[c].nunique(dropna=False) > 1]


def summary_axes(trials: pd.DataFrame, without: tuple[str, ...] = (DEPTH, REPLICATE)) -> list[str]:
    """The axes a summary is per, by default: ``config.NAMED`` plus every other varying axis, minus
    ``without``, so that no axis of the sweep is averaged over unsaid."""
    return [c for c in dict.fromkeys([*_present(trials, NAMED), *varying(trials)]) if c not in without]


@dataclass(frozen=True)
class Criterion:
    """memorized(trial) = attractor_frac >= min_attractor_frac and retrieval_same_frac >= min_retrieval.

    Defaults: at least half of the training examples are attractors (fixed points with rho < 1),
    and at least half of the noisy starts at the headline sigma return to their own example.
    A trial with no probe values (diverged, error) does not memorize."""
    min_attractor_frac: float = 0.5
    min_retrieval: float = 0.5

    def __post_init__(self):
        for name in ("min_attractor_frac", "min_retrieval"):
            if not 0 <= getattr(self, name) <= 1:
                raise ValueError(f"Criterion.{name} = {getattr(self, name)}: a share, so between 0 and 1")

    def __str__(self) -> str:
        return f"attractor_frac >= {self.min_attractor_frac} and retrieval_same_frac >= {self.min_retrieval}"


DEFAULT = Criterion()


def memorized(trials: pd.DataFrame, criterion: Criterion = DEFAULT) -> pd.Series:
    """Boolean per trial row; a missing metric (NaN) compares False, so such a trial does not memorize."""
    a = trials["attractor_frac"].astype(float)
    r = trials["retrieval_same_frac"].astype(float)
    return (a >= criterion.min_attractor_frac) & (r >= criterion.min_retrieval)


def _present(trials: pd.DataFrame, cols: list[str]) -> list[str]:
    return [c for c in cols if c in trials.columns]


# --- linear nets: the operator study of C3 ----------------------------------------------------------

def operator_memorizes(trials: pd.DataFrame) -> pd.Series:
    """Boolean per row: a linear net's operator A behaves like the projection P_X, i.e.
    near_one = near_one_in_span = span_dim (A keeps exactly span(X)) and rest_radius < 1 (it contracts
    everything else, so x <- Ax converges onto span(X)). Rows without operator values: False."""
    cols = ["operator_near_one", "operator_near_one_in_span", "span_dim", "operator_rest_radius"]
    if not set(cols) <= set(trials.columns):
        return pd.Series(False, index=trials.index)
    return acts_like_projection(*(trials[c].astype(float) for c in cols))


def image_side(trials: pd.DataFrame) -> pd.Series:
    """The image side s per row: ``image_size`` where set, else sqrt(input_dim / channels)."""
    chans = trials["channels"].astype(float).fillna(1.0) if "channels" in trials else 1.0
    native = np.sqrt(trials["input_dim"].astype(float) / chans).round()
    return trials["image_size"].astype(float).fillna(native) if "image_size" in trials else native


def receptive_field(trials: pd.DataFrame) -> pd.Series:
    """Receptive field of a stride-1 conv stack: depth (k - 1) + 1 pixels; an output pixel sees no
    further, so the operator is banded and cannot be P_X of an s x s image while this is < s."""
    return trials["depth"] * (trials["kernel_size"] - 1) + 1


def operator_table(trials: pd.DataFrame, by: list[str] | None = None) -> pd.DataFrame:
    """Linear nets, per ``by`` group (default arch, width, side) and depth, over seeds: median kept
    directions (near_one), share keeping exactly span(X), share memorizing (``operator_memorizes``),
    median rest_radius, share of trials that interpolated (status ok), n_seeds."""
    by = by if by is not None else ["arch", "width", "side"]
    cols = [*by, "depth", "receptive_field", "near_one", "keeps_span", "memorizes", "rest_radius", "interpolated",
            "n_seeds"]
    lin = trials[trials["operator_near_one"].notna()] if "operator_near_one" in trials else trials.iloc[:0]
    if lin.empty:  # no linear nets (or parts from before the operator was measured)
        return pd.DataFrame(columns=cols)
    lin = lin.assign(side=image_side(lin), receptive_field=receptive_field(lin),
                     keeps_span=keeps_span(lin.operator_near_one, lin.operator_near_one_in_span,
                                           lin.span_dim).astype(float),
                     memorizes=operator_memorizes(lin).astype(float), ok=(lin.status == rules.OK).astype(float))
    return (lin.groupby([*by, "depth"], dropna=False)
               .agg(receptive_field=("receptive_field", "first"), near_one=("operator_near_one", "median"),
                    keeps_span=("keeps_span", "mean"), memorizes=("memorizes", "mean"),
                    rest_radius=("operator_rest_radius", "median"), interpolated=("ok", "mean"),
                    n_seeds=("seed", "nunique"))
               .reset_index())


def metric_vs(trials: pd.DataFrame, metric: str, x: str = "depth", by: list[str] | None = None) -> pd.DataFrame:
    """Mean, median, standard error, min and max of ``metric`` over seeds, per ``by`` group and ``x``."""
    by = _present(trials, by if by is not None else ["arch", "width", "activation", "n_train"])
    g = trials.groupby([*by, x], dropna=False)[metric]
    out = g.agg(["mean", "median", "sem", "min", "max", "count"]).reset_index()
    return out.rename(columns={"count": "n_seeds"})


def noisy_starts(retrieval: pd.DataFrame, trials: pd.DataFrame, axes: list[str]) -> pd.DataFrame:
    """The retrieval rows of noisy starts (one per trial and sigma), each with the ``axes`` of its trial:
    what retrieval against sigma is read from, as a table (``retrieval_vs_sigma``) or a figure."""
    keep = list(dict.fromkeys(["trial_id", *axes]))
    return retrieval[retrieval["start"] == "noisy"].merge(trials[keep], on="trial_id")


def retrieval_vs_sigma(retrieval: pd.DataFrame, trials: pd.DataFrame, by: list[str] | None = None) -> pd.DataFrame:
    """Noisy-start retrieval (same / any training example) against sigma, averaged over seeds."""
    by = _present(trials, by if by is not None else ["arch", "depth", "width", "activation"])
    noisy = noisy_starts(retrieval, trials, [*by, REPLICATE])
    return (noisy.groupby([*by, "sigma"], dropna=False)
                 .agg(same_frac=("same_frac", "mean"), any_frac=("any_frac", "mean"), n_seeds=("seed", "nunique"))
                 .reset_index())
