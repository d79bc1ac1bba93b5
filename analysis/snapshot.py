"""What REPRODUCTION.md shows, kept in docs/ so a test can recompute it (both written by the Makefile's
``reproduction`` and ``boundary`` targets):

    python -m analysis.snapshot RESULTS_DIR OUT.parquet      a results folder's trials table as one file
    python -m analysis.snapshot --boundary FIG.png TRIALS.parquet ...
                                                             the boundary figure of several runs
    python -m analysis.snapshot --census OUT.parquet FIG_PREFIX RESULTS_DIR ...
                                                             a census run (one folder, or the parts of
                                                             its grid run apart): its trials, examples and
                                                             retrieval tables and its three figures

REPRODUCTION.md quotes the report's verdict lines for each ``-local`` preset; the trials tables they
were computed from are kept in ``docs/results/``, so a test recomputes every quoted line. The
``error`` column (tracebacks, which name local paths) is dropped; a verdict never reads it. The
boundary figure puts several boundary runs side by side (natural and random images at three
sizes): one panel per image side and data set, the onsets of ``analysis.boundary.table``. A census
run (``headline-local``) keeps its examples and retrieval tables too (``OUT-examples.parquet``,
``OUT-retrieval.parquet``), which the census lines read, and its figures as ``FIG_PREFIX_<name>.png``.
"""
from __future__ import annotations

import os
import sys

import pandas as pd

from . import boundary, census, plots
from .load import load


def snapshot(path: str, out: str) -> int:
    trials = load(path).trials.drop(columns=["error"])
    os.makedirs(os.path.dirname(out) or ".", exist_ok=True)
    trials.to_parquet(out, index=False)
    return len(trials)


def census_snapshot(out: str, figures: str, *paths: str) -> list[str]:
    """The trials, examples and retrieval tables of a census run beside one another (OUT, OUT-examples,
    OUT-retrieval), and its stored-share, census and robustness figures (FIGURES_stored_share.png, ...).
    Several ``paths``: one grid run in parts (seeds apart, say), their tables put together; a trial in two
    of them is an error."""
    parts = [load(p) for p in paths]
    t, ex, rt = (pd.concat([getattr(r, name) for r in parts], ignore_index=True)
                 for name in ("trials", "examples", "retrieval"))
    if t.trial_id.duplicated().any():
        raise ValueError(f"trial {t.trial_id[t.trial_id.duplicated()].iloc[0]} is in more than one of {paths}")
    stem = out.removesuffix(".parquet")
    os.makedirs(os.path.dirname(out) or ".", exist_ok=True)
    t.drop(columns=["error"]).to_parquet(out, index=False)
    ex.to_parquet(f"{stem}-examples.parquet", index=False)
    rt.to_parquet(f"{stem}-retrieval.parquet", index=False)
    drawn = {"stored_share": lambda: plots.stored_share(t),
             "census": lambda: plots.census_bar(census.counts(t, rt)),
             "robustness": lambda: plots.robustness(t, ex)}
    return [plots.savefig(draw(), f"{figures}_{name}.png") for name, draw in drawn.items()]


def boundary_figure(tables: list[str], out: str) -> str:
    trials = boundary.side_by_side([pd.read_parquet(p) for p in tables])
    facet = [c for c in ("image_size", "dataset") if trials[c].nunique() > 1]
    return plots.savefig(plots.boundary(boundary.table(trials), facet=facet or None), out)


if __name__ == "__main__":
    if len(sys.argv) >= 4 and sys.argv[1] == "--boundary":
        print(boundary_figure(sys.argv[3:], sys.argv[2]))
    elif len(sys.argv) >= 5 and sys.argv[1] == "--census":
        print("\n".join(census_snapshot(*sys.argv[2:])))
    elif len(sys.argv) == 3 and not sys.argv[1].startswith("-"):
        print(f"{snapshot(sys.argv[1], sys.argv[2])} trials -> {sys.argv[2]}")
    else:
        sys.exit("usage: python -m analysis.snapshot RESULTS_DIR OUT.parquet\n"
                 "       python -m analysis.snapshot --boundary FIG.png TRIALS.parquet ...\n"
                 "       python -m analysis.snapshot --census OUT.parquet FIG_PREFIX RESULTS_DIR ...")
