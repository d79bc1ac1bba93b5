"""``memsweep report DIR``: one self-contained HTML page (figures embedded) from a results folder,
to be read top to bottom.

The page opens with a summary: what was run (preset, trials, the grid's values in a line), how many
trials are usable evidence, and each claim of the papers as a row of a table, its verdict computed
from the data (``analysis.claims``) with its evidence counts. Then the status of the trials as a
table, every verdict line in full, the onset-depth table, the boundary where the trials hold two or
more widths or n_train (``analysis.boundary``: its figure and each line's trend per doubling of
width; ``claims.txt`` lists those trends after the claims), the figures, and the sweep's settings as
a short table, the whole ``sweep.json`` written beside the page as ``settings.json`` and linked.
Every table has a legend under it that explains each of its columns, all from one dict,
``COLUMNS``, so a column is explained the same way wherever it appears; every image has alt text
(``FIGURES``). Every count reads the evidence of ``analysis.evidence``: the onsets are computed once,
and the phase map, the onset table and the boundary figure show that one table; the figures of probe
values draw the usable trials of tested cells only. The figures are also written as PNG files
beside the page, and a figure not drawn this time (skipped, or failed, e.g. without torch) leaves no
older PNG of its name behind.

The figures come from one list, ``figures``, and notebooks/explore.ipynb draws that same list:
the notebook stays a thin, editable view over tested functions. The report does not execute the
notebook instead, which would put jupyter into the base install and make the page depend on
whatever a notebook's cells were last edited to do.
"""
from __future__ import annotations

import base64
import contextlib
import html
import json
import os
from collections.abc import Callable, Iterator

import matplotlib.pyplot as plt
import pandas as pd

from study.config import ConfigError, field_names

from study import rules
from study.store import folder
from study.store import uri

from . import boundary as boundary_mod
from . import census as census_mod
from . import claims as claims_mod
from . import evidence, maps, plots
from .load import Results, load

Figure = tuple[str, str, Callable[[], plt.Figure]]  # file name, caption, draw()


def _img(path: str, alt: str) -> str:
    with open(path, "rb") as fh:
        data = base64.b64encode(fh.read()).decode()
    return f'<img src="data:image/png;base64,{data}" alt="{html.escape(alt)}">'


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
        if census_mod.covered(t, res.retrieval):
            yield ("stored_share.png", "The share of its training images each net stores as attractors, against "
                   "n_train (usable trials of tested cells; analysis/census.py)", lambda: plots.stored_share(t))
            yield ("census.png", "Census: where iteration from held-out and random starts ended (usable trials of "
                   "tested cells)", lambda: plots.census_bar(census_mod.counts(t, res.retrieval)))
            yield ("robustness.png", "Basin radius against rho and sigma_1 of J_f at the memory, per training "
                   "example with a memory (usable trials of tested cells)",
                   lambda: plots.robustness(t, res.examples))
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
    """``evidence.onsets``' table as the report shows it: a line's axes, the onset in words, every depth's
    evidence and the usable seeds of its depths (the columns of ``COLUMNS``)."""
    if onset.empty:
        return onset
    axes = [c for c in onset.columns if c in field_names()]  # the line's axes; the rest is what onsets adds
    return onset[axes].assign(**{
        "onset depth": onset.apply(evidence.describe_onset, axis=1),
        "memorized / usable seeds, by depth": onset.evidence,
        "usable seeds per depth": [_span(a, b) for a, b in zip(onset.fewest_usable, onset.most_usable)]})


def markdown(df: pd.DataFrame) -> str:
    """A table as Markdown, every cell as its text, as REPRODUCTION.md quotes the report's tables."""
    return "\n".join(["| " + " | ".join(df.columns) + " |", "|" + "---|" * len(df.columns)]
                     + ["| " + " | ".join(map(str, r)) + " |" for r in df.itertuples(index=False)])


