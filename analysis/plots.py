"""Figures from the tidy frames of ``analysis.maps`` (seaborn on matplotlib).

Each function returns a matplotlib Figure; nothing is shown or saved here (a notebook displays
the returned figure; ``savefig`` writes it). Without a display matplotlib picks its file backend.
"""
from __future__ import annotations

import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns

from . import maps


def _panels(df: pd.DataFrame, facet: list[str]) -> list[tuple[str, pd.DataFrame]]:
    facet = [c for c in facet if c in df.columns and df[c].nunique() > 1] or [c for c in facet if c in df.columns][:1]
    if not facet:
        return [("", df)]
    return [(", ".join(f"{c}={v}" for c, v in zip(facet, key if isinstance(key, tuple) else (key,))), g)
            for key, g in df.groupby(facet)]


MAX_COLS = 4  # facets wrap into rows of at most this many panels


def phase_map(trials: pd.DataFrame, criterion: maps.Criterion = maps.DEFAULT,
              facet: tuple[str, ...] | None = None, onset: pd.DataFrame | None = None) -> plt.Figure:
    """Heat maps of the memorization rate over depth (x) x width (y), one panel per value of ``facet``
    (default: every varying axis but depth, width and seed); a red frame marks each width's onset
    depth, from ``onset`` (``maps.onset_depth``'s table, computed here if not given)."""
    facet = tuple(facet if facet is not None else maps.groups(trials, without=("depth", "width", "seed")))
    rate = maps.rate_map(trials, "depth", "width", by=list(facet), criterion=criterion)
    if onset is None:
        onset = maps.onset_depth(trials, by=[*facet, "width"], criterion=criterion)
    panels = _panels(rate, list(facet))
    ncols = min(MAX_COLS, len(panels))
    nrows = -(-len(panels) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(4.2 * ncols, 3.4 * nrows), squeeze=False)
    for ax in axes.flat[len(panels):]:
        ax.set_visible(False)
    for ax, (title, g) in zip(axes.flat, panels):
        grid = g.pivot_table(index="width", columns="depth", values="rate").sort_index(ascending=False)
        # each cell: the rate, and "k/n fit" where only k of its n seeds interpolated
        note = g.assign(text=[f"{r:.2f}" + ("" if f == n else f"\n{f}/{n} fit") for r, f, n in
                              zip(g.rate, g.n_fitted, g.n_seeds)])
        text = note.pivot(index="width", columns="depth", values="text").reindex_like(grid)
        sns.heatmap(grid, vmin=0, vmax=1, cmap="viridis", annot=text.fillna(""), fmt="", ax=ax,
                    cbar=ax is axes.flat[len(panels) - 1], cbar_kws={"label": "memorization rate over seeds"},
                    annot_kws={"fontsize": 8})
        sub = onset
        for col, val in zip([c for c in facet if c in g.columns], [g[c].iloc[0] for c in facet if c in g.columns]):
            sub = sub[sub[col] == val]
        for _, row in sub.iterrows():
            if row.reached and row.width in grid.index:
                cell = (list(grid.columns).index(row.onset_depth), list(grid.index).index(row.width))
                ax.add_patch(plt.Rectangle(cell, 1, 1, fill=False, edgecolor="red", lw=2.5))
        ax.set_title(title or "memorization rate")
    seeds = sorted(set(rate.n_seeds))
    fig.suptitle(f"Memorization rate over {'/'.join(map(str, seeds))} seeds ({criterion})\nred frame: onset "
                 "depth; 'k/n fit': only k of the n seeds interpolated", fontsize=9)
    fig.tight_layout()
    return fig


