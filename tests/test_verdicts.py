"""Each claim's verdict on planted trials tables whose right answer is known, including tables that an
earlier rule wrongly called "reproduced" (one seed; nets that never interpolated)."""
import numpy as np
import pandas as pd
import pytest

from analysis import claims, maps


def row(arch="fc", depth=4, seed=0, width=64, attractor=0.0, retrieval=None, status="ok", **kw):
    r = {"trial_id": f"{arch}-{depth}-{width}-{seed}-{len(kw)}", "arch": arch, "depth": depth, "seed": seed,
         "width": width, "n_train": 10, "activation": "relu", "bias": True, "dataset": "digits", "task": "autoencode",
         "status": status, "attractor_frac": attractor,
         "retrieval_same_frac": attractor if retrieval is None else retrieval,
         "retrieval_any_frac": attractor if retrieval is None else retrieval, "span_input_sensitivity_mean": 0.3}
    r.update(kw)
    if status not in ("ok", "not_converged"):  # diverged / error rows carry no probe values
        r.update(attractor_frac=None, retrieval_same_frac=None)
    return r


def verdict(rows, claim):
    return {v.claim: v for v in claims.verdicts(pd.DataFrame(rows))}[claim]


def test_intervals_of_a_mean_and_of_a_difference():
    m, lo, hi = claims.mean_interval(np.array([1.0, 1.0, 1.0]))
    assert (m, lo, hi) == (1.0, 1.0, 1.0)
    d, lo, hi = claims.diff_interval(np.array([0.9, 0.8, 1.0]), np.array([0.1, 0.0, 0.2]))
    assert d == pytest.approx(0.8) and 0.6 < lo < d < hi < 1.0
    # a difference that flips with the seeds drawn: its interval straddles 0
    d, lo, hi = claims.diff_interval(np.array([1.0, 0.0, 0.0]), np.array([0.0, 1.0, 0.0]))
    assert lo < 0 < hi


# --- C2 ---------------------------------------------------------------------------------------

def test_c2_one_seed_that_never_interpolated_is_not_reproduced():
    # the table an earlier rule called "C2 [reproduced]": one seed, both trials not converged, no retrieval
    rows = [row(depth=d, attractor=a, retrieval=0.0, status="not_converged") for d, a in ((2, 0.0), (8, 0.9))]
    v = verdict(rows, "C2")
    assert v.status == "insufficient evidence", v.line()
    assert v.excluded == {"did not interpolate": 2}


def test_c2_reproduced_only_with_three_seeds_and_an_interval_above_zero():
    rows = [row(depth=d, seed=s, attractor=a + 0.05 * s) for s in range(3) for d, a in ((2, 0.0), (4, 0.5), (8, 0.85))]
    v = verdict(rows, "C2")
    assert v.status == "reproduced" and v.seeds == 3, v.line()
    assert "at depth 8 vs 5% at 2" in v.text
    assert verdict([r for r in rows if r["seed"] < 2], "C2").status == "insufficient evidence"


def test_c2_a_higher_mean_whose_interval_reaches_zero_is_insufficient_evidence():
    # depth 8 stores more on average (0.3 vs 0.07), but one seed of three carries it: the interval of
    # the difference straddles 0, so no verdict either way
    rows = [row(depth=d, seed=s, attractor=a) for d, vals in ((2, (0.0, 0.0, 0.2)), (8, (0.0, 0.0, 0.9)))
            for s, a in enumerate(vals)]
    d, lo, hi = claims.diff_interval(np.array([0.0, 0.0, 0.9]), np.array([0.0, 0.0, 0.2]))
    assert d > 0 and lo <= 0 < hi
    v = verdict(rows, "C2")
    assert v.status == "insufficient evidence", v.line()


def test_c2_uses_the_deepest_depth_that_interpolated():
    rows = [row(depth=d, seed=s, attractor=a) for s in range(3) for d, a in ((2, 0.0), (6, 0.9))]
    rows += [row(depth=12, seed=s, attractor=0.0, status="not_converged") for s in range(3)]
    v = verdict(rows, "C2")
    assert v.status == "reproduced" and "at depth 6" in v.text and v.excluded == {"did not interpolate": 3}


def test_c2_not_reproduced_when_no_depth_stores_examples():
    rows = [row(depth=d, seed=s, attractor=0.0) for s in range(3) for d in (2, 8)]
    assert verdict(rows, "C2").status == "not reproduced"


