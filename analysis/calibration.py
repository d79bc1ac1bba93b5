"""How often the analysis says yes when it should not, and how often when it should: measured by
simulation, on trials tables drawn with a known effect.

Each generator draws a trials table in one claim's setting (the shape of its ``-local`` preset:
its groups, the two ends of the axis compared, ``seeds`` networks per cell), with ``effect`` the
size of the planted effect (0: none). The networks of one seed share a latent propensity across the
cells of their group (a seed fixes the training images), so the simulated cells are correlated as
real ones are. Per-network values are drawn as the probes report them: an attractor share is a
count over the training examples (``n_train`` = 10) of a seed-level probability.

    python benchmarks/calibration.py       # the table in benchmarks/calibration.md
    tests/test_calibration.py              # the same simulation, smaller, asserting the error rates

``claim_rate`` is the share of draws in which a claim comes out "reproduced"; ``test_rate`` the
share in which one comparison (two-sample, pooled, share, trend) says yes.
"""
from __future__ import annotations

import itertools

import numpy as np
import pandas as pd

from study import rules

from . import boundary, claims, evidence, stats

N_EXAMPLES = 10  # training examples behind a simulated attractor share


def _frac(rng: np.random.Generator, p) -> np.ndarray:
    """An attractor share over N_EXAMPLES examples of probability ``p`` (clipped to [0, 1])."""
    return rng.binomial(N_EXAMPLES, np.clip(p, 0, 1)) / N_EXAMPLES


def _row(**kw) -> dict:
    base = {"arch": "fc", "width": 64, "depth": 4, "activation": "selu", "n_train": 10, "dataset": "digits",
            "bias": True, "task": "autoencode", "optimizer": "adam", "status": "ok", "seed": 0}
    base.update(kw)
    base.setdefault("retrieval_same_frac", base.get("attractor_frac"))
    base.setdefault("retrieval_any_frac", base.get("attractor_frac"))
    named = ("arch", "width", "depth", "activation", "seed", "n_train")
    base["trial_id"] = "-".join(f"{k}{v}" for k, v in sorted(kw.items()) if k in named)
    return base


def _along(rng, seeds, effect, axis, ends, groups, fixed) -> pd.DataFrame:
    """Groups x the two ``ends`` of ``axis`` x seeds; attractor share at the far end raised by ``effect``."""
    rows = []
    for g in groups:
        latent = rng.beta(2, 3, size=seeds)  # a seed's propensity, shared by its networks in the group
        for s in range(seeds):
            for i, v in enumerate(ends):
                p = latent[s] + (effect if i else 0.0) + rng.normal(0, 0.1)
                rows.append(_row(**fixed, **g, **{axis: v}, seed=s, attractor_frac=float(_frac(rng, p))))
    return pd.DataFrame(rows)


def c2(rng, seeds, effect=0.0) -> pd.DataFrame:
    """c2-local's shape: fc, widths 64 and 256 x leaky ReLU and SELU, depth 2 against 12."""
    groups = [{"width": w, "activation": a} for w in (64, 256) for a in ("leaky_relu", "selu")]
    return _along(rng, seeds, effect, "depth", (2, 12), groups, {"arch": "fc"})


def c6(rng, seeds, effect=0.0) -> pd.DataFrame:
    """c6-local's shape: 30 digits, depth 4 and 8, width 128 against 512."""
    return _along(rng, seeds, effect, "width", (128, 512), [{"depth": 4}, {"depth": 8}], {"n_train": 30})


def c3(rng, seeds, effect=0.0) -> pd.DataFrame:
    """c3-local's shape: conv and conv_down, depth 6, 8 and 12. Under no effect every network memorizes
    with probability 0.3; with one, none does at depth 6, and the probability rises with depth to
    ``effect`` at depth 12 for conv_down and half of it for conv."""
    rows = []
    for arch, d in itertools.product(("conv", "conv_down"), (6, 8, 12)):
        for s in range(seeds):
            p = 0.3 if effect == 0 else effect * (6, 8, 12).index(d) / 2 * (1.0 if arch == "conv_down" else 0.5)
            m = float(rng.random() < min(p, 1.0))
            rows.append(_row(arch=arch, depth=d, width=32, seed=s, attractor_frac=m, retrieval_same_frac=m))
    return pd.DataFrame(rows)


def c3_linear(rng, seeds, effect=0.0) -> pd.DataFrame:
    """c3-linear-local's shape at side 8: conv and conv_down, depth 3, 4, 6 and 8, one image. The operator
    acts as P_X with probability 0.5 (+ ``effect`` for conv_down; stride-1 nets below the receptive-field
    bound: 0.5 - ``effect``)."""
    rows = []
    for arch, d in itertools.product(("conv", "conv_down"), (3, 4, 6, 8)):
        for s in range(seeds):
            narrow = arch == "conv" and 2 * d + 1 < 8
            p = 0.5 - effect if narrow else 0.5 + (effect if arch == "conv_down" else 0.0)
            acts = bool(rng.random() < p)
            rows.append(_row(arch=arch, depth=d, width=8, seed=s, n_train=1, activation="identity", bias=False,
                             image_size=8, input_dim=64, kernel_size=3, span_dim=1, attractor_frac=0.0,
                             operator_near_one=1 if acts else 64, operator_near_one_in_span=1,
                             operator_rest_radius=0.5))
    return pd.DataFrame(rows)


def c4(rng, seeds, effect=0.0) -> pd.DataFrame:
    """c4-local's shape: six activations x widths 64, 256 x depths 3, 6, one example; each network
    stores it with probability 0.5 + ``effect``."""
    rows = []
    for a, w, d in itertools.product(("leaky_relu", "selu", "elu", "tanh", "softplus", "cosid"), (64, 256), (3, 6)):
        for s in range(seeds):
            stored = float(rng.random() < 0.5 + effect)
            rows.append(_row(activation=a, width=w, depth=d, seed=s, n_train=1, attractor_frac=stored))
    return pd.DataFrame(rows)