def onset_markdown(trials: pd.DataFrame, criterion: maps.Criterion = maps.DEFAULT) -> str:
    """The onset table as Markdown, as REPRODUCTION.md quotes it (and tests/test_reproduction.py checks):
    one row per line, its varying axes, the onset in words and every depth's memorized / usable seeds."""
    onset = boundary_mod.table(trials, criterion)
    keys = [c for c in evidence.line_axes(trials) if c in maps.varying(trials)]
    rows = [[str(r[k]) for k in keys] + [evidence.describe_onset(r), r["evidence"]] for _, r in onset.iterrows()]
    head = [*keys, "onset", "memorized / usable seeds, by depth"]
    return "\n".join(["| " + " | ".join(head) + " |", "|" + "---|" * len(head)] + ["| " + " | ".join(r) + " |"
                                                                                    for r in rows])


# --- what every column and figure shows: one place, so a thing is explained the same way everywhere ------

def _statuses(meanings: dict[str, str]) -> str:
    return "; ".join(f"'{k}': {v}" for k, v in meanings.items())


_LEVEL = f"{100 * rules.LEVEL:.0f}%"
COLUMNS: dict[str, str] = {
    # the summary's table of verdicts
    "claim": "a claim of the papers, C1 to C6 (docs/analysis.md; one function each in analysis/claims.py)",
    "what it says": "the claim in one line",
    "verdict": "the claim's status, decided from the data by one rule (analysis/claims.py): "
               + _statuses(claims_mod.STATUS_MEANING),
    "pooled test": f"each part's one test over all its testable groups: the estimate (a difference of means over "
                   f"networks, or a share of networks), its {_LEVEL} interval and one-sided p, then its outcome "
                   "(yes, no, against: undecided but pointing the other way, insufficient: undecided); for a claim "
                   "not covered, what the grid lacks",
    "groups tested": "the groups the claim compares within (the cells that differ only along the axis it is about, "
                     "e.g. one group per width) that could be tested, of all its groups",
    "cells tested": f"the cells (grid points: every axis but the seed) in the claim's setting with at least "
                    f"{rules.MIN_SEEDS} usable seeds, of all of them; no test reads an untested cell",
    "usable seeds per cell": "the fewest and the most usable seeds (trained networks that interpolated and were "
                             "probed) of a cell in the claim's setting",
    "trials left out": "the claim's trials that are not usable evidence, by reason",
    # the status table
    "status": "how a trial ended: the status column of its row",
    "trials": "how many trials ended so",
    "usable": "of them, the trials that are evidence: interpolated (status ok) and probed (attractor_frac recorded)",
    "meaning": "what the status means (study/rules.py)",
    # the onset table
    "onset depth": f"the first tested depth at which at least {rules.THRESHOLD:g} of the usable seeds memorize, with "
                   "the seeds' own spread: '6 (a seed from 4, every seed from 8)'. How it reads, by its status: "
                   + _statuses({"6": rules.ONSET_MEANING[rules.REACHED],
                                "at most 6": rules.ONSET_MEANING[rules.BOUND],
                                "not monotone": rules.ONSET_MEANING[rules.NOT_MONOTONE]
                                + " (the rate is not monotone in depth)",
                                "> 8": rules.ONSET_MEANING[rules.NOT_REACHED] + " (8: the deepest tested depth)",
                                "no evidence": rules.ONSET_MEANING[rules.NO_EVIDENCE]}),
    "memorized / usable seeds, by depth": f"at each trained depth, how many usable seeds memorize of how many are "
                                          f"usable ('4: 2/3'); 'k/n fit: too few' where only k of its n seeds are "
                                          f"usable, fewer than {rules.MIN_SEEDS}: that depth is untested",
    "usable seeds per depth": f"the fewest and the most usable seeds at a depth of this line; a depth with fewer "
                              f"than {rules.MIN_SEEDS} is untested",
    # the census table, one row per net
    "seed": "the seed: one trained network per row",
    "stored": "the share of the net's training images that are attractors by their dynamics (attractor_frac)",
    "census starts": "the net's held-out and random starts, each counted in exactly one of the next five columns",
    "memory": "census starts whose iteration converged to a memory of a training image",
    "spurious point": "census starts that converged to a stable fixed point that is no memory",
    "cycle": "census starts that ended on a cycle of period 2 to 8",
    "diverged": "census starts whose iterate went beyond 1,000 times the largest start's RMS, or non-finite",
    "moving": "census starts still moving when iteration stopped (the iteration budget bound them)",
    "distinct spurious points": "the distinct fixed points among the spurious limits (within match_tol of each other: "
                                "one point)",
    "probes / training": "the net's probe time over its training time (batch-trained nets: each its share of the "
                         "batch's wall time)",
    # the settings table
    "setting": "what sweep.json records: the preset, the grid's axes (every combination of their values is a "
               "trial) and its fixed values (every other config field keeps its default, study/config.py), "
               "versions, machine and times",
    "value": "its value",
    # grid axes, where a table has one row per line or cell
    "arch": "the architecture: fc (fully connected), conv (stride-1 convolutions) or conv_down (with stride-2 "
            "downsampling)",
    "depth": "the number of weight layers",
    "width": "hidden units (fc) or channels (conv)",
    "activation": "the nonlinearity between layers",
    "n_train": "the number of training images the net is trained to reproduce",
    "dataset": "the images trained on",
    "lr": "the learning rate",
    "optimizer": "the optimizer (adam, or gd: plain gradient descent)",
    "init": "the weight initialization",
    "image_size": "the image side the data set is resized to (empty: its own)",
    "channels": "the image channels (empty: the data set's own)",
    "task": "autoencode: f(x_i) = x_i; sequence: f(x_i) = x_(i+1), a cycle",
}