def test_c2_partly_when_one_width_rises_and_another_falls():
    rows = [row(depth=d, seed=s, width=256, attractor=0.1 if d == 2 else 0.9) for s in range(3) for d in (2, 8)]
    rows += [row(depth=d, seed=s, width=64, attractor=0.8 if d == 2 else 0.1) for s in range(3) for d in (2, 8)]
    v = verdict(rows, "C2")
    assert v.status == "partly" and "width 256" in v.text and "width 64" in v.text, v.line()


def test_c2_keeps_an_extra_axis_apart():
    # lr is an axis of this grid: rising at one lr and falling at the other is not averaged into "level"
    rows = [row(depth=d, seed=s, lr=lr, attractor=(0.9 if d == 8 else 0.0) if lr == 1e-3 else (0.0 if d == 8 else 0.9))
            for s in range(3) for d in (2, 8) for lr in (1e-3, 1e-4)]
    v = verdict(rows, "C2")
    assert v.status == "partly" and "lr 0.001" in v.text, v.line()


# --- C3 ---------------------------------------------------------------------------------------

def test_c3_stride1_never_interpolating_and_one_lucky_seed_is_not_reproduced():
    # the table an earlier rule called "C3 [reproduced]"
    rows = [row("conv", d, s, 32, 0.0, status="not_converged") for d in (2, 4, 6, 8) for s in (0, 1)]
    rows += [row("conv_down", d, s, 32, 0.9 if (d == 8 and s == 0) else 0.0) for d in (2, 4, 6, 8) for s in (0, 1)]
    v = verdict(rows, "C3")
    assert v.status == "insufficient evidence", v.line()
    assert v.excluded == {"did not interpolate": 8}


def test_c3_reproduced_when_depth_and_downsampling_both_help():
    rows = [row(a, d, s, 32, 0.9 if d >= first else 0.0) for a, first in (("conv_down", 4), ("conv", 8))
            for d in (2, 4, 8) for s in range(3)]
    v = verdict(rows, "C3")
    assert v.status == "reproduced", v.line()
    assert "conv_down vs conv at equal depth -> yes" in v.text


def test_c3_partly_when_fitted_stride1_nets_never_memorize():
    rows = [row("conv_down", d, s, 32, 0.9 if d >= 4 else 0.0) for d in (2, 4, 8) for s in range(3)]
    rows += [row("conv", d, s, 32, 0.0) for d in (2, 4, 8) for s in range(3)]  # fitted, repelling
    v = verdict(rows, "C3")
    assert v.status == "partly", v.line()
    # the same with stride-1 nets that never fitted: their failure is no evidence at all
    unfit = [dict(r, status="not_converged") if r["arch"] == "conv" else r for r in rows]
    v = verdict(unfit, "C3")
    assert v.status == "partly" and "no cell has 3 interpolated seeds of both" in v.text, v.line()


def test_c3_without_stride1_nets_is_at_best_partly():
    rows = [row("conv_down", d, s, 32, 0.9 if d >= 4 else 0.0) for d in (2, 4, 8) for s in range(3)]
    v = verdict(rows, "C3")
    assert v.status == "partly" and "the grid lacks conv" in v.text, v.line()


def test_c3_not_reproduced_when_nothing_memorizes():
    rows = [row(a, d, s, 32, 0.0) for a in ("conv", "conv_down") for d in (2, 4) for s in range(3)]
    assert verdict(rows, "C3").status == "not reproduced"


# --- C1, C4, C5, C6 -----------------------------------------------------------------------------

def _single(activation, seed, status="ok", attractor=0.0, sens=1e-7):
    return row(depth=1, seed=seed, activation=activation, bias=False, status=status, attractor=attractor,
               span_input_sensitivity_mean=sens)


def test_c1_rests_on_layers_that_interpolated():
    rows = [_single("identity", s) for s in range(3)] + [_single("tanh", s, "not_converged") for s in range(3)]
    v = verdict(rows, "C1")
    assert v.status == "reproduced" and v.excluded == {"did not interpolate": 3}, v.line()
    assert "activation tanh: 0 interpolated seeds" in v.text
    # only layers that never fit: their "no attractor" is vacuous
    assert verdict([r for r in rows if r["activation"] == "tanh"], "C1").status == "insufficient evidence"
    # a layer that sees off-span directions contradicts the claim
    leaky = [_single("identity", s, sens=0.2) for s in range(3)]
    assert verdict(leaky, "C1").status == "not reproduced"
    # single layers trained by Adam are outside the claim's setting: no verdict either way
    assert verdict([{**r, "optimizer": "gd"} for r in leaky], "C1").status == "not reproduced"
    adam = verdict([{**r, "optimizer": "adam"} for r in leaky], "C1")
    assert adam.status == "not covered" and "trained by plain GD" in adam.text