def metric_vs_depth(trials: pd.DataFrame, metric: str = "spectral_radius_median",
                    facet: str = "arch", hue: str = "width") -> plt.Figure:
    """``metric`` against depth, one line per ``hue`` value, band = 95% interval over seeds."""
    cols = sorted(trials[facet].dropna().unique()) if facet in trials else [None]
    fig, axes = plt.subplots(1, len(cols), figsize=(4.2 * len(cols), 3.2), squeeze=False, sharey=True)
    for ax, value in zip(axes[0], cols):
        g = trials if value is None else trials[trials[facet] == value]
        sns.lineplot(g, x="depth", y=metric, hue=hue, marker="o", errorbar=("ci", 95), palette="crest", ax=ax)
        if "spectral" in metric or "singular" in metric:
            ax.axhline(1.0, color="grey", ls="--", lw=1)  # the attractor threshold
        ax.set_title(f"{facet}={value}" if value is not None else metric)
    fig.tight_layout()
    return fig


def retrieval_vs_sigma(retrieval: pd.DataFrame, trials: pd.DataFrame, facet: str = "arch",
                       hue: str = "depth") -> plt.Figure:
    """Share of noisy starts returning to their own training example, against the noise sigma."""
    noisy = retrieval[retrieval.start == "noisy"].merge(trials[["trial_id", facet, hue, "width"]], on="trial_id")
    cols = sorted(noisy[facet].dropna().unique())
    fig, axes = plt.subplots(1, max(len(cols), 1), figsize=(4.2 * max(len(cols), 1), 3.2), squeeze=False,
                             sharey=True)
    for ax, value in zip(axes[0], cols):
        sns.lineplot(noisy[noisy[facet] == value], x="sigma", y="same_frac", hue=hue, marker="o",
                     errorbar=("ci", 95), palette="flare", ax=ax)
        ax.set_xscale("log")
        ax.set_ylim(-0.02, 1.02)
        ax.set_title(f"{facet}={value}")
        ax.set_ylabel("noisy starts back at their x_i")
    fig.tight_layout()
    return fig


def trajectories(row: pd.Series | dict, n_starts: int = 4, sigma: float | None = None,
                 checkpoints: tuple[int, ...] = (0, 1, 5, 20)) -> plt.Figure:
    """Re-run the trial of ``row`` (its config is in the row), iterate x <- f(x) from noisy copies of a
    few training images, and show start -> iterates -> limit -> nearest memory x_j* (``probes.Memories``)."""
    try:
        import torch

        from study import probes
        from study.trial import run_trial
    except ImportError as exc:
        raise ImportError(f"the trajectories figure re-runs the trial, which needs memsweep's training stack "
                          f"(torch): pip install 'memsweep[study]' ({exc})") from None
    from study.config import TrialConfig

    cfg = TrialConfig.from_row(dict(row))
    result = run_trial(cfg, keep_model=True)
    if result.model is None:
        raise ValueError(f"trial {cfg.trial_id} has no trained model (status {result.trial['status']})")
    x, shape = result.train_x, result.image_shape
    sigma = sigma or cfg.headline_sigma
    gen = torch.Generator().manual_seed(cfg.seed + 3)
    picks = torch.arange(min(n_starts, len(x)))
    starts = x[picks] + sigma * torch.randn(x[picks].shape, generator=gen)
    frames, cur = [], starts.clone()
    with torch.no_grad():
        for t in range(max(checkpoints) + 1):
            if t in checkpoints:
                frames.append((f"t={t}", cur.clone()))
            cur = result.model(cur)
    lim = probes.iterate(result.model, torch.cat([x, starts]), cfg.iter_steps, cfg.iter_tol, cfg.confirm_steps)
    mem = probes.memories(lim, x, cfg.memory_tol)
    nearest, kind = (t[len(x):] for t in probes.classify(lim, mem, cfg.match_tol))
    frames += [("limit", lim.x[len(x):]), ("nearest memory", mem.x[nearest.clamp_min(0)])]
    labels = {probes.TRAIN: "another memory", probes.SPURIOUS: "spurious", probes.NONE: "no convergence"}
    fig, axes = plt.subplots(len(picks), len(frames), figsize=(1.3 * len(frames), 1.4 * len(picks)), squeeze=False)
    for i in range(len(picks)):
        for j, (title, imgs) in enumerate(frames):
            img = imgs[i].reshape(shape).permute(1, 2, 0).clamp(0, 1).numpy()
            axes[i][j].imshow(img.squeeze(-1) if img.shape[-1] == 1 else img, cmap="gray", vmin=0, vmax=1)
            axes[i][j].set_xticks([])
            axes[i][j].set_yticks([])
            if i == 0:
                axes[i][j].set_title(title, fontsize=8)
        same = kind[i].item() == probes.TRAIN and nearest[i].item() == picks[i].item()
        axes[i][-1].set_xlabel("same" if same else labels[kind[i].item()], fontsize=7)
    fig.suptitle(f"{cfg.trial_id}: x <- f(x) from x_i + {sigma:g} noise", fontsize=8)
    fig.tight_layout()
    return fig


