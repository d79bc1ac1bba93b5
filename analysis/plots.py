"""Figures from the tidy frames of ``analysis.maps`` (seaborn on matplotlib).

Two levels, as in seaborn. A *figure-level* function (``phase_map``, ``boundary``, ...) returns a
whole matplotlib Figure: one panel per value of the axes it keeps apart, a shared legend or colour
bar, and a title that says what it pools; the report draws these. Its *axes-level* twin, the same
name ending in ``_ax`` (``phase_map_ax``, ``boundary_ax``, ...), draws one such panel on the Axes you
give it (``ax=``; the current Axes when None) and returns that Axes, so that panels compose into a
figure of your own. An axes-level function takes the trials of one panel: where an axis that the
figure would draw as panels still varies, it raises a ValueError naming it. Each figure-level
function draws its panels with the same code as its twin.

Nothing is shown or saved here (a notebook displays the returned figure; ``savefig`` writes it).
Without a display matplotlib picks its file backend.

Every figure keeps the sweep's axes apart: each axis that varies (``maps.varying``) gets a colour,
a line style or a panel of its own, and the title names what a figure pools (the seeds, always
with an interval over them, and the training examples where a value is per example). Panels wrap
into rows of at most ``MAX_COLS``.
"""
from __future__ import annotations

import os

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.cm import ScalarMappable
from matplotlib.colors import Normalize, to_rgb
from matplotlib.lines import Line2D
from matplotlib.patches import Patch, Rectangle
from matplotlib.ticker import FuncFormatter, NullLocator

from study import rules
from study.config import DEPTH, NAMED, REPLICATE

from . import evidence, maps
from .stats import share

MAX_COLS = 4  # facets wrap into rows of at most this many panels
BAND = ("ci", 100 * rules.LEVEL)  # seaborn's bootstrap interval over seeds, at the report's one level


# --- layout: panels, roles of the varying axes, legends -----------------------------------------------

def _grid(n: int, size: tuple[float, float] = (3.0, 2.5), extra: tuple[float, float] = (1.2, 0.4),
          **kw) -> tuple[plt.Figure, list[plt.Axes]]:
    """A figure of ``n`` panels in rows of at most MAX_COLS, each ``size`` inches, plus ``extra`` inches
    (width, height) for a legend or colour bar beside them and the suptitle; spare slots hidden."""
    ncols = min(MAX_COLS, max(n, 1))
    nrows = -(-max(n, 1) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(size[0] * ncols + extra[0], size[1] * nrows + extra[1]),
                             squeeze=False, layout="constrained", **kw)
    flat = list(axes.flat)
    for ax in flat[n:]:
        ax.set_visible(False)
    return fig, flat[:n]


def _panels(df: pd.DataFrame, facet: list[str]) -> list[tuple[str, pd.DataFrame]]:
    facet = [c for c in facet if c in df.columns and df[c].nunique() > 1] or [c for c in facet if c in df.columns][:1]
    if not facet:
        return [("", df)]
    return [(", ".join(f"{c}={v}" for c, v in zip(facet, key if isinstance(key, tuple) else (key,))), g)
            for key, g in df.groupby(facet)]


def _roles(trials: pd.DataFrame, x: str | None, hue: str | None, style: str | None = None,
           facet: tuple[str, ...] = ("arch",)) -> tuple[str | None, str | None, list[str]]:
    """Give each axis that varies in ``trials`` (but ``x`` and seed) a role: ``hue`` and ``style``
    where they vary, ``facet`` panels, then the axes left over to an empty hue or style slot (style
    only if ``style`` is not False) and the rest to panels. -> (hue, style, panel columns); the
    panel columns fall back to ``facet`` so that a lone panel can still name its arch."""
    axes = [c for c in maps.varying(trials) if c not in (x, "seed")]
    allow_style = style is not False
    hue = hue if hue in axes else None
    style = style if allow_style and style in axes and style != hue else None
    facets = [c for c in facet if c in axes and c not in (hue, style)]
    rest = [c for c in axes if c not in (hue, style, *facets)]
    if hue is None and rest:
        hue = rest.pop(0)
    if allow_style and style is None and rest:
        style = rest.pop(0)
    return hue, style, [*facets, *rest] or list(facet)


def _levels(df: pd.DataFrame, col: str | None) -> tuple[pd.DataFrame, list[str] | None]:
    """``col`` as text labels in sorted order, so that a legend lists the swept values and only them."""
    if col is None:
        return df, None
    values = sorted(df[col].dropna().unique())
    names = [f"{v:g}" if isinstance(v, (float, np.floating)) else str(v) for v in values]
    return df.assign(**{col: df[col].map(dict(zip(values, names)))}), names


def _palette(order: list[str] | None, numeric: bool = True) -> list | None:
    """Colours for ``order``: for numbers (depth, width) a dark-for-large ramp whose ends stay apart
    and off white (plasma from 0.8 down to 0); otherwise seaborn's colour-blind palette."""
    if not order:
        return None
    if not numeric:
        return sns.color_palette("colorblind", len(order))
    return [plt.get_cmap("plasma")(v) for v in np.linspace(0.8, 0.0, len(order))]


def _legend_outside(axes: list[plt.Axes]) -> None:
    """Keep one legend, beside the top-right panel, off the data."""
    keep = axes[min(MAX_COLS, len(axes)) - 1]
    for ax in axes:
        if ax.get_legend() is not None and ax is not keep:
            ax.get_legend().remove()
    if keep.get_legend() is not None:
        sns.move_legend(keep, "upper left", bbox_to_anchor=(1.02, 1.0), fontsize=8, title_fontsize=8, frameon=False)


def _numeric(df: pd.DataFrame, col: str | None) -> bool:
    return col is not None and pd.api.types.is_numeric_dtype(df[col])


def _require(df: pd.DataFrame, what: str) -> pd.DataFrame:
    if df.empty:
        raise ValueError(f"nothing to draw: no {what} for these trials")
    return df


def _seeds(trials: pd.DataFrame) -> str:
    n = trials["seed"].nunique() if "seed" in trials else 1
    return f"{n} seed{'s' if n != 1 else ''}"


def _target(ax: plt.Axes | None) -> plt.Axes:
    """seaborn's rule for an axes-level function: draw on ``ax``, else on the current Axes (that of a
    new figure when there is none)."""
    return ax if ax is not None else plt.gca()


def _one_panel(df: pd.DataFrame, apart: list[str], name: str) -> None:
    """Raise unless ``df`` holds one value of each axis in ``apart``: the axes that the figure-level
    function ``name`` draws as panels, which one Axes cannot keep apart."""
    many = [c for c in apart if c in df.columns and df[c].nunique(dropna=False) > 1]
    if many:
        values = ", ".join(map(str, sorted(df[many[0]].dropna().unique())))
        raise ValueError(f"{name}_ax draws one panel, but {' and '.join(many)} {'vary' if many[1:] else 'varies'} "
                         f"in these rows ({many[0]}: {values}): pass the rows of one value, e.g. "
                         f"trials[trials.{many[0]} == ...], or draw a panel per value with {name}")