def column_meaning(column: str) -> str:
    """What a report table's column shows: ``COLUMNS``, or for any other config field the sweep varies,
    that it is one. A column with neither raises ``KeyError``: no table shows a column it cannot explain."""
    if column in COLUMNS:
        return COLUMNS[column]
    if column in field_names():
        return f"the config field {column} (study/config.py), one of the sweep's axes"
    raise KeyError(f"report column {column!r} has no meaning in analysis.report.COLUMNS")


FIGURES: dict[str, tuple[str, str]] = {  # PNG name -> (title, alt text: what the image shows)
    "phase_map.png": (
        "Memorization rate by depth and width",
        f"Heat maps with depth across and width down, one panel per value of the other grid axes. Each cell with at "
        f"least {rules.MIN_SEEDS} usable seeds is coloured by the share of them that memorize, from 0 (dark blue) to "
        f"1 (yellow), labelled memorized/usable, with a bar for its {_LEVEL} interval; a red frame marks each line's "
        "onset depth. Cells with fewer usable seeds are blank and say 'too few'; hatching marks cells where a seed "
        "did not converge or diverged."),
    "attractor_frac.png": (
        "Attractor fraction by depth and width",
        "Heat maps with depth across and width down, one panel per value of the other grid axes: each tested cell "
        "coloured by the mean share of training examples that are attractors over its usable seeds, from 0 (dark "
        "blue) to 1 (yellow), with a bar spanning the seeds' range; untested cells blank."),
    "spectral_radius.png": (
        "Spectral radius at the training examples",
        "Box plots of the spectral radius of the Jacobian of f at each training example against depth, a box per "
        "depth and width pooling seeds and examples, with a dashed line at 1: below it a fixed point attracts."),
    "retrieval_sigma.png": (
        "Retrieval from noisy starts",
        f"Line plots against the noise level sigma (log axis), one column per outcome of iterating from a noisy "
        f"start (back at its own example, at any example, at a limit that is no memory, at no limit) and a row per "
        f"value of the other grid axes, a line per depth: the mean share of starts over seeds, with a {_LEVEL} band."),
    "stored_share.png": (
        "Stored images",
        "Dots, one per net, of the share of its training images that are attractors (0 to 1) against n_train, a "
        "colour per data set, a dotted line through each group's median; a panel per value of the other grid axes."),
    "census.png": (
        "The census of where iteration ends",
        "Stacked bars, one per data set and n_train, of the share of held-out and random starts whose iteration "
        "ended at a memory, a spurious fixed point, a cycle, diverged, or was still moving, with the number of "
        "starts above each bar."),
    "robustness.png": (
        "Robustness against the Jacobian",
        "Two scatter plots, one dot per training example with a memory: its basin radius (the largest noise "
        "sigma it still returns from) against the spectral radius of the Jacobian at its memory (dashed at 1), "
        "and against the top singular value there; a colour per data set; titles give the median per-net "
        "rank correlation with its interval."),
    "operator_study.png": (
        "Linear nets: the operator",
        "Line plots against depth for linear nets, a column per image side: above, the number of the operator's "
        "eigenvalues near 1 (directions it keeps), dashed at the number of training images; below, the largest "
        "other eigenvalue's magnitude, dashed at 1; dotted where the receptive field reaches the image side."),
    "boundary.png": (
        "The memorization boundary",
        "Onset depth against width (log2 axis), a line per n_train and a panel per value of the other line axes: "
        "filled points are reached onsets, their bars from the first depth where some seed memorizes to the first "
        "where every seed does; other markers show onsets that are at most a depth, not monotone, not reached, or "
        "without evidence."),
    "loss_curves.png": (
        "Training loss",
        "Training loss against step on log-log axes, a line per trial coloured by depth, a panel per value of the "
        "other grid axes."),
    "trajectories.png": (
        "Iterated trajectories",
        "A grid of small images: each row starts from a noisy copy of a training image and shows the iterates of "
        "x <- f(x) at steps 0, 1, 5 and 20, the limit, and the nearest stored memory; under each row, where its "
        "limit is."),
}
CENSUS_FILE = "census.txt"  # the census section's lines, one per line, as REPRODUCTION.md quotes them
SETTINGS_FILE = "settings.json"  # sweep.json as the report read it, beside the page (never sweep.json itself:
#                                  --out may be the results folder)


