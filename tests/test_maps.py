"""Maps and onset depth on hand-built trials tables with known answers."""
import warnings
from statistics import NormalDist

import numpy as np
import pandas as pd
import pytest

from analysis import maps


def frame(memorizing: dict[tuple[str, int], list[int]], depths=(2, 4, 6, 8), seeds=(0, 1, 2)) -> pd.DataFrame:
    """One row per (arch, width, depth, seed); a trial memorizes when its depth is in the listed set
    for that seed: memorizing[(arch, width)][seed] = the first depth that memorizes (0: never)."""
    rows = []
    for (arch, width), firsts in memorizing.items():
        for seed, first in zip(seeds, firsts):
            for d in depths:
                yes = first and d >= first
                rows.append({"trial_id": f"{arch}-{width}-{d}-{seed}", "arch": arch, "width": width, "depth": d,
                             "seed": seed, "activation": "selu", "n_train": 10, "dataset": "digits",
                             "attractor_frac": 0.9 if yes else 0.2, "retrieval_same_frac": 0.8 if yes else 0.1})
    return pd.DataFrame(rows)


def test_memorized_needs_both_conditions_and_nan_is_no():
    t = pd.DataFrame({"attractor_frac": [0.9, 0.9, 0.2, np.nan, 0.9],
                      "retrieval_same_frac": [0.8, 0.1, 0.8, 0.9, np.nan]})
    assert maps.memorized(t).tolist() == [True, False, False, False, False]
    assert maps.memorized(t, maps.Criterion(0.1, 0.05)).tolist() == [True, True, True, False, False]
    assert maps.memorized(t, maps.Criterion(0.0, 0.0)).tolist() == [True] * 3 + [False] * 2  # NaN meets no threshold


def test_the_criterion_holds_at_exactly_its_thresholds():
    t = pd.DataFrame({"attractor_frac": [0.5, 0.5, np.nextafter(0.5, 0)],
                      "retrieval_same_frac": [0.5, np.nextafter(0.5, 0), 0.5]})
    assert maps.memorized(t).tolist() == [True, False, False]  # >= 0.5 on both, not > 0.5


def test_a_rate_of_exactly_the_threshold_is_the_onset():
    # two seeds: one memorizes from depth 4, the other from 8; at 4 and 6 the rate is exactly 0.5
    on = maps.onset_depth(frame({("fc", 64): [4, 8]}, seeds=(0, 1)), n_boot=50).iloc[0]
    assert on.onset_depth == 4
    assert maps.onset_depth(frame({("fc", 64): [4, 8]}, seeds=(0, 1)), threshold=0.75, n_boot=50).iloc[0].onset_depth == 8


def test_onset_when_all_seeds_agree():
    t = frame({("fc", 64): [6, 6, 6], ("fc", 256): [4, 4, 4]})
    on = maps.onset_depth(t).set_index("width")
    assert on.loc[64, "onset_depth"] == 6 and on.loc[256, "onset_depth"] == 4
    assert (on.onset_low == on.onset_depth).all() and (on.onset_high == on.onset_depth).all()  # no uncertainty
    assert on.reached.all() and (on.p_reached == 1).all()


def test_onset_never_reached():
    on = maps.onset_depth(frame({("conv", 16): [0, 0, 0]})).iloc[0]
    assert not on.reached and np.isnan(on.onset_depth) and on.onset_high == np.inf and on.p_reached == 0
    assert maps.describe_onset(on) == "> 8 (not reached)"


def test_onset_with_seed_disagreement_has_an_interval():
    # seeds memorize from depth 4, 6 and never: rate is 1/3 at 4, 2/3 at 6 -> onset 6 at threshold 0.5
    t = frame({("fc", 64): [4, 6, 0]})
    on = maps.onset_depth(t, n_boot=2000).iloc[0]
    assert on.onset_depth == 6
    assert on.onset_low == 4 and on.onset_high == np.inf  # some resamples are all "never"
    assert 0.5 < on.p_reached < 1
    assert maps.onset_depth(t, threshold=0.3).iloc[0].onset_depth == 4


def test_rate_map_and_standard_error():
    t = frame({("fc", 64): [4, 6, 0]})
    r = maps.rate_map(t).set_index("depth")
    assert r.rate.tolist() == pytest.approx([0, 1 / 3, 2 / 3, 2 / 3])
    assert r.loc[6, "rate_se"] == pytest.approx(np.sqrt(2 / 3 * 1 / 3 / 3))
    assert (r.n_seeds == 3).all()