def test_c4_needs_three_seeds_per_cell():
    rows = [row(depth=d, seed=s, n_train=1, attractor=1.0, activation=a) for d in (2, 4) for s in range(3)
            for a in ("selu", "tanh")]
    v = verdict(rows, "C4")
    assert v.status == "reproduced" and "4 of 4 cells" in v.text, v.line()
    assert verdict([r for r in rows if r["seed"] == 0], "C4").status == "insufficient evidence"
    failing = [dict(r, attractor_frac=0.0) if r["activation"] == "tanh" else r for r in rows]
    v = verdict(failing, "C4")
    assert v.status == "partly" and "activation tanh" in v.text, v.line()
    # a cell of 3 seeds whose interval spans 50% is undecided, not short of seeds
    split = [dict(r, attractor_frac=float(r["seed"] == 0)) if r["activation"] == "tanh" else r for r in rows]
    v = verdict(split, "C4")
    assert "(insufficient)" in v.text and "fewer than 3 interpolated seeds" not in v.text, v.line()
    assert "1 cell(s) with fewer than 3" in verdict([r for r in rows if (r["depth"], r["seed"]) != (2, 0)
                                                      or r["activation"] == "tanh"], "C4").text


def test_c5_stable_cycles_are_reached_and_unstable_ones_are_not():
    rows = [row(depth=d, seed=s, task="sequence", attractor=1.0, retrieval=0.9) for d in (2, 4) for s in range(3)]
    rows += [row(depth=8, seed=s, task="sequence", attractor=0.0, retrieval=0.0) for s in range(3)]
    v = verdict(rows, "C5")
    assert v.status == "reproduced" and "6 of 9 interpolated cycles stable" in v.text, v.line()
    level = [dict(r, retrieval_any_frac=0.9) for r in rows]  # unstable cycles reached as often: no
    assert verdict(level, "C5").status == "partly"


def test_c6_width_that_cannot_fit_is_not_read_as_less_contractive():
    # the earlier rule read width 32's failure to interpolate 30 digits as "less contractive"
    rows = [row(depth=8, seed=s, width=32, attractor=0.05, status="not_converged") for s in range(3)]
    rows += [row(depth=8, seed=s, width=w, attractor=a) for s in range(3) for w, a in ((128, 0.5), (512, 0.85))]
    v = verdict(rows, "C6")
    assert v.status == "reproduced" and "at width 512 vs 50% at 128" in v.text, v.line()
    assert verdict([r for r in rows if r["width"] != 512], "C6").status == "insufficient evidence"


# --- C3's operator study -------------------------------------------------------------------------

def _linear(arch, depth, side, seed, memorizes, status="ok"):
    keep = 1 if memorizes else side * side
    return row(arch, depth, seed, 8, 0.0, status=status, n_train=1, activation="identity", bias=False,
               image_size=side, input_dim=side ** 2, kernel_size=3, span_dim=1, operator_near_one=keep,
               operator_near_one_in_span=1, operator_rest_radius=0.5 if memorizes else 0.0)


def test_c3_linear_verdict_from_the_operator_study():
    # stride 1 memorizes from depth 4 on 8x8 images (receptive field 9), downsampling from depth 2
    rows = [_linear(a, d, 8, s, d >= first) for a, first in (("conv", 4), ("conv_down", 2))
            for d in (2, 3, 4, 6) for s in range(3)]
    v = verdict(rows, "C3-linear")
    assert v.status == "reproduced", v.line()
    assert "acting as P_X: 0 of 6" in v.text
    assert verdict(rows, "C4").status == "not covered"  # linear nets are not C4's attractor evidence
    # a stride-1 operator acting as P_X below the receptive-field bound contradicts necessity
    narrow = [_linear("conv", 2, 8, r["seed"], True) if r["arch"] == "conv" and r["depth"] == 2 else r for r in rows]
    assert verdict(narrow, "C3-linear").status == "partly"
    # with two seeds per cell the archs cannot be compared: necessity alone holds
    v = verdict([r for r in rows if r["seed"] < 2], "C3-linear")
    assert v.status == "partly" and "conv_down vs conv at equal depth -> insufficient" in v.text, v.line()


# --- grouping -------------------------------------------------------------------------------------

