"""Adaptive onset search: the pure search on planted rate functions, its rounds over a grid with an
engine that plants rows (no training), and ``memsweep refine`` through Ray, killed and resumed."""
from types import SimpleNamespace

import pyarrow as pa
import pytest

from study.store import parts
from study.store import schema
from study.sweep.grid import Grid
from study.store.reader import finished_ids
from study.sweep.refine import INCOMPLETE, bisect_onset, group_label, label_fields, refine, search_groups, search_step
from study.rules import BOUND, NO_EVIDENCE, NOT_MONOTONE, NOT_REACHED, REACHED

DEPTHS = list(range(1, 33))


@pytest.mark.parametrize("planted", [1, 2, 7, 13, 16, 17, 31, 32])
def test_finds_a_planted_onset_with_fewer_evaluations_than_the_dense_grid(planted):
    calls = []

    def rate_at(depth):  # a noisy-looking but monotone rate that crosses 0.5 exactly at `planted`
        calls.append(depth)
        return 0.9 if depth >= planted else 0.1 + 0.01 * depth

    onset = bisect_onset(rate_at, DEPTHS, coarse=4)
    assert onset.status == REACHED and onset.depth == planted
    assert len(calls) == len(set(calls)) == onset.n_evaluations  # no depth trained twice
    assert onset.n_evaluations <= len(DEPTHS) // 4 + 1 + 2  # coarse pass + log2(4) bisection steps
    assert onset.n_evaluations < len(DEPTHS)


def test_never_reached_and_uneven_candidates():
    onset = bisect_onset(lambda d: 0.2, DEPTHS)
    assert onset.status == NOT_REACHED and onset.depth is None
    assert onset.n_evaluations == len(range(0, 32, 4)) + 1
    assert bisect_onset(lambda d: float(d >= 9), [2, 4, 6, 9, 12, 16], coarse=2).depth == 9
    with pytest.raises(ValueError):
        bisect_onset(lambda d: 1.0, [])


def test_the_search_is_a_pure_step_from_the_rates_seen():
    depths = list(range(1, 13))
    assert search_step(depths, {}) == [1, 5, 9, 12]  # the coarse pass, as one round
    seen = {1: 0.0, 5: 0.0, 9: 1.0, 12: 1.0}
    assert search_step(depths, seen) == [7]          # bisection inside (5, 9)
    assert search_step(depths, {**seen, 7: 1.0}) == [6]
    assert search_step(depths, {**seen, 7: 1.0, 6: 0.33}).depth == 7
    # resume: rates of depths outside the candidates are ignored; a partial coarse pass asks for the rest
    assert search_step(depths, {1: 0.0, 5: 0.0, 40: 1.0}) == [9, 12]


def test_a_rate_that_falls_back_below_the_threshold_gets_no_onset():
    onset = bisect_onset(lambda d: {1: 0.0, 5: 0.67, 9: 0.33, 12: 1.0}.get(d, 0.5), list(range(1, 13)))
    assert onset.status == NOT_MONOTONE and onset.depth is None
    assert sorted(onset.evaluated) == [1, 5, 9, 12]  # stopped after the coarse pass: nothing to bisect
    assert "NOT MONOTONE" in onset.describe() and "9: 0.33" in onset.describe()


def test_a_depth_without_enough_usable_seeds_is_untested_by_the_search():
    nan = float("nan")
    depths = list(range(1, 13))
    # depth 5 untested: the onset can lie there, so the search brackets from depth 1 and says "at most"
    assert search_step(depths, {1: 0.0, 5: nan, 9: 1.0, 12: 1.0}) == [7]
    found = search_step(depths, {1: 0.0, 5: nan, 9: 1.0, 12: 1.0, 7: 1.0, 6: nan})
    assert (found.depth, found.status) == (7, BOUND) and "at most 7" in found.describe() and "6: too few" in found.describe()
    assert search_step(depths, {1: nan, 5: nan, 9: nan, 12: nan}).status == NO_EVIDENCE


# --- rounds over a grid, with rows planted by a fake engine ------------------------------------------

FILL = {pa.int64(): 3, pa.float64(): 0.5, pa.string(): "x"}


