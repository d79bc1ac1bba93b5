"""Figures a reader can trust: intervals with known answers, marks on the cells that need them, no
more than four columns of panels, every varying axis either drawn apart or named as pooled, and one
figure list for the report and the notebook. Small hand-built frames; no training."""
import itertools
import os
import subprocess
import sys
from types import SimpleNamespace

import matplotlib
import nbformat
import numpy as np
import pandas as pd
import pytest

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from analysis import boundary, claims, evidence, maps, plots, report  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUTCOMES = ("same_frac", "any_frac", "spurious_frac", "none_frac")


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def sweep(activations=("selu",), archs=("fc",), depths=(2, 4), widths=(64,), seeds=(0, 1, 2),
          status=lambda row: "ok") -> SimpleNamespace:
    """A tiny results folder's tables: the deeper the net, the more it memorizes; ``status(row)`` sets
    each trial's status, and a diverged or failed trial has no probe values (as in study.trial.run)."""
    trials, examples, retrieval, curves = [], [], [], []
    for a, arch, d, w, s in itertools.product(activations, archs, depths, widths, seeds):
        row = {"trial_id": f"{arch}-d{d}-w{w}-{a}-s{s}", "arch": arch, "depth": d, "width": w, "activation": a,
               "n_train": 4, "dataset": "digits", "seed": s}
        row["status"] = status(row)
        probed = row["status"] in ("ok", "not_converged")
        frac = min(1.0, 0.2 * d + 0.1 * s) if probed else np.nan
        trials.append({**row, "attractor_frac": frac, "retrieval_same_frac": frac, "spurious_frac": 1 - frac,
                       "spectral_radius_median": 1.5 - 0.1 * d})
        if not probed:
            continue
        tid = row["trial_id"]
        examples += [{"trial_id": tid, "example": i, "spectral_radius": 1.4 - 0.1 * d + 0.05 * i,
                      "top_singular_value": 1.5, "basin_radius": 0.1} for i in range(4)]
        for sigma in (0.05, 0.1, 0.2):  # any + spurious + none = 1
            same = frac * (1 - sigma)
            retrieval.append({"trial_id": tid, "start": "noisy", "sigma": sigma, "n_starts": 8, "same_frac": same,
                              "any_frac": same + 0.05, "spurious_frac": 0.9 - same, "none_frac": 0.05})
        retrieval.append({"trial_id": tid, "start": "random", "sigma": np.nan, "n_starts": 8, "same_frac": np.nan,
                          "any_frac": 0.5, "spurious_frac": 0.5, "none_frac": 0.0})
        curves += [{"trial_id": tid, "step": t, "loss": 1.0 / (t + 1)} for t in (0, 10, 100)]
    return SimpleNamespace(trials=pd.DataFrame(trials), examples=pd.DataFrame(examples),
                           retrieval=pd.DataFrame(retrieval), curves=pd.DataFrame(curves))


def panels(fig) -> list:
    """The data panels of a figure: visible axes other than colour bars."""
    return [ax for ax in fig.axes if ax.get_visible() and ax.get_label() != "<colorbar>"]


def words(fig) -> str:
    """Every piece of text a reader sees: suptitle, panel titles and labels, legends."""
    fig.canvas.draw()
    parts = [fig.get_suptitle()]
    for ax in panels(fig):
        parts += [ax.get_title(), ax.get_ylabel(), ax.get_xlabel()]
    for legend in [*fig.legends, *(ax.get_legend() for ax in panels(fig))]:
        if legend is not None:
            parts += [legend.get_title().get_text(), *(t.get_text() for t in legend.get_texts())]
    return "\n".join(parts)


# --- phase maps -------------------------------------------------------------------------------------------

