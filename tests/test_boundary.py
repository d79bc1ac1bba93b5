"""The boundary: onset depth against width over interpolated trials, and its trend per doubling of
width, on hand-built trials with a planted boundary (no training)."""
import itertools
import os

import matplotlib
import numpy as np
import pandas as pd
import pytest

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from analysis import boundary, evidence, plots, report  # noqa: E402
from study import rules  # noqa: E402

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


def test_a_planted_boundary_is_read_back_with_its_trend_and_its_permutation_test():
    trials = planted(falls_two_per_doubling, late=(2, 1024))
    table = boundary.table(trials)
    assert table.set_index("width").onset_depth.to_dict() == {256: 10, 512: 8, 1024: 6}
    (row,) = boundary.trend(trials).to_dict("records")
    assert row["slope"] == pytest.approx(-2.0) and row["widths"] == [256, 512, 1024]
    # (3!)^3 = 216 relabellings of width within seeds; the observed onsets are the steepest fall, shared by 10
    assert (row["n_perms"], row["p_falls"], row["p_rises"], row["outcome"]) == (216, pytest.approx(10 / 216), 1.0,
                                                                                 "falls")
    text = boundary.describe(row)
    assert text == ("onset depth falls: -2.00 per doubling of width over widths 256-1024 (one-sided permutation "
                    "p = 0.046 of 216 relabellings of width within seeds)")
    # the slope is that of the table's onsets: one onset per grid point on every page
    assert boundary.slope(np.log2(table.width), table.onset_depth) == row["slope"]


def test_the_trend_test_is_exact_by_enumeration():
    # recompute the null by hand: every assignment of each seed's three profiles to the three widths
    trials = planted(falls_two_per_doubling, late=(2, 1024))
    m, present, widths, depths = evidence.profiles(trials, "width")
    null = []
    for orders in itertools.product(itertools.permutations(range(3)), repeat=3):
        mp = np.stack([m[list(o), s] for s, o in enumerate(orders)], axis=1)  # widths x seeds x depths
        onset, status = evidence.profile_onsets(mp, present, depths)
        ok = status == "reached"
        null.append(boundary.slope(np.log2(widths[ok]), onset[ok]) if ok.sum() >= 2 else np.nan)
    null = np.array(null)
    t = boundary.trend_test(m, present, widths, depths)
    defined = null[~np.isnan(null)]
    assert t["p_falls"] == pytest.approx(np.mean(defined <= -2 + 1e-9)) and t["n_perms"] == len(defined)


def test_a_flat_boundary_is_no_clear_change_and_lines_per_n_are_kept_apart():
    trials = planted(lambda w, n: 4 if n == 1 else 7, ns=(1, 10), late=(1, 512))
    t = boundary.trend(trials).set_index("n_train")
    assert t.loc[1, "slope"] == 0 and t.loc[10, "slope"] == 0 and (t.outcome == "no clear change").all()
    assert "no clear change" in boundary.describe(t.loc[10].to_dict() | {"n_train": 10})
    floor = boundary.trend(planted(lambda w, n: 1)).iloc[0]
    assert floor["slope"] == 0 and "every onset is at the shallowest depth tested (1)" in floor["note"]
    lines = boundary.trend_lines(trials)
    assert len(lines) == 2 and lines[0].startswith("arch=fc") and "n_train=1" in lines[0]


def test_trials_that_did_not_interpolate_are_untested_and_make_the_onset_a_bound():
    # the shallow nets of width 256 did not fit but 'memorize': as evidence they would pull its onset to 1
    def status(r):
        return "not_converged" if r["width"] == 256 and r["depth"] < 10 else "ok"
    trials = planted(falls_two_per_doubling, status=status)
    trials.loc[trials.status == "not_converged", ["attractor_frac", "retrieval_same_frac"]] = 1.0
    table = boundary.table(trials).set_index("width")
    assert table.loc[256, "onset_depth"] == 10 and table.loc[256, "status"] == rules.BOUND
    assert table.loc[256, "untested"] == list(range(1, 10)) and table.loc[512, "untested"] == []
    (row,) = boundary.trend(trials).to_dict("records")
    assert row["widths"] == [512, 1024] and "width 256: at most 10" in row["note"]


