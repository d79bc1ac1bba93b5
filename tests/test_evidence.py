"""The one evidence model: which trials count, cells of seeds, untested cells, and the onset rule, on
hand-built trials tables with known answers."""
import itertools

import numpy as np
import pandas as pd
import pytest

from analysis import boundary, evidence, maps, stats
from study import rules


def frame(firsts: dict[tuple[str, int], list[int]], depths=(2, 4, 6, 8), status=lambda arch, w, d, s: "ok") -> pd.DataFrame:
    """One row per (arch, width, depth, seed); seed s memorizes from depth firsts[(arch, width)][s] on (0: never)."""
    rows = []
    for (arch, width), first in firsts.items():
        for seed, f in enumerate(first):
            for d in depths:
                yes = bool(f) and d >= f
                st = status(arch, width, d, seed)
                rows.append({"trial_id": f"{arch}-{width}-{d}-{seed}", "arch": arch, "width": width, "depth": d,
                             "seed": seed, "activation": "selu", "n_train": 10, "dataset": "digits", "status": st,
                             "attractor_frac": np.nan if st in ("diverged", "error") else 0.9 if yes else 0.2,
                             "retrieval_same_frac": 0.8 if yes else 0.1})
    return pd.DataFrame(rows)


# --- which trials are evidence -----------------------------------------------------------------------------

def test_only_interpolated_and_probed_trials_are_usable_and_the_rest_are_counted_by_reason():
    t = pd.DataFrame({"status": ["ok", "ok", "not_converged", "diverged", "error"],
                      "attractor_frac": [0.5, np.nan, 0.9, np.nan, np.nan]})
    assert evidence.usable(t).tolist() == [True, False, False, False, False]
    assert evidence.excluded(t) == {"not probed": 1, "did not interpolate": 1, "diverged": 1, "error": 1}
    # a hand-built table without a status column: every probed trial counts
    assert evidence.usable(t.drop(columns="status")).tolist() == [True, False, True, False, False]


def test_a_cell_short_of_usable_seeds_has_no_rate_and_says_so():
    # width 32, depth 8: one of three seeds interpolated, and it memorizes: "1/3 fit: too few", never a rate of 1
    t = frame({("fc", 32): [8, 8, 8]}, status=lambda a, w, d, s: "not_converged" if d == 8 and s else "ok")
    cells = evidence.cells(t).set_index("depth")
    eight = cells.loc[8]
    assert (eight.n_trials, eight.n_usable, eight.n_memorized, eight.tested) == (3, 1, 1, False)
    assert np.isnan(eight.rate) and np.isnan(eight.rate_low) and evidence.cell_text(eight) == "1/3 fit: too few"
    assert cells.loc[6].tested and cells.loc[6].rate == 0 and evidence.cell_text(cells.loc[6]) == "0/3"
    # the not-converged seeds' attractor shares are not the cell's: mean, min and max over the usable seed only
    assert (eight.attractor_frac, eight.attractor_min, eight.attractor_max) == (0.9, 0.9, 0.9)
    assert eight.n_not_converged == 2 and pd.api.types.is_integer_dtype(cells.n_usable)


def test_a_tested_cell_has_the_rate_of_its_usable_seeds_and_its_exact_interval():
    t = frame({("fc", 64): [2, 2, 0, 2]}, depths=(2,), status=lambda a, w, d, s: "diverged" if s == 3 else "ok")
    cell = evidence.cells(t).iloc[0]
    assert (cell.n_usable, cell.n_memorized, cell.rate) == (3, 2, pytest.approx(2 / 3))  # the diverged seed is out
    assert (cell.rate_low, cell.rate_high) == (stats.share(2, 3).low, stats.share(2, 3).high)
    loose = evidence.cells(t, maps.Criterion(0.1, 0.05)).iloc[0]
    assert loose.rate == 1  # the criterion is the caller's


def test_the_rules_rate_is_untested_below_the_minimum_and_exact_at_it():
    assert np.isnan(rules.cell_rate(2, rules.MIN_SEEDS - 1))
    assert rules.cell_rate(2, rules.MIN_SEEDS) == pytest.approx(2 / rules.MIN_SEEDS)


