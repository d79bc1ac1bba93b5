"""Each claim's verdict on planted trials tables whose right answer is known: the tables a skeptical
review planted (real tables, edited) and that an earlier rule called "reproduced", every status of
every claim, and the one rule that turns tests into a status."""
import os

import numpy as np
import pandas as pd
import pytest

from analysis import claims, maps, report, stats
from analysis.claims import INSUFFICIENT, NOT_COVERED, NOT_REPRODUCED, PARTLY, REPRODUCED, Group, Part
from study.store import parts
from study.store import schema

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def published(preset: str) -> pd.DataFrame:
    """A trials table REPRODUCTION.md quotes (docs/results), to edit."""
    return pd.read_parquet(os.path.join(ROOT, "docs", "results", f"{preset}.parquet"))


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
    table = rows if isinstance(rows, pd.DataFrame) else pd.DataFrame(rows)
    return {v.claim: v for v in claims.verdicts(table)}[claim]


def seeds(n=5):
    return range(n)


# --- the planted tables of the review: none of them is "reproduced" ------------------------------------------

def test_c5_with_one_seed_per_cell_is_insufficient_evidence():
    # c5-local kept to seed 0: six cycles of one seed each; "min seeds per cell" counted cycles before
    one = published("c5-local").query("seed == 0")
    assert verdict(published("c5-local"), "C5").status != INSUFFICIENT  # the whole table can say something
    v = verdict(one, "C5")
    assert v.status == INSUFFICIENT and v.seeds == 0, v.line()
    assert "0 of 6 groups tested" in v.text and "untestable: 1 of 1 seeds usable" in v.text


def _folder(trials: pd.DataFrame, out) -> str:
    """A results folder holding ``trials`` as its trials table (no other tables), as a copied folder would."""
    names = schema.TABLES["trials"].names
    for r in trials.astype(object).where(trials.notna(), None).to_dict("records"):
        parts.write_part(str(out), "trials", r["trial_id"], [{k: r.get(k) for k in names}])
    return str(out)


def test_a_folder_where_nothing_interpolated_gets_a_report_of_insufficient_evidence(tmp_path):
    table = published("c2-local")
    folder = _folder(table.assign(error=None, status="not_converged"), tmp_path / "res")
    page = report.build(folder, str(tmp_path / "rep"), trajectories=False)
    lines = dict(x.split(" ", 1) for x in open(tmp_path / "rep" / "claims.txt").read().splitlines() if x[0] == "C")
    assert lines["C2"].startswith("[insufficient evidence]: 0 of 4 groups tested")
    assert f"{len(table)} did not interpolate" in lines["C2"]
    assert lines["C6"].startswith("[insufficient evidence]") and lines["C4"].startswith("[not covered]")
    text = open(page).read()
    assert "no evidence: fewer than 3 usable seeds at every depth" in text


def test_c2_where_two_of_four_groups_fall_with_depth_is_not_reproduced():
    t = published("c2-local")
    selu = t.activation == "selu"
    for depth, values in ((2, (0.3, 0.2, 0.3, 0.2, 0.3)), (12, (0.2, 0.3, 0.1, 0.2, 0.2))):  # falls, seeds overlap
        for s, v in zip(sorted(t.seed.unique()), values, strict=True):
            t.loc[selu & (t.depth == depth) & (t.seed == s), "attractor_frac"] = v
    v = verdict(t, "C2")
    assert v.status == PARTLY, v.line()
    assert "4 of 4 groups tested" in v.text and "2 against" in v.text and "partly: 2 point the other way" in v.text


def test_c6_where_wider_nets_store_fewer_at_most_depths_is_not_reproduced():
    # at depths 2, 4 and 6 the wide net stores a little less, seed by seed now more, now less (undecided);
    # at depth 8 clearly more
    narrow, wide = (0.4, 0.3, 0.5, 0.4, 0.3), (0.2, 0.4, 0.3, 0.5, 0.1)
    rows = [row(depth=d, seed=s, width=w, attractor=a[s] + (d - 2) / 20)
            for d in (2, 4, 6) for s in seeds() for w, a in ((64, narrow), (256, wide))]
    rows += [row(depth=8, seed=s, width=w, attractor=a) for s in seeds() for w, a in ((64, 0.1), (256, 0.9))]
    v = verdict(rows, "C6")
    assert [g.outcome for g in v.parts[0].groups] == ["against", "against", "against", "yes"], v.line()
    assert v.status == INSUFFICIENT and v.parts[0].pooled.outcome == "insufficient", v.line()