def _title(df: pd.DataFrame, facet: list[str]) -> str:
    """The title of the one panel that ``df`` makes, as its figure-level function names it: the
    ``facet`` axes that hold one value in ``df`` (an axis drawn as a colour or style is no title)."""
    fixed = [c for c in facet if c in df.columns and df[c].nunique(dropna=False) <= 1]
    return _panels(df, fixed)[0][0] if fixed else ""


def _line(ax: plt.Axes, data: pd.DataFrame, x: str, y: str, hue: str | None, hue_order, style: str | None,
          style_order, palette: list | None) -> None:
    """Mean of ``y`` over seeds against ``x``, band = bootstrap interval over seeds."""
    sns.lineplot(data, x=x, y=y, hue=hue, hue_order=hue_order, style=style, style_order=style_order, palette=palette,
                 markers=bool(style), marker=None if style else "o", markersize=5, errorbar=BAND, ax=ax)


# --- phase maps -----------------------------------------------------------------------------------------

VALUES = {"rate": "memorization rate", "attractor_frac": "attractor_frac"}
HATCH = {rules.NOT_CONVERGED: "///", rules.DIVERGED: "xxx"}  # diverged also marks status error (no probe values)


def _on(value: float) -> str:
    """Black or white, whichever reads on viridis at ``value`` (seaborn's rule for its annotations)."""
    return "black" if sns.utils.relative_luminance(plt.get_cmap("viridis")(value)) > .408 else "white"


def _cell(ax: plt.Axes, x: int, y: int, value: float, note: str, interval: tuple[float, float],
          kind: str | None, fontsize: float) -> None:
    """One phase-map cell's marks: its value (and ``note``) above a bar spanning ``interval`` on a
    0-1 track across the cell, and hatching where ``kind`` (a status) says that a seed did not train.
    An untested cell (value NaN) shows only its note."""
    ink = _on(value) if np.isfinite(value) else "black"
    ax.text(x + 0.5, y + 0.42, note if np.isnan(value) else f"{value:.2f}" + (f"\n{note}" if note else ""),
            ha="center", va="center", color=ink, fontsize=fontsize)
    if kind:
        ax.add_patch(Rectangle((x, y), 1, 1, fill=False, lw=0, hatch=HATCH[kind], hatchcolor=(*to_rgb(ink), 0.45),
                               gid=kind))
    lo, hi = interval
    if np.isfinite(lo):
        ax.plot([x + 0.1, x + 0.9], [y + 0.86] * 2, color=ink, lw=0.8, alpha=0.35, solid_capstyle="butt")
        lo, hi = min(lo, 0.97), max(hi, min(lo, 0.97) + 0.03)  # a point interval stays visible
        ax.plot([x + 0.1 + 0.8 * lo, x + 0.1 + 0.8 * hi], [y + 0.86] * 2, color=ink, lw=2.5, solid_capstyle="butt",
                gid="interval")


def _phase_cells(trials: pd.DataFrame, criterion: maps.Criterion, facet: tuple[str, ...]) -> pd.DataFrame:
    cells = evidence.cells(trials, criterion, [*facet, "width", "depth"])
    cells.loc[~cells.tested, "attractor_frac"] = np.nan  # an untested cell is never coloured
    return cells


def _phase_onsets(onset: pd.DataFrame | None, g: pd.DataFrame, facet: tuple[str, ...]) -> pd.DataFrame | None:
    """The rows of ``onset`` that belong to the panel of cells ``g``."""
    if onset is None:
        return None
    for col in [c for c in facet if c in g.columns and c in onset.columns]:
        onset = onset[onset[col] == g[col].iloc[0]]
    return onset


def _phase_panel(ax: plt.Axes, g: pd.DataFrame, value: str, depths: list, widths: list,
                 onset: pd.DataFrame | None, fontsize: float) -> set[str | None]:
    """One heat map of the cells ``g`` on ``ax`` with its cell marks and (``onset``) red frames at
    the onset depths; -> the kinds of marks drawn, for a legend."""
    low, high = ("rate_low", "rate_high") if value == "rate" else ("attractor_min", "attractor_max")
    grid = g.pivot(index="width", columns="depth", values=value).reindex(index=widths, columns=depths)
    ax.pcolormesh(np.ma.masked_invalid(grid.to_numpy(float)), cmap="viridis", vmin=0, vmax=1)
    ax.set(xlim=(0, len(depths)), ylim=(len(widths), 0), xlabel="depth", ylabel="width")
    ax.set_xticks(np.arange(len(depths)) + 0.5, [str(d) for d in depths])
    ax.set_yticks(np.arange(len(widths)) + 0.5, [str(w) for w in widths])
    ax.tick_params(length=0)
    ax.spines[:].set_visible(False)
    marks: set[str | None] = set()
    for r in g.sort_values(["width", "depth"], ascending=[False, True]).itertuples():
        kind = rules.DIVERGED if r.n_diverged + r.n_error else rules.NOT_CONVERGED if r.n_not_converged else None
        marks.add(kind)
        marks.add(None if r.tested else "untested")
        fit = "" if r.n_usable == r.n_trials else f"{r.n_usable}/{r.n_trials} fit"
        note = (f"{r.n_memorized}/{r.n_usable}" + (f" ({fit})" if fit else "") if value == "rate" else fit) \
            if r.tested else f"{fit or f'{r.n_usable}/{r.n_trials} fit'}:\ntoo few"
        _cell(ax, depths.index(r.depth), widths.index(r.width), getattr(r, value), note,
              (getattr(r, low), getattr(r, high)) if r.tested else (np.nan, np.nan), kind, fontsize=fontsize)
    if value == "rate":
        for r in onset.itertuples():
            if r.status in (rules.REACHED, rules.BOUND) and r.width in widths:
                ax.add_patch(Rectangle((depths.index(r.onset_depth), widths.index(r.width)), 1, 1, fill=False,
                                       edgecolor="red", lw=2.5, ls="-" if r.status == rules.REACHED else "--",
                                       gid="onset"))
    return marks


def _phase_setup(trials: pd.DataFrame, criterion: maps.Criterion, facet: tuple[str, ...] | None,
                 onset: pd.DataFrame | None, value: str) -> tuple[tuple[str, ...], pd.DataFrame, pd.DataFrame | None]:
    """-> (panel axes, cells, onset table) of a phase map."""
    if value not in VALUES:
        raise ValueError(f"value must be one of {', '.join(VALUES)}, not {value!r}")
    _require(trials, "trials")
    facet = tuple(facet if facet is not None else maps.summary_axes(trials, without=(DEPTH, "width", REPLICATE)))
    cells = _phase_cells(trials, criterion, facet)
    if value == "rate" and onset is None:
        onset = evidence.onsets(trials, criterion, by=[*facet, "width"])
    return facet, cells, onset