def test_phase_map_colours_only_tested_cells_and_marks_each_cell_whose_seeds_did_not_all_train():
    def status(r):
        if r["depth"] == 4 and r["seed"] == 1:
            return "diverged"
        return "not_converged" if r["depth"] == 2 and r["seed"] == 0 else "ok"
    res = sweep(depths=(2, 4, 6), seeds=(0, 1, 2, 3), status=status)
    fig = plots.phase_map(res.trials)
    (ax,) = panels(fig)
    hatched = {(p.get_x(), p.get_hatch()) for p in ax.patches if p.get_hatch()}
    assert hatched == {(0, "///"), (1, "xxx")}  # depth 2: did not converge, depth 4: diverged; depth 6: none
    texts = [t.get_text() for t in ax.texts]
    # depth 2: seeds 1-3 usable, 1.0 x 0.4 + 0.1 s -> 0.5, 0.6, 0.7 all memorize; depth 4: three usable of four
    assert texts == ["1.00\n3/3 (3/4 fit)", "1.00\n3/3 (3/4 fit)", "1.00\n4/4"]
    legend = words(fig)
    assert "///: a seed did not converge" in legend and "xxx: a seed diverged" in legend
    assert "Clopper-Pearson interval" in legend and "3/3 -> 0.37-1.00" in fig.get_suptitle()
    bars = [line for line in ax.lines if line.get_gid() == "interval"]
    assert len(bars) == 3
    x0, x1 = bars[2].get_xdata()  # depth 6: 4/4 memorize -> [0.05^(1/4), 1] of the cell's 0.1..0.9 span
    assert (x0 - 2.1) / 0.8 == pytest.approx(0.05 ** 0.25, abs=1e-6) and x1 == pytest.approx(2.9)


def test_a_cell_short_of_usable_seeds_is_blank_and_says_too_few():
    res = sweep(depths=(1, 4), status=lambda r: "not_converged" if r["depth"] == 4 and r["seed"] else "ok")
    fig = plots.phase_map(res.trials)
    (ax,) = panels(fig)
    assert [t.get_text() for t in ax.texts] == ["0.00\n0/3", "1/3 fit:\ntoo few"]
    mesh = ax.collections[0].get_array()
    assert np.ma.getmaskarray(mesh).ravel().tolist() == [False, True]  # depth 4 is not coloured
    assert len([line for line in ax.lines if line.get_gid() == "interval"]) == 1  # no interval for it either
    assert "fewer than 3 usable seeds, no rate" in words(fig)
    assert not [p for p in ax.patches if p.get_gid() == "onset"]  # no onset from one seed


def test_a_phase_map_with_no_tested_cell_says_why_not_that_there_are_no_seeds():
    fig = plots.phase_map(sweep(seeds=(0, 1)).trials)  # two usable seeds per cell, three needed
    title = fig.get_suptitle()
    assert title.startswith("No cell tested: each has fewer than the 3 usable seeds") and "(at most 2)" in title
    assert "Clopper-Pearson intervals:" not in title and "no usable seeds" not in title


def test_phase_map_of_trials_with_probe_values_only_loses_the_marks():
    """Why the report passes every trial: the diverged seed is invisible once it is filtered out."""
    res = sweep(depths=(4,), status=lambda r: "diverged" if r["seed"] == 1 else "ok")
    probed = res.trials[res.trials.attractor_frac.notna()]
    assert not [p for p in panels(plots.phase_map(probed))[0].patches if p.get_hatch()]
    assert [p.get_hatch() for p in panels(plots.phase_map(res.trials))[0].patches if p.get_hatch()] == ["xxx"]


def test_attractor_frac_view_is_the_mean_over_seeds_with_their_range():
    res = sweep(depths=(2, 4))
    fig = plots.phase_map(res.trials, value="attractor_frac")
    (ax,) = panels(fig)
    # depth 2: 0.4, 0.5, 0.6 -> mean 0.50; depth 4: 0.8, 0.9, 1.0 -> 0.90
    assert [t.get_text() for t in ax.texts] == ["0.50", "0.90"]
    bars = [line.get_xdata() for line in ax.lines if line.get_gid() == "interval"]
    assert [tuple((x - i - 0.1) / 0.8) for i, x in enumerate(bars)] == [pytest.approx((0.4, 0.6)),
                                                                         pytest.approx((0.8, 1.0))]
    assert not [p for p in ax.patches if p.get_gid() == "onset"]  # onset frames belong to the rate
    assert "attractor_frac" in fig.axes[-1].get_ylabel()  # the colour bar says what the colour is
    with pytest.raises(ValueError, match="value must be one of"):
        plots.phase_map(res.trials, value="rho")


