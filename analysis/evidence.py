"""Evidence: the one place where a trials table becomes what every table, figure and verdict reads.

The rules, each defined once (``study.rules``, shared with ``memsweep refine``'s search):

- **Usable trials.** A trial is evidence when it interpolated (status ok) and was probed
  (``rules.usable``). A net that did not fit says nothing about memorization, either way.
- **Cells.** A cell is one grid point: the trials that share every varying config axis but the
  seed. The seed (one trained network) is the unit of replication: a cell's evidence is its
  usable seeds, one value each.
- **Tested cells.** A cell with fewer than ``rules.MIN_SEEDS`` usable seeds is *untested*: it has
  no rate, is drawn and printed as "k/n fit: too few", and no onset, trend or verdict reads it.
- **Rate and onset.** A tested cell's memorization rate is the share of its usable seeds that
  memorize (``maps.memorized``). A *line* is the cells that differ only in depth; its onset is the
  first tested depth whose rate reaches ``rules.THRESHOLD``, with the status of ``rules.onsets``
  (reached, at most, not monotone, not reached, no evidence).

``cells`` gives one row per cell, ``onsets`` one row per line; the phase map, the onset table, the
boundary and its trend (``analysis.boundary``) and the verdicts (``analysis.claims``) all start here.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from study import rules
from study.config import REPLICATE

from . import maps
from .stats import share

STATUSES = tuple(s for s in rules.STATUSES if s != rules.OK)  # the statuses a cell counts (ok: the usable ones)


def status(trials: pd.DataFrame) -> pd.Series:
    """Each trial's status; a hand-built table without the column is all ok."""
    return trials["status"] if "status" in trials else pd.Series(rules.OK, index=trials.index)


def usable(trials: pd.DataFrame) -> pd.Series:
    """Boolean per row: the trial interpolated and was probed (``rules.usable``)."""
    return pd.Series(rules.usable(status(trials), trials["attractor_frac"]), index=trials.index)


def excluded(trials: pd.DataFrame) -> dict[str, int]:
    """Trials left out, counted by reason: 'did not interpolate' (not_converged), diverged, error, or
    'not probed' (status ok without probe values)."""
    why = status(trials)[~usable(trials)].map(lambda s: "did not interpolate" if s == rules.NOT_CONVERGED
                                              else "not probed" if s == rules.OK else s)
    return why.value_counts().to_dict()


def budget_notes(trials: pd.DataFrame) -> list[str]:
    """What the reader of a verdict must know about how the usable trials were measured: trials
    probed under the earlier attractor rule (schema < 6, no ``capped_frac``), probe starts still
    moving when iteration stopped (``capped_frac``, warned above ``rules.CAPPED_WARN``), and attractor
    decisions that flip within 1e-6 of the memory (a kink, ``attractor_unsure_frac``)."""
    ok = trials[usable(trials)]
    notes = []
    earlier = len(ok) if "capped_frac" not in ok else int(ok.capped_frac.isna().sum())
    if earlier:
        notes.append(f"attractor rule: {earlier} of {len(ok)} usable trials were probed before attractors were "
                     "decided by their dynamics (no capped_frac recorded, schema < 6): their attractor_frac is "
                     "r_i < fixed_point_tol and rho(J_f(x_i)) < 1 - rho_margin at x_i itself")
    if "capped_frac" in ok and ok.capped_frac.notna().any():
        capped = ok.capped_frac.dropna()
        if capped.mean() > rules.CAPPED_WARN:
            notes.append(f"iteration budget: {100 * capped.mean():.1f}% of the probe starts of {len(capped)} usable "
                         f"trials were still moving when iteration stopped (at most {100 * capped.max():.0f}% in one "
                         "trial); their outcome is unknown, so retrieval and spurious shares are lower bounds; raise "
                         "iter_steps or iter_max_steps")
    if "attractor_unsure_frac" in ok and (ok.attractor_unsure_frac.fillna(0) > 0).any():
        n = int((ok.attractor_unsure_frac.fillna(0) > 0).sum())
        notes.append(f"kinks: in {n} usable trials the attractor decision of some example flips within 1e-6 of its "
                     "memory (examples table: attractor_unsure); they count as decided at the memory itself")
    return notes


def cell_axes(trials: pd.DataFrame) -> list[str]:
    """What tells one cell from another: every varying axis but seed (and arch, width, ... where present)."""
    return maps.summary_axes(trials, without=(REPLICATE,))


