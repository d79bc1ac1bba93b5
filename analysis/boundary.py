"""The memorization boundary: onset depth against width, one line per n_train, and its trend.

The boundary's points are the onsets of ``analysis.evidence`` (the one onset table: usable
trials only, untested cells read by nothing), so the report, its figure and this module never
show two onsets for one grid point.

A *line* is every varying axis but width, depth and seed (arch, n_train, dataset, ...). Along a
line, the *trend* is the least-squares slope of the onset depth against log2(width): the change
of the onset depth per doubling of width,

    slope = sum_i (u_i - mean u)(o_i - mean o) / sum_i (u_i - mean u)^2,   u_i = log2(width_i),

over the line's widths whose onset is a clean boundary (status reached: monotone in depth, no
untested depth before it). Whether the onset falls or rises with width is decided by an exact
permutation test over trained networks: under "width changes nothing", a seed's memorization
profile over depth is as likely at one width as at another (a seed fixes the training images at
every width, so profiles are relabelled across widths within each seed only). Every relabelling
recomputes every width's onset by the same rules and the slope; the p-value is taken over the
relabellings whose slope is defined (two or more clean widths; ``stats.permutation_p`` says why that
is exact). The slope falls (rises) when its one-sided p-value is at most ``rules.ALPHA``. The
test decides; no interval is shown, because onsets are depths on the grid trained, and a shifted
null cannot be built from them without inventing depths between those trained.
"""
from __future__ import annotations

import itertools

import numpy as np
import pandas as pd

from study import rules

from . import evidence, maps
from .stats import MAX_EXACT, N_DRAWS, permutation_p

FALLS, RISES, FLAT, NONE = "falls", "rises", "no clear change", "no trend"


def trend_axes(trials: pd.DataFrame) -> list[str]:
    """The axes that tell the boundary's lines apart: every varying axis (and arch, n_train) but
    width, depth and seed."""
    return [c for c in evidence.line_axes(trials) if c != "width"]


def covered(trials: pd.DataFrame) -> bool:
    """Whether the trials hold a boundary to show: two or more widths or n_train on some line."""
    return any(c in trials and trials[c].nunique() > 1 for c in ("width", "n_train"))


def table(trials: pd.DataFrame, criterion: maps.Criterion = maps.DEFAULT) -> pd.DataFrame:
    """The onset table (``evidence.onsets``) per line and width, sorted by them."""
    by = [*trend_axes(trials), "width"]
    return evidence.onsets(trials, criterion, by=by).sort_values(by).reset_index(drop=True)


def slope(u: np.ndarray, o: np.ndarray) -> float:
    """Least-squares slope of o against u (NaN with fewer than two distinct u)."""
    u, o = np.asarray(u, float), np.asarray(o, float)
    if len(u) < 2 or np.ptp(u) == 0:
        return float("nan")
    du = u - u.mean()
    return float(du @ (o - o.mean()) / (du @ du))