class PlantingEngine:
    """Stands in for ``sweep.Engine``: ``run`` writes each config's trial row, memorized where
    ``memorizes(cfg)`` says, as a trial would; ``lose`` names configs whose rows never appear."""

    def __init__(self, out, memorizes, lose=(), failing=lambda cfg: False):
        self.out, self.memorizes, self.lose, self.rounds = str(out), memorizes, set(lose), []
        self.failing = failing  # configs whose trial does not interpolate

    def run(self, configs):
        self.rounds.append(sorted({(c.width, c.depth) for c in configs}))
        for cfg in configs:
            if cfg.trial_id in self.lose or cfg.trial_id in finished_ids(self.out):
                continue
            frac = 1.0 if self.memorizes(cfg) else 0.0
            row = {**cfg.to_row(), **{k: FILL[t] for k, (t, _) in schema.TRIAL_METRICS.items()},
                   "trial_id": cfg.trial_id, "status": "not_converged" if self.failing(cfg) else "ok", "error": None,
                   "attractor_frac": frac,
                   "retrieval_same_frac": frac}
            parts.write_trial(self.out, SimpleNamespace(trial=row, examples=[], retrieval=[], curve=[]))


def _die():
    raise SystemExit(17)


def memorized(rows):
    return (rows["attractor_frac"] >= 0.5) & (rows["retrieval_same_frac"] >= 0.5)


GRID = Grid(axes={"width": [64, 128], "seed": [0, 1, 2]}, fixed={"n_random_starts": 5})
PLANTED = {64: 7, 128: 4}  # the onset depth per width


def test_refine_runs_every_group_in_rounds_and_resumes_from_the_rows_there(tmp_path):
    logs = []
    engine = PlantingEngine(tmp_path, lambda c: c.depth >= PLANTED[c.width])
    found = refine(GRID, list(range(1, 13)), engine, memorized, log=logs.append)
    assert {k.width: (o.status, o.depth) for k, o in found.items()} == {64: (REACHED, 7), 128: (REACHED, 4)}
    # round 1 is both groups' coarse pass at once; then one bisection depth per group per round
    assert engine.rounds[0] == [(w, d) for w in (64, 128) for d in (1, 5, 9, 12)]
    assert engine.rounds[1] == [(64, 7), (128, 3)]
    evaluated = {(k.width, d) for k, o in found.items() for d in o.evaluated}
    assert len(finished_ids(str(tmp_path))) == 3 * len(evaluated) < 3 * 2 * 12  # fewer than dense

    killed = tmp_path / "killed"
    stopper = PlantingEngine(killed, engine.memorizes)
    stopper.run = lambda configs, run=stopper.run: (run(configs), len(stopper.rounds) < 2 or _die())
    with pytest.raises(SystemExit):  # the driver dies after its second round
        refine(GRID, list(range(1, 13)), stopper, memorized, log=logs.append)
    resumed = PlantingEngine(killed, engine.memorizes)
    assert {k: o.depth for k, o in refine(GRID, list(range(1, 13)), resumed, memorized, log=logs.append).items()} \
        == {k: o.depth for k, o in found.items()}
    assert resumed.rounds == engine.rounds[2:]  # it goes on from the third round
    assert finished_ids(str(killed)) == finished_ids(str(tmp_path))

    again = PlantingEngine(tmp_path, engine.memorizes)  # the same folder: everything is there
    assert {k: o.depth for k, o in refine(GRID, list(range(1, 13)), again, memorized, log=logs.append).items()} \
        == {k: o.depth for k, o in found.items()}
    assert again.rounds == []  # resumed from the rows: nothing handed to the engine


def test_refine_reads_the_usable_seeds_only(tmp_path):
    # width 64: from depth 7 on only one seed interpolates (and it memorizes): never an onset from one seed
    def plant(c):
        return c.depth >= PLANTED[c.width]
    engine = PlantingEngine(tmp_path, plant, failing=lambda c: c.width == 64 and c.depth >= 7 and c.seed > 0)
    found = refine(GRID, list(range(1, 13)), engine, memorized, log=[].append)
    assert {k.width: o.status for k, o in found.items()} == {64: NOT_REACHED, 128: REACHED}
    assert all(r != r for d, r in found[next(k for k in found if k.width == 64)].evaluated.items() if d >= 7)