def _depths_widths(cells: pd.DataFrame) -> tuple[list, list]:
    return sorted(cells.depth.unique()), sorted(cells.width.unique(), reverse=True)


def phase_map(trials: pd.DataFrame, criterion: maps.Criterion = maps.DEFAULT,
              facet: tuple[str, ...] | None = None, onset: pd.DataFrame | None = None,
              value: str = "rate") -> plt.Figure:
    """Heat maps over depth (x) x width (y), one panel per value of ``facet`` (default: every varying
    axis but depth, width and seed), cells from ``evidence.cells``: only a tested cell (at least
    MIN_SEEDS usable seeds) is coloured; an untested one is left blank and says "k/n fit: too few".

    value="rate": the memorization rate over the cell's usable seeds, "m/k" under it (m of its k usable
    seeds memorize); the bar is its exact Clopper-Pearson interval at ``rules.LEVEL`` (the cell's width spans 0 to 1);
    a red frame marks each line's onset depth (``onset``: ``evidence.onsets``, computed here if not
    given; dashed where it is only an upper bound).
    value="attractor_frac": the mean attractor_frac over the usable seeds; the bar spans their range.
    Hatching marks a cell where a seed did not converge (///) or diverged or failed (xxx), and
    "k/n fit" says that only k of its n seeds interpolated: pass every trial, not only the usable
    ones, or the trials left out go unmarked. One panel on an Axes of your own: ``phase_map_ax``."""
    facet, cells, onset = _phase_setup(trials, criterion, facet, onset, value)
    depths, widths = _depths_widths(cells)
    panels = _panels(cells, list(facet))
    # cells as wide as 10 inches of panels allow, within what 8-point text needs and a glance takes in
    cell = float(np.clip(10 / (min(MAX_COLS, len(panels)) * len(depths)), 0.45, 0.8))
    fig, axes = _grid(len(panels), size=(cell * len(depths) + 0.8, 0.7 * len(widths) + 1.0), extra=(0.8, 1.0))
    marks: set[str | None] = set()
    for ax, (title, g) in zip(axes, panels):
        marks |= _phase_panel(ax, g, value, depths, widths, _phase_onsets(onset, g, facet),
                              fontsize=8 if cell > 0.5 else 7)
        ax.set_title(title or VALUES[value], fontsize=10)
    fig.colorbar(ScalarMappable(Normalize(0, 1), "viridis"), ax=axes, label=VALUES[value], shrink=0.9, pad=0.02)
    fig.suptitle(_phase_title(cells, value, criterion), fontsize=9)
    fig.legend(handles=_phase_legend(value, marks), loc="outside lower center", ncol=2, fontsize=8, frameon=False)
    return fig


def phase_map_ax(trials: pd.DataFrame, criterion: maps.Criterion = maps.DEFAULT, onset: pd.DataFrame | None = None,
                 value: str = "rate", ax: plt.Axes | None = None, colorbar: bool = True) -> plt.Axes:
    """One panel of ``phase_map`` on ``ax`` (the current Axes if None), with its colour bar beside it
    (``colorbar``); -> that Axes. ``trials``: one value of every varying axis but depth, width and
    seed (for instance ``trials[trials.arch == "fc"]``); ``onset`` may be the onset table of more
    trials than these, of which it draws the panel's rows. The key to the marks and the intervals is
    ``phase_map``'s (its legend and title)."""
    facet = tuple(maps.summary_axes(trials, without=(DEPTH, "width", REPLICATE)))
    _one_panel(trials, list(facet), "phase_map")
    facet, cells, onset = _phase_setup(trials, criterion, facet, onset, value)
    depths, widths = _depths_widths(cells)
    ax = _target(ax)
    inches = ax.get_position().width * ax.figure.get_figwidth() / len(depths)  # one cell's width
    _phase_panel(ax, cells, value, depths, widths, _phase_onsets(onset, cells, facet),
                 fontsize=8 if inches > 0.5 else 7)
    ax.set_title(_title(cells, list(facet)) or VALUES[value], fontsize=10)
    if colorbar:
        ax.figure.colorbar(ScalarMappable(Normalize(0, 1), "viridis"), ax=ax, label=VALUES[value])
    return ax


def _phase_title(cells: pd.DataFrame, value: str, criterion: maps.Criterion) -> str:
    ns = sorted(set(cells[cells.tested].n_usable))
    most = int(cells.n_usable.max()) if len(cells) else 0
    # nothing coloured: say why, not "no usable seeds" (the cells may each have some)
    untested = f"no cell tested: each has fewer than the {rules.MIN_SEEDS} usable seeds a cell needs (at most {most})"
    if not ns and value != "attractor_frac":
        return untested[0].upper() + untested[1:]
    seeds = f"{'/'.join(map(str, ns))} usable seeds per coloured cell" if ns else untested
    if value == "attractor_frac":
        return f"Share of training examples that are attractors: mean over the usable seeds ({seeds})"
    keys = "; ".join(f"{k}/{n} -> {share(k, n).low:.2f}-{share(k, n).high:.2f}" for n in ns[:1] for k in range(n + 1))
    return (f"Memorization rate over the usable seeds ({seeds}; {criterion})\n"
            f"{100 * rules.LEVEL:.0f}% Clopper-Pearson intervals: {keys}")


def _phase_legend(value: str, marks: set[str]) -> list:
    bar = (f"{100 * rules.LEVEL:.0f}% Clopper-Pearson interval of the rate" if value == "rate" else "range over seeds")
    handles = [Line2D([], [], color="0.3", lw=2.5, label=f"bar: {bar} (cell's width = 0 to 1)")]
    if value == "rate":
        handles.append(Patch(fill=False, edgecolor="red", lw=2.5,
                             label=f"red frame: onset depth (rate >= {rules.THRESHOLD:g}; dashed: at most)"))
    if "untested" in marks:
        handles.append(Patch(facecolor="white", edgecolor="0.3",
                             label=f"blank, 'too few': fewer than {rules.MIN_SEEDS} usable seeds, no rate"))
    if rules.NOT_CONVERGED in marks:
        handles.append(Patch(facecolor="white", edgecolor="0.3", hatch=HATCH[rules.NOT_CONVERGED],
                             label="///: a seed did not converge ('k/n fit': k of n seeds interpolated)"))
    if rules.DIVERGED in marks:
        handles.append(Patch(facecolor="white", edgecolor="0.3", hatch=HATCH[rules.DIVERGED],
                             label="xxx: a seed diverged or failed (no probe values; not usable)"))
    return handles


# --- metrics against depth and sigma --------------------------------------------------------------------