def test_the_evidence_is_the_usable_trials_of_tested_cells():
    t = frame({("fc", 32): [8, 8, 8]}, status=lambda a, w, d, s: "not_converged" if d == 8 and s else "ok")
    rows = evidence.tested_rows(t)
    assert sorted(rows.depth.unique()) == [2, 4, 6] and len(rows) == 9


# --- the onset rule --------------------------------------------------------------------------------------

def test_a_rate_of_exactly_the_threshold_is_the_onset():
    # four seeds: two memorize from depth 4, two from 8; at 4 and 6 the rate is exactly 0.5
    on = evidence.onsets(frame({("fc", 64): [4, 4, 8, 8]})).iloc[0]
    assert (on.onset_depth, on.status) == (4, rules.REACHED)
    assert (on.first_some, on.first_all) == (4, 8)


def test_onset_when_seeds_disagree_and_when_none_reaches():
    on = evidence.onsets(frame({("fc", 64): [4, 6, 0], ("fc", 256): [0, 0, 0]})).set_index("width")
    assert on.loc[64, "onset_depth"] == 6 and on.loc[64, "first_some"] == 4 and np.isnan(on.loc[64, "first_all"])
    assert evidence.describe_onset(on.loc[64]) == "6 (a seed from 4, every seed at no tested depth)"
    assert on.loc[256, "status"] == rules.NOT_REACHED and np.isnan(on.loc[256, "onset_depth"])
    assert evidence.describe_onset(on.loc[256]) == "> 8 (not reached by the deepest tested depth)"
    assert on.loc[64, "evidence"] == "2: 0/3, 4: 1/3, 6: 2/3, 8: 2/3"


def test_a_memorizing_cell_short_of_seeds_is_no_onset():
    # the make-run case: width 32 never reaches 0.5 at a tested depth; at depth 12 one fitted seed memorizes
    t = frame({("fc", 32): [12, 12, 12]}, depths=(2, 4, 8, 12),
              status=lambda a, w, d, s: "not_converged" if d == 12 and s else "ok")
    on = evidence.onsets(t).iloc[0]
    assert on.status == rules.NOT_REACHED and np.isnan(on.onset_depth) and on.untested == [12]
    # its depths' usable seeds, untested ones included: what the report's onset table shows
    assert (on.n_seeds, on.fewest_usable, on.most_usable) == (3, 1, 3)
    counts = evidence.seed_counts(t).set_index("depth")
    assert counts.n_usable.to_dict() == {2: 3, 4: 3, 8: 3, 12: 1} and counts.tested.to_dict()[12] is False
    assert evidence.describe_onset(on) == "> 8 (not reached by the deepest tested depth); untested (too few seeds): 12"
    # the boundary's table is the same table: one onset per cell on every page
    assert boundary.table(t).drop(columns=[]).iloc[0].status == rules.NOT_REACHED


def test_an_untested_depth_just_before_the_onset_makes_it_an_upper_bound():
    t = frame({("fc", 64): [6, 6, 6]}, status=lambda a, w, d, s: "not_converged" if d == 4 and s else "ok")
    on = evidence.onsets(t).iloc[0]
    assert (on.onset_depth, on.status) == (6, rules.BOUND)
    assert evidence.describe_onset(on).startswith("at most 6 (")
    # an untested depth with a tested one below the threshold after it does not move the onset
    t = frame({("fc", 64): [6, 6, 6]}, status=lambda a, w, d, s: "not_converged" if d == 2 and s else "ok")
    assert evidence.onsets(t).iloc[0].status == rules.REACHED


def test_a_rate_that_falls_back_has_no_onset_and_no_evidence_is_said():
    t = frame({("fc", 64): [4, 4, 4]})
    t.loc[t.depth == 6, ["attractor_frac", "retrieval_same_frac"]] = 0.0
    on = evidence.onsets(t).iloc[0]
    assert on.status == rules.NOT_MONOTONE and evidence.describe_onset(on).startswith("not monotone")
    none = evidence.onsets(frame({("fc", 64): [4, 4, 4]}, status=lambda *a: "not_converged")).iloc[0]
    assert none.status == rules.NO_EVIDENCE and none.n_seeds == 0
    assert evidence.describe_onset(none) == "no evidence: fewer than 3 usable seeds at every depth"