# --- layout and what each figure pools --------------------------------------------------------------------

def many_panels() -> SimpleNamespace:
    """Three activations x two archs x two widths: six panels or rows, more than fit in one row."""
    return sweep(activations=("relu", "selu", "tanh"), archs=("fc", "conv"), depths=(2, 4), widths=(32, 64),
                 seeds=(0, 1))


FIGURES = {
    "phase_map": lambda res: plots.phase_map(res.trials),
    "attractor_frac": lambda res: plots.phase_map(res.trials, value="attractor_frac"),
    "metric_vs_depth": lambda res: plots.metric_vs_depth(res.trials, "attractor_frac"),
    "retrieval_vs_sigma": lambda res: plots.retrieval_vs_sigma(res.retrieval, res.trials),
    "loss_curves": lambda res: plots.loss_curves(res.curves, res.trials),
    "rho_distribution": lambda res: plots.rho_distribution(res.examples, res.trials),
    "operator_study": lambda res: plots.operator_study(res.trials.assign(
        operator_near_one=1.0, operator_rest_radius=0.5, span_dim=1, kernel_size=3, input_dim=64, channels=1,
        image_size=res.trials.activation.map({"relu": 4, "selu": 5, "tanh": 6}) + 3 * (res.trials.arch == "fc"))),
}


@pytest.mark.parametrize("name", FIGURES)
def test_panels_wrap_at_four_columns_and_every_varying_axis_is_drawn_apart_or_named(name, monkeypatch):
    monkeypatch.setattr(plots, "BAND", ("se", 1))  # layout and words only: spare the bootstrap its seconds
    res = many_panels()
    fig = FIGURES[name](res)
    text = words(fig)  # draws the figure: the positions below are the laid-out ones
    shown = panels(fig)
    columns = {round(ax.get_position().x0, 2) for ax in shown}
    rows = {round(ax.get_position().y0, 2) for ax in shown}
    assert len(columns) <= plots.MAX_COLS and len(shown) <= plots.MAX_COLS * len(rows), (len(columns), len(rows))
    w, h = fig.get_size_inches()
    assert w <= 16 and h <= 16  # wrapped, not one endless row or column
    if name == "operator_study":  # linear nets: its own axes (image side, arch, width), medians over seeds
        assert "median over 2 seeds" in fig.get_suptitle()
        return
    for axis in [c for c in maps.varying(res.trials) if c != "seed"]:
        assert axis in text, f"{name} averages over {axis} without saying so"
    assert "seed" in fig.get_suptitle()
    if name == "phase_map" and fig.get_suptitle().startswith("No cell tested"):
        return  # 2 seeds a cell: nothing coloured, nothing pooled, and the title says why
    if name != "loss_curves":  # one line per trial there: nothing pooled, the seeds overlaid
        assert any(word in fig.get_suptitle() for word in ("interval", "pool", "mean over"))


def test_curves_keep_activation_apart_where_they_used_to_average_it():
    res = sweep(activations=("relu", "tanh"), depths=(2, 4), widths=(32, 64))
    fig = plots.metric_vs_depth(res.trials, "attractor_frac")
    lines = [line for line in panels(fig)[0].lines if len(line.get_xdata()) == 2]
    assert len(lines) == 4  # width x activation, one line each (hue x style), none averaged
    legend = [t.get_text() for t in panels(fig)[0].get_legend().get_texts()]
    assert {"activation", "relu", "tanh", "width", "32", "64"} <= set(legend)