def test_c4_with_one_cell_of_three_seeds_and_the_rest_of_two_is_insufficient_evidence():
    t = published("c4-local")
    keep = (t.seed < 2) | ((t.activation == "selu") & (t.width == 64) & (t.depth == 3))
    v = verdict(t[keep], "C4")
    assert v.status == INSUFFICIENT and "1 of 24 groups tested" in v.text and "23 untestable" in v.text, v.line()


def test_c4_where_23_cells_store_40_percent_and_one_stores_is_not_reproduced():
    t = published("c4-local")
    other = ~((t.activation == "selu") & (t.width == 64) & (t.depth == 3))
    t.loc[other, "attractor_frac"] = 0.4
    v = verdict(t, "C4")
    assert v.status == NOT_REPRODUCED and v.parts[0].pooled.outcome == "no", v.line()


def test_a_pooled_yes_over_too_few_testable_groups_is_insufficient_evidence():
    # the make-run C6: 4 of 10 groups testable (conv_down at width 32 never fits), the pooled test says yes
    rows = [row("fc", d, s, w, a) for d in (2, 4, 6, 8) for s in seeds(3) for w, a in ((32, 0.1), (128, 0.5))]
    rows += [row("conv_down", d, s, w, 0.5, status="ok" if w == 128 else "not_converged")
             for d in (2, 4, 6, 8, 12) for s in seeds(3) for w in (32, 128)]
    rows += [row("fc", 12, s, w, 0.5, status="ok" if w == 128 or s == 0 else "not_converged") for s in seeds(3)
             for w in (32, 128)]
    v = verdict(rows, "C6")
    assert v.parts[0].pooled.outcome == "yes" and "4 of 10 groups tested" in v.text
    assert v.status == INSUFFICIENT and "fewer than half of the groups testable" in v.text, v.line()


# --- the one rule ---------------------------------------------------------------------------------------

def _part(outcomes, pooled):
    """A part whose groups say ``outcomes`` and whose pooled test says ``pooled`` (yes, no, insufficient)."""
    low, high = {"yes": (0.1, 0.5), "no": (-0.5, -0.1), "insufficient": (-0.1, 0.3)}[pooled]
    return Part("", [Group(str(i), o, "") for i, o in enumerate(outcomes)], stats.Test(0.2, low, high, 0.5, 0.5))


@pytest.mark.parametrize("outcomes, pooled, status", [
    (["yes", "insufficient"], "yes", REPRODUCED),
    (["insufficient", "insufficient"], "yes", REPRODUCED),          # the pooled test carries the groups
    (["yes", "against"], "yes", PARTLY),                            # a group points the other way
    (["yes", "no"], "yes", PARTLY),                                 # a group says no
    (["yes", "yes", "untestable"], "yes", PARTLY),                  # the setting is not covered
    (["yes", "untestable", "untestable"], "yes", INSUFFICIENT),     # fewer than half of it tested
    (["untestable"], "yes", INSUFFICIENT),
    (["no", "insufficient"], "no", NOT_REPRODUCED),
    (["yes", "against"], "insufficient", INSUFFICIENT),             # one group's yes is not the claim's
])
def test_the_status_of_a_part(outcomes, pooled, status):
    assert claims.judge(_part(outcomes, pooled)) == status


@pytest.mark.parametrize("parts, status", [
    ([REPRODUCED, REPRODUCED], REPRODUCED), ([REPRODUCED, INSUFFICIENT], PARTLY), ([PARTLY, NOT_REPRODUCED], PARTLY),
    ([NOT_REPRODUCED, INSUFFICIENT], NOT_REPRODUCED), ([INSUFFICIENT, INSUFFICIENT], INSUFFICIENT), ([], INSUFFICIENT)])
def test_the_status_of_a_claim_of_several_parts(parts, status):
    assert claims.combine(parts) == status


# --- every status of every claim ------------------------------------------------------------------------

def _single(activation, seed, status="ok", attractor=0.0, sens=1e-7):
    return row(depth=1, seed=seed, activation=activation, bias=False, status=status, attractor=attractor,
               span_input_sensitivity_mean=sens)


