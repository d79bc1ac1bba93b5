"""The headline's tables (analysis/census.py) on hand-built trials whose answers are known."""
import numpy as np
import pandas as pd
import pytest

from analysis import census
from study import rules


def _trials(n_nets=6):
    rows = []
    for i in range(n_nets):
        rows.append({"trial_id": f"t{i}", "arch": "fc", "dataset": ["lfw", "photos"][i % 2], "n_train": 100,
                     "depth": 6, "width": 1024, "seed": i // 2, "status": "ok", "attractor_frac": 0.5 + 0.1 * (i // 2),
                     "spurious_points": i % 3, "spurious_train_rms_median": 0.1, "spurious_mean_rms_median": 0.3})
    rows.append({**rows[0], "trial_id": "bad", "status": rules.NOT_CONVERGED, "attractor_frac": np.nan, "seed": 9})
    return pd.DataFrame(rows)


def _retrieval(trials, random=(0.6, 0.2, 0.1, 0.05, 0.05)):
    rows = []
    for tid in trials.trial_id:
        for start, n, fr in (("heldout", 10, (0.5, 0.5, 0, 0, 0)), ("random", 1000, random),
                             ("noisy", 40, (1, 0, 0, 0, 0))):  # noisy starts are no part of the census
            rows.append({"trial_id": tid, "start": start, "n_starts": n, **dict(zip(rules.CENSUS_COLUMNS, fr))})
    return pd.DataFrame(rows)


def test_the_census_counts_every_heldout_and_random_start_of_each_usable_net_once():
    t = _trials()
    c = census.counts(t, _retrieval(t))
    assert list(c.trial_id) == [f"t{i}" for i in range(6)]  # the net that did not interpolate is left out
    assert (c.starts == 1010).all()
    assert c[list(census.CLASSES)].iloc[0].tolist() == [605, 205, 100, 50, 50]
    assert (c[list(census.CLASSES)].sum(axis=1) == c.starts).all()


def test_a_census_that_does_not_add_up_to_its_starts_is_an_error():
    t = _trials()
    with pytest.raises(ValueError, match="classified of 1010 starts"):
        census.counts(t, _retrieval(t, random=(0.6, 0.2, 0.1, 0.05, 0.0)))


def test_the_pooled_census_shares_sum_to_one_and_count_the_nets_with_spurious_points():
    t = _trials()
    s = census.shares(census.counts(t, _retrieval(t)), ["dataset"])
    assert s.nets.tolist() == [3, 3] and np.allclose(s[list(census.CLASSES)].sum(axis=1), 1)
    assert s.memory.iloc[0] == pytest.approx(605 / 1010)
    # lfw holds t0, t2, t4 with 0, 2, 1 spurious points
    assert (s.spurious_points.tolist(), s.nets_with_spurious.tolist()) == ([3, 3], [2, 2])


def test_stored_share_is_per_cell_over_usable_nets_and_an_untested_cell_is_named_not_read():
    s = census.stored(_trials())
    assert s.dataset.tolist() == ["lfw", "photos"] and s.n_usable.tolist() == [3, 3] and s.n_trials.tolist() == [4, 3]
    assert s.stored_median.tolist() == pytest.approx([0.6, 0.6]) and s.stored_min.tolist() == pytest.approx([0.5, 0.5])
    two = _trials().query("trial_id != 't1'")  # photos keeps 2 usable nets: untested, and left out of everything
    assert census.lines(two, _examples(two), _retrieval(two))[1] == ("stored: arch=fc width=1024 n_train=100 dataset=photos: too few usable nets "
                                                                    "(2 of 2; 3 needed)")
    assert set(census.counts(two, _retrieval(two)).dataset) == {"lfw"}


def _examples(trials, flat=()):
    rows = []
    for tid in trials.trial_id:
        for i in range(10):  # basin radius falls as rho and sigma_1 at the memory rise: Spearman -1 in each net
            rows.append({"trial_id": tid, "example": i, "basin_radius": 0.1 if tid in flat else (10 - i) / 10,
                         "memory_found": i < 8, "memory_spectral_radius": 0.1 * i,
                         "memory_top_singular_value": 1 + 0.1 * i if i % 2 else 1 + 0.1 * (9 - i)})
    return pd.DataFrame(rows)


def test_robustness_is_a_median_of_per_net_rank_correlations_with_flat_nets_left_out():
    t = _trials()
    rho, s1 = census.robustness(t, _examples(t, flat=("t5",)))
    assert (rho.against, rho.nets, rho.flat, rho.examples) == ("memory_spectral_radius", 5, 1, 48)
    assert (rho.per_net.estimate, rho.per_net.low, rho.per_net.high) == (-1, -1, -1)  # 5 nets: [min, max]
    assert rho.per_net.outcome == "no"
    # sigma_1 at the memory ranks the examples 0..7 as 8, 2, 6, 4, 4, 6, 2, 8 (in tenths): no monotone relation
    assert -0.5 < s1.per_net.estimate < 0.5
    assert "basin radius vs rho at the memory: median Spearman over 5 nets -1.00 (90% CI -1.00, -1.00; 5 of 5 below 0)" in rho.line()


def test_the_lines_name_every_cell_group_and_jacobian_quantity():
    t = _trials()
    out = census.lines(t, _examples(t), _retrieval(t))
    assert [x.split(":")[0] for x in out] == ["stored"] * 2 + ["census"] * 2 + ["robustness"] * 2
    assert out[2].startswith("census: arch=fc dataset=lfw n_train=100: 3030 starts of 3 nets: memory 59.9%")


def test_spearman_is_scipys_with_ties_averaged():
    from scipy import stats as sp
    rng = np.random.default_rng(0)
    a = pd.Series(rng.choice([0, 0.05, 0.1, 0.2, 0.4], 40))  # basin radii: few values, many ties
    b = pd.Series(rng.normal(size=40) - 3 * a)
    assert census.spearman(a, b) == pytest.approx(sp.spearmanr(a, b).statistic, abs=1e-12)
    assert np.isnan(census.spearman(pd.Series([0.1] * 5), b[:5]))