# --- the page's parts -------------------------------------------------------------------------------------------

def _table(df: pd.DataFrame, raw: frozenset[str] = frozenset()) -> str:
    """``df`` as an HTML table, then a legend with every column's meaning (``column_meaning``). Cells are
    escaped but those of the columns in ``raw``, which the caller built as HTML."""
    legend = "".join(f"<dt>{html.escape(c)}</dt><dd>{html.escape(column_meaning(c))}</dd>" for c in df.columns)
    head = "".join(f"<th>{html.escape(c)}</th>" for c in df.columns)
    rows = "".join("<tr>" + "".join(f"<td>{v if c in raw else html.escape(str(v))}</td>" for c, v in r.items())
                   + "</tr>" for r in df.to_dict("records"))
    return (f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>"
            f"<dl class='legend'>{legend}</dl>")


def _span(low: int, high: int) -> str:
    return f"{low}" if low == high else f"{low}–{high}"


def _values(s: pd.Series) -> str:
    """A column's distinct values in order, in a few words: '2, 4, 6' or '1, 2, 3, …, 16 (9 values)'."""
    vals = sorted(s.dropna().unique().tolist())
    text = [f"{v:g}" if isinstance(v, float) else str(v) for v in vals]
    if s.isna().any():
        text.append("default")
    return ", ".join(text) if len(text) <= 6 else f"{', '.join(text[:3])}, …, {text[-1]} ({len(text)} values)"


def _run_line(t: pd.DataFrame, manifest: dict, name: str) -> str:
    """'preset smoke: 4 trials · arch fc · depth 2, 6 · width 64 · dataset digits · seeds 0, 1'."""
    grid = manifest.get("n_trials")
    done = f"{len(t)} trials" + (f" ({len(t)} of the grid's {grid} finished)" if grid and grid != len(t) else "")
    axes = [c for c in dict.fromkeys(["arch", "depth", "width", "dataset", *maps.varying(t)])
            if c in t and c != "seed"]
    parts = [f"{c} {_values(t[c])}" for c in axes] + ([f"seeds {_values(t.seed)}"] if "seed" in t else [])
    what = f"preset {name}" if manifest.get("preset") else f"folder {name}"
    return f"{html.escape(what)}: {done} · " + " · ".join(html.escape(p) for p in parts)