def line_axes(trials: pd.DataFrame) -> list[str]:
    """What tells one line (cells over depth) from another: the cell axes but depth."""
    return [c for c in cell_axes(trials) if c != "depth"]


def _by_cell(df: pd.DataFrame, axes: list[str], **agg) -> pd.DataFrame:
    """``df`` aggregated per cell of ``axes`` (one row for the whole table when there are none)."""
    out = (df.groupby(axes, dropna=False) if axes else df.groupby(lambda _: 0)).agg(**agg)
    return out.reset_index() if axes else out.reset_index(drop=True)


def seed_counts(trials: pd.DataFrame, axes: list[str] | None = None) -> pd.DataFrame:
    """How many seeds each cell (``axes``, default ``cell_axes``) has, the one count every table, figure
    and verdict reads: n_trials (seeds run), n_usable (``usable`` seeds), tested (n_usable >= MIN_SEEDS)."""
    axes = cell_axes(trials) if axes is None else axes
    out = _by_cell(trials.assign(_usable=usable(trials).astype(int)), axes, n_trials=("_usable", "size"),
                   n_usable=("_usable", "sum"))
    out["tested"] = out.n_usable >= rules.MIN_SEEDS
    return out


def cells(trials: pd.DataFrame, criterion: maps.Criterion = maps.DEFAULT,
          axes: list[str] | None = None) -> pd.DataFrame:
    """One row per cell (``axes``, default ``cell_axes``): ``seed_counts``' n_trials, n_usable and tested,
    n_memorized (of the usable seeds), rate = n_memorized / n_usable where tested, else NaN
    (``rules.cell_rate``), and its exact Clopper-Pearson interval rate_low, rate_high at ``rules.LEVEL``
    (``stats.share``); attractor_frac, attractor_min, attractor_max: mean, min, max over the usable seeds;
    n_not_converged, n_diverged, n_error: the cell's trials with that status."""
    axes = cell_axes(trials) if axes is None else axes
    ok = usable(trials)
    st = status(trials)
    df = trials.assign(_memorized=(maps.memorized(trials, criterion) & ok).astype(int),
                       _attractor=trials["attractor_frac"].astype(float).where(ok),
                       **{f"n_{s}": (st == s).astype(int) for s in STATUSES})
    rest = _by_cell(df, axes, n_memorized=("_memorized", "sum"), attractor_frac=("_attractor", "mean"),
                    attractor_min=("_attractor", "min"), attractor_max=("_attractor", "max"),
                    **{f"n_{s}": (f"n_{s}", "sum") for s in STATUSES})
    counts = seed_counts(trials, axes)  # the same groups in the same (sorted) order
    out = pd.concat([counts.drop(columns="tested"), rest.drop(columns=axes), counts.tested], axis=1)
    out["rate"] = rules.cell_rate(out.n_memorized, out.n_usable)
    tests = [share(k, n) if t else None for k, n, t in zip(out.n_memorized, out.n_usable, out.tested)]
    out["rate_low"] = [t.low if t else np.nan for t in tests]
    out["rate_high"] = [t.high if t else np.nan for t in tests]
    return out


def tested_rows(trials: pd.DataFrame, axes: list[str] | None = None) -> pd.DataFrame:
    """The evidence itself: the usable trials whose cell (``axes``, default ``cell_axes``) is tested."""
    axes = cell_axes(trials) if axes is None else axes
    ok = trials[usable(trials)]
    if ok.empty:
        return ok
    n = ok.groupby(axes, dropna=False).seed.transform("nunique") if axes else pd.Series(ok.seed.nunique(), ok.index)
    return ok[n >= rules.MIN_SEEDS]


def cell_text(row) -> str:
    """A cell's evidence in words: '2/3' (memorized of usable), or '1/3 fit: too few'."""
    if row["tested"]:
        return f"{row['n_memorized']}/{row['n_usable']}"
    return f"{row['n_usable']}/{row['n_trials']} fit: too few"


# --- onsets: one row per line ---------------------------------------------------------------------------

