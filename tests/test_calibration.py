"""The error rates of every test and every claim, measured by simulation (``analysis.calibration``):
under no effect, "yes" and "reproduced" come out at most ALPHA of the time, within Monte Carlo error;
with an effect of the size measured here, the power is printed (and must be real, or a test that never
says yes would pass). ``python benchmarks/calibration.py`` runs the same simulation larger."""
import math

import pytest

from analysis import calibration as cal
from study.rules import ALPHA


def bound(sims: int) -> float:
    """The largest rate still consistent with ALPHA in ``sims`` draws: ALPHA + 2.58 standard errors
    (a one-sided 99.5% margin, so that the suite's dozen checks rarely fail by chance)."""
    return ALPHA + 2.58 * math.sqrt(ALPHA * (1 - ALPHA) / sims)


def report(capsys, text: str) -> None:
    with capsys.disabled():
        print(f"\n[calibration] {text}", end="")


# kind, seeds, sims under no effect, effect size, sims with it, the power it must at least reach
TESTS = [("paired", 5, 2000, 0.3, 400, 0.3), ("unpaired", 3, 2000, 0.3, 400, 0.15), ("unpaired", 5, 2000, 0.3, 400, 0.3),
         ("pooled", 3, 1000, 0.3, 200, 0.8), ("pooled", 5, 500, 0.3, 200, 0.9), ("share", 5, 4000, 0.4, 1000, 0.4),
         ("median", 5, 4000, 0.3, 1000, 0.3), ("median", 18, 4000, 0.3, 1000, 0.8),
         ("trend", 3, 400, 1.0, 200, 0.03), ("trend", 5, 100, 1.0, 60, 0.1)]


@pytest.mark.parametrize("kind, seeds, sims, effect, power_sims, floor", TESTS,
                         ids=[f"{t[0]}-{t[1]}seeds" for t in TESTS])
def test_each_test_says_yes_under_no_effect_at_most_alpha_of_the_time(kind, seeds, sims, effect, power_sims, floor,
                                                                      capsys):
    rate = cal.test_rate(kind, seeds, 0.0, sims)
    power = cal.test_rate(kind, seeds, effect, power_sims, seed=1)
    report(capsys, f"{kind}, {seeds} seeds: false yes {rate:.3f} in {sims} draws (bound {bound(sims):.3f}); "
                   f"power {power:.2f} at effect {effect:g}")
    assert rate <= bound(sims)
    assert power >= floor


# the claims at the presets' five seeds; effects of the size the -local runs measured
CLAIMS = {"C1": 0.45, "C2": 0.4, "C3": 0.8, "C3-linear": 0.45, "C4": 0.45, "C5": 0.45, "C6": 0.3}
FLOORS = {"C1": 0.6, "C2": 0.9, "C3": 0.05, "C3-linear": 0.2, "C4": 0.6, "C5": 0.05, "C6": 0.7}


@pytest.mark.parametrize("claim", sorted(CLAIMS))
def test_each_claim_comes_out_reproduced_under_no_effect_at_most_alpha_of_the_time(claim, capsys):
    sims = 150
    rate = cal.claim_rate(claim, 5, 0.0, sims)
    power = cal.claim_rate(claim, 5, CLAIMS[claim], 60, seed=1)
    report(capsys, f"{claim}, 5 seeds: false reproduced {rate:.3f} in {sims} draws (bound {bound(sims):.3f}); "
                   f"power {power:.2f} at effect {CLAIMS[claim]:g}")
    assert rate <= bound(sims)
    assert power >= FLOORS[claim]
