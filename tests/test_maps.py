"""What one trial shows (the criterion, linear operators) and the summaries of maps, on hand-built
trials tables with known answers. Rates and onsets: tests/test_evidence.py."""
import numpy as np
import pandas as pd
import pytest

from analysis import evidence, maps


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


def test_a_group_without_a_value_of_an_axis_is_kept():
    # nets for which width means nothing (NaN) are a group of their own in every summary
    t = pd.concat([frame({("fc", 64): [4, 4, 4]}), frame({("conv", 64): [6, 6, 6]}).assign(width=np.nan)])
    on = evidence.onsets(t)
    assert len(on) == 2 and on.set_index("arch").onset_depth.to_dict() == {"fc": 4, "conv": 6}
    assert np.isnan(on.set_index("arch").loc["conv", "width"])
    m = maps.metric_vs(t, "attractor_frac")
    assert len(m) == 8 and m.width.isna().sum() == 4
    cells = evidence.cells(t)
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


def test_a_criterion_is_two_shares_between_0_and_1():
    for bad in ((-0.5, 0.5), (0.5, 1.5)):
        with pytest.raises(ValueError, match=r"^Criterion\.min_\w+ = (-0\.5|1\.5): a share, so between 0 and 1$"):
            maps.Criterion(*bad)
    assert str(maps.Criterion(0.0, 1.0)) == "attractor_frac >= 0.0 and retrieval_same_frac >= 1.0"


