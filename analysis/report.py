"""``memsweep report DIR``: one self-contained HTML page (figures embedded) from a results folder.

The page holds the sweep's grid and versions, the status counts, the figures, the onset-depth
table, and for each claim of the papers a verdict computed from the data (``analysis.claims``).
The onset depths are computed once, and the phase map and the table show the same intervals.
The figures are also written as PNG files beside it.
"""
from __future__ import annotations

import base64
import html
import json
import os
import pandas as pd

from study.config import ConfigError

from . import claims as claims_mod
from . import maps, plots
from .load import load


def _usable(trials: pd.DataFrame) -> pd.DataFrame:
    """Trials with probe values (not diverged or failed)."""
    return trials[trials.attractor_frac.notna()]


def _img(path: str) -> str:
    with open(path, "rb") as fh:
        data = base64.b64encode(fh.read()).decode()
    return f'<img src="data:image/png;base64,{data}" style="max-width:100%">'


def build(path: str, out: str | None = None, trajectories: bool = True,
          criterion: maps.Criterion = maps.DEFAULT, skip_damaged: bool = False) -> str:
    """Write ``out/report.html`` (default ``path/report``) and its PNGs; return the HTML's path."""
    res = load(path, skip_damaged=skip_damaged)
    if res.trials.empty:
        raise ConfigError(f"{path} holds no finished trials yet"
                          + (f" (sweep started {res.manifest['started']})" if res.manifest else ""))
    out = out or os.path.join(path, "report")
    os.makedirs(out, exist_ok=True)
    t = res.trials
    usable = _usable(t)
    figures: list[tuple[str, str]] = []
    onset = maps.onset_depth(usable, criterion=criterion) if len(usable) else pd.DataFrame()

    def add(name: str, caption: str, make) -> None:
        try:
            figures.append((caption, plots.savefig(make(), os.path.join(out, name))))
        except Exception as exc:  # one figure that cannot be drawn must not sink the report
            figures.append((f"{caption} (not drawn: {type(exc).__name__}: {exc})", ""))

    if len(usable):
        add("phase_map.png", "Memorization rate over depth x width", lambda: plots.phase_map(usable, criterion, onset=onset))
        add("attractor_frac.png", "Attractor fraction vs depth (band: 95% CI over seeds)",
            lambda: plots.metric_vs_depth(usable, "attractor_frac"))
        add("spectral_radius.png", "Median spectral radius of J_f at the training examples vs depth",
            lambda: plots.metric_vs_depth(usable, "spectral_radius_median"))
        add("retrieval_sigma.png", "Retrieval from noisy starts vs noise sigma",
            lambda: plots.retrieval_vs_sigma(res.retrieval, usable))
        if "operator_near_one" in usable and usable.operator_near_one.notna().any():
            add("operator_study.png", "Linear nets: the operator's kept directions and the rest of its spectrum "
                "vs depth (C3)", lambda: plots.operator_study(usable))
        add("loss_curves.png", "Training loss curves", lambda: plots.loss_curves(res.curves, t))
        if trajectories:
            best = usable.sort_values(["attractor_frac", "depth"], ascending=False).iloc[0]
            add("trajectories.png", f"Iterating x <- f(x) from noisy training images ({best.trial_id}, re-run "
                "from its row)", lambda: plots.trajectories(best))

    if len(onset):
        onset = onset.assign(onset=onset.apply(maps.describe_onset, axis=1))
        onset_table = onset.drop(columns=["onset_depth", "onset_low", "onset_high", "reached"]).to_html(index=False)
    else:
        onset_table = "<p>no trials with probe values</p>"
    claims = claims_mod.verdicts(t, criterion)
    status = t.status.value_counts().to_dict()
    manifest = res.manifest or {}
    parts = [
        "<!doctype html><meta charset='utf-8'><title>memsweep report</title>",
        "<style>body{font-family:sans-serif;max-width:1100px;margin:2em auto;padding:0 1em}"
        "table{border-collapse:collapse;font-size:13px}td,th{border:1px solid #ccc;padding:3px 6px}"
        "pre{background:#f6f6f6;padding:8px;overflow-x:auto}</style>",
        f"<h1>memsweep report: {html.escape(str(manifest.get('preset') or os.path.basename(os.path.abspath(path))))}</h1>",
        f"<p>{len(t)} trials; status: {html.escape(json.dumps(status))}. Memorized means {html.escape(str(criterion))}.</p>",
        "<h2>Claims</h2><p>Evidence: trials that interpolated (status ok); compared cells need "
        f"{claims_mod.MIN_SEEDS} seeds; comparisons by {100 * maps.LEVEL:.0f}% bootstrap intervals over seeds "
        "(analysis/claims.py).</p><ul>" + "".join(f"<li>{html.escape(v.line())}</li>" for v in claims) + "</ul>",
        "<h2>Onset depth</h2>", onset_table,
        "<h2>Figures</h2>",
        *[f"<h3>{html.escape(c)}</h3>{_img(p) if p else ''}" for c, p in figures],
        "<h2>Sweep</h2><pre>" + html.escape(json.dumps({k: manifest.get(k) for k in
                                                        ("preset", "command", "grid", "versions", "host", "started",
                                                         "finished", "summary")}, indent=1, default=str)) + "</pre>",
    ]
    page = os.path.join(out, "report.html")
    with open(page, "w") as fh:
        fh.write("\n".join(parts))
    with open(os.path.join(out, "claims.txt"), "w") as fh:
        fh.write("\n".join(v.line() for v in claims) + "\n")
    return page