def loss_curves(curves: pd.DataFrame, trials: pd.DataFrame, hue: str = "depth", facet: str = "arch") -> plt.Figure:
    """Training loss against step (log-log), one line per trial, coloured by ``hue``."""
    df = curves.merge(trials[["trial_id", hue, facet]], on="trial_id")
    cols = sorted(df[facet].dropna().unique())
    fig, axes = plt.subplots(1, max(len(cols), 1), figsize=(4.2 * max(len(cols), 1), 3.2), squeeze=False)
    for ax, value in zip(axes[0], cols):
        g = df[df[facet] == value]
        sns.lineplot(g, x=g.step.clip(lower=1), y="loss", hue=hue, units="trial_id", estimator=None, lw=0.7,
                     palette="crest", ax=ax)
        ax.set(xscale="log", yscale="log", xlabel="step", title=f"{facet}={value}")
    fig.tight_layout()
    return fig


def operator_study(trials: pd.DataFrame) -> plt.Figure:
    """C3's linear operator study, one column per image side s, medians over seeds: top, the
    directions the operator keeps (eigenvalues ~1) against depth; bottom, the largest other
    |eigenvalue| (clipped at 3). P_X of n images keeps n directions (dashed line) and has the rest
    below 1 (dashed line). The dotted line marks the depth at which a stride-1 stack's receptive
    field reaches s."""
    lin = trials[trials["operator_near_one"].notna()]
    lin = lin.assign(side=maps.image_side(lin), width=lin.width.astype(str))
    sides = sorted(lin.side.unique())
    fig, axes = plt.subplots(2, len(sides), figsize=(4.2 * len(sides), 6.0), squeeze=False, sharex="col")
    for j, side in enumerate(sides):
        g = lin[lin.side == side]
        for i, (metric, label) in enumerate([("operator_near_one", "eigenvalues ~1 (kept directions)"),
                                             ("operator_rest_radius", "max |other eigenvalue|")]):
            ax = axes[i][j]
            sns.lineplot(g, x="depth", y=metric, hue="arch", style="width", marker="o", estimator="median",
                         errorbar=None, ax=ax, legend=(i == 0 and j == len(sides) - 1))
            ax.axvline((side - 1) / (g.kernel_size.iloc[0] - 1), color="grey", ls=":", lw=1)
            if metric == "operator_near_one":
                ax.set_yscale("symlog", linthresh=1)
                ax.set_ylim(0, side * side * 1.5)
                ax.axhline(g.span_dim.median(), color="grey", ls="--", lw=1)
            else:
                ax.set_ylim(0, 3)
                ax.axhline(1.0, color="grey", ls="--", lw=1)
            ax.set(ylabel=label, title=f"{int(side)}x{int(side)} images" if i == 0 else "")
    if len(sides):
        sns.move_legend(axes[0][-1], "upper left", bbox_to_anchor=(1, 1), fontsize=8)
    fig.tight_layout()
    return fig


def savefig(fig: plt.Figure, path: str) -> str:
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path