def _c1(sens_by_activation, n=5):
    return [_single(a, s, sens=sens) for a, sens in sens_by_activation.items() for s in seeds(n)]


def _along_axis(axis, values, n=5, **fixed):
    """One group per key of ``values``: {group: (attractor at the low end, at the high end)}; seeds spread by 0.02."""
    low, high = (2, 8) if axis == "depth" else (64, 512)
    return [row(seed=s, attractor=a + 0.02 * s, activation=group, **{axis: v, **fixed})
            for group, ends in values.items() for s in seeds(n) for v, a in zip((low, high), ends)]


def _c3(first_by_arch, n=5):
    return [row(a, d, s, 32, 0.9 if first and d >= first else 0.0) for a, first in first_by_arch.items()
            for d in (2, 4, 8) for s in seeds(n)]


def _linear(arch, depth, side, seed, memorizes, status="ok"):
    keep = 1 if memorizes else side * side
    return row(arch, depth, seed, 8, 0.0, status=status, n_train=1, activation="identity", bias=False,
               image_size=side, input_dim=side ** 2, kernel_size=3, span_dim=1, operator_near_one=keep,
               operator_near_one_in_span=1, operator_rest_radius=0.5 if memorizes else 0.0)


def _c3_linear(first_by_arch, n=5):
    return [_linear(a, d, 8, s, bool(first) and d >= first) for a, first in first_by_arch.items()
            for d in (2, 3, 4, 6) for s in seeds(n)]


def _c4(attractor_by_activation, n=5):
    return [row(depth=2, seed=s, n_train=1, attractor=a, activation=act)
            for act, a in attractor_by_activation.items() for s in seeds(n)]


def _c5(stable_retrieval, unstable_retrieval=None, n=5):
    """Cycles at depths 2, 4 and 8: stable ones reached with ``stable_retrieval``; with ``unstable_retrieval``,
    the last seed of each depth's cycle is unstable and reached that often."""
    last = n - 1 if unstable_retrieval is not None else None
    return [row(depth=d, seed=s, task="sequence", attractor=0.0 if s == last else 1.0,
                retrieval=unstable_retrieval if s == last else stable_retrieval) for d in (2, 4, 8) for s in seeds(n)]


STATUSES = {
    "C1": {REPRODUCED: lambda: _c1({"identity": 1e-7}),
           PARTLY: lambda: _c1({"identity": 1e-7, "relu": 1e-7}) + [_single("tanh", s, "not_converged") for s in seeds()],
           NOT_REPRODUCED: lambda: _c1({"identity": 0.2}),
           INSUFFICIENT: lambda: _c1({"identity": 1e-7}, n=2),
           NOT_COVERED: lambda: [row(depth=2, seed=s) for s in seeds()]},
    "C2": {REPRODUCED: lambda: _along_axis("depth", {"relu": (0.0, 0.9)}),
           PARTLY: lambda: _along_axis("depth", {"relu": (0.0, 0.9), "elu": (0.0, 0.9), "selu": (0.5, 0.4)}),
           NOT_REPRODUCED: lambda: _along_axis("depth", {"relu": (0.9, 0.0)}),
           INSUFFICIENT: lambda: _along_axis("depth", {"relu": (0.0, 0.9)}, n=2),
           NOT_COVERED: lambda: [row(depth=4, seed=s) for s in seeds()]},
    "C3": {REPRODUCED: lambda: _c3({"conv_down": 4, "conv": 8}),
           PARTLY: lambda: _c3({"conv_down": 4, "conv": 0}),
           NOT_REPRODUCED: lambda: _c3({"conv_down": 0, "conv": 0}),
           INSUFFICIENT: lambda: _c3({"conv_down": 4, "conv": 8}, n=2),
           NOT_COVERED: lambda: [row(depth=d, seed=s) for d in (2, 4) for s in seeds()]},
    "C3-linear": {REPRODUCED: lambda: _c3_linear({"conv": 4, "conv_down": 2}),
                  PARTLY: lambda: _c3_linear({"conv": 4, "conv_down": 2}, n=5)[:20] + _c3_linear({"conv_down": 2}, n=2),
                  NOT_REPRODUCED: lambda: _c3_linear({"conv": 2, "conv_down": 0}),
                  INSUFFICIENT: lambda: _c3_linear({"conv": 4, "conv_down": 2}, n=2),
                  NOT_COVERED: lambda: [row(depth=d, seed=s) for d in (2, 4) for s in seeds()]},
    "C4": {REPRODUCED: lambda: _c4({"selu": 1.0, "tanh": 1.0}),
           PARTLY: lambda: _c4({"selu": 1.0, "tanh": 1.0, "elu": 1.0, "relu": 0.0}),
           NOT_REPRODUCED: lambda: _c4({"selu": 0.0, "tanh": 0.0}),
           INSUFFICIENT: lambda: _c4({"selu": 1.0, "tanh": 1.0}, n=2),
           NOT_COVERED: lambda: [row(depth=2, seed=s) for s in seeds()]},
    "C5": {REPRODUCED: lambda: _c5(0.9, 0.0),
           PARTLY: lambda: _c5(0.9, 0.9),
           NOT_REPRODUCED: lambda: _c5(0.0, 0.0),
           INSUFFICIENT: lambda: _c5(0.9, 0.0, n=2),
           NOT_COVERED: lambda: [row(depth=2, seed=s) for s in seeds()]},
    "C6": {REPRODUCED: lambda: _along_axis("width", {"relu": (0.2, 0.9)}, depth=8),
           PARTLY: lambda: _along_axis("width", {"relu": (0.2, 0.9), "elu": (0.2, 0.9), "selu": (0.5, 0.4)}, depth=8),
           NOT_REPRODUCED: lambda: _along_axis("width", {"relu": (0.9, 0.2)}, depth=8),
           INSUFFICIENT: lambda: _along_axis("width", {"relu": (0.2, 0.9)}, n=2, depth=8),
           NOT_COVERED: lambda: [row(depth=4, seed=s) for s in seeds()]},
}