def test_the_onset_rule_on_rate_curves():
    nan = np.nan
    assert rules.onset([0, 0.4, 0.5, 1]) == (2, rules.REACHED)
    assert rules.onset([0, nan, 0.7]) == (2, rules.BOUND)
    assert rules.onset([nan, 0, 0.7]) == (2, rules.REACHED)
    assert rules.onset([0, 0.7, 0.3, 1]) == (1, rules.NOT_MONOTONE)
    assert rules.onset([0.7, nan, 0.9]) == (0, rules.REACHED)  # an untested depth after the onset: no fall seen
    assert rules.onset([0.2, 0.3]) == (None, rules.NOT_REACHED)
    assert rules.onset([nan, nan]) == (None, rules.NO_EVIDENCE) == rules.onset([])
    # a depth not trained at all is absent, not untested
    first, status = rules.onsets(np.array([[0, nan, 0.7]]), trained=np.array([[True, False, True]]))
    assert (first[0], status[0]) == (2, rules.REACHED)


def test_seed_profiles_give_the_onsets_of_the_table():
    # the trend's relabellings recompute onsets from seed profiles: on the observed labelling they must be the table's
    rng = np.random.default_rng(3)
    for _ in range(30):
        firsts = {("fc", w): list(rng.choice([0, 2, 4, 6, 8], size=4)) for w in (64, 128, 256)}
        t = frame(firsts, status=lambda a, w, d, s: rng.choice(["ok", "ok", "ok", "not_converged", "diverged"]))
        t = t.drop(index=rng.choice(t.index, size=5, replace=False))  # some trials never trained
        m, present, widths, depths = evidence.profiles(t, "width")
        onset, status = evidence.profile_onsets(m, present, depths)
        table = evidence.onsets(t).set_index("width").loc[widths]
        assert status.tolist() == table.status.tolist()
        np.testing.assert_array_equal(onset, table.onset_depth.to_numpy(float))


def test_onsets_keep_every_line_apart_and_follow_the_criterion():
    t = pd.concat([frame({("fc", 64): [4, 4, 4]}).assign(lr=1e-3), frame({("fc", 64): [8, 8, 8]}).assign(lr=1e-4)])
    on = evidence.onsets(t)
    assert "lr" in on and on.set_index("lr").onset_depth.to_dict() == {1e-3: 4, 1e-4: 8}
    loose = evidence.onsets(t, maps.Criterion(0.1, 0.05))
    assert loose.onset_depth.tolist() == [2, 2]
    pooled = evidence.onsets(t, by=["arch"])
    assert len(pooled) == 1 and pooled.iloc[0].onset_depth == 4  # six seeds, half from 4


@pytest.mark.parametrize("shape", list(itertools.product((1, 3), (2, 4))))
def test_cells_count_integers_for_every_shape(shape):
    seeds, widths = shape
    t = frame({("fc", 16 * (w + 1)): [4] * seeds for w in range(widths)})
    c = evidence.cells(t)
    assert len(c) == 4 * widths and (c.tested == (seeds >= rules.MIN_SEEDS)).all()
    assert all(pd.api.types.is_integer_dtype(c[col]) for col in ("n_trials", "n_usable", "n_memorized"))


def test_budget_notes_say_which_rule_measured_the_trials_and_when_a_budget_bound():
    t = frame({("fc", 64): [4, 4, 4]})
    (note,) = evidence.budget_notes(t)  # no capped_frac column: every usable trial predates the dynamical rule
    assert note.startswith(f"attractor rule: {len(t)} of {len(t)} usable trials")
    # 6% of the probe starts capped, on average: warned (above rules.CAPPED_WARN = 5%); 4%: not
    for share, warned in ((0.06, True), (0.04, False)):
        notes = evidence.budget_notes(t.assign(capped_frac=share, attractor_unsure_frac=0.0))
        assert [n.startswith("iteration budget: 6.0% of the probe starts of 12") for n in notes] == ([True] if warned
                                                                                                      else [])
    # a trial that did not interpolate is no evidence: its capped share does not count
    mixed = t.assign(capped_frac=0.0, attractor_unsure_frac=0.0)
    mixed.loc[0, ["status", "capped_frac"]] = ["not_converged", 1.0]
    assert evidence.budget_notes(mixed) == []
    # one trial where a kink flips a decision
    kinked = t.assign(capped_frac=0.0, attractor_unsure_frac=[0.1] + [0.0] * (len(t) - 1))
    assert [n.split(":")[0] for n in evidence.budget_notes(kinked)] == ["kinks"]