def test_retrieval_shows_same_any_spurious_and_none():
    res = sweep(depths=(2, 4))
    fig = plots.retrieval_vs_sigma(res.retrieval, res.trials)
    shown = panels(fig)
    assert [ax.get_title().split(":")[0] for ax in shown] == ["same", "any", "spurious", "none"]
    noisy = res.retrieval[res.retrieval.start == "noisy"].merge(res.trials[["trial_id", "depth"]], on="trial_id")
    for ax, outcome in zip(shown, OUTCOMES):
        want = noisy[noisy.depth == 4].groupby("sigma")[outcome].mean().to_numpy()
        drawn = [line.get_ydata() for line in ax.lines if len(line.get_xdata()) == 3]
        assert any(np.allclose(y, want) for y in drawn), outcome  # the mean over seeds, per sigma
        assert [t.get_text() for t in ax.get_xticklabels()] == ["0.05", "0.1", "0.2"]


def test_rho_distribution_boxes_every_example_with_a_line_at_one():
    res = sweep(depths=(2, 4), widths=(32, 64))
    fig = plots.rho_distribution(res.examples, res.trials)
    (ax,) = panels(fig)
    assert [t.get_text() for t in ax.get_xticklabels()] == ["2", "4"]
    assert any(np.allclose(line.get_ydata(), 1.0) for line in ax.lines)  # the attractor threshold
    assert {t.get_text() for t in ax.get_legend().get_texts()} == {"32", "64"}
    assert "3 seeds x 4 examples" in fig.get_suptitle()


# --- axes-level functions: one panel on an Axes of the reader's own figure --------------------------------

def linear(trials: pd.DataFrame) -> pd.DataFrame:
    """``trials`` as linear nets on 8x8 images: the operator keeps 2 x depth directions."""
    return trials.assign(operator_near_one=trials.depth * 2.0, operator_rest_radius=0.5, span_dim=4, kernel_size=3,
                         input_dim=64, channels=1, image_size=None)


def lines_through(ax, y) -> bool:
    return any(len(line.get_ydata()) == len(y) and np.allclose(line.get_ydata(), y) for line in ax.lines)


def ticks(ax) -> list[str]:
    return [t.get_text() for t in ax.get_xticklabels()]


# name: (draw one panel of sweep(widths=(32, 64)) on ax, what that panel must show)
AXES_LEVEL = {
    "phase_map_ax": (
        lambda res, ax: plots.phase_map_ax(res.trials, ax=ax),
        lambda ax: (ax.get_xlabel(), ax.get_ylabel()) == ("depth", "width") and ax.collections
        and {"2/3", "3/3"} <= {t.get_text().split("\n")[-1] for t in ax.texts}
        and len([p for p in ax.patches if p.get_gid() == "onset"]) == 2  # depth 2 at each width
        and ax.figure.axes[-1].get_ylabel() == "memorization rate"),  # its colour bar
    "metric_vs_depth_ax": (
        lambda res, ax: plots.metric_vs_depth_ax(res.trials, "attractor_frac", ax=ax),
        lambda ax: ax.get_ylabel() == "attractor_frac" and lines_through(ax, [0.5, 0.9])  # means over seeds
        and ax.get_legend().get_title().get_text() == "width"
        and [t.get_text() for t in ax.get_legend().get_texts()] == ["32", "64"]),
    "retrieval_vs_sigma_ax": (
        lambda res, ax: plots.retrieval_vs_sigma_ax(res.retrieval, res.trials, "any_frac", ax=ax),
        lambda ax: ax.get_title().startswith("any:") and ax.get_xscale() == "log"
        and ticks(ax) == ["0.05", "0.1", "0.2"] and len(ax.lines) >= 2),
    "rho_distribution_ax": (
        lambda res, ax: plots.rho_distribution_ax(res.examples, res.trials, ax=ax),
        lambda ax: ticks(ax) == ["2", "4"] and lines_through(ax, [1.0, 1.0]) and len(ax.patches) >= 4
        and {t.get_text() for t in ax.get_legend().get_texts()} == {"32", "64"}),
    "loss_curves_ax": (
        lambda res, ax: plots.loss_curves_ax(res.curves, res.trials[res.trials.width == 64], ax=ax),
        lambda ax: (ax.get_xscale(), ax.get_yscale()) == ("log", "log")
        and len([line for line in ax.lines if len(line.get_xdata()) == 3]) == 6),  # one line per trial
    "boundary_ax": (
        lambda res, ax: plots.boundary_ax(boundary.table(res.trials), ax=ax),
        lambda ax: (ax.get_xlabel(), ax.get_ylabel()) == ("width (log2)", "onset depth") and ticks(ax) == ["32", "64"]
        and lines_through(ax, [2, 2]) and "n_train=4" in [t.get_text() for t in ax.get_legend().get_texts()]),
    "operator_study_ax": (
        lambda res, ax: plots.operator_study_ax(linear(res.trials), ax=ax),
        lambda ax: ax.get_title() == "8x8 images" and ax.get_ylabel() == plots.OPERATOR["operator_near_one"]
        and lines_through(ax, [4.0, 8.0])),  # the median over seeds: 2 x depth
}