def c5(rng, seeds, effect=0.0) -> pd.DataFrame:
    """c5-local's shape: cycles of 3 and 6, depth 2, 4 and 8. A cycle is stable with probability 0.8;
    retrieval is uniform on [0.125, 1.125] clipped to 1 (stable cycles: shifted up by ``effect``). Under
    no effect a network stores its cycle (stable, retrieval >= 0.5) with probability 0.8 x 0.625 = 1/2,
    and stable and unstable cycles are reached alike."""
    rows = []
    for n, d in itertools.product((3, 6), (2, 4, 8)):
        for s in range(seeds):
            stable = rng.random() < 0.8
            r = float(np.clip(rng.random() + (0.125 + effect if stable else 0.125), 0, 1))
            rows.append(_row(task="sequence", n_train=n, depth=d, width=256, seed=s, attractor_frac=float(stable),
                             retrieval_any_frac=r, retrieval_same_frac=r))
    return pd.DataFrame(rows)


def c1(rng, seeds, effect=0.0) -> pd.DataFrame:
    """c1-local's shape: single layers, identity and cosid, trained by GD; a network stays within the
    span tolerance with probability 0.5 + ``effect``."""
    rows = []
    for a in ("identity", "cosid"):
        for s in range(seeds):
            inside = rng.random() < 0.5 + effect
            rows.append(_row(depth=1, activation=a, bias=False, optimizer="gd", seed=s, n_train=5, attractor_frac=0.0,
                             span_input_sensitivity_mean=1e-7 if inside else 0.2))
    return pd.DataFrame(rows)


GENERATORS = {"C1": c1, "C2": c2, "C3": c3, "C3-linear": c3_linear, "C4": c4, "C5": c5, "C6": c6}


def claim_rate(claim: str, seeds: int, effect: float = 0.0, sims: int = 200, seed: int = 0) -> float:
    """Share of ``sims`` simulated tables on which ``claim`` comes out reproduced."""
    rng = np.random.default_rng(seed)
    fn = {v.__name__: v for v in claims.CLAIMS}
    name = {"C1": "c1_span", "C2": "c2_depth", "C3": "c3_conv", "C3-linear": "c3_linear", "C4": "c4_single",
            "C5": "c5_sequence", "C6": "c6_width"}[claim]
    hits = sum(fn[name](GENERATORS[claim](rng, seeds, effect)).status == claims.REPRODUCED for _ in range(sims))
    return hits / sims


# --- single tests -----------------------------------------------------------------------------------------

def two_sample(rng, seeds, effect=0.0, groups=1, paired=True) -> list[stats.Pair]:
    """``groups`` pairs of cells of ``seeds`` networks, the first raised by ``effect``: paired, the two
    networks of a seed share its propensity; unpaired, every network has its own."""
    pairs = []
    for _ in range(groups):
        latent = rng.beta(2, 3, size=(1 if paired else 2, seeds))
        a = _frac(rng, latent[0] + effect + rng.normal(0, 0.1, seeds))
        pairs.append(stats.Pair(a, _frac(rng, latent[-1] + rng.normal(0, 0.1, seeds)), paired))
    return pairs


def trend_line(rng, seeds, effect=0.0, widths=(256, 512, 1024), depths=tuple(range(1, 13))) -> pd.DataFrame:
    """One boundary line: each seed memorizes from its own latent onset (3 to 8) on, moved by -``effect``
    depths per doubling of width and by -1, 0 or +1 at random per network."""
    rows = []
    latent = rng.integers(3, 9, size=seeds)
    for w, s in itertools.product(widths, range(seeds)):
        start = latent[s] - effect * np.log2(w / widths[0]) + rng.integers(-1, 2)
        for d in depths:
            m = float(d >= start)
            rows.append(_row(width=w, depth=d, seed=s, attractor_frac=m, retrieval_same_frac=m))
    return pd.DataFrame(rows)


def test_rate(kind: str, seeds: int, effect: float = 0.0, sims: int = 500, seed: int = 0) -> float:
    """Share of ``sims`` draws in which one test says yes (a trend: falls). ``kind``: paired (one pair of
    cells, paired by seed), unpaired (one pair of cells of distinct networks), pooled (four paired pairs,
    stratified), share (k of ``seeds`` networks against 1/2, the share being 1/2 + ``effect``), median (one
    value per network, N(``effect``, 0.3) clipped to [-1, 1], its median against 0), trend
    (one line of three widths, the onset moving ``effect`` depths per doubling)."""
    rng = np.random.default_rng(seed)
    yes = 0
    for _ in range(sims):
        if kind in ("paired", "unpaired"):
            yes += stats.compare(two_sample(rng, seeds, effect, paired=kind == "paired")).outcome == stats.YES
        elif kind == "pooled":
            yes += stats.compare(two_sample(rng, seeds, effect, groups=4)).outcome == stats.YES
        elif kind == "share":
            yes += stats.share(rng.binomial(seeds, 0.5 + effect), seeds).outcome == stats.YES
        elif kind == "median":  # one correlation-like value per network, spread like the headline run's
            yes += stats.median(np.clip(rng.normal(effect, 0.3, seeds), -1, 1)).outcome == stats.YES
        elif kind == "trend":
            t = trend_line(rng, seeds, effect)
            m, present, widths, depths = evidence.profiles(t, "width")
            yes += boundary.trend_test(m, present, widths, depths)["p_falls"] <= rules.ALPHA
        else:
            raise ValueError(f"unknown test kind {kind!r}")
    return yes / sims