def _criterion(c: maps.Criterion) -> str:
    return (f"A trial <i>memorizes</i> when at least {100 * c.min_attractor_frac:.0f}% of its training examples are "
            f"attractors (attractor_frac &ge; {c.min_attractor_frac:g}) and at least {100 * c.min_retrieval:.0f}% of "
            f"its noisy starts at the headline sigma return to their own example (retrieval_same_frac &ge; "
            f"{c.min_retrieval:g}).")


def _left_out(excluded: dict[str, int]) -> str:
    """``evidence.excluded``'s counts in words: '1 did not interpolate, 2 diverged', or 'none'."""
    return ", ".join(f"{n} {why}" for why, n in sorted(excluded.items())) or "none"


def _badge(status: str) -> str:
    return f"<span class='v v-{status.replace(' ', '-')}'>{html.escape(status)}</span>"


def _pooled(v: claims_mod.Verdict) -> str:
    """Each part's pooled test and its outcome, as HTML; for a claim not covered, what the grid lacks."""
    if v.status == claims_mod.NOT_COVERED:
        return f"<i>{html.escape(v.text)}</i>"
    out = []
    for p in v.parts:
        name = html.escape(f"{p.name}: " if p.name else "")
        out.append(f"{name}no testable group" if p.pooled is None else
                   name + html.escape(f"{p.what} {p.pooled.text(p.pooled.null != 0)} → ") + f"<b>{p.pooled.outcome}</b>")
    return "<br>".join(out)


def _verdict_item(v: claims_mod.Verdict) -> str:
    """A verdict line of ``claims.txt`` as a list item: each part's pooled test, then its groups one per line."""
    head = f"<b>{html.escape(v.claim)}</b> {_badge(v.status)}"
    if v.status == claims_mod.NOT_COVERED:
        return f"<li>{head}: {html.escape(v.text)}</li>"
    parts = "".join(f"<li>{html.escape(lines[0])}<ul>" + "".join(f"<li>{html.escape(x)}</li>" for x in lines[1:])
                    + "</ul></li>" for lines in (p.lines() for p in v.parts))
    return f"<li>{head} [{html.escape(v.evidence_text())}]<ul>{parts}</ul></li>"


def verdict_table(verdicts: list[claims_mod.Verdict]) -> pd.DataFrame:
    """The summary's table: one row per claim, its verdict and the evidence it rests on (``Verdict``'s
    counts, which ``evidence.seed_counts`` and ``evidence.excluded`` made). Cells of 'verdict' and 'pooled
    test' are HTML."""
    rows = []
    for v in verdicts:
        covered = v.status != claims_mod.NOT_COVERED
        tested, groups = v.groups()
        rows.append({"claim": v.claim, "what it says": claims_mod.STATEMENTS.get(v.claim, ""),
                     "verdict": _badge(v.status),
                     "pooled test": _pooled(v),
                     "groups tested": f"{tested} of {groups}" if covered else "–",
                     "cells tested": f"{v.tested} of {v.cells}" if covered else "–",
                     "usable seeds per cell": _span(*v.usable) if covered else "–",
                     "trials left out": _left_out(v.excluded) if covered else "–"})
    return pd.DataFrame(rows)


def status_table(t: pd.DataFrame) -> pd.DataFrame:
    """One row per status (every one ``rules`` defines, then any other found): trials, usable, meaning."""
    st, ok = evidence.status(t), evidence.usable(t)
    names = [*rules.STATUSES, *sorted(set(st) - set(rules.STATUSES))]
    return pd.DataFrame([{"status": s, "trials": int((st == s).sum()), "usable": int((ok & (st == s)).sum()),
                          "meaning": rules.STATUS_MEANING.get(s, "not a status memsweep writes")} for s in names])