@pytest.mark.parametrize("claim, status", [(c, s) for c, by in STATUSES.items() for s in by])
def test_every_claim_reaches_every_status_on_a_planted_table(claim, status):
    v = verdict(STATUSES[claim][status](), claim)
    assert v.status == status, v.line()


# --- what the earlier rules got wrong, and what stays right ---------------------------------------------------

def test_c2_one_seed_that_never_interpolated_is_not_reproduced():
    rows = [row(depth=d, attractor=a, retrieval=0.0, status="not_converged") for d, a in ((2, 0.0), (8, 0.9))]
    v = verdict(rows, "C2")
    assert v.status == INSUFFICIENT and v.excluded == {"did not interpolate": 2}, v.line()


def test_c2_a_higher_mean_carried_by_one_seed_is_no_rise():
    # depth 8 stores more on average, but one seed of five carries it: the pooled test cannot say yes
    rows = [row(depth=d, seed=s, attractor=a) for d, vals in ((2, (0.0, 0.0, 0.2, 0.0, 0.1)), (8, (0.0, 0.0, 0.9, 0.0, 0.1)))
            for s, a in enumerate(vals)]
    v = verdict(rows, "C2")
    assert v.parts[0].pooled.estimate > 0 and v.status == INSUFFICIENT, v.line()


def test_c2_uses_the_deepest_depth_whose_cell_is_tested():
    rows = [row(depth=d, seed=s, attractor=a) for s in seeds() for d, a in ((2, 0.0), (6, 0.9))]
    rows += [row(depth=12, seed=s, attractor=0.0, status="ok" if s < 2 else "not_converged") for s in seeds()]
    v = verdict(rows, "C2")
    assert v.status == REPRODUCED and "at depth 6" in v.text and v.excluded == {"did not interpolate": 3}, v.line()


def test_comparisons_pair_networks_by_seed_where_the_cells_share_seeds():
    v = verdict(_along_axis("depth", {"relu": (0.0, 0.9)}), "C2")
    assert "paired by seed (5 seeds)" in v.text
    # three seeds paired cannot decide alone (2^3 sign patterns), but two groups pooled can
    three = verdict(_along_axis("depth", {"relu": (0.0, 0.9)}, n=3), "C2")
    assert three.status == INSUFFICIENT and three.parts[0].pooled.p_up == 1 / 8, three.line()
    two = verdict(_along_axis("depth", {"relu": (0.0, 0.9), "selu": (0.0, 0.9)}, n=3), "C2")
    assert two.status == REPRODUCED and two.parts[0].pooled.p_up == 1 / 64, two.line()
    # cells that share too few seeds are compared network against network
    rows = [row(depth=2, seed=s, attractor=0.0) for s in (0, 1, 2)] + [row(depth=8, seed=s, attractor=0.9) for s in (3, 4, 5)]
    assert "unpaired (3 vs 3)" in verdict(rows, "C2").text


