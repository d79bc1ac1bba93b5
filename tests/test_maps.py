"""Maps and onset depth on hand-built trials tables with known answers."""
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
    t = pd.DataFrame({"attractor_frac": [0.9, 0.9, 0.2, np.nan], "retrieval_same_frac": [0.8, 0.1, 0.8, 0.9]})
    assert maps.memorized(t).tolist() == [True, False, False, False]
    assert maps.memorized(t, maps.Criterion(0.1, 0.05)).tolist() == [True, True, True, False]


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