def test_onset_depth_is_per_value_of_every_varying_axis():
    rows = [row(depth=d, seed=s, lr=lr, attractor=0.9 if d >= first else 0.0)
            for lr, first in ((1e-3, 4), (1e-4, 8)) for d in (2, 4, 8) for s in range(3)]
    on = maps.onset_depth(pd.DataFrame(rows))
    assert "lr" in on.columns and on.set_index("lr").onset_depth.to_dict() == {1e-3: 4, 1e-4: 8}
    assert maps.varying(pd.DataFrame(rows)) == ["depth", "lr", "seed"]


# --- every status of every claim ------------------------------------------------------------------

def seeds(n=3):
    return range(n)


def _c1(sens_by_activation, n=3):
    return [_single(a, s, sens=sens) for a, sens in sens_by_activation.items() for s in seeds(n)]


def _along_axis(axis, values, n=3, **fixed):
    """One group per key of ``values``: {group: (attractor at the low end, at the high end)}."""
    low, high = (2, 8) if axis == "depth" else (64, 512)
    out = []
    for group, (a_low, a_high) in values.items():
        for s in seeds(n):
            for v, a in ((low, a_low), (high, a_high)):
                out.append(row(seed=s, attractor=a, activation=group, **{axis: v, **fixed}))
    return out


def _c3(first_by_arch, n=3):
    return [row(a, d, s, 32, 0.9 if first and d >= first else 0.0) for a, first in first_by_arch.items()
            for d in (2, 4, 8) for s in seeds(n)]


def _c3_linear(first_by_arch, n=3):
    return [_linear(a, d, 8, s, bool(first) and d >= first) for a, first in first_by_arch.items()
            for d in (2, 3, 4, 6) for s in seeds(n)]


def _c4(attractor_by_activation, n=3):
    return [row(depth=2, seed=s, n_train=1, attractor=a, activation=act)
            for act, a in attractor_by_activation.items() for s in seeds(n)]


def _c5(stable_retrieval, unstable_retrieval=None, n=3):
    rows = [row(depth=2, seed=s, task="sequence", attractor=1.0, retrieval=stable_retrieval) for s in seeds(n)]
    if unstable_retrieval is not None:
        rows += [row(depth=4, seed=s, task="sequence", attractor=0.0, retrieval=unstable_retrieval) for s in seeds(n)]
    return rows


STATUSES = {
    "C1": {"reproduced": lambda: _c1({"identity": 1e-7}),
           "partly": lambda: _c1({"identity": 1e-7, "relu": 0.2}),
           "not reproduced": lambda: _c1({"identity": 0.2}),
           "insufficient evidence": lambda: _c1({"identity": 1e-7}, n=2),
           "not covered": lambda: [row(depth=2, seed=s) for s in seeds()]},
    "C2": {"reproduced": lambda: _along_axis("depth", {"relu": (0.0, 0.9)}),
           "partly": lambda: _along_axis("depth", {"relu": (0.0, 0.9), "selu": (0.9, 0.0)}),
           "not reproduced": lambda: _along_axis("depth", {"relu": (0.9, 0.0)}),
           "insufficient evidence": lambda: _along_axis("depth", {"relu": (0.0, 0.9)}, n=2),
           "not covered": lambda: [row(depth=4, seed=s) for s in seeds()]},
    "C3": {"reproduced": lambda: _c3({"conv_down": 4, "conv": 8}),
           "partly": lambda: _c3({"conv_down": 4, "conv": 0}),
           "not reproduced": lambda: _c3({"conv_down": 0, "conv": 0}),
           "insufficient evidence": lambda: _c3({"conv_down": 4, "conv": 8}, n=2),
           "not covered": lambda: [row(depth=d, seed=s) for d in (2, 4) for s in seeds()]},
    "C3-linear": {"reproduced": lambda: _c3_linear({"conv": 4, "conv_down": 2}),
                  "partly": lambda: _c3_linear({"conv": 4, "conv_down": 2}, n=2),
                  "not reproduced": lambda: _c3_linear({"conv": 2, "conv_down": 0}),
                  "insufficient evidence": lambda: _c3_linear({"conv": 4, "conv_down": 2}, n=1)[:4],
                  "not covered": lambda: [row(depth=d, seed=s) for d in (2, 4) for s in seeds()]},
    "C4": {"reproduced": lambda: _c4({"selu": 1.0, "tanh": 1.0}),
           "partly": lambda: _c4({"selu": 1.0, "tanh": 0.0}),
           "not reproduced": lambda: _c4({"selu": 0.0, "tanh": 0.0}),
           "insufficient evidence": lambda: _c4({"selu": 1.0, "tanh": 1.0}, n=2),
           "not covered": lambda: [row(depth=2, seed=s) for s in seeds()]},
    "C5": {"reproduced": lambda: _c5(0.9, 0.0),
           "partly": lambda: _c5(0.9, 0.9),
           "not reproduced": lambda: _c5(0.0, 0.0),
           "insufficient evidence": lambda: _c5(0.9, 0.0, n=2),
           "not covered": lambda: [row(depth=2, seed=s) for s in seeds()]},
    "C6": {"reproduced": lambda: _along_axis("width", {"relu": (0.2, 0.9)}, depth=8),
           "partly": lambda: _along_axis("width", {"relu": (0.2, 0.9), "selu": (0.9, 0.2)}, depth=8),
           "not reproduced": lambda: _along_axis("width", {"relu": (0.9, 0.2)}, depth=8),
           "insufficient evidence": lambda: _along_axis("width", {"relu": (0.2, 0.9)}, n=2, depth=8),
           "not covered": lambda: [row(depth=4, seed=s) for s in seeds()]},
}


