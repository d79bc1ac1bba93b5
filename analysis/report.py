"""``memsweep report DIR``: one self-contained HTML page (figures embedded) from a results folder.

The page holds the sweep's grid and versions, the status counts, the figures, the onset-depth
table, and for each claim of the papers that the sweep's grid can speak to, a verdict computed
from the data. The figures are also written as PNG files beside it.
"""
from __future__ import annotations

import base64
import html
import json
import os
from dataclasses import dataclass

import numpy as np
import pandas as pd

from study.config import ConfigError

from . import maps, plots
from .load import Results, load


@dataclass
class Verdict:
    claim: str
    verdict: str  # reproduced | partly | not reproduced | not covered
    text: str

    def line(self) -> str:
        return f"{self.claim} [{self.verdict}]: {self.text}"


def _usable(trials: pd.DataFrame) -> pd.DataFrame:
    """Trials with probe values (not diverged or failed)."""
    return trials[trials.attractor_frac.notna()]


def _pct(x: float) -> str:
    return f"{100 * x:.0f}%"


def verdicts(res: Results, criterion: maps.Criterion = maps.DEFAULT) -> list[Verdict]:
    """One verdict per claim (C1-C6 of the papers), computed from the trials table."""
    usable = _usable(res.trials)
    task = usable["task"] if "task" in usable.columns else pd.Series("autoencode", index=usable.index)
    t, seq = usable[task == "autoencode"], usable[task == "sequence"]
    # linear nets have rho = 1 at their fixed points by construction: C1 and the operator study speak
    # of them; the attractor claims C2-C6 are about nonlinear nets
    linear = (t.activation == "identity") & ~t.bias.astype(bool)
    measured = t["operator_near_one"].notna() if "operator_near_one" in t.columns else pd.Series(False, index=t.index)
    lin = t[linear & measured]
    out = []

    single = t[t.depth == 1]
    if len(single):
        # f(h) = f(P_X h) is C1 for linear and nonlinear single layers alike (f = phi(A x), A = M X^T)
        sens, attr = single.span_input_sensitivity_mean.mean(), single.attractor_frac.mean()
        ok = sens < 0.01 and attr < 0.1
        out.append(Verdict("C1", "reproduced" if ok else "partly" if sens < 0.1 else "not reproduced",
                           f"single-layer nets ({len(single)} trials): |f(h) - f(P_X h)| / |f(h)| = {sens:.1e} "
                           f"on held-out images (0: f sees only the span), {_pct(attr)} of training examples "
                           "attractors (a projection stores none)"))
    else:
        out.append(Verdict("C1", "not covered", "no depth-1 trials in this grid"))

    t = t[~linear]
    several = t[t.n_train > 1]  # C2, C3, C6 speak of storing several examples; n_train = 1 is C4's
    fc = several[(several.arch == "fc") & (several.depth >= 2)]
    if fc.depth.nunique() >= 2:
        w = fc.width.max()
        g = fc[fc.width == w]
        by_depth = g.groupby("depth").attractor_frac.mean()
        lo_d, hi_d = by_depth.index.min(), by_depth.index.max()
        onset = maps.onset_depth(g, by=["arch"], criterion=criterion, n_boot=500).iloc[0]
        deep = g[g.depth >= (onset.onset_depth if onset.reached else hi_d)]
        ok = by_depth[hi_d] >= 0.8 and by_depth[hi_d] > by_depth[lo_d]
        partly = by_depth[hi_d] > by_depth[lo_d]
        out.append(Verdict("C2", "reproduced" if ok else "partly" if partly else "not reproduced",
                           f"{_pct(deep.attractor_frac.mean())} of training examples are attractors at depth >= "
                           f"{deep.depth.min():g} (fc, width {w}, {g.seed.nunique()} seeds; onset depth "
                           f"{maps.describe_onset(onset)}); at depth {lo_d}: {_pct(by_depth[lo_d])}"))
    else:
        out.append(Verdict("C2", "not covered", "needs fc trials at two or more depths >= 2"))

    conv = several[several.arch.isin(["conv", "conv_down"])]
    if len(conv) and conv.depth.nunique() >= 2:
        on = maps.onset_depth(conv, by=["arch"], criterion=criterion, n_boot=500).set_index("arch")
        rate = maps.rate_map(conv, "depth", "arch", by=[], criterion=criterion)
        shallow = rate[rate.depth == rate.depth.min()].rate.mean()
        parts = [f"{a}: onset depth {maps.describe_onset(r)}" for a, r in on.iterrows()]
        necessary = shallow == 0 and on.reached.any()
        both = {"conv", "conv_down"} <= set(on.index)
        helps = both and on.loc["conv_down"].reached and (
            not on.loc["conv"].reached or on.loc["conv_down"].onset_depth <= on.loc["conv"].onset_depth)
        verdict = "reproduced" if necessary and helps else "partly" if necessary or helps else "not reproduced"
        note = "" if both else " (the grid lacks " + ({"conv", "conv_down"} - set(on.index)).pop() + \
            ", so whether downsampling helps is not tested)"
        out.append(Verdict("C3", verdict, f"memorization rate at depth {rate.depth.min()}: {_pct(shallow)}; "
                           + "; ".join(parts) + note))
    else:
        out.append(Verdict("C3", "not covered", "needs conv or conv_down trials at two or more depths"))

    out.append(_c3_linear(lin[lin.arch.isin(["conv", "conv_down"])]))

    one = t[t.n_train == 1]
    if len(one):
        share = one.attractor_frac.mean()
        out.append(Verdict("C4", "reproduced" if share >= 0.9 else "partly" if share > 0.5 else "not reproduced",
                           f"single training example: stored as an attractor in {_pct(share)} of {len(one)} trials "
                           f"({one.activation.nunique()} activations, {one.width.nunique()} widths, "
                           f"{one.depth.nunique()} depths)"))
    else:
        out.append(Verdict("C4", "not covered", "no n_train = 1 trials in this grid"))

    if len(seq):
        # probed through f^n: attractor <=> rho(J(x_(n-1)) ... J(x_0)) < 1, the same at every cycle image
        stable = seq[(seq.fixed_point_frac == 1) & (seq.attractor_frac == 1)]
        unstable = seq.drop(stable.index)
        ret_s, ret_u = stable.retrieval_any_frac.mean(), unstable.retrieval_any_frac.mean()
        consistent = len(stable) > 0 and ret_s >= 0.5 and (len(unstable) == 0 or ret_u < ret_s)
        out.append(Verdict("C5", "reproduced" if consistent and len(stable) >= len(seq) / 2 else
                           "partly" if consistent else "not reproduced",
                           f"sequences: {len(stable)} of {len(seq)} trained cycles are stable (rho of the Jacobian "
                           f"product < 1); noisy starts reach the cycle in {_pct(ret_s) if len(stable) else 'n/a'} "
                           f"of cases for stable cycles, {_pct(ret_u) if len(unstable) else 'n/a'} for the others"))
    else:
        out.append(Verdict("C5", "not covered", "no task = sequence trials in this grid"))

    if several.width.nunique() >= 2:
        deepest = several[several.depth == several.depth.max()]
        by_w = deepest.groupby("width").attractor_frac.mean()
        rising = bool(np.all(np.diff(by_w.to_numpy()) >= 0))
        out.append(Verdict("C6", "reproduced" if rising and by_w.iloc[-1] > by_w.iloc[0] else "partly"
                           if by_w.iloc[-1] > by_w.iloc[0] else "not reproduced",
                           f"attractor fraction at depth {several.depth.max()} by width: "
                           + ", ".join(f"{w}: {_pct(v)}" for w, v in by_w.items())))
    else:
        out.append(Verdict("C6", "not covered", "needs two or more widths"))
    return out


