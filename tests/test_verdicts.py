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


def test_c4_needs_three_seeds_per_cell():
    rows = [row(depth=d, seed=s, n_train=1, attractor=1.0, activation=a) for d in (2, 4) for s in range(3)
            for a in ("selu", "tanh")]
    v = verdict(rows, "C4")
    assert v.status == "reproduced" and "4 of 4 cells" in v.text, v.line()
    assert verdict([r for r in rows if r["seed"] == 0], "C4").status == "insufficient evidence"
    failing = [dict(r, attractor_frac=0.0) if r["activation"] == "tanh" else r for r in rows]
    v = verdict(failing, "C4")
    assert v.status == "partly" and "activation tanh" in v.text, v.line()


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