def test_metric_vs_depth_and_retrieval_vs_sigma():
    t = frame({("fc", 64): [4, 4, 0]})
    m = maps.metric_vs(t, "attractor_frac").set_index("depth")
    assert m.loc[2, "mean"] == pytest.approx(0.2) and m.loc[8, "mean"] == pytest.approx((0.9 * 2 + 0.2) / 3)
    retrieval = pd.DataFrame([{"trial_id": tid, "start": "noisy", "sigma": s, "same_frac": 1.0 - s, "any_frac": 1.0}
                              for tid in t.trial_id for s in (0.1, 0.4)])
    rv = maps.retrieval_vs_sigma(retrieval, t, by=["arch"]).set_index("sigma")
    assert rv.same_frac.tolist() == pytest.approx([0.9, 0.6])


def test_operator_memorizes_needs_exactly_the_span_kept_and_the_rest_contracted():
    ops = pd.DataFrame({  # near_one, in_span, span_dim, rest_radius
        "operator_near_one": [1, 1, 64, 2, 0, None], "operator_near_one_in_span": [1, 1, 1, 1, 0, None],
        "span_dim": [1, 1, 1, 1, 1, None], "operator_rest_radius": [0.5, 1.4, 0.0, 0.5, 0.9, None]})
    # P_X-like | keeps the span but expands | identity | keeps one extra direction | keeps nothing | nonlinear
    assert maps.operator_memorizes(ops).tolist() == [True, False, False, False, False, False]


def test_image_side_and_receptive_field():
    t = pd.DataFrame({"image_size": [None, 16.0, None], "channels": [None, None, 3.0],
                      "input_dim": [64, 256, 3072], "depth": [1, 4, 8], "kernel_size": [3, 3, 5]})
    assert maps.image_side(t).tolist() == [8, 16, 32]
    assert maps.receptive_field(t).tolist() == [3, 9, 33]


def test_operator_table_per_depth():
    rows = [{"trial_id": f"{d}-{s}", "arch": "conv", "width": 1, "image_size": 8, "input_dim": 64, "kernel_size": 3,
             "depth": d, "seed": s, "status": "ok", "span_dim": 1, "operator_near_one": 1 if d >= 4 else 64,
             "operator_near_one_in_span": 1, "operator_rest_radius": 0.5 if (d >= 4 and s == 0) else 1.5}
            for d in (2, 4) for s in (0, 1)]
    tab = maps.operator_table(pd.DataFrame(rows)).set_index("depth")
    assert tab.loc[2, "near_one"] == 64 and tab.loc[2, "keeps_span"] == 0 and tab.loc[2, "memorizes"] == 0
    assert tab.loc[4, "keeps_span"] == 1 and tab.loc[4, "memorizes"] == 0.5 and tab.loc[4, "receptive_field"] == 9
    nonlinear = pd.DataFrame(rows).assign(operator_near_one=None)
    assert maps.operator_table(nonlinear).empty and maps.operator_table(nonlinear.drop(columns="operator_near_one")).empty


def test_describe_onset_with_a_closed_and_an_open_interval():
    # seeds from 4, 6, 6: rate 1/3 at 4, 1 at 6 -> onset 6; a resample with two or more draws of the first seed
    # (probability 7/27 > 5%) has onset 4, every other one 6: CI 4 - 6
    closed = maps.onset_depth(frame({("fc", 64): [4, 6, 6]})).iloc[0]
    assert maps.describe_onset(closed) == "6 (CI 4 - 6)"
    # seeds from 4, 6 and never: some resamples never reach the threshold
    opened = maps.onset_depth(frame({("fc", 64): [4, 6, 0]})).iloc[0]
    assert maps.describe_onset(opened) == "6 (CI 4 - not reached)"


def test_p_reached_is_the_bootstrap_chance_of_reaching_the_threshold():
    # one seed of three memorizes (from depth 2): a resample of 3 seeds reaches rate 1/2 when it draws that seed
    # at least twice, with probability 3 (1/3)^2 (2/3) + (1/3)^3 = 7/27
    on = maps.onset_depth(frame({("fc", 64): [2, 0, 0]}), n_boot=2000).iloc[0]
    assert on.p_reached == pytest.approx(7 / 27, abs=0.04)
    assert np.isnan(on.onset_depth) and on.onset_low == 2 and on.onset_high == np.inf and on.n_seeds == 3


