"""Where memorization appears: pure functions from the trials table to tidy summary frames.

Vocabulary. A trial *memorizes* when its training examples are attractors that iteration
retrieves (``memorized``; the criterion is a parameter). Over the seeds of one grid point the
*memorization rate* is the fraction of seeds whose trial memorizes. The *onset depth* of a
group of grid points (same arch, width, ...) is the smallest depth whose rate reaches a
threshold.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np
import pandas as pd

from study.config import field_names, field_type
from study.rules import acts_like_projection, falls_back, first_reaching, keeps_span

GROUP = ["arch", "width", "activation", "n_train", "dataset"]  # shown in every onset table
N_BOOT, LEVEL = 1000, 0.9  # one bootstrap setting for every interval of a report


def varying(trials: pd.DataFrame) -> list[str]:
    """The config fields (scalar ones: list-valued probe settings such as noise_levels are not axes
    here) that take more than one value in ``trials``: the sweep's own axes, seed included."""
    return [c for c in field_names() if c in trials.columns and not field_type(c)[2]
            and trials[c].nunique(dropna=False) > 1]


def groups(trials: pd.DataFrame, without: tuple[str, ...] = ("depth", "seed")) -> list[str]:
    """What a summary is per, by default: ``GROUP`` plus every other varying axis, minus ``without``,
    so that no axis of the sweep is averaged over unsaid."""
    return [c for c in dict.fromkeys([*_present(trials, GROUP), *varying(trials)]) if c not in without]


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


def rate_map(trials: pd.DataFrame, index: str = "depth", columns: str = "width",
             by: list[str] | None = None, criterion: Criterion = DEFAULT) -> pd.DataFrame:
    """Memorization rate over ``index`` x ``columns`` (per ``by`` group), over seeds.

    rate = mean_seeds 1[memorized], with its standard error sqrt(rate (1 - rate) / n_seeds);
    also the mean attractor_frac, and n_fitted: the seeds whose trial interpolated (status ok).
    -> tidy frame: by..., index, columns, rate, rate_se, attractor_frac, n_seeds, n_fitted."""
    by = _present(trials, by if by is not None else ["arch", "activation", "n_train"])
    df = trials.assign(memorized=memorized(trials, criterion).astype(float),
                       fitted=(trials["status"] == "ok").astype(float) if "status" in trials else 1.0)
    keys = [*by, index, columns]
    out = (df.groupby(keys, dropna=False)
             .agg(rate=("memorized", "mean"), attractor_frac=("attractor_frac", "mean"), n_seeds=("seed", "nunique"),
                  n_fitted=("fitted", "sum"))
             .reset_index())
    out["n_fitted"] = out["n_fitted"].astype(int)
    out["rate_se"] = np.sqrt(out.rate * (1 - out.rate) / out.n_seeds)
    return out


def wilson_interval(k, n, level: float = LEVEL) -> tuple[np.ndarray, np.ndarray]:
    """Wilson score interval of a proportion k/n (elementwise over arrays) -> (low, high).

    z = Phi^-1((1 + level) / 2),  p = k / n
    centre = (p + z^2 / (2n)) / (1 + z^2 / n)
    half   = z / (1 + z^2 / n) * sqrt(p (1 - p) / n + z^2 / (4 n^2))
    low, high = centre - half, centre + half   (within [0, 1]; NaN where n = 0)

    Chosen over the bootstrap and over p +- z se for a rate over a few seeds: both of those collapse
    to a point when every seed agrees, this one does not. At k = 0 it is [0, z^2 / (n + z^2)], at
    k = n [n / (n + z^2), 1]: with 3 seeds at 90%, 0/3 -> [0, 0.47] and 3/3 -> [0.53, 1]."""
    k, n = np.asarray(k, dtype=float), np.asarray(n, dtype=float)
    z = NormalDist().inv_cdf((1 + level) / 2)
    with np.errstate(invalid="ignore", divide="ignore"):
        p = k / n
        centre = (p + z * z / (2 * n)) / (1 + z * z / n)
        half = z / (1 + z * z / n) * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    low = np.where(k == 0, 0.0, np.clip(centre - half, 0.0, 1.0))  # exact ends, not 1e-17 off
    high = np.where(k == n, 1.0, np.clip(centre + half, 0.0, 1.0))
    return np.where(n > 0, low, np.nan), np.where(n > 0, high, np.nan)


STATUSES = ("not_converged", "diverged", "error")  # the statuses a phase map marks (ok: none)


def phase_cells(trials: pd.DataFrame, index: str = "depth", columns: str = "width",
                by: list[str] | None = None, criterion: Criterion = DEFAULT, level: float = LEVEL) -> pd.DataFrame:
    """What one cell of a phase map shows: ``rate_map``'s columns, plus
    rate_low, rate_high: the rate's ``wilson_interval`` over the cell's trials (k memorized of n);
    attractor_min, attractor_max: the range of attractor_frac over the seeds that have one;
    n_not_converged, n_diverged, n_error: the cell's trials with that status.
    A trial without probe values (diverged, error) counts as not memorized (``Criterion``)."""
    by = _present(trials, by if by is not None else ["arch", "activation", "n_train"])
    keys = [*by, index, columns]
    status = trials["status"] if "status" in trials else pd.Series("ok", index=trials.index)
    df = trials.assign(memorized=memorized(trials, criterion).astype(float),
                       **{f"n_{s}": (status == s).astype(int) for s in STATUSES})
    extra = (df.groupby(keys, dropna=False)
               .agg(n_memorized=("memorized", "sum"), n_trials=("memorized", "size"),
                    attractor_min=("attractor_frac", "min"), attractor_max=("attractor_frac", "max"),
                    **{f"n_{s}": (f"n_{s}", "sum") for s in STATUSES})
               .reset_index())
    extra["rate_low"], extra["rate_high"] = wilson_interval(extra.n_memorized, extra.n_trials, level)
    out = rate_map(trials, index, columns, by, criterion).merge(extra, on=keys, how="left")
    return out.drop(columns=["n_memorized", "n_trials"])