def _metric_panel(ax: plt.Axes, g: pd.DataFrame, metric: str, title: str, hue: str | None, hue_order,
                  style: str | None, style_order, palette: list | None) -> None:
    _line(ax, g, "depth", metric, hue, hue_order, style, style_order, palette)
    if "spectral" in metric or "singular" in metric:
        ax.axhline(1.0, color="grey", ls="--", lw=1)  # the attractor threshold
    ax.set_title(title, fontsize=10)


def _metric_frame(trials: pd.DataFrame, metric: str, hue: str | None, style: str | None):
    """-> (rows with ``metric``, hue order, style order, palette) of a metric against depth."""
    df, hue_order = _levels(_require(trials[trials[metric].notna()], metric), hue)
    df, style_order = _levels(df, style)
    return df, hue_order, style_order, _palette(hue_order, _numeric(trials, hue))


def metric_vs_depth(trials: pd.DataFrame, metric: str = "spectral_radius_median", facet: str = "arch",
                    hue: str = "width", style: str | None = None) -> plt.Figure:
    """``metric`` against depth, the mean over seeds with a bootstrap band at ``rules.LEVEL``; every other varying
    axis a colour (``hue``), a line style (``style``) or a panel (``facet`` first). One panel on an
    Axes of your own: ``metric_vs_depth_ax``."""
    hue, style, facets = _roles(trials, "depth", hue, style, (facet,))
    df, hue_order, style_order, palette = _metric_frame(trials, metric, hue, style)
    panels = _panels(df, facets)
    fig, axes = _grid(len(panels), sharey=True)
    for ax, (title, g) in zip(axes, panels):
        _metric_panel(ax, g, metric, title, hue, hue_order, style, style_order, palette)
    _legend_outside(axes)
    fig.suptitle(f"{metric} against depth: mean over {_seeds(trials)}, band: {100 * rules.LEVEL:.0f}% bootstrap "
                 "interval over seeds", fontsize=9)
    return fig


def metric_vs_depth_ax(trials: pd.DataFrame, metric: str = "spectral_radius_median", hue: str = "width",
                       style: str | None = None, ax: plt.Axes | None = None) -> plt.Axes:
    """``metric`` against depth on ``ax`` (the current Axes if None), the mean over seeds with a
    bootstrap band at ``rules.LEVEL``; -> that Axes. Every other axis that varies in ``trials`` gets
    the colour (``hue``) or the line style (``style``); a third one raises (pass one value's trials)."""
    hue, style, rest = _roles(trials, "depth", hue, style, ())
    _one_panel(trials, rest, "metric_vs_depth")
    df, hue_order, style_order, palette = _metric_frame(trials, metric, hue, style)
    ax = _target(ax)
    _metric_panel(ax, df, metric, _title(df, ["arch"]), hue, hue_order, style, style_order, palette)
    return ax


OUTCOMES = {"same_frac": "same: its own memory x_i*", "any_frac": "any: some memory x_j*",
            "spurious_frac": "spurious: a limit that is no memory", "none_frac": "none: no confirmed limit"}


def _retrieval_panel(ax: plt.Axes, g: pd.DataFrame, outcome: str, sigmas: list, hue: str | None, hue_order,
                     style: str | None, style_order, palette: list | None) -> None:
    _line(ax, g, "sigma", outcome, hue, hue_order, style, style_order, palette)
    ax.set_xscale("log")
    ax.set_xticks(sigmas)
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.xaxis.set_minor_locator(NullLocator())
    ax.set_ylim(-0.02, 1.02)


def _retrieval_frame(retrieval: pd.DataFrame, trials: pd.DataFrame, hue: str | None, style: str | None,
                     facets: list[str]):
    """-> (noisy-start rows with the axes drawn, hue order, style order, palette, sigmas)."""
    axes = list(dict.fromkeys([REPLICATE, *[c for c in (hue, style, *facets) if c and c in trials]]))
    df = _require(maps.noisy_starts(retrieval, trials, axes), "noisy-start retrieval rows")
    df, hue_order = _levels(df, hue)
    df, style_order = _levels(df, style)
    return df, hue_order, style_order, _palette(hue_order, _numeric(trials, hue)), sorted(df.sigma.dropna().unique())


def retrieval_vs_sigma(retrieval: pd.DataFrame, trials: pd.DataFrame, facet: str = "arch",
                       hue: str = "depth", style: str | bool | None = None) -> plt.Figure:
    """Where iteration from noisy starts x_i + sigma * noise ends, against sigma: one column per outcome
    (same, any, spurious, none; any includes same, and any + spurious + none = 1), one row per value of
    the varying axes other than ``hue`` and ``style``; mean over seeds, bootstrap band at ``rules.LEVEL``. ``style``
    None: a line style only where there would be more than MAX_COLS rows without one; False: none.
    One outcome on an Axes of your own: ``retrieval_vs_sigma_ax``."""
    if style is None:  # a second line style per panel reads worse than another row, up to a point
        row_axes = [c for c in _roles(trials, None, hue, False, (facet,))[2] if c in trials]
        style = None if len(trials[row_axes].drop_duplicates()) > MAX_COLS else False
    hue, style, facets = _roles(trials, None, hue, style, (facet,))
    df, hue_order, style_order, palette, sigmas = _retrieval_frame(retrieval, trials, hue, style, facets)
    rows = _panels(df, facets)
    fig, axes = _grid(len(OUTCOMES) * len(rows), size=(2.8, 2.1), sharex=True, sharey=True)
    for i, (row, g) in enumerate(rows):
        for j, (outcome, label) in enumerate(OUTCOMES.items()):
            ax = axes[i * len(OUTCOMES) + j]
            _retrieval_panel(ax, g, outcome, sigmas, hue, hue_order, style, style_order, palette)
            ax.set_title(label if i == 0 else "", fontsize=10)
            ax.set_ylabel((row.replace(", ", "\n") or "share of starts") if j == 0 else "")
    _legend_outside(axes)
    fig.suptitle(f"Share of noisy starts x_i + sigma * noise that iterating x <- f(x) takes to each outcome; 'any' "
                 f"includes 'same'.\nMean over {_seeds(trials)}, band: {100 * rules.LEVEL:.0f}% bootstrap interval over "
                 "seeds", fontsize=10)
    return fig


def retrieval_vs_sigma_ax(retrieval: pd.DataFrame, trials: pd.DataFrame, outcome: str = "same_frac",
                          hue: str = "depth", style: str | None = None, ax: plt.Axes | None = None) -> plt.Axes:
    """The share of noisy starts that end at ``outcome`` (a key of ``OUTCOMES``) against sigma, on
    ``ax`` (the current Axes if None), the mean over seeds with a bootstrap band at ``rules.LEVEL``;
    -> that Axes. Every other axis that varies in ``trials`` gets the colour (``hue``) or the line
    style (``style``); a third one raises (pass one value's trials)."""
    if outcome not in OUTCOMES:
        raise ValueError(f"outcome must be one of {', '.join(OUTCOMES)}, not {outcome!r}")
    hue, style, rest = _roles(trials, None, hue, style, ())
    _one_panel(trials, rest, "retrieval_vs_sigma")
    df, hue_order, style_order, palette, sigmas = _retrieval_frame(retrieval, trials, hue, style, ["arch"])
    ax = _target(ax)
    _retrieval_panel(ax, df, outcome, sigmas, hue, hue_order, style, style_order, palette)
    row = _title(df, ["arch"])
    ax.set_title(OUTCOMES[outcome], fontsize=10)
    ax.set_ylabel("share of starts" + (f" ({row})" if row else ""))
    return ax