def test_onset_interval_bounds_are_the_bootstrap_quantiles_of_the_level():
    # seeds from 2 and 4, threshold 1: a resample has onset 2 when it draws the first seed twice (1/4), else 4.
    # 90%: the 5% quantile is 2 and the 95% one 4; 40%: the 30% and 70% quantiles are both 4
    t = frame({("fc", 64): [2, 4]}, seeds=(0, 1))
    on = maps.onset_depth(t, threshold=1.0, n_boot=2000).iloc[0]
    assert (on.onset_depth, on.onset_low, on.onset_high) == (4, 2, 4)
    on = maps.onset_depth(t, threshold=1.0, n_boot=2000, level=0.4).iloc[0]
    assert (on.onset_low, on.onset_high) == (4, 4)


def test_onset_depth_is_the_same_on_every_run():
    t = frame({("fc", 64): [4, 6, 0], ("fc", 256): [2, 8, 0]})
    first, again = maps.onset_depth(t), maps.onset_depth(t)
    assert first.p_reached.tolist() == again.p_reached.tolist()


def test_onset_depth_groups_flag_and_criterion_as_asked():
    t = frame({("fc", 64): [4, 4, 4], ("fc", 256): [6, 6, 6]})
    pooled = maps.onset_depth(t, by=["arch"], n_boot=50)  # widths pooled seed by seed: rate 1/2 from depth 4
    assert len(pooled) == 1 and "width" not in pooled and pooled.iloc[0].onset_depth == 4
    everything = maps.onset_depth(t, by=[], n_boot=50)
    assert len(everything) == 1 and everything.iloc[0].onset_depth == 4 and everything.iloc[0].n_seeds == 3
    # a flag replaces the memorization criterion
    flagged = maps.onset_depth(t, flag=t.depth >= 8, n_boot=50).set_index("width")
    assert flagged.onset_depth.to_dict() == {64: 8, 256: 8}
    # a loose criterion (attractor_frac >= 0.1, retrieval >= 0.05) counts every trial as memorizing
    loose = maps.onset_depth(t, criterion=maps.Criterion(0.1, 0.05), n_boot=50)
    assert loose.onset_depth.tolist() == [2, 2]


def test_a_group_without_a_value_of_an_axis_is_kept():
    # nets for which width means nothing (NaN) are a group of their own in every summary
    t = pd.concat([frame({("fc", 64): [4, 4, 4]}), frame({("conv", 64): [6, 6, 6]}).assign(width=np.nan)])
    on = maps.onset_depth(t)
    assert len(on) == 2 and on.set_index("arch").onset_depth.to_dict() == {"fc": 4, "conv": 6}
    assert np.isnan(on.set_index("arch").loc["conv", "width"])
    m = maps.metric_vs(t, "attractor_frac")
    assert len(m) == 8 and m.width.isna().sum() == 4
    r = maps.rate_map(t)
    assert len(r) == 8 and r.width.isna().sum() == 4
    cells = maps.phase_cells(t)
    assert len(cells) == 8 and cells.width.isna().sum() == 4 and cells.rate_low.notna().all()
    retrieval = pd.DataFrame([{"trial_id": tid, "start": "noisy", "sigma": 0.1, "same_frac": 1.0, "any_frac": 1.0}
                              for tid in t.trial_id])
    rv = maps.retrieval_vs_sigma(retrieval, t)
    assert len(rv) == 8 and rv.width.isna().sum() == 4


def test_operator_memorizes_is_false_for_every_row_without_operator_values():
    t = pd.DataFrame({"depth": [2, 4]}, index=[5, 7])
    flags = maps.operator_memorizes(t)
    assert flags.tolist() == [False, False] and flags.index.tolist() == [5, 7] and flags.dtype == bool


def test_image_side_from_the_image_size_or_else_the_input_dim():
    # without a channels column one channel; without an image_size column the side from input_dim
    assert maps.image_side(pd.DataFrame({"input_dim": [64, 256]})).tolist() == [8, 16]
    # a set image_size wins over input_dim (here 3 channels whose count was not recorded)
    t = pd.DataFrame({"image_size": [16.0, None], "input_dim": [768, 64]})
    assert maps.image_side(t).tolist() == [16, 8]