@pytest.mark.parametrize("claim, status", [(c, s) for c, by in STATUSES.items() for s in by])
def test_every_claim_reaches_every_status_on_a_planted_table(claim, status):
    v = verdict(STATUSES[claim][status](), claim)
    assert v.status == status, v.line()


def test_boundaries_of_the_claim_rules():
    # C3-linear: exactly MIN_SEEDS stride-1 nets below the receptive-field bound, none acting as P_X, suffice
    narrow = [_linear("conv", 2, 8, s, False) for s in range(claims.MIN_SEEDS)]
    v = verdict(narrow + [_linear("conv", 6, 8, s, True) for s in range(claims.MIN_SEEDS)], "C3-linear")
    assert f"acting as P_X: 0 of {claims.MIN_SEEDS} -> yes" in v.text, v.line()
    # C1: a sensitivity exactly at span_tol is not below it
    assert verdict(_c1({"identity": 0.01}), "C1").status == "insufficient evidence"
    # C5: a table without a task column has no sequence trials
    table = pd.DataFrame(_c5(0.9, 0.0)).drop(columns=["task"])
    assert claims.c5_sequence(table).status == "not covered"


# --- the statistics, by hand ---------------------------------------------------------------------

def test_bootstrap_interval_of_two_seeds_is_read_off_its_three_possible_means():
    # two seeds [0, 1]: a resampled mean is 0, 1/2 or 1 with probability 1/4, 1/2, 1/4, so the 90% interval
    # (5% and 95% quantiles) is [0, 1] and a 40% interval (30% and 70% quantiles) is the point 1/2
    assert claims.mean_interval(np.array([0.0, 1.0]), n_boot=20_000) == (0.5, 0.0, 1.0)
    assert claims.mean_interval(np.array([0.0, 1.0]), level=0.4, n_boot=20_000) == (0.5, 0.5, 0.5)
    # the same data give the same interval on every run (the report must not change when rebuilt)
    a = np.sqrt(np.arange(1.0, 11.0))  # almost every resample has its own mean
    assert claims.mean_interval(a) == claims.mean_interval(a)


def test_rises_is_insufficient_on_a_straddling_interval_or_a_short_cell():
    assert claims.rises(np.array([1.0, 0.0, 0.0]), np.array([0.0, 1.0, 0.0]))[0] == "insufficient"
    assert claims.rises(np.zeros(3), np.zeros(3))[0] == "no"  # both all zeros: [0, 0], level
    assert claims.rises(np.ones(2), np.zeros(3)) == ("insufficient", "2 seeds")
    assert claims.rises(np.ones(4), np.zeros(2)) == ("insufficient", "2 seeds")


# --- what a verdict says -------------------------------------------------------------------------

def test_not_covered_verdicts_say_what_the_grid_lacks_and_nothing_else():
    table = pd.DataFrame([row(depth=4, seed=s) for s in seeds()])  # fc nets on 10 examples at one depth, one width
    assert [v.line() for v in claims.verdicts(table)] == [
        "C1 [not covered]: no depth-1 trials trained by plain GD in this grid",
        "C2 [not covered]: needs nonlinear fc trials on several examples at two or more depths >= 2",
        "C3 [not covered]: needs nonlinear conv or conv_down trials at two or more depths",
        "C3-linear [not covered]: needs linear conv or conv_down trials at two or more depths",
        "C4 [not covered]: no nonlinear n_train = 1 trials in this grid",
        "C5 [not covered]: no task = sequence trials in this grid",
        "C6 [not covered]: needs nonlinear trials on several examples at two or more widths"]


