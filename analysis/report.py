"""``memsweep report DIR``: one self-contained HTML page (figures embedded) from a results folder.

The page holds the sweep's grid and versions, the status counts, the figures, the onset-depth
table, and for each claim of the papers a verdict computed from the data (``analysis.claims``).
When the trials hold two or more widths or n_train, it also shows the boundary
(``analysis.boundary``): its figure and each line's trend per doubling of width; ``claims.txt``
lists those trends after the claims. Every table, figure and verdict reads the evidence of
``analysis.evidence``: the onsets are computed once, and the phase map, the onset table and the
boundary figure show that one table; the figures of probe values draw the usable trials of tested
cells only. The figures are also written as PNG files beside it.

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

from study import rules
from study.store import folder
from study.store import uri

from . import boundary as boundary_mod
from . import claims as claims_mod
from . import evidence, maps, plots
from .load import Results, load

Figure = tuple[str, str, Callable[[], plt.Figure]]  # file name, caption, draw()


def _img(path: str) -> str:
    with open(path, "rb") as fh:
        data = base64.b64encode(fh.read()).decode()
    return f'<img src="data:image/png;base64,{data}" style="max-width:100%">'


def figures(res: Results, criterion: maps.Criterion = maps.DEFAULT, onset: pd.DataFrame | None = None,
            trajectories: bool = True, root: str | None = None) -> Iterator[Figure]:
    """The report's figures in page order, each as (PNG file name, caption, a function that draws it).
    ``onset``: ``evidence.onsets`` of the trials (computed here if not given), the one onset table that
    the phase map and the boundary figure draw. ``trajectories`` draws one trial's net, saved under
    ``root/models/`` or re-trained under ``study.trial.resources.check_rerunnable``'s rule (``plots.trajectories``),
    which needs torch. Nothing is drawn until a draw() is called."""
    t = res.trials
    if t.empty:
        return
    onset = evidence.onsets(t, criterion) if onset is None else onset
    ev = evidence.tested_rows(t)  # the evidence: usable trials of tested cells
    level = f"{100 * rules.LEVEL:.0f}%"
    yield ("phase_map.png", f"Memorization rate over depth x width, over each cell's usable seeds (bars: {level} "
           f"Clopper-Pearson intervals; blank: fewer than {rules.MIN_SEEDS} usable seeds; hatched: a seed did not "
           "converge or diverged)", lambda: plots.phase_map(t, criterion, onset=onset))
    yield ("attractor_frac.png", "Attractor fraction over depth x width, mean over the usable seeds (bars: range over "
           "seeds)", lambda: plots.phase_map(t, criterion, value="attractor_frac"))
    if len(ev):
        yield ("spectral_radius.png", "Spectral radius of J_f at each training example, per depth (usable trials of "
               "tested cells)", lambda: plots.rho_distribution(res.examples, ev))
        yield ("retrieval_sigma.png", "Retrieval from noisy starts vs noise sigma: back at the same example, at any, "
               "at a limit that is no memory (spurious), or at none (usable trials of tested cells)",
               lambda: plots.retrieval_vs_sigma(res.retrieval, ev))
        if "operator_near_one" in ev and ev.operator_near_one.notna().any():
            yield ("operator_study.png", "Linear nets: the operator's kept directions and the rest of its spectrum "
                   "vs depth (C3; usable trials of tested cells)", lambda: plots.operator_study(ev))
    if boundary_mod.covered(t):
        table = onset.sort_values([c for c in [*boundary_mod.trend_axes(t), "width"] if c in onset]).reset_index(drop=True)
        yield ("boundary.png", "The memorization boundary: onset depth against width, one line per n_train (the onsets "
               "of the table above)", lambda: plots.boundary(table))
    yield ("loss_curves.png", "Training loss curves (every trial, usable or not)",
           lambda: plots.loss_curves(res.curves, t))
    if trajectories and len(ev):
        best = ev.sort_values(["attractor_frac", "depth"], ascending=False).iloc[0]
        saved = root is not None and os.path.isfile(os.path.join(root, "models", f"{best.trial_id}.pt"))
        yield ("trajectories.png", f"Iterating x <- f(x) from noisy training images ({best.trial_id}, "
               f"{'its saved model' if saved else 're-trained from its row'})",
               lambda: plots.trajectories(best, root=root))


def onset_table(onset: pd.DataFrame) -> pd.DataFrame:
    """``evidence.onsets``' table as the report shows it: the onset in words and every depth's evidence."""
    if onset.empty:
        return onset
    onset = onset.assign(onset=onset.apply(evidence.describe_onset, axis=1))
    return onset.drop(columns=["onset_depth", "status", "first_some", "first_all", "depths", "untested"])


def onset_markdown(trials: pd.DataFrame, criterion: maps.Criterion = maps.DEFAULT) -> str:
    """The onset table as Markdown, as REPRODUCTION.md quotes it (and tests/test_reproduction.py checks):
    one row per line, its varying axes, the onset in words and every depth's memorized / usable seeds."""
    onset = boundary_mod.table(trials, criterion)
    keys = [c for c in evidence.line_axes(trials) if c in maps.varying(trials)]
    rows = [[str(r[k]) for k in keys] + [evidence.describe_onset(r), r["evidence"]] for _, r in onset.iterrows()]
    head = [*keys, "onset", "memorized / usable seeds, by depth"]
    return "\n".join(["| " + " | ".join(head) + " |", "|" + "---|" * len(head)] + ["| " + " | ".join(r) + " |"
                                                                                    for r in rows])