def onsets(trials: pd.DataFrame, criterion: maps.Criterion = maps.DEFAULT, by: list[str] | None = None) -> pd.DataFrame:
    """The onset depth of every line (``by``, default ``line_axes``), from ``cells``.
    -> by..., onset_depth (NaN unless reached or at most), status (``rules.onsets``), first_some and
    first_all (the first tested depth at which some usable seed, and every one, memorizes: the seeds'
    own spread around the onset; NaN if none), n_seeds (fewest usable seeds at a tested depth; 0 if
    none is tested), fewest_usable and most_usable (the fewest and most usable seeds at a trained depth,
    tested or not: ``seed_counts``), depths (trained), untested (trained, too few usable seeds),
    evidence (every depth's memorized / usable seeds, in words)."""
    by = line_axes(trials) if by is None else by
    c = cells(trials, criterion, [*by, "depth"])
    rows = []
    for key, g in (c.groupby(by, dropna=False) if by else [((), c)]):
        g = g.sort_values("depth")
        depths = g.depth.to_numpy()
        first, stat = rules.onset(g.rate.to_numpy(float))
        tested = g[g.tested]
        some = tested[tested.n_memorized > 0].depth
        every = tested[tested.n_memorized == tested.n_usable].depth
        key = key if isinstance(key, tuple) else (key,)
        rows.append({**dict(zip(by, key)), "onset_depth": float(depths[first]) if first is not None else np.nan,
                     "status": stat, "first_some": float(some.min()) if len(some) else np.nan,
                     "first_all": float(every.min()) if len(every) else np.nan,
                     "n_seeds": int(tested.n_usable.min()) if len(tested) else 0,
                     "fewest_usable": int(g.n_usable.min()), "most_usable": int(g.n_usable.max()),
                     "depths": [int(d) for d in depths], "untested": [int(d) for d in g[~g.tested].depth],
                     "evidence": ", ".join(f"{r.depth}: {cell_text(r._asdict())}" for r in g.itertuples())})
    return pd.DataFrame(rows)


def describe_onset(row) -> str:
    """An onset in words, with its status: '6 (a seed from 4, every seed from 8)', 'at most 6 (...)',
    '> 8 (not reached by the deepest tested depth)', 'not monotone: ... no onset', 'no evidence: ...';
    untested depths, if any, are named after it."""
    st, untested = row["status"], row.get("untested") or []
    gap = f"; untested (too few seeds): {', '.join(map(str, untested))}" if untested else ""
    if st == rules.NO_EVIDENCE:
        return f"no evidence: fewer than {rules.MIN_SEEDS} usable seeds at every depth"
    if st == rules.NOT_REACHED:
        deepest = max(d for d in row["depths"] if d not in untested)
        return f"> {deepest} (not reached by the deepest tested depth){gap}"
    if st == rules.NOT_MONOTONE:
        return f"not monotone: the rate reaches {rules.THRESHOLD:g} at {row['onset_depth']:g} and falls back deeper; " \
               f"no onset{gap}"
    every = "at no tested depth" if np.isnan(row["first_all"]) else f"from {row['first_all']:g}"
    spread = f"a seed from {row['first_some']:g}, every seed {every}"
    head = f"{row['onset_depth']:g}" if st == rules.REACHED else f"at most {row['onset_depth']:g}"
    return f"{head} ({spread}){gap}"


# --- per-seed profiles, for tests that relabel seeds -----------------------------------------------------

def profiles(trials: pd.DataFrame, over: str, criterion: maps.Criterion = maps.DEFAULT):
    """One line's trials as arrays over (``over`` value, seed, depth): memorized (1/0, NaN where the
    trial is not usable or absent) and present (a trial exists). -> (memorized, present, values of
    ``over``, depths)."""
    ok = usable(trials)
    df = trials.assign(_m=np.where(ok, maps.memorized(trials, criterion).astype(float), np.nan))
    values, seeds, depths = (np.array(sorted(df[c].unique())) for c in (over, "seed", "depth"))
    m = np.full((len(values), len(seeds), len(depths)), np.nan)
    present = np.zeros(m.shape, dtype=bool)
    i, j, k = (np.searchsorted(a, df[c].to_numpy()) for a, c in ((values, over), (seeds, "seed"), (depths, "depth")))
    m[i, j, k] = df._m.to_numpy()
    present[i, j, k] = True
    return m, present, values, depths


def profile_onsets(m: np.ndarray, present: np.ndarray, depths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The onset of each (..., value) from seed profiles (..., value, seed, depth), by the same rules as
    ``onsets``: a depth no seed trained is absent, one with too few usable seeds untested.
    -> (onset depth, NaN where none; status)."""
    n = (~np.isnan(m)).sum(axis=-2)
    rate = rules.cell_rate(np.nansum(m, axis=-2), n)
    first, stat = rules.onsets(rate, trained=present.any(axis=-2))
    return np.where(first >= 0, depths[np.maximum(first, 0)], np.nan), stat
