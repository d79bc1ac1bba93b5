"""The headline at scale: how many of its training images a net stores, where else its iteration goes,
and whether an example's robustness tracks the Jacobian at its memory.

- *Stored share*: a net's ``attractor_frac``, the share of its training images that are attractors by
  their dynamics (docs/metrics.md), one value per net.
- *Census*: every held-out and random start of a net ends in exactly one class of ``rules.CENSUS``
  (a memory, a spurious fixed point, a cycle, divergence, still moving; ``probes.census``). The counts
  are the retrieval table's shares times its ``n_starts``, and must add up to the starts, per net.
- *Robustness against the Jacobian*: per example with a memory, its basin radius against rho and sigma_1
  of J_f at the memory. Within each net, Spearman's rank correlation over its examples; across nets, the
  median of those correlations with the sign test's exact interval (``stats.median``): the net is the
  unit of replication, so a thousand examples of six nets are six values, not a thousand. The pooled
  correlation over every example is shown beside it, as a description only.

Evidence: as everywhere else, the usable trials (interpolated and probed) of tested cells (at least
``rules.MIN_SEEDS`` usable seeds): ``evidence.tested_rows``. A cell with fewer is named, never read.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from study import rules

from . import evidence, maps, stats

CENSUS_STARTS = ("heldout", "random")  # starts that belong to no training image: the census counts these
# the census's columns in this module's tables: one count per class of rules.CENSUS, in its order
CLASSES = tuple(c.replace(" ", "_") for c in rules.CENSUS)
JACOBIAN = {"memory_spectral_radius": "rho", "memory_top_singular_value": "sigma_1"}  # at the memory x_i*


def stored(trials: pd.DataFrame) -> pd.DataFrame:
    """Per cell (``evidence.cell_axes``): ``evidence.seed_counts``' n_trials, n_usable and tested, and where
    tested the stored share (attractor_frac) over its usable nets: median, min and max (NaN where untested)."""
    axes = evidence.cell_axes(trials)
    counts = evidence.seed_counts(trials, axes)
    ev = evidence.tested_rows(trials, axes)
    if ev.empty:
        return counts.assign(stored_median=np.nan, stored_min=np.nan, stored_max=np.nan)
    agg = ev.groupby(axes, dropna=False).attractor_frac.agg(stored_median="median", stored_min="min",
                                                             stored_max="max").reset_index()
    return counts.merge(agg, on=axes, how="left") if axes else pd.concat([counts, agg], axis=1)


def counts(trials: pd.DataFrame, retrieval: pd.DataFrame) -> pd.DataFrame:
    """One row per net of the evidence (``evidence.tested_rows``): its census starts (held-out and random), how many ended in each class
    (``CLASSES``), and its distinct spurious points with their median RMS distance to the nearest training
    image and to the training mean. Raises ValueError when a net's counts do not add up to its starts."""
    t = evidence.tested_rows(trials)
    r = retrieval[retrieval.start.isin(CENSUS_STARTS) & retrieval.trial_id.isin(t.trial_id)]
    n = r.n_starts.astype(float)
    per = pd.DataFrame({"trial_id": r.trial_id, "starts": r.n_starts.astype(int),
                        **{c: (r[col].astype(float).fillna(0) * n).round().astype(int)
                           for c, col in zip(CLASSES, rules.CENSUS_COLUMNS)}})
    per = per.groupby("trial_id").sum().reset_index()
    off = per[per[list(CLASSES)].sum(axis=1) != per.starts]
    if len(off):
        raise ValueError(f"census of {off.trial_id.iloc[0]}: {int(off[list(CLASSES)].iloc[0].sum())} classified "
                         f"of {int(off.starts.iloc[0])} starts")
    cols = ["trial_id", *evidence.cell_axes(trials), "seed", "attractor_frac", "steps", "train_seconds",
            "probe_seconds", "spurious_points", "spurious_train_rms_median", "spurious_mean_rms_median"]
    return t[[c for c in dict.fromkeys(cols) if c in t]].merge(per, on="trial_id")


def per_net(trials: pd.DataFrame, retrieval: pd.DataFrame) -> pd.DataFrame:
    """``counts`` as a table to read, one row per net: the cell axes that vary, the seed, its stored share, each
    census class's count of its starts, its distinct spurious points, and its probes' time over its training
    time (a batch of nets trained together charges each its share of the wall time)."""
    c = counts(trials, retrieval)
    axes = [a for a in evidence.cell_axes(trials) if a in c and a in maps.varying(trials)]
    out = c[[*axes, "seed"]].copy()
    out["stored"] = c.attractor_frac.map(lambda v: f"{v:.2f}")
    out["census starts"] = c.starts
    for name, col in zip(rules.CENSUS, CLASSES):
        out[name] = c[col]
    out["distinct spurious points"] = c.spurious_points.astype(int)
    out["probes / training"] = (c.probe_seconds / c.train_seconds).map(lambda v: f"{v:.2f}")
    return out.sort_values([*axes, "seed"]).reset_index(drop=True).astype(str)


def shares(census: pd.DataFrame, by: list[str]) -> pd.DataFrame:
    """The census pooled per group ``by``: nets, starts, each class's share of the starts, and the distinct
    spurious points (total, and the nets that have any)."""
    g = census.groupby(by, dropna=False)
    out = g[["starts", *CLASSES, "spurious_points"]].sum()
    out[list(CLASSES)] = out[list(CLASSES)].div(out.starts, axis=0)
    out.insert(0, "nets", g.size())
    out["nets_with_spurious"] = g.spurious_points.apply(lambda s: int((s > 0).sum()))
    return out.reset_index()


