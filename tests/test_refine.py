"""Adaptive onset search on synthetic rate functions with a planted onset (no training)."""
import pytest

from study.refine import bisect_onset

DEPTHS = list(range(1, 33))


@pytest.mark.parametrize("planted", [1, 2, 7, 13, 16, 17, 31, 32])
def test_finds_a_planted_onset_with_fewer_evaluations_than_the_dense_grid(planted):
    calls = []

    def rate_at(depth):  # a noisy-looking but monotone rate that crosses 0.5 exactly at `planted`
        calls.append(depth)
        return 0.9 if depth >= planted else 0.1 + 0.01 * depth

    onset = bisect_onset(rate_at, DEPTHS, coarse=4)
    assert onset.depth == planted
    assert len(calls) == len(set(calls)) == onset.n_evaluations  # no depth trained twice
    assert onset.n_evaluations <= len(DEPTHS) // 4 + 1 + 2  # coarse pass + log2(4) bisection steps
    assert onset.n_evaluations < len(DEPTHS)


def test_never_reached_and_uneven_candidates():
    onset = bisect_onset(lambda d: 0.2, DEPTHS)
    assert onset.depth is None and onset.n_evaluations == len(range(0, 32, 4)) + 1
    assert bisect_onset(lambda d: float(d >= 9), [2, 4, 6, 9, 12, 16], coarse=2).depth == 9
    with pytest.raises(ValueError):
        bisect_onset(lambda d: 1.0, [])


def test_refine_command_trains_fewer_depths_than_a_dense_grid(tmp_path, capsys):
    from study.cli import main
    from study.results import finished_ids
    out = tmp_path / "refine"
    code = main(["refine", "--preset", "smoke", "--set", "seed=0", "--set", "n_random_starts=5",
                 "--depths", "1:8", "--coarse", "4", "--out", str(out)])
    text = capsys.readouterr().out
    assert code == 0, text
    assert "onset depth" in text and "a dense grid needs 8" in text
    trained = len(finished_ids(str(out)))
    assert 2 <= trained < 8  # bisection trained only some of the 8 depths, each once


def test_refine_rejects_bad_depths(capsys):
    from study.cli import main
    assert main(["refine", "--preset", "smoke", "--depths", "a:b"]) == 2
    assert "--depths must look like 1:16 or 2,4,8" in capsys.readouterr().err