def test_c3_stride1_never_interpolating_and_one_lucky_seed_is_not_reproduced():
    rows = [row("conv", d, s, 32, 0.0, status="not_converged") for d in (2, 4, 6, 8) for s in (0, 1)]
    rows += [row("conv_down", d, s, 32, 0.9 if (d == 8 and s == 0) else 0.0) for d in (2, 4, 6, 8) for s in (0, 1)]
    v = verdict(rows, "C3")
    assert v.status == INSUFFICIENT and v.excluded == {"did not interpolate": 8}, v.line()


def test_c3_without_stride1_nets_is_at_best_partly():
    rows = [row("conv_down", d, s, 32, 0.9 if d >= 4 else 0.0) for d in (2, 4, 8) for s in seeds()]
    v = verdict(rows, "C3")
    assert v.status == PARTLY and "not tested: the grid lacks conv" in v.text, v.line()


def test_c1_rests_on_layers_that_interpolated_and_adam_is_outside_its_setting():
    rows = _c1({"identity": 1e-7}) + [_single("tanh", s, "not_converged") for s in seeds()]
    v = verdict(rows, "C1")
    assert v.status == PARTLY and v.excluded == {"did not interpolate": 5}, v.line()  # tanh untested: half covered
    assert "activation tanh: untestable: 0 of 5 seeds usable" in v.text
    assert verdict([r for r in rows if r["activation"] == "tanh"], "C1").status == INSUFFICIENT
    leaky = _c1({"identity": 0.2})
    assert verdict([{**r, "optimizer": "adam"} for r in leaky], "C1").status == NOT_COVERED


def test_c3_linear_a_counterexample_below_the_bound_says_no():
    rows = _c3_linear({"conv": 4, "conv_down": 2})
    assert verdict(rows, "C3-linear").status == REPRODUCED
    narrow = [_linear("conv", 2, 8, r["seed"], True) if r["arch"] == "conv" and r["depth"] == 2 and r["seed"] == 0
              else r for r in rows]
    v = verdict(narrow, "C3-linear")
    assert v.status == PARTLY and v.parts[0].status == NOT_REPRODUCED and "1 usable stride-1 net(s)" in v.text, v.line()
    assert verdict(rows, "C4").status == NOT_COVERED  # linear nets are not C4's attractor evidence


def test_c5_counts_seeds_per_cell_and_needs_unstable_cycles_for_its_only_if_half():
    v = verdict(_c5(0.9), "C5")
    assert v.status == PARTLY and v.seeds == 5 and "untestable: 15 stable and 0 unstable cycles" in v.text, v.line()


def test_each_claim_reads_only_its_own_trials_from_a_mixed_grid():
    c2 = _along_axis("depth", {"relu": (0.0, 0.9)}, n_train=2)
    c2 += _along_axis("depth", {"relu": (0.9, 0.0)}, n_train=1) + _along_axis("depth", {"relu": (0.9, 0.0)}, arch="conv",
                                                                              n_train=2)
    assert verdict(c2, "C2").status == REPRODUCED, verdict(c2, "C2").line()
    c6 = _along_axis("width", {"relu": (0.2, 0.9)}, depth=8, n_train=2)
    c6 += _along_axis("width", {"relu": (0.9, 0.2)}, depth=8, n_train=1)
    assert verdict(c6, "C6").status == REPRODUCED, verdict(c6, "C6").line()
    stored = _c4({"selu": 1.0})
    assert verdict([dict(r, task="sequence") for r in stored], "C4").status == NOT_COVERED
    assert verdict([dict(r, activation="relu", bias=False) for r in stored], "C4").status == REPRODUCED


def test_verdicts_judge_c3_with_the_criterion_given():
    rows = [row(a, d, s, 32, 0.3 if d >= first else 0.0) for a, first in (("conv_down", 4), ("conv", 8))
            for d in (2, 4, 8) for s in seeds()]
    c3 = {v.claim: v for v in claims.verdicts(pd.DataFrame(rows), maps.Criterion(0.25, 0.25))}["C3"]
    assert c3.status == REPRODUCED, c3.line()
    assert verdict(rows, "C3").status == NOT_REPRODUCED