def _slopes(u: np.ndarray, onset: np.ndarray, ok: np.ndarray) -> np.ndarray:
    """``slope`` of each row of ``onset`` (..., W) over its widths where ``ok``; NaN with fewer than two."""
    w = ok.astype(float)
    k = w.sum(axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        ubar = (w * u).sum(axis=-1, keepdims=True) / k[..., None]
        obar = (w * np.nan_to_num(onset)).sum(axis=-1, keepdims=True) / k[..., None]
        du = np.where(ok, u - ubar, 0.0)
        out = (du * np.where(ok, onset - obar, 0.0)).sum(axis=-1) / (du * du).sum(axis=-1)
    return np.where(k >= 2, out, np.nan)


def _relabellings(n_widths: int, n_seeds: int, seed: int) -> np.ndarray:
    """(N, seeds, widths): for each relabelling, each seed's order of its profiles over widths; the
    first row is the observed one. Every one of (W!)^S when that is at most MAX_EXACT, else N_DRAWS
    random ones after the observed."""
    orders = list(itertools.permutations(range(n_widths)))
    if len(orders) ** n_seeds <= MAX_EXACT:
        return np.array(list(itertools.product(orders, repeat=n_seeds)), dtype=int).reshape(-1, n_seeds, n_widths)
    rng = np.random.default_rng(seed)
    draws = rng.permuted(np.tile(np.arange(n_widths), (N_DRAWS, n_seeds, 1)), axis=2)
    return np.concatenate([np.tile(np.arange(n_widths), (1, n_seeds, 1)), draws])


def trend_test(m: np.ndarray, present: np.ndarray, widths: np.ndarray, depths: np.ndarray,
               seed: int = 0) -> dict:
    """The trend of one line from its seed profiles (``evidence.profiles`` over width): the observed
    onsets and statuses per width, the slope over the clean ones, and the permutation p-values."""
    onset, status = evidence.profile_onsets(m, present, depths)
    clean = status == rules.REACHED
    u = np.log2(widths.astype(float))
    observed = float(_slopes(u, onset, clean))
    perms = _relabellings(len(widths), m.shape[1], seed)
    s_idx = np.arange(m.shape[1])[None, :, None]
    mp = m.transpose(1, 0, 2)[s_idx, perms].transpose(0, 2, 1, 3)  # (N, widths, seeds, depths)
    pp = present.transpose(1, 0, 2)[s_idx, perms].transpose(0, 2, 1, 3)
    p_onset, p_status = evidence.profile_onsets(mp, pp, depths)
    null = _slopes(u, p_onset, p_status == rules.REACHED)
    p_up, p_down = permutation_p(observed, null) if np.isfinite(observed) else (1.0, 1.0)
    return {"onset": onset, "status": status, "slope": observed, "p_rises": p_up, "p_falls": p_down,
            "n_perms": int(np.isfinite(null).sum())}


def trend(trials: pd.DataFrame, criterion: maps.Criterion = maps.DEFAULT, seed: int = 0) -> pd.DataFrame:
    """Per line: the onset depth's change per doubling of width and its permutation test (see the
    module docstring). -> line axes..., widths (with a reached onset), slope, p_falls, p_rises, n_perms (the
relabellings with a defined slope),
    outcome (falls, rises, no clear change, no trend), note (the widths left out and why)."""
    by = trend_axes(trials)
    rows = []
    for key, g in (trials.groupby(by, dropna=False) if by else [((), trials)]):
        key = key if isinstance(key, tuple) else (key,)
        m, present, widths, depths = evidence.profiles(g, "width", criterion)
        t = trend_test(m, present, widths, depths, seed)
        clean = t["status"] == rules.REACHED
        notes = [f"width {w}: {st}" + (f" {d:g}" if st == rules.BOUND else "") for w, st, d in
                 zip(widths, t["status"], t["onset"]) if st != rules.REACHED]
        used = [int(w) for w in widths[clean]]
        if len(used) >= 2 and (t["onset"][clean] == depths.min()).all():
            notes.append(f"every onset is at the shallowest depth tested ({depths.min()}): the boundary lies at "
                         "or below it")
        if len(used) < 2:
            notes.append(f"{len(used)} width(s) with a reached onset: a trend needs two")
            outcome = NONE
        else:
            outcome = FALLS if t["p_falls"] <= rules.ALPHA else RISES if t["p_rises"] <= rules.ALPHA else FLAT
        rows.append({**dict(zip(by, key)), "widths": used, "slope": t["slope"], "p_falls": t["p_falls"],
                     "p_rises": t["p_rises"], "n_perms": t["n_perms"], "outcome": outcome, "note": "; ".join(notes)})
    return pd.DataFrame(rows)


def describe(row: pd.Series | dict) -> str:
    """One trend in words: 'onset depth falls: -1.50 per doubling of width over widths 256-1024
    (one-sided permutation p = 0.01 of 216 relabellings)', or why there is none."""
    if row["outcome"] == NONE:
        return f"no trend: {row['note']}"
    p = row["p_falls"] if row["slope"] <= 0 else row["p_rises"]
    text = (f"onset depth {row['outcome']}: {row['slope']:+.2f} per doubling of width over widths "
            f"{min(row['widths'])}-{max(row['widths'])} (one-sided permutation p = {p:.2g} of {row['n_perms']} "
            "relabellings of width within seeds)")
    return text + (f"; {row['note']}" if row["note"] else "")


def trend_lines(trials: pd.DataFrame, criterion: maps.Criterion = maps.DEFAULT) -> list[str]:
    """Every line's trend, labelled by its axes, for the report and the command line."""
    t = trend(trials, criterion)
    by = trend_axes(trials)
    return [", ".join(f"{k}={r[k]}" for k in by) + ": " + describe(r) for _, r in t.iterrows()]


# --- several runs in one figure ---------------------------------------------------------------------------

def side_by_side(tables: list[pd.DataFrame]) -> pd.DataFrame:
    """Trials tables of several boundary runs as one, their lines told apart by data set and image side
    (a data set's own side, None in the config, is read from input_dim / channels)."""
    trials = pd.concat(tables, ignore_index=True)
    channels = trials.channels.astype(float).fillna(1.0) if "channels" in trials else 1.0
    side = np.sqrt(trials.input_dim.astype(float) / channels).round()
    return trials.assign(image_size=trials.image_size.astype(float).fillna(side).astype(int))