def settings_table(manifest: dict) -> pd.DataFrame:
    """sweep.json in a few rows: preset, command, the grid's axes (one row each) and fixed values, versions,
    machine, times and the run's summary. The whole record is ``SETTINGS_FILE``."""
    grid = manifest.get("grid") or {}
    rows = [("preset", manifest.get("preset") or "none (a grid given by hand)"),
            ("command", manifest.get("command")),
            ("trials in the grid", manifest.get("n_trials"))]
    rows += [(f"axis: {k}", ", ".join(map(str, v)) if isinstance(v, list) else v)
             for k, v in (grid.get("axes") or {}).items()]
    fixed = grid.get("fixed") or {}
    rows.append(("fixed", ", ".join(f"{k} = {v}" for k, v in fixed.items()) + "; every other field: its default"
                 if fixed else "every other field: its default"))
    versions = manifest.get("versions") or {}
    rows.append(("versions", ", ".join(f"{k} {v}" for k, v in versions.items() if v)))
    rows.append(("schema version", manifest.get("schema_version")))
    host = manifest.get("host") or {}
    if host:
        rows.append(("machine", f"{host.get('name')}: {host.get('cpus')} CPUs, {host.get('cuda_devices')} CUDA "
                                f"devices ({host.get('platform')})"))
    rows += [("started", manifest.get("started")), ("finished", manifest.get("finished") or "not recorded (still "
                                                                                            "running, or stopped)")]
    summary = manifest.get("summary")
    if summary:
        by = ", ".join(f"{k} {v}" for k, v in sorted((summary.get("statuses") or {}).items()))
        rows.append(("last run", f"{summary.get('done')} done, {summary.get('skipped')} already there, "
                                 f"{summary.get('failed')} failed" + (f" ({by})" if by else "")))
    return pd.DataFrame([{"setting": k, "value": str(v)} for k, v in rows if v is not None])


