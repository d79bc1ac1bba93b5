"""``python -m analysis.snapshot RESULTS_DIR OUT.parquet``: a results folder's trials table as one file.

REPRODUCTION.md quotes the report's verdict lines for each ``-local`` preset; the trials tables they
were computed from are kept in ``docs/results/`` (written by this, via ``make reproduction``), so a
test recomputes every quoted line. The ``error`` column (tracebacks, which name local paths) is
dropped; a verdict never reads it.
"""
from __future__ import annotations

import os
import sys

from .load import load


def snapshot(path: str, out: str) -> int:
    trials = load(path).trials.drop(columns=["error"])
    os.makedirs(os.path.dirname(out) or ".", exist_ok=True)
    trials.to_parquet(out, index=False)
    return len(trials)


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: python -m analysis.snapshot RESULTS_DIR OUT.parquet")
    print(f"{snapshot(sys.argv[1], sys.argv[2])} trials -> {sys.argv[2]}")