def _operator_rows():
    return [{"trial_id": f"{d}-{s}", "arch": "conv", "width": 1, "image_size": 8, "input_dim": 64, "kernel_size": 3,
             "depth": d, "seed": s, "status": "not_converged" if (d, s) == (2, 1) else "ok", "span_dim": 1,
             "operator_near_one": 1 if d >= 4 else 64, "operator_near_one_in_span": 1,
             "operator_rest_radius": {0: 0.5, 1: 0.7, 2: 0.9}[s]} for d in (2, 4) for s in (0, 1, 2)]


def test_operator_table_columns_and_values():
    tab = maps.operator_table(pd.DataFrame(_operator_rows()))
    assert tab.columns.tolist() == ["arch", "width", "side", "depth", "receptive_field", "near_one", "keeps_span",
                                    "memorizes", "rest_radius", "interpolated", "n_seeds"]
    two, four = tab.set_index("depth").loc[2], tab.set_index("depth").loc[4]
    assert two.side == 8 and two.interpolated == pytest.approx(2 / 3) and four.interpolated == 1
    assert four.rest_radius == 0.7 and four.n_seeds == 3  # median of 0.5, 0.7, 0.9
    # without linear nets: an empty table with the same columns
    empty = maps.operator_table(pd.DataFrame(_operator_rows()).assign(operator_near_one=None))
    assert empty.empty and empty.columns.tolist() == tab.columns.tolist()
    # per arch only, and a group without a width is kept
    assert maps.operator_table(pd.DataFrame(_operator_rows()), by=["arch"]).columns[:2].tolist() == ["arch", "depth"]
    nan_width = pd.DataFrame(_operator_rows()).assign(width=[1.0] * 3 + [np.nan] * 3)
    assert len(maps.operator_table(nan_width)) == 2


def test_metric_and_retrieval_summaries_name_their_groups_and_counts():
    t = frame({("fc", 64): [4, 4, 0]})
    m = maps.metric_vs(t, "attractor_frac")
    assert m.columns.tolist() == ["arch", "width", "activation", "n_train", "depth", "mean", "median", "sem", "min",
                                  "max", "n_seeds"]
    assert (m.n_seeds == 3).all()
    assert maps.metric_vs(t, "attractor_frac", by=["arch"]).columns[:2].tolist() == ["arch", "depth"]
    retrieval = pd.DataFrame([{"trial_id": tid, "start": start, "sigma": 0.1, "same_frac": 0.5, "any_frac": 0.75}
                              for tid in t.trial_id for start in ("noisy", "masked")])
    rv = maps.retrieval_vs_sigma(retrieval, t)
    assert rv.columns.tolist() == ["arch", "depth", "width", "activation", "sigma", "same_frac", "any_frac", "n_seeds"]
    assert (rv.any_frac == 0.75).all() and (rv.n_seeds == 3).all() and len(rv) == 4


def test_wilson_interval_ends_one_seed_and_an_empty_cell_quietly():
    # the closed forms of the docstring: k = 0 -> [0, z^2 / (n + z^2)], k = n -> [n / (n + z^2)], 1]; n = 0 -> NaN
    z2 = NormalDist().inv_cdf(0.95) ** 2
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # an empty cell of a phase map is no cause for a RuntimeWarning
        low, high = maps.wilson_interval([0, 0, 3], [0, 3, 3])
    assert np.isnan(low[0]) and np.isnan(high[0])
    assert low[1:].tolist() == pytest.approx([0.0, 3 / (3 + z2)]) and high[1:].tolist() == pytest.approx([z2 / (3 + z2), 1.0])
    low, high = maps.wilson_interval([1, 0], [1, 1])  # one seed: [1 / (1 + z^2), 1] and [0, z^2 / (1 + z^2)]
    np.testing.assert_allclose(low, [1 / (1 + z2), 0.0])
    np.testing.assert_allclose(high, [1.0, z2 / (1 + z2)])
    # at n = 6 the formula's upper end of 6/6 is 1 - 1.1e-16 in floating point: the ends are set exactly
    low, high = maps.wilson_interval([0, 6], [6, 6])
    assert low[0] == 0.0 and high[1] == 1.0