def _rho_panel(ax: plt.Axes, g: pd.DataFrame, title: str, depth_order: list[str], hue: str | None, hue_order,
               palette: list | None) -> None:
    sns.boxplot(g, x="depth", y="spectral_radius", order=depth_order, hue=hue, hue_order=hue_order,
                palette=palette, fliersize=2, linewidth=0.8, ax=ax)
    ax.axhline(1.0, color="grey", ls="--", lw=1)  # below it, a fixed point attracts
    ax.set_title(title, fontsize=10)
    ax.set_ylabel("rho(J_f) at x_i")


def _rho_frame(examples: pd.DataFrame, trials: pd.DataFrame, hue: str | None, facets: list[str]):
    """-> (one row per example with the axes drawn, depth order, hue order, palette)."""
    cols = list(dict.fromkeys(["trial_id", "depth", *[c for c in (hue, *facets) if c and c in trials]]))
    df = _require(examples[["trial_id", "spectral_radius"]].dropna().merge(trials[cols], on="trial_id"),
                  "per-example spectral radii")
    df, depth_order = _levels(df, "depth")
    df, hue_order = _levels(df, hue)
    return df, depth_order, hue_order, _palette(hue_order, _numeric(trials, hue))


def rho_distribution(examples: pd.DataFrame, trials: pd.DataFrame, hue: str = "width",
                     facet: tuple[str, ...] = ("arch",)) -> plt.Figure:
    """Spectral radius rho of J_f at every training example, one box per depth and ``hue`` value,
    pooled over seeds and examples; one panel per value of the other varying axes. A training example
    with rho < 1 (dashed line) that f fixes is an attractor. One panel on an Axes of your own:
    ``rho_distribution_ax``."""
    hue, _, facets = _roles(trials, "depth", hue, False, facet)
    df, depth_order, hue_order, palette = _rho_frame(examples, trials, hue, facets)
    panels = _panels(df, facets)
    fig, axes = _grid(len(panels), size=(0.45 * len(depth_order) * max(1, len(hue_order or [])) ** 0.5 + 1.2, 2.8),
                      sharey=True)
    for ax, (title, g) in zip(axes, panels):
        _rho_panel(ax, g, title, depth_order, hue, hue_order, palette)
    _legend_outside(axes)
    per_trial = sorted(set(df.groupby("trial_id").size()))
    n_ex = f"{'/'.join(map(str, per_trial))} example{'s' if per_trial != [1] else ''}"
    fig.suptitle(f"Spectral radius of J_f at each training example: boxes pool {_seeds(trials)} x {n_ex} per "
                 "trial (quartiles, whiskers 1.5 IQR); dashed: rho = 1", fontsize=9)
    return fig


def rho_distribution_ax(examples: pd.DataFrame, trials: pd.DataFrame, hue: str = "width",
                        ax: plt.Axes | None = None) -> plt.Axes:
    """rho(J_f) at every training example, one box per depth and ``hue`` value, pooled over seeds and
    examples, on ``ax`` (the current Axes if None); -> that Axes. Every other axis that varies in
    ``trials`` raises (pass one value's trials)."""
    hue, _, rest = _roles(trials, "depth", hue, False, ())
    _one_panel(trials, rest, "rho_distribution")
    df, depth_order, hue_order, palette = _rho_frame(examples, trials, hue, ["arch"])
    ax = _target(ax)
    _rho_panel(ax, df, _title(df, ["arch"]), depth_order, hue, hue_order, palette)
    return ax


def trajectories(row: pd.Series | dict, n_starts: int = 4, sigma: float | None = None,
                 checkpoints: tuple[int, ...] = (0, 1, 5, 20), root: str | None = None) -> plt.Figure:
    """Iterate x <- f(x) from noisy copies of a few training images of the trial of ``row`` and show
    start -> iterates -> limit -> nearest memory x_j* (``probes.Memories``). The net is the one saved
    under ``root/models/<trial_id>.pt`` when there is one, else the row's config re-trained, which
    ``study.trial.resources.check_rerunnable`` allows only on bundled or generated data, within memory and a few minutes:
    a results folder may be someone else's, and its rows must not choose the files this process reads."""
    try:
        import torch

        from study.trial import probes
        from study.trial.saved import load_model
        from study.trial.resources import check_rerunnable
        from study.trial.run import recall, run_trial
    except ImportError as exc:
        raise ImportError(f"the trajectories figure re-runs the trial, which needs memsweep's training stack "
                          f"(torch): pip install 'memsweep[study]' ({exc})") from None
    from study.config import TrialConfig

    cfg = TrialConfig.from_row(dict(row))
    saved = os.path.join(root, "models", f"{cfg.trial_id}.pt") if root else None
    if saved and os.path.isfile(saved):
        model = load_model(saved)
        if model.config != cfg:
            raise ValueError(f"{saved} holds another config than the row of {cfg.trial_id}")
        net, x, shape = model.model, model.train_x, model.image_shape
    else:
        check_rerunnable(cfg)
        result = run_trial(cfg, keep_model=True)
        if result.model is None:
            raise ValueError(f"trial {cfg.trial_id} has no trained model (status {result.trial['status']})")
        net, x, shape = result.model, result.train_x, result.image_shape
    sigma = sigma or cfg.headline_sigma
    gen = torch.Generator().manual_seed(cfg.seed + 3)
    picks = torch.arange(min(n_starts, len(x)))
    starts = x[picks] + sigma * torch.randn(x[picks].shape, generator=gen)
    frames, cur = [], starts.clone()
    with torch.no_grad():
        for t in range(max(checkpoints) + 1):
            if t in checkpoints:
                frames.append((f"t={t}", cur.clone()))
            cur = net(cur)
    mem, lim, nearest, kind = recall(net, x, starts, cfg, gen)  # as the trial's probes do
    frames += [("limit", lim.x), ("nearest memory", mem.x[nearest.clamp_min(0)])]
    labels = {probes.TRAIN: "another memory", probes.SPURIOUS: "spurious", probes.NONE: "no convergence"}
    fig, axes = plt.subplots(len(picks), len(frames), figsize=(1.3 * len(frames), 1.4 * len(picks)), squeeze=False)
    for i in range(len(picks)):
        for j, (title, imgs) in enumerate(frames):
            img = imgs[i].reshape(shape).permute(1, 2, 0).clamp(0, 1).numpy()
            axes[i][j].imshow(img.squeeze(-1) if img.shape[-1] == 1 else img, cmap="gray", vmin=0, vmax=1)
            axes[i][j].set_xticks([])
            axes[i][j].set_yticks([])
            if i == 0:
                axes[i][j].set_title(title, fontsize=8)
        same = kind[i].item() == probes.TRAIN and nearest[i].item() == picks[i].item()
        axes[i][-1].set_xlabel("same" if same else labels[kind[i].item()], fontsize=7)
    fig.suptitle(f"{cfg.trial_id}: x <- f(x) from x_i + {sigma:g} noise; under each row, where its limit is "
                 "(same: x_i's own memory)", fontsize=8)
    fig.tight_layout()
    return fig