def build(path: str, out: str | None = None, trajectories: bool = True,
          criterion: maps.Criterion = maps.DEFAULT, skip_damaged: bool = False) -> str:
    """Write ``out/report.html`` (default ``path/report``), its PNGs, ``claims.txt`` and ``settings.json``;
    remove any PNG of ``FIGURES`` that this build did not draw; return the HTML's path."""
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
    drawn: list[tuple[str, str, str]] = []  # (PNG name, caption, why it was not drawn; '' when it was)
    for name, caption, draw in figures(res, criterion, onset, trajectories, None if uri.is_remote(path) else path):
        FIGURES[name]  # a figure the page cannot title or describe is a bug here, not a page without alt text
        try:
            plots.savefig(draw(), os.path.join(out, name))
            drawn.append((name, caption, ""))
        except Exception as exc:  # one figure that cannot be drawn must not sink the report
            plt.close("all")
            drawn.append((name, caption, f"not drawn: {type(exc).__name__}: {exc}"))
    for name in set(FIGURES) - {n for n, _, why in drawn if not why}:  # an older build's figure is not this one's
        with contextlib.suppress(FileNotFoundError):
            os.remove(os.path.join(out, name))

    claims = claims_mod.verdicts(t, criterion)
    trends = boundary_mod.trend_lines(t, criterion) if boundary_mod.covered(t) else []
    headline = census_mod.lines(t, res.examples, res.retrieval) if census_mod.covered(t, res.retrieval) else []
    notes = evidence.budget_notes(t)
    manifest = res.manifest or {}
    settings = os.path.join(out, SETTINGS_FILE)
    if res.manifest:
        with open(settings, "w") as fh:
            json.dump(res.manifest, fh, indent=1, default=str)
    else:
        with contextlib.suppress(FileNotFoundError):
            os.remove(settings)

    title = str(manifest.get("preset") or os.path.basename(os.path.abspath(path)))
    ok = evidence.usable(t)
    gone = _left_out(evidence.excluded(t))
    counts = evidence.seed_counts(t)
    sections = [("summary", "Summary"), ("status", "Status of the trials"), ("claims", "Claims in full"),
                ("onset", "Onset depth"), *([("boundary", "The boundary")] if trends else []),
                *([("census", "Stored images and the census")] if headline else []),
                ("figures", "Figures"), ("settings", "Sweep settings")]
    parts = [
        "<!doctype html><html lang='en'><meta charset='utf-8'>"
        f"<title>memsweep report: {html.escape(title)}</title>",
        "<style>body{font-family:system-ui,sans-serif;max-width:1100px;margin:1.5em auto;padding:0 1em;"
        "line-height:1.4;color:#222}h1{margin-bottom:.2em}h2{margin-top:1.8em;border-bottom:1px solid #ddd}"
        "nav{font-size:14px;margin-bottom:1em}nav a{margin-right:1em}"
        "table{border-collapse:collapse;font-size:13px;margin-top:.5em}td,th{border:1px solid #ccc;padding:3px 6px;"
        "vertical-align:top;text-align:left}th{background:#f3f3f3}td:first-child{white-space:nowrap}"
        ".legend{font-size:12px;color:#555;display:grid;grid-template-columns:max-content auto;gap:1px 10px;"
        "margin:.4em 0 1em}.legend dt{font-weight:600}.legend dd{margin:0}"
        ".v{padding:1px 5px;border-radius:3px;white-space:nowrap}.v-reproduced{background:#cdeccd}"
        ".v-partly{background:#fbe7a8}.v-not-reproduced{background:#f5c4c4}"
        ".v-insufficient-evidence{background:#e4e4e4}.v-not-covered{color:#777}"
        ".warning{background:#fff6db;border-left:4px solid #e0b000;padding:4px 8px}"
        ".claims li{margin:.2em 0}.claims ul{font-size:14px}.missing{color:#a33}figure{margin:1.5em 0}img{max-width:100%}figcaption{font-size:13px;color:#444}"
        "</style>",
        f"<h1>memsweep report: {html.escape(title)}</h1>",
        "<nav>" + "".join(f"<a href='#{k}'>{v}</a>" for k, v in sections) + "</nav>",
        "<section id='summary'><h2>Summary</h2>",
        f"<p><b>Run</b>: {_run_line(t, manifest, title)} (<a href='#settings'>settings</a>).</p>",
        f"<p><b>Usable evidence</b>: {int(ok.sum())} of {len(t)} trials interpolated and were probed (left out: "
        f"{html.escape(gone)}). {int(counts.tested.sum())} of {len(counts)} cells (grid points but the seed) have "
        f"the {rules.MIN_SEEDS} usable seeds a cell needs before anything reads it; usable seeds per cell: "
        f"{_span(int(counts.n_usable.min()), int(counts.n_usable.max()))}."
        + ("" if counts.tested.any() else f" No cell is tested, so no rate, onset or verdict can be read: run at "
                                          f"least {rules.MIN_SEEDS} seeds (--set seed=0,1,2).") + "</p>",
        f"<p>{_criterion(criterion)}</p>",
        "".join(f"<p class='warning'><b>Warning</b>: {html.escape(n)}</p>" for n in notes),
        _table(verdict_table(claims), raw=frozenset({"verdict", "pooled test"})),
        "</section>",
        "<section id='status'><h2>Status of the trials</h2>", _table(status_table(t)), "</section>",
        "<section id='claims'><h2>Claims in full</h2>"
        f"<p>Evidence: usable trials (interpolated and probed; left out: {html.escape(gone)}), one value per trained "
        f"network, in cells with at least {rules.MIN_SEEDS} usable seeds. Comparisons: exact permutation tests over "
        "networks; shares of networks: exact binomial tests against 1/2; each at a one-sided error rate of "
        f"{rules.ALPHA:g}, intervals at {_LEVEL}. A claim is reproduced only when its pooled test says yes, no group "
        "says no or points the other way, and every group could be tested (analysis/claims.py). Each claim: the "
        "seeds and the trials left out, then each part's pooled test and group counts, and under it every group's "
        f"numbers. <a href='claims.txt'>claims.txt</a> holds the same, one line per claim.</p><ul class='claims'>"
        + "".join(_verdict_item(v) for v in claims) + "</ul></section>",
        f"<section id='onset'><h2>Onset depth</h2><p>Per line (cells that differ only in depth): the first tested "
        f"depth at which at least {rules.THRESHOLD:g} of the usable seeds memorize; a depth with fewer than "
        f"{rules.MIN_SEEDS} usable seeds is untested ('too few') (analysis/evidence.py). The phase map and the "
        "boundary figure draw this same table.</p>", _table(onset_table(onset)), "</section>",
    ]
    if trends:
        parts.append(
            "<section id='boundary'><h2>The boundary</h2><p>The onsets of the table above against width. Trend: the "
            "least-squares slope of the onset depth against log2(width) over the widths with a reached onset; it falls "
            "or rises when an exact permutation test (profiles relabelled across widths within each seed) gives a "
            f"one-sided p of at most {rules.ALPHA:g} (analysis/boundary.py).</p><ul>"
            + "".join(f"<li>{html.escape(x)}</li>" for x in trends) + "</ul></section>")
    if headline:
        parts.append(
            "<section id='census'><h2>Stored images and the census</h2><p>Per cell, the share of the training images "
            "each net stores as attractors (median and range over its usable nets); per data set and n_train, where "
            "iteration from the held-out and random starts ended (each start in exactly one class; the counts add up "
            "to the starts of every net) and the distinct spurious fixed points found; and, per training example "
            "with a memory, whether its basin radius tracks rho or sigma_1 of J_f at the memory: each net's "
            f"Spearman correlation over its examples, and their median over nets with the sign test's exact {_LEVEL} "
            "interval (the net is the unit; the pooled correlation over all examples is a description only; "
            f"analysis/census.py). <a href='{CENSUS_FILE}'>{CENSUS_FILE}</a> holds the same lines.</p><ul>"
            + "".join(f"<li>{html.escape(x)}</li>" for x in headline) + "</ul><p>Per net:</p>"
            + _table(census_mod.per_net(t, res.retrieval)) + "</section>")
    parts.append("<section id='figures'><h2>Figures</h2>"
                 + "".join(f"<figure id='fig-{n.removesuffix('.png')}'><h3>{html.escape(FIGURES[n][0])}</h3>"
                           + (f"<p class='missing'>({html.escape(why)})</p>" if why else
                              _img(os.path.join(out, n), FIGURES[n][1]))
                           + f"<figcaption>{html.escape(c)}</figcaption></figure>" for n, c, why in drawn)
                 + ("" if trajectories else "<p>Iterated trajectories: skipped on request (--no-trajectories).</p>")
                 + "</section>")
    if res.manifest:
        parts.append("<section id='settings'><h2>Sweep settings</h2>" + _table(settings_table(manifest))
                     + f"<p>Everything sweep.json records, as this report read it: <a href='{SETTINGS_FILE}'>"
                       f"{SETTINGS_FILE}</a>.</p></section>")
    else:
        parts.append("<section id='settings'><h2>Sweep settings</h2><p>This folder has no sweep.json (it was "
                     "written by <code>memsweep trial</code>, or copied without it): each trial's config is in its "
                     "row of the trials table.</p></section>")
    page = os.path.join(out, "report.html")
    with open(page, "w") as fh:
        fh.write("\n".join(parts) + "\n</html>\n")
    census_txt = os.path.join(out, CENSUS_FILE)
    if headline:
        with open(census_txt, "w") as fh:
            fh.write("\n".join(headline) + "\n")
    else:
        with contextlib.suppress(FileNotFoundError):
            os.remove(census_txt)
    with open(os.path.join(out, "claims.txt"), "w") as fh:
        fh.write("\n".join([*(v.line() for v in claims), *(f"boundary: {x}" for x in trends),
                             *(f"warning: {n}" for n in notes)]) + "\n")
    return page