@pytest.mark.parametrize("name", AXES_LEVEL)
def test_an_axes_level_function_draws_on_the_given_axes_of_a_figure_of_ones_own(name, monkeypatch):
    monkeypatch.setattr(plots, "BAND", ("se", 1))  # spare the bootstrap its seconds
    draw, shows = AXES_LEVEL[name]
    fig, grid = plt.subplots(2, 2, figsize=(10, 8), layout="constrained")
    target = grid[1][0]
    figures = plt.get_fignums()
    assert draw(sweep(depths=(2, 4), widths=(32, 64)), target) is target
    assert plt.get_fignums() == figures  # no figure of its own
    assert shows(target)
    for other in (grid[0][0], grid[0][1], grid[1][1]):  # the reader's other panels stay as they were
        assert not other.has_data() and not other.texts and not other.get_title() and other.get_legend() is None


def test_an_axes_level_function_without_ax_draws_on_the_current_axes():
    res = sweep(depths=(2, 4), widths=(32, 64))
    fig, (left, right) = plt.subplots(1, 2)
    plt.sca(left)
    assert plots.rho_distribution_ax(res.examples, res.trials) is left and left.has_data() and not right.has_data()
    plt.close("all")
    ax = plots.boundary_ax(boundary.table(res.trials))  # no figure yet: pyplot's current Axes of a new one
    assert ax is plt.gca() and ax.get_ylabel() == "onset depth"


def test_an_axes_level_function_refuses_what_one_panel_cannot_keep_apart():
    res = sweep(archs=("fc", "conv"), depths=(2, 4), widths=(32, 64))
    with pytest.raises(ValueError, match=r"phase_map_ax draws one panel, but arch varies .*phase_map$"):
        plots.phase_map_ax(res.trials)
    with pytest.raises(ValueError, match="boundary_ax draws one panel, but arch varies"):
        plots.boundary_ax(boundary.table(res.trials))
    # a line plot keeps two axes apart on one Axes (colour, line style); a third would be averaged
    ax = plots.metric_vs_depth_ax(res.trials, "attractor_frac")
    assert {"arch", "fc", "conv", "width", "32", "64"} <= {t.get_text() for t in ax.get_legend().get_texts()}
    three = sweep(archs=("fc", "conv"), activations=("relu", "tanh"), depths=(2, 4), widths=(32, 64)).trials
    with pytest.raises(ValueError, match="activation varies"):
        plots.metric_vs_depth_ax(three, "attractor_frac")
    with pytest.raises(ValueError, match="one image side"):
        plots.operator_study_ax(linear(res.trials).assign(input_dim=res.trials.width))


def test_a_figure_draws_its_panels_with_its_axes_level_twin():
    res = sweep(archs=("fc", "conv"), depths=(2, 4), widths=(32, 64),
                status=lambda r: "diverged" if (r["arch"], r["depth"], r["seed"]) == ("conv", 4, 0) else "ok")
    fig = plots.phase_map(res.trials)
    conv = res.trials[res.trials.arch == "conv"]
    ax = plots.phase_map_ax(conv, onset=evidence.onsets(res.trials), ax=plt.figure().gca())  # every panel's onsets
    (panel,) = [p for p in panels(fig) if p.get_title() == "arch=conv"]
    assert [t.get_text() for t in ax.texts] == [t.get_text() for t in panel.texts]
    assert [(p.get_gid(), p.get_xy()) for p in ax.patches] == [(p.get_gid(), p.get_xy()) for p in panel.patches]
    assert ax.get_title() == "arch=conv"
    table = boundary.table(res.trials)
    fig = plots.boundary(table)
    ax = plots.boundary_ax(table[table.arch == "conv"], ax=plt.figure().gca())
    (panel,) = [p for p in panels(fig) if p.get_title() == "arch=conv"]
    assert [list(line.get_ydata()) for line in ax.lines] == [list(line.get_ydata()) for line in panel.lines]