# --- what a verdict says ------------------------------------------------------------------------------------

def test_not_covered_verdicts_say_what_the_grid_lacks_and_nothing_else():
    table = pd.DataFrame([row(depth=4, seed=s) for s in seeds()])
    assert [v.line() for v in claims.verdicts(table)] == [
        "C1 [not covered]: no depth-1 trials trained by plain GD in this grid",
        "C2 [not covered]: needs nonlinear fc trials on several examples at two or more depths >= 2",
        "C3 [not covered]: needs nonlinear conv or conv_down trials at two or more depths",
        "C3-linear [not covered]: needs linear conv or conv_down trials at two or more depths",
        "C4 [not covered]: no nonlinear n_train = 1 trials in this grid",
        "C5 [not covered]: no task = sequence trials in this grid",
        "C6 [not covered]: needs nonlinear trials on several examples at two or more widths"]


def test_a_verdict_line_counts_groups_exclusions_and_the_fewest_seeds():
    rows = _along_axis("depth", {"relu": (0.0, 0.9), "selu": (0.0, 0.9)})
    rows += [row(depth=8, seed=9, activation="relu", status="not_converged")]
    rows += [row(depth=8, seed=s, activation="relu", status="diverged") for s in (10, 11)]
    rows += [row(depth=8, seed=s, activation="elu", attractor=0.9) for s in seeds(2)]  # elu: one depth, two seeds
    v = verdict(rows, "C2")
    assert v.status == PARTLY and v.excluded == {"did not interpolate": 1, "diverged": 2}, v.line()
    assert v.text.startswith("pooled difference deepest - shallowest +0.90 (90% CI"), v.text
    assert "3 of 3 groups tested" not in v.text and "2 of 3 groups tested (2 yes, 0 no, 0 against, 0 insufficient), " \
        "1 untestable (partly: 1 untestable)" in v.text
    assert "activation elu: untestable: fewer than two depth values with 3 usable seeds (depth 8: 2 of 2 usable)" in v.text
    # the elu cell (two usable seeds) is read by no test, and the line says it is there
    assert v.line().endswith(" [min seeds per tested cell 5; 1 of 5 cells untested (fewer than 3 usable seeds); "
                             "excluded: 1 did not interpolate, 2 diverged]")
    assert (v.cells, v.tested, v.usable, v.groups()) == (5, 4, (2, 5), (2, 3))


def test_an_axis_missing_from_older_trials_is_a_group_of_its_own():
    rows = _along_axis("depth", {"relu": (0.0, 0.9)}, lr=1e-3) + _along_axis("depth", {"relu": (0.9, 0.0)}, lr=None)
    v = verdict(rows, "C2")
    assert "lr nan: " in v.text and v.status != REPRODUCED, v.line()


def test_cells_of_two_seeds_are_counted_not_read_as_zero_seeds():
    # the smoke preset: two depths, two seeds each, every one usable; no cell is tested, none is empty
    v = verdict([row(depth=d, seed=s, attractor=0.9 * (d > 2)) for d in (2, 6) for s in range(2)], "C2")
    assert v.status == INSUFFICIENT and (v.cells, v.tested, v.usable) == (2, 0, (2, 2)), v.line()
    assert v.line().endswith("[no cell tested: at most 2 usable seeds in a cell, 3 needed; excluded: none]")
    assert "seeds per cell 0" not in v.line()
    nothing = verdict([row(depth=d, seed=s, status="diverged") for d in (2, 6) for s in range(3)], "C2")
    assert "[no cell tested: no usable trial, 3 needed; excluded: 6 diverged]" in nothing.line()


def test_the_fewest_seeds_is_that_of_a_tested_cell():
    rows = [row(depth=8, seed=s, attractor=0.9) for s in range(4)] + [row(depth=2, seed=s) for s in range(6)]
    rows += [row(depth=4, seed=s) for s in range(2)]  # an untested cell is read by nothing, counted by nothing
    v = verdict(rows, "C2")
    assert v.seeds == 4 and v.usable == (2, 6) and v.line().endswith(
        "[min seeds per tested cell 4; 1 of 3 cells untested (fewer than 3 usable seeds); excluded: none]")
    assert np.isnan(stats.share(0, 0).estimate)