def test_a_verdict_line_counts_each_exclusion_reason_and_the_fewest_seeds():
    rows = _along_axis("depth", {"relu": (0.0, 0.9)})
    rows += [row(depth=8, seed=3, status="not_converged")] + [row(depth=8, seed=s, status="diverged") for s in (4, 5)]
    v = verdict(rows, "C2")
    assert v.status == "reproduced" and v.excluded == {"did not interpolate": 1, "diverged": 2}, v.line()
    assert v.line().endswith(" [min seeds per cell 3; excluded: 1 did not interpolate, 2 diverged]")
    # a grid of one group has no group label in front of its numbers
    assert v.text.startswith("attractor_frac 90% at depth 8 vs 0% at 2, difference +0.90"), v.text
    # nothing compared: 0 seeds, nothing excluded
    short = verdict(_along_axis("depth", {"relu": (0.0, 0.9)}, n=2), "C2")
    assert short.line().endswith(" [min seeds per cell 0; excluded: none]"), short.line()
    short = verdict(_c3({"conv_down": 4, "conv": 8}, n=2), "C3")  # neither of C3's two comparisons made
    assert short.line().endswith(" [min seeds per cell 0; excluded: none]"), short.line()


def test_a_group_whose_trials_all_failed_to_fit_is_reported_as_none_interpolated():
    rows = _along_axis("depth", {"relu": (0.0, 0.9)}, width=256)
    rows += [dict(r, status="not_converged") for r in _along_axis("depth", {"relu": (0.0, 0.9)}, width=64)]
    v = verdict(rows, "C2")
    assert "width 64: fewer than two depth values with 3 interpolated seeds (none interpolated)" in v.text, v.text
    assert v.status == "reproduced"


def test_an_axis_missing_from_older_trials_is_a_group_of_its_own():
    # trials written before lr was an axis carry no lr (null): they are a group, not dropped
    rows = _along_axis("depth", {"relu": (0.0, 0.9)}, lr=1e-3) + _along_axis("depth", {"relu": (0.9, 0.0)}, lr=None)
    v = verdict(rows, "C2")
    assert v.status == "partly" and "lr nan: " in v.text, v.line()


def test_the_seed_count_of_a_verdict_is_the_fewest_of_any_compared_cell():
    def c2(hi_seeds, lo_seeds, width=64):
        return ([row(depth=8, seed=s, width=width, attractor=0.9) for s in range(hi_seeds)]
                + [row(depth=2, seed=s, width=width, attractor=0.0) for s in range(lo_seeds)])
    assert verdict(c2(3, 4), "C2").seeds == 3  # the deep cell is the smaller
    assert verdict(c2(4, 3), "C2").seeds == 3  # the shallow cell is the smaller
    assert verdict(c2(3, 3, 64) + c2(4, 4, 256), "C2").seeds == 3  # the first group is the smaller
    c1 = [_single("identity", s) for s in range(3)] + [_single("tanh", s) for s in range(4)]
    assert verdict(c1, "C1").seeds == 3
    c4 = [row(depth=2, seed=s, n_train=1, attractor=1.0, activation=a) for a, n in (("selu", 3), ("tanh", 4))
          for s in range(n)]
    assert verdict(c4, "C4").seeds == 3
    c5 = [row(depth=2, seed=s, task="sequence", attractor=1.0, retrieval=0.9) for s in range(4)]
    c5 += [row(depth=4, seed=s, task="sequence", attractor=0.0, retrieval=0.0) for s in range(3)]
    assert verdict(c5, "C5").seeds == 3  # exactly MIN_SEEDS unstable cycles are compared


def test_c3_seed_count_covers_both_the_depth_and_the_downsampling_comparisons():
    def cells(counts):  # {(arch, depth): seeds}
        return [row(a, d, s, 32, 0.9 if d >= 8 else 0.0) for (a, d), n in counts.items() for s in range(n)]
    # only the downsampling comparison at depth 4 has 3 seeds (conv_down's depth comparison is 2 vs 8)
    only_down = {("conv_down", 2): 4, ("conv_down", 4): 3, ("conv_down", 8): 4,
                 ("conv", 2): 4, ("conv", 4): 4, ("conv", 8): 4}
    assert verdict(cells(only_down), "C3").seeds == 3
    # only the depth comparison of conv (2 vs 16) has 3 seeds; conv_down has no depth 16 to compare with
    only_depth = {("conv_down", 2): 4, ("conv_down", 8): 4, ("conv", 2): 4, ("conv", 8): 4, ("conv", 16): 3}
    assert verdict(cells(only_depth), "C3").seeds == 3