@dataclass(frozen=True)
class Correlation:
    """Basin radius against one Jacobian quantity at the memory (``against``: a column of ``JACOBIAN``)."""
    against: str
    per_net: stats.Test  # the median over nets of each net's Spearman correlation, its exact interval
    nets: int            # nets with a correlation (at least 3 examples with a memory, and spread in both)
    flat: int            # nets left out: fewer than 3 memories, or every basin radius (or value) the same
    pooled: float        # Spearman over every example of every net (a description: examples are not independent)
    examples: int
    below: int = 0       # nets whose correlation is below 0

    def summary(self) -> str:
        """'median Spearman over 17 nets -0.62 (90% CI -0.70, -0.51; 17 of 17 below 0)'."""
        t = self.per_net
        ci = (f"{100 * rules.LEVEL:.0f}% CI {t.low:+.2f}, {t.high:+.2f}" if np.isfinite(t.low)
              else "no interval from fewer than 5 nets")
        return (f"median Spearman over {self.nets} nets {t.estimate:+.2f} ({ci}; {self.below} of {self.nets} "
                "below 0)")

    def line(self) -> str:
        return (f"robustness: basin radius vs {JACOBIAN[self.against]} at the memory: {self.summary()}; "
                f"{self.flat} nets without spread left out; pooled over {self.examples} memories {self.pooled:+.2f}")


def spearman(a: pd.Series, b: pd.Series) -> float:
    """Spearman's rank correlation: Pearson's correlation of the ranks, ties given their average rank (as
    scipy.stats.spearmanr; written out so the analysis runs without scipy). NaN where a or b is constant."""
    ra, rb = a.rank().to_numpy(float), b.rank().to_numpy(float)
    if ra.std() == 0 or rb.std() == 0:
        return float("nan")
    return float(np.corrcoef(ra, rb)[0, 1])


def robustness(trials: pd.DataFrame, examples: pd.DataFrame) -> list[Correlation]:
    """For rho and sigma_1 at the memory: each net's (``evidence.tested_rows``) Spearman correlation between its examples' basin
    radius and that value, over its examples with a memory; their median across nets (``stats.median``);
    and the pooled correlation over every such example."""
    nets = evidence.tested_rows(trials).trial_id
    ex = examples[examples.trial_id.isin(nets) & examples.memory_found.astype(bool)]
    out = []
    for col in JACOBIAN:
        e = ex[["trial_id", "basin_radius", col]].dropna()
        per, flat = [], int(nets.nunique() - e.trial_id.nunique())
        for _, g in e.groupby("trial_id"):
            if len(g) < 3 or g.basin_radius.nunique() < 2 or g[col].nunique() < 2:
                flat += 1
                continue
            per.append(spearman(g.basin_radius, g[col]))
        pooled = spearman(e.basin_radius, e[col]) if len(e) >= 3 else float("nan")
        out.append(Correlation(col, stats.median(np.array(per, dtype=float)), len(per), flat, float(pooled), len(e),
                               int((np.array(per) < 0).sum())))
    return out


def lines(trials: pd.DataFrame, examples: pd.DataFrame, retrieval: pd.DataFrame) -> list[str]:
    """The headline in text, one line per cell's stored share, per group's census (every cell axis but
    depth and width pooled per arch, dataset and n_train where present) and per Jacobian quantity: the lines
    a report prints and REPRODUCTION.md quotes."""
    out = []
    for _, row in stored(trials).iterrows():
        cell = " ".join(f"{a}={row[a]}" for a in evidence.cell_axes(trials))
        out.append(f"stored: {cell}: {row.stored_median:.2f} of the training images (median of {row.n_usable} nets; "
                   f"range {row.stored_min:.2f}-{row.stored_max:.2f})" if row.tested else
                   f"stored: {cell}: too few usable nets ({row.n_usable} of {row.n_trials}; {rules.MIN_SEEDS} needed)")
    c = counts(trials, retrieval)
    by = [a for a in ("arch", "dataset", "n_train") if a in c]
    for _, row in shares(c, by).iterrows():
        group = " ".join(f"{a}={row[a]}" for a in by)
        parts = ", ".join(f"{name} {row[k]:.1%}" for name, k in zip(rules.CENSUS, CLASSES))
        out.append(f"census: {group}: {int(row.starts)} starts of {int(row.nets)} nets: {parts}; "
                   f"{int(row.spurious_points)} distinct spurious points in {int(row.nets_with_spurious)} nets")
    return out + [r.line() for r in robustness(trials, examples)]


def covered(trials: pd.DataFrame, retrieval: pd.DataFrame) -> bool:
    """Whether the evidence has a census to read: some net of ``evidence.tested_rows`` has held-out or
    random starts with their census classes recorded (results of schema 7 on)."""
    ev = evidence.tested_rows(trials)
    if ev.empty or retrieval.empty or not set(rules.CENSUS_COLUMNS) <= set(retrieval):
        return False
    r = retrieval[retrieval.start.isin(CENSUS_STARTS) & retrieval.trial_id.isin(ev.trial_id)]
    return bool(len(r)) and bool(r[list(rules.CENSUS_COLUMNS)].notna().all(axis=1).any())