def _loss_panel(ax: plt.Axes, g: pd.DataFrame, title: str, hue: str | None, hue_order,
                palette: list | None) -> None:
    sns.lineplot(g, x=g.step.clip(lower=1), y="loss", hue=hue, hue_order=hue_order, units="trial_id",
                 estimator=None, lw=0.7, palette=palette, ax=ax)
    ax.set(xscale="log", yscale="log", xlabel="step")
    ax.set_title(title, fontsize=10)


def _loss_frame(curves: pd.DataFrame, trials: pd.DataFrame, hue: str | None, facets: list[str]):
    """-> (curve points with the axes drawn, hue order, palette)."""
    cols = list(dict.fromkeys(["trial_id", *[c for c in (hue, *facets) if c and c in trials]]))
    df = _require(curves.merge(trials[cols], on="trial_id"), "loss curves")
    df, hue_order = _levels(df, hue)
    return df, hue_order, _palette(hue_order, _numeric(trials, hue))


def loss_curves(curves: pd.DataFrame, trials: pd.DataFrame, hue: str = "depth", facet: str = "arch") -> plt.Figure:
    """Training loss against step (log-log), one line per trial (its seeds overlaid), coloured by
    ``hue``; one panel per value of ``facet`` and of every other varying axis. One panel on an Axes
    of your own: ``loss_curves_ax``."""
    hue, _, facets = _roles(trials, None, hue, False, (facet,))
    df, hue_order, palette = _loss_frame(curves, trials, hue, facets)
    panels = _panels(df, facets)
    fig, axes = _grid(len(panels), sharey=True)
    for ax, (title, g) in zip(axes, panels):
        _loss_panel(ax, g, title, hue, hue_order, palette)
    _legend_outside(axes)
    fig.suptitle(f"Training loss, one line per trial: the {_seeds(trials)} of each grid point overlaid", fontsize=9)
    return fig


def loss_curves_ax(curves: pd.DataFrame, trials: pd.DataFrame, hue: str = "depth",
                   ax: plt.Axes | None = None) -> plt.Axes:
    """Training loss against step (log-log), one line per trial, coloured by ``hue``, on ``ax`` (the
    current Axes if None); -> that Axes. Every other axis that varies in ``trials`` but seed raises
    (pass one value's trials)."""
    hue, _, rest = _roles(trials, None, hue, False, ())
    _one_panel(trials, rest, "loss_curves")
    df, hue_order, palette = _loss_frame(curves, trials, hue, ["arch"])
    ax = _target(ax)
    _loss_panel(ax, df, _title(df, ["arch"]), hue, hue_order, palette)
    return ax


OPERATOR = {"operator_near_one": "eigenvalues ~1 (kept directions)", "operator_rest_radius": "max |other eigenvalue|"}


def _linear_nets(trials: pd.DataFrame) -> pd.DataFrame:
    lin = trials[trials["operator_near_one"].notna()]
    return lin.assign(side=maps.image_side(lin), width=lin.width.astype(str))


def _operator_panel(ax: plt.Axes, g: pd.DataFrame, side: float, metric: str, legend: bool) -> None:
    sns.lineplot(g, x="depth", y=metric, hue="arch", style="width", marker="o", estimator="median",
                 errorbar=None, ax=ax, legend=legend)
    ax.axvline((side - 1) / (g.kernel_size.iloc[0] - 1), color="grey", ls=":", lw=1)
    if metric == "operator_near_one":
        ax.set_yscale("symlog", linthresh=1)
        ax.set_ylim(0, side * side * 1.5)
        ax.axhline(g.span_dim.median(), color="grey", ls="--", lw=1)
    else:
        ax.set_ylim(0, 3)
        ax.axhline(1.0, color="grey", ls="--", lw=1)
    ax.set(ylabel=OPERATOR[metric])


