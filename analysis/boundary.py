"""The memorization boundary: onset depth against width, one line per n_train, and its trend.

The boundary is the onset depth (``maps.onset_depth``) of each grid point, here computed over the
trials that interpolated (``claims.evidence``: a net that did not fit is no evidence either way),
so a line's points may rest on fewer seeds than the sweep ran; ``n_seeds`` says how many.

A *line* is every varying axis but width, depth and seed (arch, n_train, dataset, ...). Along a
line, the *trend* is the least-squares slope of onset depth against log2(width): the change of
the onset depth per doubling of width,

    slope = sum_i (u_i - mean u)(o_i - mean o) / sum_i (u_i - mean u)^2,   u_i = log2(width_i),

over the line's widths whose onset is reached. Its interval is a bootstrap over seeds, resampled
jointly across widths and depths (a seed fixes the training images at every width): each draw
recomputes every width's onset and the slope. A draw in which some width's onset is not reached
has no slope; ``p_defined`` is the share of draws that have one, and the interval is over those.
A line is left without a trend (and says why) when fewer than two widths reach an onset, or when
a width's rate is not monotone in depth (``rules.falls_back``): its "onset" is no boundary.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from study.rules import falls_back

from . import maps
from .claims import evidence

MIN_DEFINED = 0.5  # a trend whose slope is defined in fewer bootstrap draws is "insufficient evidence"


def lines(trials: pd.DataFrame) -> list[str]:
    """The axes that tell the boundary's lines apart: every varying axis (and arch, n_train) but
    width, depth and seed."""
    return maps.groups(trials, without=("width", "depth", "seed"))


def covered(trials: pd.DataFrame) -> bool:
    """Whether the trials hold a boundary to show: two or more widths or n_train on some line."""
    return any(c in trials and trials[c].nunique() > 1 for c in ("width", "n_train"))


def table(trials: pd.DataFrame, criterion: maps.Criterion = maps.DEFAULT, threshold: float = 0.5) -> pd.DataFrame:
    """Onset depth per line and width over the interpolated trials: ``maps.onset_depth``'s columns,
    plus n_excluded, the trials of that grid point left out because they did not interpolate."""
    ev, _ = evidence(trials)
    by = [*lines(trials), "width"]
    out = maps.onset_depth(ev, by=by, criterion=criterion, threshold=threshold)
    dropped = trials.loc[~trials.index.isin(ev.index)].groupby(by, dropna=False).size().rename("n_excluded")
    out = out.merge(dropped.reset_index(), on=by, how="left") if len(dropped) else out.assign(n_excluded=0)
    out["n_excluded"] = out["n_excluded"].fillna(0).astype(int)
    return out.sort_values(by).reset_index(drop=True)


def slope(u: np.ndarray, o: np.ndarray) -> float:
    """Least-squares slope of o against u (NaN with fewer than two distinct u)."""
    u, o = np.asarray(u, float), np.asarray(o, float)
    if len(u) < 2 or np.ptp(u) == 0:
        return float("nan")
    du = u - u.mean()
    return float(du @ (o - o.mean()) / (du @ du))


def trend(trials: pd.DataFrame, criterion: maps.Criterion = maps.DEFAULT, threshold: float = 0.5,
          n_boot: int = maps.N_BOOT, level: float = maps.LEVEL, seed: int = 0) -> pd.DataFrame:
    """Per line: the onset depth's change per doubling of width with its bootstrap interval (see the
    module docstring). -> line axes..., widths (with a reached, monotone onset), slope, slope_low,
    slope_high, p_defined, n_seeds (fewest at a width), note (why there is no slope, else '')."""
    ev, _ = evidence(trials)
    ev = ev.assign(memorized=maps.memorized(ev, criterion).astype(float))
    by = lines(trials)
    rng = np.random.default_rng(seed)
    rows = []
    for key, g in (ev.groupby(by, dropna=False) if by else [((), ev)]):
        key = key if isinstance(key, tuple) else (key,)
        seeds = sorted(g.seed.unique())
        draws = rng.integers(0, len(seeds), size=(n_boot, len(seeds)))
        widths, onsets, boots, notes, fewest = [], [], [], [], len(seeds)
        for w, gw in g.groupby("width"):
            m, depths = maps.seed_matrix(gw, seeds)
            rate = np.nanmean(m, axis=0) if np.isfinite(m).any() else m[0]
            fewest = min(fewest, gw.seed.nunique())
            if falls_back(rate, threshold):
                notes.append(f"width {w}: rate not monotone in depth")
                continue
            onset = maps.onset_at(rate, depths, threshold)
            if not np.isfinite(onset):
                notes.append(f"width {w}: not reached by depth {depths.max()}")
                continue
            widths.append(w)
            onsets.append(onset)
            boots.append(maps.boot_onsets(m, depths, threshold, draws))
        row = {**dict(zip(by, key)), "widths": widths, "n_seeds": fewest, "slope": np.nan, "slope_low": np.nan,
               "slope_high": np.nan, "p_defined": 0.0, "note": "; ".join(notes)}
        floor = g.depth.min()
        if widths and all(o == floor for o in onsets):
            notes.append(f"every onset is at the shallowest depth tested ({floor}): the boundary lies at or below it")
            row["note"] = "; ".join(notes)
        if len(widths) >= 2:
            u = np.log2(np.array(widths, float))
            b = np.array(boots).T  # draws x widths
            ok = np.isfinite(b).all(axis=1)
            slopes = np.array([slope(u, d) for d in b[ok]])
            row.update(slope=slope(u, np.array(onsets)), p_defined=float(ok.mean()))
            if len(slopes):
                row["slope_low"], row["slope_high"] = np.quantile(slopes, [(1 - level) / 2, (1 + level) / 2])
        else:
            row["note"] = "; ".join([*notes, f"{len(widths)} width(s) with an onset: a trend needs two"])
        rows.append(row)
    return pd.DataFrame(rows)


def describe(row: pd.Series | dict, level: float = maps.LEVEL) -> str:
    """One trend in words: 'onset depth falls by 1.5 per doubling of width (90% CI -2.0 to -1.0) over
    widths 256-1024', or why there is none."""
    if not np.isfinite(row["slope"]):
        return f"no trend: {row['note']}"
    ci = f"{100 * level:.0f}% CI {row['slope_low']:+.2f} to {row['slope_high']:+.2f}"
    span = f"over widths {min(row['widths'])}-{max(row['widths'])}"
    if row["p_defined"] < MIN_DEFINED or not np.isfinite(row["slope_low"]):
        verdict = "insufficient evidence"
    elif row["slope_high"] < 0:
        verdict = "falls"
    elif row["slope_low"] > 0:
        verdict = "rises"
    else:
        verdict = "no clear change"
    text = f"onset depth {verdict}: {row['slope']:+.2f} per doubling of width ({ci}, " \
           f"{100 * row['p_defined']:.0f}% of draws defined) {span}"
    return text + (f"; {row['note']}" if row["note"] else "")


def trend_lines(trials: pd.DataFrame, criterion: maps.Criterion = maps.DEFAULT, threshold: float = 0.5) -> list[str]:
    """Every line's trend, labelled by its axes, for the report and the command line."""
    t = trend(trials, criterion, threshold)
    by = lines(trials)
    return [", ".join(f"{k}={r[k]}" for k in by) + ": " + describe(r) for _, r in t.iterrows()]