def _c3_linear(lin: pd.DataFrame) -> Verdict:
    """C3's operator study: a stride-1 linear conv cannot act as P_X while its receptive field is
    smaller than the image (necessity); downsampling reaches P_X-like operators at smaller depth."""
    if lin.empty or lin.depth.nunique() < 2:
        return Verdict("C3-linear", "not covered", "needs linear conv or conv_down trials at two or more depths")
    lin = lin.assign(side=maps.image_side(lin), memorizes=maps.operator_memorizes(lin))
    conv = lin[lin.arch == "conv"]
    narrow = conv[maps.receptive_field(conv) < conv.side]
    necessary = len(narrow) > 0 and not narrow.memorizes.any()
    on = maps.onset_depth(lin, by=["arch", "width", "side"], flag=lin.memorizes, n_boot=200)
    parts, helps, tested = [], [], False
    for (width, side), g in on.groupby(["width", "side"]):
        o = g.set_index("arch")
        parts.append(f"width {width:g}, side {side:g}: " + ", ".join(f"{a} {maps.describe_onset(r)}"
                                                                    for a, r in o.iterrows()))
        if {"conv", "conv_down"} <= set(o.index):
            tested = True
            down, plain = o.loc["conv_down"], o.loc["conv"]
            if down.reached:
                helps.append(not plain.reached or down.onset_depth <= plain.onset_depth)
    downsampling = tested and len(helps) > 0 and all(helps)
    verdict = "reproduced" if necessary and downsampling else "partly" if necessary or downsampling else \
        "not reproduced"
    return Verdict("C3-linear", verdict,
                   f"stride-1 trials with receptive field < image side acting as P_X: {int(narrow.memorizes.sum())} "
                   f"of {len(narrow)}; onset depth of a P_X-like operator (keeps exactly span(X), contracts the "
                   "rest): " + "; ".join(parts))