def operator_study(trials: pd.DataFrame) -> plt.Figure:
    """C3's linear operator study, one column per image side s (wrapping after MAX_COLS), medians
    over seeds: top, the directions the operator keeps (eigenvalues ~1) against depth; below it, the
    largest other |eigenvalue| (clipped at 3). P_X of n images keeps n directions (dashed line) and
    has the rest below 1 (dashed line). The dotted line marks the depth at which a stride-1 stack's
    receptive field reaches s. One panel on an Axes of your own: ``operator_study_ax``."""
    lin = _linear_nets(trials)
    sides = sorted(lin.side.unique())
    ncols = min(MAX_COLS, max(len(sides), 1))
    blocks = -(-max(len(sides), 1) // ncols)
    fig, grid = plt.subplots(2 * blocks, ncols, figsize=(3.6 * ncols, 5.4 * blocks), squeeze=False, sharex="col",
                             layout="constrained")
    for ax in grid.flat:
        ax.set_visible(False)
    for j, side in enumerate(sides):
        g = lin[lin.side == side]
        for i, metric in enumerate(OPERATOR):
            ax = grid[2 * (j // ncols) + i][j % ncols]
            ax.set_visible(True)
            _operator_panel(ax, g, side, metric, legend=(i == 0 and j == min(ncols, len(sides)) - 1))
            ax.set(title=f"{int(side)}x{int(side)} images" if i == 0 else "")
    if sides:
        _legend_outside([ax for ax in grid[0] if ax.get_visible()])
    fig.suptitle(f"Linear nets: median over {_seeds(lin)}, one line per arch and width", fontsize=9)
    return fig


def operator_study_ax(trials: pd.DataFrame, metric: str = "operator_near_one",
                      ax: plt.Axes | None = None) -> plt.Axes:
    """One panel of ``operator_study`` on ``ax`` (the current Axes if None): ``metric`` (a key of
    ``OPERATOR``) of the linear nets against depth, the median over seeds, one line per arch and
    width; -> that Axes. ``trials``: linear nets of one image side."""
    if metric not in OPERATOR:
        raise ValueError(f"metric must be one of {', '.join(OPERATOR)}, not {metric!r}")
    lin = _require(_linear_nets(trials), "linear nets (operator_near_one)")
    sides = sorted(lin.side.unique())
    if len(sides) > 1:
        raise ValueError(f"operator_study_ax draws one image side, but these linear nets have sides "
                         f"{', '.join(f'{s:g}' for s in sides)}: pass the trials of one "
                         "(analysis.maps.image_side(trials) == s), or draw a panel per side with operator_study")
    ax = _target(ax)
    _operator_panel(ax, lin, sides[0], metric, legend=True)
    ax.set(title=f"{int(sides[0])}x{int(sides[0])} images")
    return ax


# --- the boundary: onset depth against width ------------------------------------------------------------

def _boundary_apart(onsets: pd.DataFrame) -> list[str]:
    """The line axes that vary in ``onsets`` but n_train and width: the boundary's panels."""
    keys = [c for c in onsets.columns if c in NAMED or c in ("image_size", "channels", "lr")]
    return [c for c in keys if c not in ("n_train", "width") and onsets[c].nunique() > 1]


def _boundary_marks(onsets: pd.DataFrame) -> tuple[int, list, dict, dict]:
    """-> (the depth at which "not reached" is drawn, the n_train values, a colour per n_train, the
    marker of each onset status but reached)."""
    top = max(max(d) for d in onsets.depths) + 1
    ns = sorted(onsets.n_train.unique()) if "n_train" in onsets else [None]
    colours = dict(zip(ns, _palette([str(n) for n in ns])))
    marks = {
        rules.BOUND: dict(marker="v", facecolors="none", label="at most: the depth before it is untested"),
        rules.NOT_MONOTONE: dict(marker="x", label="rate not monotone in depth: no onset"),
        rules.NOT_REACHED: dict(marker="^", facecolors="none", label=f"not reached (drawn at {top})"),
        rules.NO_EVIDENCE: dict(marker="o", facecolors="none", label=f"no evidence: < {rules.MIN_SEEDS} usable seeds "
                                                                     "at every depth (drawn at 0)")}
    return top, ns, colours, marks


def _boundary_panel(ax: plt.Axes, g: pd.DataFrame, title: str, top: int, ns: list, colours: dict,
                    marks: dict) -> None:
    where = {rules.NOT_REACHED: lambda line: [top] * len(line), rules.NO_EVIDENCE: lambda line: [0] * len(line)}
    for n in ns:
        line = g[g.n_train == n].sort_values("width") if n is not None else g.sort_values("width")
        if line.empty:
            continue
        c = colours[n]
        clean = line[line.status == rules.REACHED]
        y = clean.onset_depth.to_numpy(float)
        low = clean.first_some.to_numpy(float)
        high = np.nan_to_num(clean.first_all.to_numpy(float), nan=top)
        ax.errorbar(clean.width, y, yerr=[y - low, high - y], color=c, marker="o", ms=5, capsize=3, lw=1.5,
                    label=f"n={n}")
        for st, style in marks.items():
            sub = line[line.status == st]
            ys = where[st](sub) if st in where else sub.onset_depth
            kw = {k: v for k, v in style.items() if k != "label"}
            colour = "0.5" if st == rules.NO_EVIDENCE else c
            ax.scatter(sub.width, ys, s=45, zorder=3, gid=st, **({"edgecolors": [colour]} if "facecolors" in kw
                                                                 else {"color": colour}), **kw)
    ax.set_xscale("log", base=2)
    widths = sorted(g.width.unique())
    ax.set_xticks(widths, [str(w) for w in widths])
    ax.xaxis.set_minor_locator(NullLocator())
    ax.axhline(top, color="0.7", lw=0.8, ls=":")
    ax.set(xlabel="width (log2)", ylabel="onset depth", ylim=(-0.5, top + 0.8), title=title)


def _boundary_handles(onsets: pd.DataFrame, ns: list, colours: dict, marks: dict) -> list:
    handles = [Line2D([], [], color=colours[n], marker="o", label=f"n_train={n}") for n in ns if n is not None]
    shown = set(onsets.status)
    return handles + [Line2D([], [], ls="", marker=m["marker"], mfc="none" if "facecolors" in m else None, color="0.3",
                             label=m["label"]) for st, m in marks.items() if st in shown]


def boundary(onsets: pd.DataFrame, facet: list[str] | None = None) -> plt.Figure:
    """Onset depth against width (log2 axis), one line per n_train, one panel per value of the other
    line axes (``facet``; default every column of ``onsets`` that ``boundary.trend_axes`` would name but
    n_train). ``onsets``: ``boundary.table`` (``evidence.onsets``), so every mark is a status of the
    one onset rule. A filled point: a reached onset, its bar the seeds' own spread, from the
    first depth at which some usable seed memorizes to the first at which every one does (up to the
    top where none does); an open point with a downward caret: "at most" (the depth before it is
    untested); a cross: the rate is not monotone in depth (no onset); an open triangle at the top: not
    reached by the deepest tested depth; a grey circle at the bottom: no evidence (too few seeds).
    One panel on an Axes of your own: ``boundary_ax``."""
    _require(onsets, "onset depths")
    facet = facet if facet is not None else _boundary_apart(onsets) or ["arch"]
    top, ns, colours, marks = _boundary_marks(onsets)
    panels = _panels(onsets, facet)
    fig, axes = _grid(len(panels), size=(3.4, 2.8), extra=(0.4, 1.2))
    for ax, (title, g) in zip(axes, panels):
        _boundary_panel(ax, g, title, top, ns, colours, marks)
    fig.legend(handles=_boundary_handles(onsets, ns, colours, marks), loc="outside lower center", ncol=2, fontsize=8,
               frameon=False)
    fig.suptitle(f"Onset depth: first depth where >= {rules.THRESHOLD:g} of the usable seeds memorize "
                 f"(cells with >= {rules.MIN_SEEDS} usable seeds)\n"
                 "bars: from the first depth where some seed memorizes "
                 "to the first where every seed does", fontsize=9)
    return fig


def boundary_ax(onsets: pd.DataFrame, ax: plt.Axes | None = None, legend: bool = True) -> plt.Axes:
    """One panel of ``boundary`` on ``ax`` (the current Axes if None), with its key to the marks
    (``legend``); -> that Axes. ``onsets``: ``boundary.table`` rows of one panel (one value of every
    line axis but n_train and width)."""
    _require(onsets, "onset depths")
    _one_panel(onsets, _boundary_apart(onsets), "boundary")
    top, ns, colours, marks = _boundary_marks(onsets)
    ax = _target(ax)
    _boundary_panel(ax, onsets, _title(onsets, ["arch"]), top, ns, colours, marks)
    if legend:
        ax.legend(handles=_boundary_handles(onsets, ns, colours, marks), fontsize=7, frameon=False)
    return ax


def savefig(fig: plt.Figure, path: str) -> str:
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path


# --- the headline at scale: stored share, census, robustness (analysis/census.py) ----------------------

def stored_share_ax(trials: pd.DataFrame, x: str = "n_train", hue: str = "dataset",
                    ax: plt.Axes | None = None) -> plt.Axes:
    """The share of its training images each net of the evidence (``evidence.tested_rows``) stores as
    attractors (attractor_frac), one dot per net, against ``x`` (n_train or depth), one colour per ``hue``
    value, a line through the medians; on ``ax`` (the current Axes if None) -> that Axes."""
    t = evidence.tested_rows(trials)
    if t.empty:
        raise ValueError("no usable trial in a tested cell: nothing to draw")
    ax = _target(ax)
    order = sorted(t[hue].unique()) if hue in t else None
    palette, apart = _palette(order, numeric=False), bool(order) and len(order) > 1
    sns.stripplot(data=t, x=x, y="attractor_frac", hue=hue if order else None, hue_order=order, palette=palette,
                  dodge=apart, jitter=0.15, size=5, alpha=0.8, ax=ax)
    sns.pointplot(data=t, x=x, y="attractor_frac", hue=hue if order else None, hue_order=order, palette=palette,
                  estimator="median", errorbar=None, dodge=0.55 if apart else False, markers="_", linestyles=":",
                  ax=ax, legend=False)
    ax.set(ylim=(-0.03, 1.03), ylabel="stored share (attractor_frac)", xlabel=x)
    return ax


def stored_share(trials: pd.DataFrame, x: str = "n_train", hue: str = "dataset") -> plt.Figure:
    """``stored_share_ax``, one panel per value of the other cell axes (depth, width, arch where they vary)."""
    t = evidence.tested_rows(trials)
    facets = [a for a in evidence.cell_axes(trials) if a not in (x, hue)]
    panels = _panels(t, facets)
    fig, axes = _grid(len(panels), size=(3.4, 2.8), sharey=True)
    for ax, (title, g) in zip(axes, panels):
        stored_share_ax(g, x, hue, ax=ax)
        ax.set_title(title, fontsize=9)
    from . import census
    cells = census.stored(trials)
    gone = [", ".join(f"{a}={r[a]}" for a in (hue, x) if a in cells) + f" ({r.n_usable} of {r.n_trials} usable)"
            for _, r in cells[~cells.tested].iterrows()]
    fig.suptitle(f"Stored share: training images that are attractors, one dot per net ({_seeds(trials)}); "
                 "dotted: median" + (f"\nnot shown, too few usable nets: {'; '.join(gone)}" if gone else ""),
                 fontsize=9)
    return fig


CENSUS_COLOURS = ("#4c72b0", "#dd8452", "#8172b3", "#c44e52", "#bbbbbb")  # memory, spurious, cycle, diverged, moving


def census_ax(census_counts: pd.DataFrame, by: tuple[str, ...] = ("dataset", "n_train"),
              ax: plt.Axes | None = None) -> plt.Axes:
    """Where held-out and random starts ended (``census.counts``), pooled per group ``by``: one stacked bar
    of the five census classes' shares per group; on ``ax`` -> that Axes."""
    from . import census
    by = [b for b in by if b in census_counts]
    s = census.shares(census_counts, by)
    ax = _target(ax)
    labels = [" ".join(str(r[b]) for b in by) for _, r in s.iterrows()]
    bottom = np.zeros(len(s))
    for name, col, colour in zip(rules.CENSUS, census.CLASSES, CENSUS_COLOURS):
        ax.bar(labels, s[col], bottom=bottom, color=colour, label=name, width=0.7)
        bottom += s[col].to_numpy()
    for i, r in s.reset_index(drop=True).iterrows():
        ax.text(i, 1.01, f"{int(r.starts)}", ha="center", va="bottom", fontsize=7)
    ax.set(ylim=(0, 1.08), ylabel="share of the census starts", xlabel=" / ".join(by))
    ax.tick_params(axis="x", labelrotation=30, labelsize=8)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False)
    return ax


def census_bar(census_counts: pd.DataFrame, by: tuple[str, ...] = ("dataset", "n_train")) -> plt.Figure:
    """``census_ax`` as a figure, titled with what it pools."""
    fig, ax = plt.subplots(figsize=(1.0 + 0.8 * max(3, len(census_counts.groupby(
        [b for b in by if b in census_counts]).size())), 3.0), layout="constrained")
    census_ax(census_counts, by, ax=ax)
    fig.suptitle(f"Census: where iteration from held-out and random starts ended, pooled over "
                 f"{census_counts.trial_id.nunique()} nets (number of starts above each bar)", fontsize=9)
    return fig


def robustness_ax(trials: pd.DataFrame, examples: pd.DataFrame, against: str = "memory_spectral_radius",
                  hue: str = "dataset", ax: plt.Axes | None = None) -> plt.Axes:
    """Basin radius against ``against`` (rho or sigma_1 of J_f at the memory), one dot per training example
    with a memory in a usable net (basin radii jittered: they take the few tested sigmas), one colour per
    ``hue`` value; on ``ax`` -> that Axes."""
    from . import census
    t = evidence.tested_rows(trials)
    ex = examples[examples.trial_id.isin(t.trial_id) & examples.memory_found.astype(bool)].dropna(
        subset=[against, "basin_radius"]).merge(t[["trial_id", *([hue] if hue in t else [])]], on="trial_id")
    if ex.empty:
        raise ValueError("no training example with a memory in a usable trial of a tested cell: nothing to draw")
    ax = _target(ax)
    order = sorted(ex[hue].unique()) if hue in ex else None
    jitter = np.random.default_rng(0).uniform(-0.006, 0.006, len(ex))
    sns.scatterplot(x=ex[against], y=ex.basin_radius + jitter, hue=ex[hue] if order else None, hue_order=order,
                    palette=_palette(order, numeric=False), s=10, alpha=0.5, linewidth=0, ax=ax)
    if against == "memory_spectral_radius":
        ax.axvline(1.0, color="0.4", ls="--", lw=0.8)
    ax.set(xlabel=f"{census.JACOBIAN[against]} of J_f at the memory", ylabel="basin radius (sigma)")
    return ax


def robustness(trials: pd.DataFrame, examples: pd.DataFrame, hue: str = "dataset") -> plt.Figure:
    """Basin radius against rho and against sigma_1 at the memory, side by side (``robustness_ax``), each
    panel titled with ``census.robustness``' median per-net Spearman correlation and its interval."""
    from . import census
    fig, axes = plt.subplots(1, 2, figsize=(8.0, 3.4), sharey=True, layout="constrained")
    for ax, corr in zip(axes, census.robustness(trials, examples)):
        robustness_ax(trials, examples, corr.against, hue, ax=ax)
        ax.set_title(corr.summary().replace(" (", "\n(", 1), fontsize=8)
    fig.suptitle("Robustness against the Jacobian at the memory: one dot per training example with a memory",
                 fontsize=9)
    return fig