def test_refine_says_which_groups_are_not_monotone_or_incomplete(tmp_path):
    logs = []
    wavy = lambda c: c.depth == 5 or c.depth >= 12 if c.width == 64 else c.depth >= 3  # noqa: E731
    lost = {c.trial_id for c in GRID.configs() for c in [c.replace(depth=9)] if c.width == 128}
    engine = PlantingEngine(tmp_path, wavy, lose=lost)
    found = refine(GRID, list(range(1, 13)), engine, memorized, log=logs.append)
    assert {k.width: o.status for k, o in found.items()} == {64: NOT_MONOTONE, 128: INCOMPLETE}
    assert all(o.depth is None for o in found.values())
    assert any("width=64" in line and "NOT MONOTONE" in line for line in logs)


def test_a_grid_point_is_named_by_the_fields_that_tell_it_apart():
    groups = search_groups(Grid(axes={"width": [64, 128], "image_size": [8, 25], "seed": [0, 1]}).configs())
    fields = label_fields(groups)
    # config.NAMED, the fields every group label names (as the report's onset tables and boundary lines do),
    # then the other fields that differ; never depth or seed: they are searched
    assert fields == ["arch", "width", "activation", "n_train", "dataset", "image_size"]
    assert sorted(group_label(k, fields) for k in groups)[0] == \
        "arch=fc, width=128, activation=leaky_relu, n_train=10, dataset=digits, image_size=25"


# --- memsweep refine, on Ray ------------------------------------------------------------------------

def test_refine_command_runs_on_ray_and_a_killed_driver_resumes_from_its_rows(tmp_path, sessions):
    out = tmp_path / "refine"
    # one training example is an attractor at every depth (C4): the coarse pass settles the onset
    args = ["refine", "--preset", "smoke", "--set", "seed=0,1,2", "--set", "n_random_starts=5", "--set", "n_train=1",
            "--depths", "1:8", "--coarse", "4", "--out", str(out)]
    code, text = sessions.run(*args, env={"MEMSWEEP_FAULT_STOP_ROUND": "1"})  # the driver dies after round 1
    assert code == 17, text
    assert "refine round 1: 9 configs for 1 groups at depths [1, 5, 8]" in text
    assert "starting a Ray of its own" in text and "onset depth" not in text
    first = finished_ids(str(out))
    assert len(first) == 9

    code, text = sessions.run(*args)
    assert code == 0, text
    assert "resuming refine of 1 grid points" in text and "refine round" not in text  # round 1 is not rerun
    assert "starting a Ray" not in text  # nothing left to train: Ray never starts
    assert "9 trials: 0 done, 9 skipped (already there)" in text
    assert "onset depth 1; rate by depth {1: 1.00, 5: 1.00, 8: 1.00}" in text
    assert "trained or reused 9 trials; a dense grid over depths 1:8 needs 24 (38%)" in text
    assert finished_ids(str(out)) == first


def test_groups_differing_only_in_lr_are_recorded_apart():
    """sweep.json's refine record named groups by a fixed list of fields, so two groups that differed
    only in lr were written as the same group twice."""
    from study.config import TrialConfig
    from study.sweep.refine import Onset, onset_records
    from study.rules import NOT_REACHED
    found = {TrialConfig(lr=1e-4): Onset(3, {2: 0.0, 3: 1.0}), TrialConfig(lr=1e-3): Onset(None, {2: 0.0, 3: 0.0},
                                                                                              NOT_REACHED)}
    records = onset_records(found)
    assert [r["lr"] for r in records] == [1e-4, 1e-3] and records[0] != records[1]
    assert records[0]["onset_depth"] == 3 and records[1]["rates"] == {"2": 0.0, "3": 0.0}


def test_refine_rejects_bad_depths(capsys):
    from study.cli import main
    assert main(["refine", "--preset", "smoke", "--depths", "a:b"]) == 2
    assert "--depths must look like 1:16 or 2,4,8" in capsys.readouterr().err
