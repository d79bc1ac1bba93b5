"""``memsweep report DIR``: one self-contained HTML page (figures embedded) from a results folder.

The page holds the sweep's grid and versions, the status counts, the figures, the onset-depth
table, and for each claim of the papers a verdict computed from the data (``analysis.claims``).
When the trials hold two or more widths or n_train, it also shows the boundary
(``analysis.boundary``): onset depth against width over the interpolated trials, its figure,
and each line's trend per doubling of width; ``claims.txt`` lists those trends after the claims.
The onset depths are computed once, over every trial (one that diverged or failed counts as not
memorized, as in ``maps.Criterion``), and the phase map and the table show the same intervals.
The figures are also written as PNG files beside it.

The figures come from one list, ``figures``, and notebooks/explore.ipynb draws that same list:
the notebook stays a thin, editable view over tested functions. The report does not execute the
notebook instead, which would put jupyter into the base install and make the page depend on
whatever a notebook's cells were last edited to do.
"""
from __future__ import annotations

import base64
import html
import json
import os
from collections.abc import Callable, Iterator

import matplotlib.pyplot as plt
import pandas as pd

from study.config import ConfigError

from . import boundary as boundary_mod
from . import claims as claims_mod
from . import maps, plots
from .load import Results, load

Figure = tuple[str, str, Callable[[], plt.Figure]]  # file name, caption, draw()


def _usable(trials: pd.DataFrame) -> pd.DataFrame:
    """Trials with probe values (not diverged or failed)."""
    return trials[trials.attractor_frac.notna()]


def _img(path: str) -> str:
    with open(path, "rb") as fh:
        data = base64.b64encode(fh.read()).decode()
    return f'<img src="data:image/png;base64,{data}" style="max-width:100%">'


def boundary_table(trials: pd.DataFrame, criterion: maps.Criterion = maps.DEFAULT) -> pd.DataFrame:
    """``boundary.table`` where the trials with probe values hold two or more widths or n_train
    (``boundary.covered``), else an empty frame: the report shows no boundary then."""
    usable = _usable(trials)
    return boundary_mod.table(trials, criterion) if len(usable) and boundary_mod.covered(usable) else pd.DataFrame()


def figures(res: Results, criterion: maps.Criterion = maps.DEFAULT, onset: pd.DataFrame | None = None,
            trajectories: bool = True, boundary: pd.DataFrame | None = None) -> Iterator[Figure]:
    """The report's figures in page order, each as (PNG file name, caption, a function that draws it).
    ``onset``: ``maps.onset_depth`` of every trial, and ``boundary``: ``boundary_table`` (each computed
    here if not given). ``trajectories`` re-runs one trial, which needs torch. Nothing is drawn until
    a draw() is called."""
    t = res.trials
    usable = _usable(t)
    if not len(usable):
        return
    onset = maps.onset_depth(t, criterion=criterion) if onset is None else onset
    yield ("phase_map.png", "Memorization rate over depth x width (bars: 90% Wilson intervals over seeds; hatched: "
           "a seed did not converge or diverged)", lambda: plots.phase_map(t, criterion, onset=onset))
    yield ("attractor_frac.png", "Attractor fraction over depth x width, mean over seeds (bars: range over seeds)",
           lambda: plots.phase_map(t, criterion, value="attractor_frac"))
    yield ("spectral_radius.png", "Spectral radius of J_f at each training example, per depth",
           lambda: plots.rho_distribution(res.examples, usable))
    yield ("retrieval_sigma.png", "Retrieval from noisy starts vs noise sigma: back at the same example, at any, "
           "at a limit that is no memory (spurious), or at none", lambda: plots.retrieval_vs_sigma(res.retrieval, usable))
    if "operator_near_one" in usable and usable.operator_near_one.notna().any():
        yield ("operator_study.png", "Linear nets: the operator's kept directions and the rest of its spectrum "
               "vs depth (C3)", lambda: plots.operator_study(usable))
    onsets = boundary_table(t, criterion) if boundary is None else boundary
    if len(onsets):
        yield ("boundary.png", "The memorization boundary: onset depth against width, one line per n_train "
               "(interpolated trials only)", lambda: plots.boundary(onsets))
    yield "loss_curves.png", "Training loss curves", lambda: plots.loss_curves(res.curves, t)
    if trajectories:
        best = usable.sort_values(["attractor_frac", "depth"], ascending=False).iloc[0]
        yield ("trajectories.png", f"Iterating x <- f(x) from noisy training images ({best.trial_id}, re-run "
               "from its row)", lambda: plots.trajectories(best))


def onset_table(onset: pd.DataFrame) -> pd.DataFrame:
    """``maps.onset_depth``'s table as the report shows it: the onset and its interval in words."""
    if onset.empty:
        return onset
    onset = onset.assign(onset=onset.apply(maps.describe_onset, axis=1))
    return onset.drop(columns=["onset_depth", "onset_low", "onset_high", "reached"])


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
    onset = maps.onset_depth(t, criterion=criterion) if len(_usable(t)) else pd.DataFrame()
    bound = boundary_table(t, criterion)
    drawn: list[tuple[str, str]] = []
    for name, caption, draw in figures(res, criterion, onset, trajectories, bound):
        try:
            drawn.append((caption, plots.savefig(draw(), os.path.join(out, name))))
        except Exception as exc:  # one figure that cannot be drawn must not sink the report
            plt.close("all")
            drawn.append((f"{caption} (not drawn: {type(exc).__name__}: {exc})", ""))

    table = onset_table(onset).to_html(index=False) if len(onset) else "<p>no trials with probe values</p>"
    claims = claims_mod.verdicts(t, criterion)
    trends = boundary_mod.trend_lines(t, criterion) if len(bound) else []
    boundary_html = ""
    if trends:
        excluded = claims_mod.evidence(t)[1]
        gone = ", ".join(f"{n} {why}" for why, n in sorted(excluded.items())) or "none"
        boundary_html = (
            "<h2>The boundary: onset depth against width</h2><p>Over the trials that interpolated (excluded: "
            f"{html.escape(gone)}). Trend: least-squares slope of the onset depth against log2(width), "
            f"{100 * maps.LEVEL:.0f}% bootstrap interval over seeds (analysis/boundary.py).</p><ul>"
            + "".join(f"<li>{html.escape(x)}</li>" for x in trends) + "</ul>"
            + onset_table(bound).to_html(index=False))
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
        "<h2>Onset depth</h2><p>Smallest depth at which at least half of the seeds memorize (a seed that "
        f"diverged counts as not memorized); {100 * maps.LEVEL:.0f}% bootstrap interval over seeds.</p>", table,
        boundary_html,
        "<h2>Figures</h2>",
        *[f"<h3>{html.escape(c)}</h3>{_img(p) if p else ''}" for c, p in drawn],
        "<h2>Sweep</h2><pre>" + html.escape(json.dumps({k: manifest.get(k) for k in
                                                        ("preset", "command", "grid", "versions", "host", "started",
                                                         "finished", "summary")}, indent=1, default=str)) + "</pre>",
    ]
    page = os.path.join(out, "report.html")
    with open(page, "w") as fh:
        fh.write("\n".join(parts))
    with open(os.path.join(out, "claims.txt"), "w") as fh:
        fh.write("\n".join([*(v.line() for v in claims), *(f"boundary: {x}" for x in trends)]) + "\n")
    return page