def _img(path: str) -> str:
    with open(path, "rb") as fh:
        data = base64.b64encode(fh.read()).decode()
    return f'<img src="data:image/png;base64,{data}" style="max-width:100%">'


def build(path: str, out: str | None = None, trajectories: bool = True,
          criterion: maps.Criterion = maps.DEFAULT, skip_damaged: bool = False) -> str:
    """Write ``out/report.html`` (default ``path/report``) and its PNGs; return the HTML's path."""
    res = load(path, skip_damaged=skip_damaged)
    if res.trials.empty:
        raise ConfigError(f"{path} holds no finished trials yet"
                          + (f" (sweep started {res.manifest['started']})" if res.manifest else ""))
    out = out or os.path.join(path, "report")
    os.makedirs(out, exist_ok=True)
    t = res.trials
    usable = _usable(t)
    figures: list[tuple[str, str]] = []

    def add(name: str, caption: str, make) -> None:
        try:
            figures.append((caption, plots.savefig(make(), os.path.join(out, name))))
        except Exception as exc:  # one figure that cannot be drawn must not sink the report
            figures.append((f"{caption} (not drawn: {type(exc).__name__}: {exc})", ""))

    if len(usable):
        add("phase_map.png", "Memorization rate over depth x width", lambda: plots.phase_map(usable, criterion))
        add("attractor_frac.png", "Attractor fraction vs depth (band: 95% CI over seeds)",
            lambda: plots.metric_vs_depth(usable, "attractor_frac"))
        add("spectral_radius.png", "Median spectral radius of J_f at the training examples vs depth",
            lambda: plots.metric_vs_depth(usable, "spectral_radius_median"))
        add("retrieval_sigma.png", "Retrieval from noisy starts vs noise sigma",
            lambda: plots.retrieval_vs_sigma(res.retrieval, usable))
        if "operator_near_one" in usable and usable.operator_near_one.notna().any():
            add("operator_study.png", "Linear nets: the operator's kept directions and the rest of its spectrum "
                "vs depth (C3)", lambda: plots.operator_study(usable))
        add("loss_curves.png", "Training loss curves", lambda: plots.loss_curves(res.curves, t))
        if trajectories:
            best = usable.sort_values(["attractor_frac", "depth"], ascending=False).iloc[0]
            add("trajectories.png", f"Iterating x <- f(x) from noisy training images ({best.trial_id}, re-run "
                "from its row)", lambda: plots.trajectories(best))

    onset = maps.onset_depth(usable, criterion=criterion) if len(usable) else pd.DataFrame()
    if len(onset):
        onset = onset.assign(onset=onset.apply(maps.describe_onset, axis=1))
        onset_table = onset.drop(columns=["onset_depth", "onset_low", "onset_high", "reached"]).to_html(index=False)
    else:
        onset_table = "<p>no trials with probe values</p>"
    claims = verdicts(res, criterion)
    status = t.status.value_counts().to_dict()
    manifest = res.manifest or {}
    parts = [
        "<!doctype html><meta charset='utf-8'><title>memsweep report</title>",
        "<style>body{font-family:sans-serif;max-width:1100px;margin:2em auto;padding:0 1em}"
        "table{border-collapse:collapse;font-size:13px}td,th{border:1px solid #ccc;padding:3px 6px}"
        "pre{background:#f6f6f6;padding:8px;overflow-x:auto}</style>",
        f"<h1>memsweep report: {html.escape(str(manifest.get('preset') or os.path.basename(os.path.abspath(path))))}</h1>",
        f"<p>{len(t)} trials; status: {html.escape(json.dumps(status))}. Memorized means {html.escape(str(criterion))}.</p>",
        "<h2>Claims</h2><ul>" + "".join(f"<li><b>{v.claim}</b> [{v.verdict}]: {html.escape(v.text)}</li>"
                                         for v in claims) + "</ul>",
        "<h2>Onset depth</h2>", onset_table,
        "<h2>Figures</h2>",
        *[f"<h3>{html.escape(c)}</h3>{_img(p) if p else ''}" for c, p in figures],
        "<h2>Sweep</h2><pre>" + html.escape(json.dumps({k: manifest.get(k) for k in
                                                        ("preset", "command", "grid", "versions", "host", "started",
                                                         "finished", "summary")}, indent=1, default=str)) + "</pre>",
    ]
    page = os.path.join(out, "report.html")
    with open(page, "w") as fh:
        fh.write("\n".join(parts))
    with open(os.path.join(out, "claims.txt"), "w") as fh:
        fh.write("\n".join(v.line() for v in claims) + "\n")
    return page