def _phase_table():
    """depth 2: three fitted seeds storing 20% of their examples (retrieval 10%); depth 4: one memorizing seed,
    one not converged, one diverged (no probe values)."""
    rows = [{"arch": "fc", "activation": "selu", "n_train": 10, "width": 64, "depth": 2, "seed": s, "status": "ok",
             "attractor_frac": 0.2, "retrieval_same_frac": 0.1} for s in range(3)]
    rows += [{"arch": "fc", "activation": "selu", "n_train": 10, "width": 64, "depth": 4, "seed": s, "status": status,
              "attractor_frac": a, "retrieval_same_frac": r}
             for s, status, a, r in ((0, "ok", 0.9, 0.8), (1, "not_converged", 0.3, 0.1), (2, "diverged", np.nan, np.nan))]
    return pd.DataFrame(rows)


def test_phase_cells_columns_counts_and_ranges():
    cells = maps.phase_cells(_phase_table())
    assert cells.columns.tolist() == ["arch", "activation", "n_train", "depth", "width", "rate", "attractor_frac",
                                      "n_seeds", "n_fitted", "rate_se", "attractor_min", "attractor_max",
                                      "n_not_converged", "n_diverged", "n_error", "rate_low", "rate_high"]
    four = cells.set_index("depth").loc[4]
    assert (four.n_not_converged, four.n_diverged, four.n_error, four.n_fitted) == (1, 1, 0, 1)
    assert four.rate == pytest.approx(1 / 3) and (four.attractor_min, four.attractor_max) == (0.3, 0.9)
    assert maps.rate_map(_phase_table()).columns.tolist() == cells.columns[:10].tolist()
    assert maps.phase_cells(_phase_table(), by=["arch"]).columns[:3].tolist() == ["arch", "depth", "width"]
    # a table without a status column: every trial counts as fitted, none is marked
    bare = maps.phase_cells(_phase_table().drop(columns="status"))
    assert (bare[["n_not_converged", "n_diverged", "n_error"]] == 0).all().all()
    # counts are integers, as n_fitted is (they are printed in the map's cells and tables)
    counts = ["n_seeds", "n_fitted", "n_not_converged", "n_diverged", "n_error"]
    assert all(pd.api.types.is_integer_dtype(t[c]) for t in (cells, bare) for c in counts)


def test_phase_cells_use_the_criterion_and_level_given():
    z2 = NormalDist().inv_cdf(0.95) ** 2
    two = maps.phase_cells(_phase_table()).set_index("depth").loc[2]
    assert two.rate == 0 and two.rate_high == pytest.approx(z2 / (3 + z2))  # 0 of 3 at 90%
    # attractor_frac >= 0.1 and retrieval >= 0.05: all three seeds at depth 2 memorize
    loose = maps.phase_cells(_phase_table(), criterion=maps.Criterion(0.1, 0.05)).set_index("depth").loc[2]
    assert loose.rate == 1 and loose.rate_low == pytest.approx(3 / (3 + z2))  # 3 of 3 at 90%
    z2_half = NormalDist().inv_cdf(0.75) ** 2
    half = maps.phase_cells(_phase_table(), criterion=maps.Criterion(0.1, 0.05), level=0.5).set_index("depth").loc[2]
    assert half.rate_low == pytest.approx(3 / (3 + z2_half))  # 3 of 3 at 50%


def test_a_criterion_is_two_shares_between_0_and_1():
    for bad in ((-0.5, 0.5), (0.5, 1.5)):
        with pytest.raises(ValueError, match=r"^Criterion\.min_\w+ = (-0\.5|1\.5): a share, so between 0 and 1$"):
            maps.Criterion(*bad)
    assert str(maps.Criterion(0.0, 1.0)) == "attractor_frac >= 0.0 and retrieval_same_frac >= 1.0"


def test_rate_map_without_a_status_column_counts_every_seed_as_fitted():
    t = pd.DataFrame({"arch": "fc", "activation": "relu", "n_train": 10, "depth": 2, "width": 64, "seed": [0, 1, 2],
                      "attractor_frac": [1.0, 0.0, 1.0], "retrieval_same_frac": [1.0, 0.0, 1.0]})
    cell = maps.rate_map(t).iloc[0]
    assert (cell.n_seeds, cell.n_fitted) == (3, 3) and cell.rate == pytest.approx(2 / 3)
