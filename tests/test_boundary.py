"""The boundary: onset depth against width over interpolated trials, and its trend per doubling of
width, on hand-built trials with a planted boundary (no training)."""
import itertools

import matplotlib
import numpy as np
import pandas as pd
import pytest

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from analysis import boundary, maps, plots, report  # noqa: E402

DEPTHS = list(range(1, 13))


def planted(onset, widths=(256, 512, 1024), ns=(10,), seeds=(0, 1, 2), late=(None, None), status=lambda r: "ok"):
    """Trials that memorize from depth ``onset(width, n)`` on; ``late`` = (seed, width): that seed
    memorizes one depth later at that width (width None: at every width)."""
    rows = []
    for w, n, d, s in itertools.product(widths, ns, DEPTHS, seeds):
        start = onset(w, n) + (1 if s == late[0] and late[1] in (None, w) else 0)
        row = {"trial_id": f"fc-d{d}-w{w}-n{n}-s{s}", "arch": "fc", "width": w, "n_train": n, "depth": d, "seed": s,
               "activation": "leaky_relu", "dataset": "lfw"}
        row["status"] = status(row)
        frac = 1.0 if d >= start else 0.0
        rows.append({**row, "attractor_frac": frac, "retrieval_same_frac": frac})
    return pd.DataFrame(rows)


def falls_two_per_doubling(w, n):
    return int(10 - 2 * np.log2(w / 256))  # 10, 8, 6 at widths 256, 512, 1024


def test_slope_is_the_least_squares_change_per_unit_of_log2_width():
    assert boundary.slope(np.log2([256, 512, 1024]), [10, 8, 6]) == pytest.approx(-2.0)
    assert boundary.slope([0, 1, 3], [1, 2, 3]) == pytest.approx(9 / 14)  # sum du*do / sum du^2 by hand
    assert np.isnan(boundary.slope([1.0], [3.0])) and np.isnan(boundary.slope([2.0, 2.0], [1.0, 5.0]))


def test_a_planted_boundary_is_read_back_with_its_trend_and_an_interval_around_it():
    trials = planted(falls_two_per_doubling, late=(2, 1024))
    table = boundary.table(trials)
    assert table.set_index("width").onset_depth.to_dict() == {256: 10, 512: 8, 1024: 6}
    (row,) = boundary.trend(trials).to_dict("records")
    assert row["slope"] == pytest.approx(-2.0) and row["widths"] == [256, 512, 1024]
    # draws where seed 2 is the majority put width 1024's onset at 7: slope -1.5; never above 0
    assert row["slope_low"] == pytest.approx(-2.0) and row["slope_high"] == pytest.approx(-1.5)
    assert row["p_defined"] == 1.0
    # a seed late at every width shifts every onset together: the slope does not move (seeds resampled jointly)
    (same,) = boundary.trend(planted(falls_two_per_doubling, late=(2, None))).to_dict("records")
    assert same["slope_low"] == same["slope_high"] == pytest.approx(-2.0)
    text = boundary.describe(row)
    assert text.startswith("onset depth falls: -2.00 per doubling of width (90% CI") and "widths 256-1024" in text


def test_a_flat_boundary_is_no_clear_change_and_lines_per_n_are_kept_apart():
    trials = planted(lambda w, n: 4 if n == 1 else 7, ns=(1, 10), late=(1, 512))
    t = boundary.trend(trials).set_index("n_train")
    assert t.loc[1, "slope"] == 0 and t.loc[10, "slope"] == 0
    assert "no clear change" in boundary.describe(t.loc[10].to_dict() | {"n_train": 10})
    floor = boundary.trend(planted(lambda w, n: 1)).iloc[0]
    assert floor["slope"] == 0 and "every onset is at the shallowest depth tested (1)" in floor["note"]
    lines = boundary.trend_lines(trials)
    assert len(lines) == 2 and lines[0].startswith("arch=fc") and "n_train=1" in lines[0]


def test_trials_that_did_not_interpolate_are_left_out_and_counted():
    # the shallow nets of width 256 did not fit but 'memorize': as evidence they would pull its onset to 1
    def status(r):
        return "not_converged" if r["width"] == 256 and r["depth"] < 10 else "ok"
    trials = planted(falls_two_per_doubling, status=status)
    trials.loc[trials.status == "not_converged", ["attractor_frac", "retrieval_same_frac"]] = 1.0
    table = boundary.table(trials).set_index("width")
    assert table.loc[256, "onset_depth"] == 10 and table.loc[256, "n_excluded"] == 9 * 3
    assert table.loc[512, "n_excluded"] == 0
    assert table.loc[256, "depths"] == [10, 11, 12]


def test_a_width_whose_rate_falls_back_gets_no_onset_in_the_trend():
    trials = planted(falls_two_per_doubling)
    dip = (trials.width == 1024) & (trials.depth == 9)  # memorizes from 6, but not at 9
    trials.loc[dip, ["attractor_frac", "retrieval_same_frac"]] = 0.0
    table = boundary.table(trials).set_index("width")
    assert not table.loc[1024, "monotone"] and table.loc[512, "monotone"]
    assert "not monotone" in maps.describe_onset(table.loc[1024].to_dict() | {"depths": DEPTHS})
    (row,) = boundary.trend(trials).to_dict("records")
    assert row["widths"] == [256, 512] and row["slope"] == pytest.approx(-2.0)
    assert "width 1024: rate not monotone in depth" in row["note"]


def test_a_line_with_one_reached_width_has_no_trend_and_says_why():
    trials = planted(lambda w, n: 5 if w == 256 else 99)
    (row,) = boundary.trend(trials).to_dict("records")
    assert np.isnan(row["slope"]) and "not reached by depth 12" in row["note"]
    assert boundary.describe(row).startswith("no trend:") and "a trend needs two" in row["note"]


def test_the_boundary_figure_draws_onsets_open_triangles_and_crosses():
    trials = planted(lambda w, n: 5 if w == 256 else 99 if w == 1024 else 3, ns=(1, 10))
    dip = (trials.width == 512) & (trials.n_train == 10) & (trials.depth == 8)
    trials.loc[dip, ["attractor_frac", "retrieval_same_frac"]] = 0.0
    fig = plots.boundary(boundary.table(trials))
    (ax,) = [a for a in fig.axes if a.get_visible()]
    assert ax.get_xscale() == "log" and ax.get_xlabel() == "width (log2)"
    offsets = [c.get_offsets() for c in ax.collections if len(c.get_offsets())]
    top = np.array([o for o in offsets if (np.asarray(o)[:, 1] == 13).all()])
    assert len(top) == 2  # width 1024 not reached, for n=1 and n=10, drawn at depth 12 + 1
    assert any((np.asarray(o) == [[512, 3]]).all() for o in offsets)  # the cross: n=10's rate falls back
    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    assert legend[:2] == ["n_train=1", "n_train=10"] and "rate not monotone in depth" in legend
    plt.close(fig)


def test_the_report_draws_the_boundary_only_for_two_or_more_widths_or_n():
    from types import SimpleNamespace
    empty = pd.DataFrame(columns=["trial_id", "step", "loss"])
    for widths, shown in (((256, 512), True), ((256,), False)):
        res = SimpleNamespace(trials=planted(lambda w, n: 5, widths=widths), examples=pd.DataFrame(),
                              retrieval=pd.DataFrame(), curves=empty)
        names = [name for name, _, _ in report.figures(res, trajectories=False)]
        assert ("boundary.png" in names) is shown