def build(path: str, out: str | None = None, trajectories: bool = True,
          criterion: maps.Criterion = maps.DEFAULT, skip_damaged: bool = False) -> str:
    """Write ``out/report.html`` (default ``path/report``) and its PNGs; return the HTML's path."""
    folder.open_results(path)  # not a results folder: one line, and nothing made there
    out = out or os.path.join(path, "report")
    try:
        os.makedirs(out, exist_ok=True)
        probe = os.path.join(out, ".write-test")
        open(probe, "w").close()
        os.remove(probe)
    except OSError as exc:  # a file, a read-only or immutable folder: one line, before any figure is drawn
        raise ConfigError(f"--out {out}: cannot write the report there ({exc.strerror or exc})") from None
    res = load(path, skip_damaged=skip_damaged)
    if res.trials.empty:
        raise ConfigError(f"{path} holds no finished trials yet"
                          + (f" (sweep started {res.manifest['started']})" if res.manifest else ""))
    t = res.trials
    onset = evidence.onsets(t, criterion)
    drawn: list[tuple[str, str]] = []
    for name, caption, draw in figures(res, criterion, onset, trajectories, None if uri.is_remote(path) else path):
        try:
            drawn.append((caption, plots.savefig(draw(), os.path.join(out, name))))
        except Exception as exc:  # one figure that cannot be drawn must not sink the report
            plt.close("all")
            drawn.append((f"{caption} (not drawn: {type(exc).__name__}: {exc})", ""))

    table = onset_table(onset).to_html(index=False)
    claims = claims_mod.verdicts(t, criterion)
    trends = boundary_mod.trend_lines(t, criterion) if boundary_mod.covered(t) else []
    excluded = evidence.excluded(t)
    gone = ", ".join(f"{n} {why}" for why, n in sorted(excluded.items())) or "none"
    boundary_html = ""
    if trends:
        boundary_html = (
            "<h2>The boundary: onset depth against width</h2><p>The onsets of the table above. Trend: least-squares "
            "slope of the onset depth against log2(width) over the widths with a reached onset; it falls or rises when "
            f"an exact permutation test (profiles relabelled across widths within each seed) gives a one-sided p of at "
            f"most {rules.ALPHA:g} (analysis/boundary.py).</p><ul>"
            + "".join(f"<li>{html.escape(x)}</li>" for x in trends) + "</ul>")
    notes = evidence.budget_notes(t)
    status = t.status.value_counts().to_dict()
    manifest = res.manifest or {}
    parts = [
        "<!doctype html><meta charset='utf-8'><title>memsweep report</title>",
        "<style>body{font-family:sans-serif;max-width:1100px;margin:2em auto;padding:0 1em}"
        "table{border-collapse:collapse;font-size:13px}td,th{border:1px solid #ccc;padding:3px 6px}"
        "pre{background:#f6f6f6;padding:8px;overflow-x:auto}</style>",
        f"<h1>memsweep report: {html.escape(str(manifest.get('preset') or os.path.basename(os.path.abspath(path))))}</h1>",
        f"<p>{len(t)} trials; status: {html.escape(json.dumps(status))}. Memorized means {html.escape(str(criterion))}.</p>",
        "".join(f"<p><b>Warning</b>: {html.escape(n)}</p>" for n in notes),
        f"<h2>Claims</h2><p>Evidence: usable trials (interpolated and probed; excluded: {html.escape(gone)}), one "
        f"value per trained network, in cells with at least {rules.MIN_SEEDS} usable seeds. Comparisons: exact "
        "permutation tests over networks; shares of networks: exact binomial tests against 1/2; each at a one-sided "
        f"error rate of {rules.ALPHA:g}, intervals at {100 * rules.LEVEL:.0f}%. A claim is reproduced only when its "
        "pooled test says yes, no group says no or points the other way, and every group could be tested "
        "(analysis/claims.py).</p><ul>" + "".join(f"<li>{html.escape(v.line())}</li>" for v in claims) + "</ul>",
        f"<h2>Onset depth</h2><p>The first tested depth at which at least {rules.THRESHOLD:g} of the usable seeds "
        f"memorize; a depth with fewer than {rules.MIN_SEEDS} usable seeds is untested ('too few'). Evidence: memorized "
        "of usable seeds at each depth (analysis/evidence.py).</p>", table,
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
        fh.write("\n".join([*(v.line() for v in claims), *(f"boundary: {x}" for x in trends),
                             *(f"warning: {n}" for n in notes)]) + "\n")
    return page