def onset_depth(trials: pd.DataFrame, by: list[str] | None = None, criterion: Criterion = DEFAULT,
                threshold: float = 0.5, n_boot: int = N_BOOT, level: float = LEVEL, seed: int = 0,
                flag: pd.Series | None = None) -> pd.DataFrame:
    """Smallest depth at which the memorization rate over seeds is >= ``threshold``, per group
    (default ``groups(trials)``: every varying axis but depth and seed). ``flag`` (boolean per row) replaces ``memorized(trials, criterion)``, e.g. ``operator_memorizes``.

    onset = min { d : mean_{s in seeds} 1[memorized(d, s)] >= threshold }   (NaN: not reached)
    Interval: bootstrap over seeds (resampled with replacement, jointly across depths since a seed
    fixes the data and the init), the (1-level)/2 and (1+level)/2 quantiles of the bootstrap onsets,
    "not reached" counting as +inf (so onset_high = inf says the interval is open above).
    monotone: False when the rate reaches the threshold at some depth and falls below it at a deeper
    one (``rules.falls_back``): the onset is then the first crossing, not a clean boundary.
    -> one row per group: by..., onset_depth, onset_low, onset_high, reached, p_reached (share of
    bootstrap draws that reach it), monotone, n_seeds, depths (tested, sorted)."""
    by = _present(trials, by if by is not None else groups(trials))
    df = trials.assign(memorized=(memorized(trials, criterion) if flag is None else flag).astype(float))
    rng = np.random.default_rng(seed)
    rows = []
    for key, g in df.groupby(by, dropna=False) if by else [((), df)]:
        m, depths = seed_matrix(g)  # seeds x depths; NaN where a seed lacks that depth
        rate = np.nanmean(m, axis=0)
        onset = onset_at(rate, depths, threshold)
        boot = boot_onsets(m, depths, threshold, rng.integers(0, m.shape[0], size=(n_boot, m.shape[0])))
        lo, hi = np.quantile(boot, [(1 - level) / 2, (1 + level) / 2], method="inverted_cdf")  # no inf - inf
        key = key if isinstance(key, tuple) else (key,)
        rows.append({**dict(zip(by, key)), "onset_depth": onset, "onset_low": lo, "onset_high": hi,
                     "reached": bool(np.isfinite(onset)), "p_reached": float(np.isfinite(boot).mean()),
                     "monotone": not falls_back(rate, threshold), "n_seeds": m.shape[0],
                     "depths": depths.tolist()})
    out = pd.DataFrame(rows)
    out["onset_depth"] = out["onset_depth"].replace(np.inf, np.nan)
    return out


def onset_at(rate: np.ndarray, depths: np.ndarray, threshold: float) -> float:
    """The first of ``depths`` whose ``rate`` reaches ``threshold`` (``rules.first_reaching``); inf if none."""
    with np.errstate(invalid="ignore"):
        hit = first_reaching(rate, threshold)
    return float(depths[hit]) if hit is not None else np.inf


def seed_matrix(g: pd.DataFrame, seeds=None) -> tuple[np.ndarray, np.ndarray]:
    """One group's ``memorized`` column as seeds x depths (NaN where a seed lacks a depth), rows in
    the order of ``seeds`` (default: the group's own) -> (matrix, depths)."""
    table = g.pivot_table(index="seed", columns="depth", values="memorized", aggfunc="mean")
    depths = np.array(sorted(table.columns))
    table = table[depths] if seeds is None else table[depths].reindex(seeds)
    return table.to_numpy(), depths


def boot_onsets(m: np.ndarray, depths: np.ndarray, threshold: float, draws: np.ndarray) -> np.ndarray:
    """The onset (``onset_at``; inf: not reached) of each bootstrap draw: ``draws`` holds rows of seed indices."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a draw of seeds lacking a depth
        return np.array([onset_at(np.nanmean(m[d], axis=0), depths, threshold) for d in draws])


def describe_onset(row: pd.Series) -> str:
    """'6 (90% CI 4-8)', '> 12 (not reached)', '8 (90% CI 6 - not reached)'."""
    if not row["reached"]:
        return f"> {max(row['depths'])} (not reached)"
    hi = "not reached" if not np.isfinite(row["onset_high"]) else f"{row['onset_high']:g}"
    tail = "" if row.get("monotone", True) else "; rate not monotone in depth: no clean onset"
    return f"{row['onset_depth']:g} (CI {row['onset_low']:g} - {hi}){tail}"


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
                     memorizes=operator_memorizes(lin).astype(float), ok=(lin.status == "ok").astype(float))
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


def retrieval_vs_sigma(retrieval: pd.DataFrame, trials: pd.DataFrame, by: list[str] | None = None) -> pd.DataFrame:
    """Noisy-start retrieval (same / any training example) against sigma, averaged over seeds."""
    by = _present(trials, by if by is not None else ["arch", "depth", "width", "activation"])
    noisy = retrieval[retrieval["start"] == "noisy"].merge(trials[["trial_id", *by, "seed"]], on="trial_id")
    return (noisy.groupby([*by, "sigma"], dropna=False)
                 .agg(same_frac=("same_frac", "mean"), any_frac=("any_frac", "mean"), n_seeds=("seed", "nunique"))
                 .reset_index())
