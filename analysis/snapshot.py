"""What REPRODUCTION.md shows, kept in docs/ so a test can recompute it (both written by the Makefile's
``reproduction`` and ``boundary`` targets):

    python -m analysis.snapshot RESULTS_DIR OUT.parquet      a results folder's trials table as one file
    python -m analysis.snapshot --boundary FIG.png TRIALS.parquet ...
                                                             the boundary figure of several runs

REPRODUCTION.md quotes the report's verdict lines for each ``-local`` preset; the trials tables they
were computed from are kept in ``docs/results/``, so a test recomputes every quoted line. The
``error`` column (tracebacks, which name local paths) is dropped; a verdict never reads it. The
boundary figure puts several boundary runs side by side (natural and random images at three
sizes): one panel per image side and data set, the onsets of ``analysis.boundary.table``.
"""
from __future__ import annotations

import os
import sys

import pandas as pd

from . import boundary, plots
from .load import load


def snapshot(path: str, out: str) -> int:
    trials = load(path).trials.drop(columns=["error"])
    os.makedirs(os.path.dirname(out) or ".", exist_ok=True)
    trials.to_parquet(out, index=False)
    return len(trials)


def boundary_figure(tables: list[str], out: str) -> str:
    trials = boundary.side_by_side([pd.read_parquet(p) for p in tables])
    facet = [c for c in ("image_size", "dataset") if trials[c].nunique() > 1]
    return plots.savefig(plots.boundary(boundary.table(trials), facet=facet or None), out)


if __name__ == "__main__":
    if len(sys.argv) >= 4 and sys.argv[1] == "--boundary":
        print(boundary_figure(sys.argv[3:], sys.argv[2]))
    elif len(sys.argv) == 3 and not sys.argv[1].startswith("-"):
        print(f"{snapshot(sys.argv[1], sys.argv[2])} trials -> {sys.argv[2]}")
    else:
        sys.exit("usage: python -m analysis.snapshot RESULTS_DIR OUT.parquet\n"
                 "       python -m analysis.snapshot --boundary FIG.png TRIALS.parquet ...")