def test_a_width_whose_rate_falls_back_gets_no_onset_in_the_trend():
    trials = planted(falls_two_per_doubling)
    dip = (trials.width == 1024) & (trials.depth == 9)  # memorizes from 6, but not at 9
    trials.loc[dip, ["attractor_frac", "retrieval_same_frac"]] = 0.0
    table = boundary.table(trials).set_index("width")
    assert table.loc[1024, "status"] == rules.NOT_MONOTONE and table.loc[512, "status"] == rules.REACHED
    (row,) = boundary.trend(trials).to_dict("records")
    assert row["widths"] == [256, 512] and row["slope"] == pytest.approx(-2.0)
    assert "width 1024: not monotone" in row["note"]


def test_a_line_with_one_reached_width_has_no_trend_and_says_why():
    trials = planted(lambda w, n: 5 if w == 256 else 99)
    (row,) = boundary.trend(trials).to_dict("records")
    assert np.isnan(row["slope"]) and row["outcome"] == "no trend" and "width 512: not reached" in row["note"]
    assert boundary.describe(row).startswith("no trend:") and "a trend needs two" in row["note"]


def test_a_line_whose_cells_are_short_of_seeds_has_no_trend():
    trials = planted(falls_two_per_doubling, seeds=(0, 1))  # two seeds everywhere: every cell untested
    (row,) = boundary.trend(trials).to_dict("records")
    assert row["outcome"] == "no trend" and "width 256: no evidence" in row["note"]


def test_the_boundary_figure_marks_every_status_of_the_onset_rule():
    def status(r):  # width 256 at n=1: nothing fits
        return "not_converged" if r["width"] == 256 and r["n_train"] == 1 else "ok"
    trials = planted(lambda w, n: 5 if w == 256 else 99 if w == 1024 else 3, ns=(1, 10), status=status)
    dip = (trials.width == 512) & (trials.n_train == 10) & (trials.depth == 8)
    trials.loc[dip, ["attractor_frac", "retrieval_same_frac"]] = 0.0
    fig = plots.boundary(boundary.table(trials))
    (ax,) = [a for a in fig.axes if a.get_visible()]
    assert ax.get_xscale() == "log" and ax.get_xlabel() == "width (log2)"
    marks = {}
    for c in ax.collections:
        marks.setdefault(c.get_gid(), []).extend(np.asarray(c.get_offsets()).tolist())
    assert marks[rules.NOT_REACHED] == [[1024, 13], [1024, 13]]  # n=1 and n=10, drawn at depth 12 + 1
    assert marks[rules.NOT_MONOTONE] == [[512, 3]]  # n=10's rate falls back at 8
    assert marks[rules.NO_EVIDENCE] == [[256, 0]]
    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    assert legend[:2] == ["n_train=1", "n_train=10"] and "rate not monotone in depth: no onset" in legend
    plt.close(fig)


def test_the_report_draws_the_boundary_only_for_two_or_more_widths_or_n():
    from types import SimpleNamespace
    empty = pd.DataFrame(columns=["trial_id", "step", "loss"])
    for widths, shown in (((256, 512), True), ((256,), False)):
        res = SimpleNamespace(trials=planted(lambda w, n: 5, widths=widths), examples=pd.DataFrame(),
                              retrieval=pd.DataFrame(), curves=empty)
        names = [name for name, _, _ in report.figures(res, trajectories=False)]
        assert ("boundary.png" in names) is shown


def test_runs_side_by_side_keep_their_own_lines_and_sides(tmp_path):
    # natural images at the data set's own side (image_size None, read from input_dim) beside random
    # images whose onset is two depths shallower: two lines, two panels, each its own onsets
    natural = planted(falls_two_per_doubling).assign(image_size=None, channels=None, input_dim=625)
    random = planted(lambda w, n: falls_two_per_doubling(w, n) - 2).assign(dataset="uniform", image_size=25,
                                                                           channels=None, input_dim=625)
    for name, t in (("natural", natural), ("random", random)):
        t.to_parquet(tmp_path / f"{name}.parquet")
    trials = boundary.side_by_side([natural, random])
    assert set(trials.image_size) == {25}
    onsets = boundary.table(trials).set_index(["dataset", "width"]).onset_depth.to_dict()
    assert onsets == {("lfw", 256): 10, ("lfw", 512): 8, ("lfw", 1024): 6,
                      ("uniform", 256): 8, ("uniform", 512): 6, ("uniform", 1024): 4}
    from analysis import snapshot
    out = snapshot.boundary_figure([str(tmp_path / "natural.parquet"), str(tmp_path / "random.parquet")],
                                   str(tmp_path / "b.png"))
    assert os.path.getsize(out) > 1000