# --- the comparison rule of helps ------------------------------------------------------------------

def _pairs(values):
    """ev for ``helps``: {depth: (conv_down's memorized per seed, conv's)}."""
    return pd.DataFrame([{"arch": a, "depth": d, "seed": s, "memorized": m}
                         for d, pair in values.items() for a, ms in zip(("conv_down", "conv"), pair)
                         for s, m in enumerate(ms)])


def _helps(values):
    ev = _pairs(values)
    return claims.helps(ev, "arch", "conv_down", "conv", "memorized", ev)


def test_helps_says_no_when_every_pair_is_level_or_one_is_reversed():
    zeros, ones, straddle_a, straddle_b = [0.0] * 3, [1.0] * 3, [1.0, 0.0, 0.0], [0.0, 1.0, 0.0]
    assert _helps({2: (zeros, zeros), 4: (zeros, zeros)})[0] == "no"  # level everywhere
    assert _helps({2: (zeros, ones), 4: (straddle_a, straddle_b)})[0] == "no"  # one reversed, one undecided
    assert _helps({2: (ones, zeros), 4: (zeros, ones)})[0] == "no"  # one each way
    assert _helps({2: (straddle_a, straddle_b), 4: (straddle_b, straddle_a)})[0] == "insufficient"
    assert _helps({2: (ones, zeros), 4: (zeros, zeros)})[0] == "yes"


def test_helps_reports_the_fewest_seeds_of_its_compared_pairs():
    one, zero = 1.0, 0.0
    assert _helps({2: ([one] * 3, [zero] * 4)})[2] == 3
    assert _helps({2: ([one] * 4, [zero] * 3)})[2] == 3
    assert _helps({2: ([one] * 3, [zero] * 3), 4: ([one] * 4, [zero] * 4)})[2] == 3


# --- which trials each claim reads -----------------------------------------------------------------

def test_each_claim_reads_only_its_own_trials_from_a_mixed_grid():
    # C2: fc nets on 2 examples store more with depth; fc nets on one example and conv nets, which fall, are not C2's
    c2 = _along_axis("depth", {"relu": (0.0, 0.9)}, n_train=2)
    c2 += _along_axis("depth", {"relu": (0.9, 0.0)}, n_train=1) + _along_axis("depth", {"relu": (0.9, 0.0)}, arch="conv",
                                                                              n_train=2)
    assert verdict(c2, "C2").status == "reproduced", verdict(c2, "C2").line()
    # C3: conv nets on 2 examples; conv nets on one example (which un-memorize with depth) are C4's
    c3 = [dict(r, n_train=2) for r in _c3({"conv_down": 4, "conv": 8})]
    c3 += [row(a, d, s, 32, 0.9 if d == 2 else 0.0, n_train=1) for a in ("conv", "conv_down") for d in (2, 8)
           for s in seeds()]
    assert verdict(c3, "C3").status == "reproduced", verdict(c3, "C3").line()
    # C6: nets on 2 examples widen into memorization; nets on one example are C4's
    c6 = _along_axis("width", {"relu": (0.2, 0.9)}, depth=8, n_train=2)
    c6 += _along_axis("width", {"relu": (0.9, 0.2)}, depth=8, n_train=1)
    assert verdict(c6, "C6").status == "reproduced", verdict(c6, "C6").line()


def test_sequence_and_linear_nets_are_not_c4_evidence_but_nets_without_bias_are():
    stored = _c4({"selu": 1.0})
    assert verdict(stored, "C4").status == "reproduced"
    # a table from before the task axis existed: every trial is an autoencoder
    assert claims.c4_single(pd.DataFrame(stored).drop(columns=["task"])).status == "reproduced"
    assert verdict([dict(r, task="sequence") for r in stored], "C4").status == "not covered"
    # only identity *and* no bias is linear: a relu net without bias is a nonlinear net
    assert verdict([dict(r, activation="relu", bias=False) for r in stored], "C4").status == "reproduced"


def test_verdicts_judge_c3_with_the_criterion_given():
    # deep nets store 30% of their examples: not memorized by the default criterion (50%), memorized at 25%
    rows = [row(a, d, s, 32, 0.3 if d >= first else 0.0) for a, first in (("conv_down", 4), ("conv", 8))
            for d in (2, 4, 8) for s in seeds()]
    table = pd.DataFrame(rows)
    c3 = {v.claim: v for v in claims.verdicts(table, maps.Criterion(0.25, 0.25))}["C3"]
    assert c3.status == "reproduced", c3.line()
    assert verdict(rows, "C3").status == "not reproduced"