# --- the report and the notebook draw one list ------------------------------------------------------------

def test_report_figures_are_named_captioned_and_drawable():
    res = sweep(depths=(2, 4), status=lambda r: "diverged" if (r["depth"], r["seed"]) == (4, 0) else "ok")
    listed = list(report.figures(res, trajectories=False))
    assert [n for n, _, _ in listed] == ["phase_map.png", "attractor_frac.png", "spectral_radius.png",
                                         "retrieval_sigma.png", "loss_curves.png"]
    for name, caption, draw in listed:
        fig = draw()
        assert caption and panels(fig), name
        plt.close(fig)
    fig = listed[0][2]()  # the report's phase map gets every trial, so the diverged seed is marked
    assert [p.get_hatch() for p in panels(fig)[0].patches if p.get_hatch()] == ["xxx"]
    assert list(report.figures(SimpleNamespace(trials=res.trials.iloc[:0]))) == []


def results(**kw) -> SimpleNamespace:
    """``sweep(**kw)`` as ``analysis.load`` gives it: every config field a column (its default where the
    sweep does not set it), as the claims read them."""
    from study.config import TrialConfig
    res = sweep(**kw)
    for field, value in TrialConfig().to_row().items():
        if field not in res.trials:
            res.trials[field] = [value] * len(res.trials)
    return res


def test_the_notebook_draws_the_report_figure_list():
    nb = nbformat.read(os.path.join(ROOT, "notebooks", "explore.ipynb"), as_version=4)
    nbformat.validate(nb)  # raises on anything that is not valid nbformat 4
    code = [c.source for c in nb.cells if c.cell_type == "code"]
    for call in ("report.figures(", "claims.verdicts(", "boundary.trend_lines(", "_ax("):  # the report's own
        assert any(call in c for c in code), call
    # its code cells, in order, on a synthetic sweep of two widths standing in for analysis.load
    script = "\n".join([
        "import analysis, sys",
        f"sys.path.insert(0, {os.path.join(ROOT, 'tests')!r})",
        "from test_plots import results",
        "analysis.load = lambda path: results(depths=(2, 4), widths=(32, 64))",
        *code,
    ])
    out = subprocess.run([sys.executable, "-c", script], cwd=os.path.join(ROOT, "notebooks"), capture_output=True,
                         text=True, timeout=120, env={**os.environ, "MPLBACKEND": "Agg", "PYTHONPATH": ROOT})
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.count("(bars: ") == 2 and "Training loss curves" in out.stdout  # the captions it printed
    assert "The memorization boundary" in out.stdout
    # the report's verdicts and boundary trends, line for line
    trials = results(depths=(2, 4), widths=(32, 64)).trials
    printed = out.stdout.splitlines()
    verdicts = [v.line() for v in claims.verdicts(trials)]
    assert [v.split(" ")[0] for v in verdicts] == ["C1", "C2", "C3", "C3-linear", "C4", "C5", "C6"]
    assert all(v in printed for v in verdicts)
    trends = boundary.trend_lines(trials)
    assert trends and all(f"boundary: {t}" in printed for t in trends)


def test_a_figure_without_data_says_what_is_missing():
    res = sweep()
    with pytest.raises(ValueError, match="no per-example spectral radii"):
        plots.rho_distribution(res.examples.iloc[:0], res.trials)
    with pytest.raises(ValueError, match="no noisy-start retrieval rows"):
        plots.retrieval_vs_sigma(res.retrieval[res.retrieval.start == "random"], res.trials)