# --- boundaries of each claim's rule -------------------------------------------------------------------

def test_c1_attractor_share_at_or_above_its_tolerance():
    # layers in the span but storing half their examples: attractors contradict C1 (default tolerance 10%)
    half = [_single("identity", s, attractor=0.5) for s in seeds()]
    assert verdict(half, "C1").status == "not reproduced"
    # a share of exactly the tolerance is neither below it (yes) nor above it (no)
    assert claims.c1_span(pd.DataFrame(half), attractor_tol=0.5).status == "insufficient evidence"


def test_c3_texts_list_every_depth_compared_and_say_what_is_untested():
    v = verdict(_c3({"conv_down": 4, "conv": 8}), "C3")
    assert "; depth 4: 100% vs 0%, difference +1.00" in v.text and "; depth 8: 100% vs 100%" in v.text, v.text
    v = verdict(_c3({"conv_down": 4}), "C3")
    assert v.text.endswith(" | the grid lacks conv, so whether downsampling helps is not tested"), v.text


def test_c3_linear_reads_only_nets_whose_operator_was_measured_at_two_depths():
    rows = _c3_linear({"conv": 4, "conv_down": 2})
    assert verdict([dict(r, operator_near_one=None) for r in rows], "C3-linear").status == "not covered"
    assert verdict([r for r in rows if r["depth"] == 4], "C3-linear").status == "not covered"


def test_c3_linear_a_receptive_field_equal_to_the_side_is_not_below_it():
    # 9x9 images, 3x3 kernels: depth 2 sees 5 pixels (below 9), depth 4 sees 9 (not below) and acts as P_X
    rows = [_linear("conv", d, 9, s, d == 4) for d in (2, 4) for s in seeds()]
    v = verdict(rows, "C3-linear")
    assert "acting as P_X: 0 of 3 -> yes" in v.text, v.text


def test_c4_boundaries_of_the_attractor_share():
    # every seed stores exactly half: the lower bound is 50%, which is enough
    assert verdict(_c4({"selu": 0.5}), "C4").status == "reproduced"
    # shares 0, 1/2, 1/2: the upper bound is exactly 50% and the lower below it: undecided, not a failure
    rows = [row(depth=2, seed=s, n_train=1, attractor=a, activation="selu") for s, a in enumerate((0.0, 0.5, 0.5))]
    assert verdict(rows, "C4").status == "insufficient evidence"


def test_c4_text_counts_cells_and_names_the_failing_ones():
    v = verdict(_c4({"selu": 1.0, "tanh": 1.0}), "C4")
    assert v.text == ("2 of 2 cells store the example (lower bound of the attractor share >= 50%); "
                      "mean share over usable cells 100%"), v.text
    v = verdict(_c4({"selu": 0.0, "tanh": 0.0}), "C4")
    assert v.text.endswith("; not stored: activation selu: 0% (no); activation tanh: 0% (no)"), v.text
    v = verdict(_c4({"selu": 1.0, "tanh": 1.0}, n=2), "C4")
    assert v.text == ("0 of 2 cells store the example (lower bound of the attractor share >= 50%); "
                      "mean share over usable cells n/a; 2 cell(s) with fewer than 3 interpolated seeds"), v.text


def test_c5_boundaries_and_texts():
    # stable cycles reached from exactly half the noisy starts: lower bound 50% is enough
    assert "-> yes" in verdict(_c5(0.5), "C5").text
    v = verdict(_c5(0.0), "C5")
    assert "noisy starts reach a stable cycle in 0% (CI 0%-0%) -> no" in v.text, v.text
    # retrieval 0, 1/2, 1/2: upper bound exactly 50%, undecided
    rows = [row(depth=2, seed=s, task="sequence", attractor=1.0, retrieval=r) for s, r in enumerate((0.0, 0.5, 0.5))]
    v = verdict(rows, "C5")
    assert v.status == "insufficient evidence" and "-50%) -> insufficient" in v.text, v.line()
    # two stable cycles against three unstable ones: too few stable ones to compare
    rows = _c5(0.9, 0.0, n=3)[1:]
    v = verdict(rows + [row(depth=8, seed=0, task="sequence", status="not_converged")], "C5")
    assert v.text == "2 of 5 interpolated cycles stable; stable minus unstable retrieval 2 seeds -> insufficient", v.text
    assert v.excluded == {"did not interpolate": 1}
