"""One trial end to end: data -> model -> training -> probes -> tidy rows.

``run_trial`` knows nothing of Ray: it is what the sweep's trainable calls, what
``memsweep trial`` calls, and what the tests call. It never raises for a run that
went badly (divergence, no convergence, a failed probe): that is the row's status.
"""
from __future__ import annotations

import math
import time
import traceback
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import torch

from ..config import TrialConfig
from ..rules import CENSUS_COLUMNS, DIVERGED, ERROR
from ..store.parts import write_trial
from ..store.reader import finished_ids
from ..store.schema import TRIAL_METRICS
from . import data as data_mod
from . import models, probes
from .resources import check_cuda, check_memory, configure_cuda, linear_operator, node_memory
from .train import fit, train


@dataclass
class TrialResult:
    config: TrialConfig
    trial: dict[str, Any]                  # one row: the config + headline metrics
    examples: list[dict[str, Any]]         # one row per training example
    retrieval: list[dict[str, Any]]        # one row per (start kind, sigma)
    curve: list[dict[str, Any]]            # thinned loss curve
    model: torch.nn.Module | None = None   # trained, eval mode (None if the trial failed early)
    train_x: torch.Tensor | None = None    # [n, ...] in the model's input layout
    image_shape: tuple[int, ...] = ()      # (C, H, W)
    timings: dict[str, float] = field(default_factory=dict)


def run_trial(cfg: TrialConfig, device: torch.device | str = "cpu", keep_model: bool = False) -> TrialResult:
    """Train and probe one autoencoder. Errors inside become a row with status='error'."""
    device = torch.device(device)
    try:
        setup = _setup(cfg, device)
        return _measure(setup, train(setup.model, setup.x, cfg), keep_model)
    except Exception as exc:  # a trial that raises is data, not a crashed sweep
        return error_result(cfg, exc, device)


def run_trials(cfgs: list[TrialConfig], device: torch.device | str = "cpu", batch: bool = True,
               keep_model: bool = False) -> list[TrialResult]:
    """Several trials; with ``batch``, configs whose models share a shape (``batched.batch_key``) are
    trained together as one batch of models (``train.fit``), then probed one by one. Each result is
    the one ``run_trial`` gives, up to float rounding."""
    from .batched import batch_key
    device = torch.device(device)
    groups: dict[Any, list[int]] = {}
    for i, cfg in enumerate(cfgs):
        key = batch_key(cfg, device) if batch else None
        groups.setdefault(key if key is not None else ("alone", i), []).append(i)
    out: list[TrialResult | None] = [None] * len(cfgs)
    for idx in groups.values():
        if len(idx) == 1:
            out[idx[0]] = run_trial(cfgs[idx[0]], device, keep_model)
            continue
        try:
            setups = [_setup(cfgs[i], device) for i in idx]
            fits = fit([s.model for s in setups], [s.x for s in setups], [cfgs[i] for i in idx])
        except Exception:  # a batch that cannot run together runs one by one
            for i in idx:
                out[i] = run_trial(cfgs[i], device, keep_model)
            continue
        for i, s, one in zip(idx, setups, fits):
            try:
                out[i] = _measure(s, one, keep_model)
            except Exception as exc:
                out[i] = error_result(cfgs[i], exc, device)
    return out  # type: ignore[return-value]


def run_and_write(configs: list[TrialConfig], out: str, device: str = "cpu",
                  on_done: Callable[[dict[str, Any], bool], None] | None = None,
                  batch: bool = True, finished: set[str] | None = None) -> list[dict[str, Any] | None]:
    """Run ``configs`` (``run_trials``), writing each one's parts under ``out`` as soon as it finishes.

    A config whose row is already in ``out`` is skipped: on resume nothing that finished is run
    twice. ``finished``: the ids with a row, as the caller knows them (a sweep's Tune trial: what its
    driver listed, and the parts an earlier attempt of it wrote); None lists ``out``. ``on_done(row,
    skipped)`` hears of each config. Returns the trial rows (None for skipped ones)."""
    if finished is None:
        finished = finished_ids(out)
    todo = [c for c in configs if c.trial_id not in finished]
    for cfg in configs:
        if cfg.trial_id in finished and on_done:
            on_done({"trial_id": cfg.trial_id, "status": "skipped"}, True)
    rows = {}
    for result in run_trials(todo, device, batch=batch):
        write_trial(out, result)
        rows[result.config.trial_id] = result.trial
        if on_done:
            on_done(result.trial, False)
    return [rows.get(c.trial_id) for c in configs]


def error_result(cfg: TrialConfig, exc: Exception, device: torch.device) -> TrialResult:
    row = {**cfg.to_row(), **empty_metrics(), "trial_id": cfg.trial_id, "status": ERROR,
           "error": f"{type(exc).__name__}: {exc}\n{traceback.format_exc(limit=4)}", "device": str(device)}
    return TrialResult(cfg, row, [], [], [])


def empty_metrics() -> dict[str, Any]:
    return {name: None for name in TRIAL_METRICS}


@dataclass
class _Setup:
    cfg: TrialConfig
    images: data_mod.ImageData
    x: torch.Tensor        # training examples, model layout, on the device
    heldout: torch.Tensor
    model: torch.nn.Module


def _setup(cfg: TrialConfig, device: torch.device) -> _Setup:
    if device.type == "cuda":
        check_cuda()
        configure_cuda()
    check_memory(cfg, data_mod.pool_shape(cfg)[1:], node_memory(device))  # before any image or weight exists
    images = data_mod.load(cfg)
    return _Setup(cfg, images, models.to_input(images.train, cfg.arch).to(device),
                  models.to_input(images.heldout, cfg.arch).to(device), models.build(cfg, images.shape).to(device))


def _measure(s: _Setup, trained, keep_model: bool) -> TrialResult:
    """The result of a trained model: its row, curve, and (unless it diverged) what ``probe`` finds."""
    cfg, model, x, shape = s.cfg, s.model, s.x, s.images.shape
    model.eval()
    timings = {"train": trained.train_seconds}
    row: dict[str, Any] = {**cfg.to_row(), **empty_metrics(), "trial_id": cfg.trial_id, "status": trained.status,
                           "error": None, "final_loss": trained.final_loss, "steps": trained.steps,
                           "train_seconds": trained.train_seconds, "n_params": models.n_params(model),
                           "device": str(x.device), "input_dim": math.prod(shape),
                           "bottleneck_side": models.bottleneck_side(cfg, shape)}
    curve = [{"trial_id": cfg.trial_id, "step": st, "loss": l} for st, l in trained.curve]
    if trained.status == DIVERGED:  # nothing sensible to probe
        return TrialResult(cfg, row, [], [], curve, model if keep_model else None, x, shape, timings)

    for p in model.parameters():
        p.requires_grad_(False)
    # a sequence is probed through f^n, whose fixed points are the cycle's images (probes.compose)
    f = probes.compose(model, len(x)) if cfg.task == "sequence" else model
    probe_start = time.perf_counter()
    probed = probe(f, x, s.heldout, s.images.low, s.images.high, cfg)
    row.update(probed.metrics, probe_seconds=time.perf_counter() - probe_start)
    timings.update(probed.timings)
    return TrialResult(cfg, row, probed.examples, probed.retrieval, curve, model if keep_model else None, x, shape,
                       timings)


@dataclass
class Probed:
    """What the probes found on one map: the trial row's metric columns and the per-example and
    per-start-kind rows (the tables ``examples`` and ``retrieval``), and each probe's wall time."""
    metrics: dict[str, Any]
    examples: list[dict[str, Any]]
    retrieval: list[dict[str, Any]]
    timings: dict[str, float]


def probe(f, x: torch.Tensor, heldout: torch.Tensor, low: float, high: float, cfg: TrialConfig) -> Probed:
    """Run every probe on map ``f`` with training set ``x`` ([n, ...]), held-out examples ``heldout``,
    pixel range [low, high], and the probe settings of ``cfg``."""
    n = x.shape[0]
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    resid = probes.fixed_point_residuals(f, x).cpu().numpy()
    rho, s1 = probes.spectra(f, x)
    timings["spectra"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    gen = torch.Generator().manual_seed(cfg.seed + 2)
    noisy, n_origin, n_sigma = probes.noisy_starts(x, cfg.noise_levels, cfg.starts_per_example, gen)
    masked, m_origin = probes.masked_starts(x, cfg.mask_frac, cfg.starts_per_example, low, high, gen)
    random = low + (high - low) * torch.rand((cfg.n_random_starts, *x.shape[1:]), generator=gen, dtype=x.dtype)
    groups = {"noisy": noisy, "masked": masked, "heldout": heldout.cpu(), "random": random}
    mem, limits, nearest, kind = recall(f, x, torch.cat(list(groups.values())), cfg, gen)
    where = probes.census(limits, kind).cpu().numpy()
    nearest, kind, outcome = nearest.cpu().numpy(), kind.cpu().numpy(), limits.outcome.cpu().numpy()
    bounds = np.cumsum([0] + [len(g) for g in groups.values()])
    part = {name: slice(bounds[i], bounds[i + 1]) for i, name in enumerate(groups)}
    # the census starts (held-out and random) that settled on a fixed point that is no memory: its
    # distinct points, resolved as finely as a memory is (match_tol)
    census_rows = np.r_[part["heldout"], part["random"]]
    spurious = torch.as_tensor(census_rows[where[census_rows] == probes.AT_SPURIOUS], device=limits.x.device)
    _, to_train, to_mean = probes.spurious_points(limits.x[spurious], x, cfg.match_tol)
    timings["iteration"] = time.perf_counter() - t0

    # the attractor is decided at the memory x_i*, where the dynamics go, and its rho checked for kinks
    t0 = time.perf_counter()
    rho_mem, s1_mem = np.full(n, np.nan), np.full(n, np.nan)
    if mem.found.any():
        # the stop point lies up to iter_tol / (1 - rho) from the fixed point, on a ReLU-like net possibly
        # across a kink from it: settle it further (to 1/100 of the step, within iter_steps) before reading
        # rho there
        keep = torch.as_tensor(mem.found, device=mem.x.device)
        mem.x = mem.x.clone()  # iterate's limits are inference tensors: not to be written to, nor differentiated
        mem.x[keep] = probes.iterate(f, mem.x[keep], cfg.iter_steps, cfg.iter_tol / 100).x.clone()
        rho_mem[mem.found], s1_mem[mem.found] = probes.spectra(f, mem.x[keep])
    spread, unsure = probes.kink_spread(f, mem.x, rho_mem, cfg.rho_margin, gen)
    attractor = probes.attractors(mem.found, rho_mem, cfg.rho_margin)
    timings["spectra"] += time.perf_counter() - t0

    origins = {"noisy": n_origin.numpy(), "masked": m_origin.numpy()}
    sigma = n_sigma.numpy()
    # a start returns when its confirmed limit is its own example's memory
    same = {name: (kind[part[name]] == probes.TRAIN) & (nearest[part[name]] == origins[name]) for name in origins}
    retrieval = _retrieval_rows(cfg, kind, outcome, where, part, same, sigma)

    metrics: dict[str, Any] = {}
    t0 = time.perf_counter()
    span_res, span_f = probes.span_residuals(f, x, heldout) if len(heldout) else (np.array([]), np.array([]))
    if linear_operator(cfg, x[0].numel()):
        op = probes.operator_spectrum(probes.linear_operator(f, tuple(x.shape[1:])).cpu(), x.cpu())
        metrics.update(span_dim=op.span_dim, operator_near_one=op.near_one, operator_near_one_in_span=op.near_one_in_span,
                       operator_rest_radius=op.rest_radius)
    timings["span"] = time.perf_counter() - t0

    head = sigma == cfg.headline_sigma
    outside = kind[census_rows]
    basin = probes.basin_radius(same["noisy"].astype(float), origins["noisy"], sigma, n)
    fixed = resid < cfg.fixed_point_tol
    metrics.update({
        "memory_frac": float(mem.found.mean()),
        "memory_offset_median": _nanstat(np.nanmedian, np.where(mem.found, mem.offset, np.nan)),
        "fixed_point_frac": float(fixed.mean()),
        "attractor_frac": float(attractor.mean()),
        "attractor_unsure_frac": float(unsure.mean()),
        "fixed_point_residual_max": float(resid.max()),
        "spectral_radius_median": _nanstat(np.nanmedian, rho),
        "spectral_radius_max": _nanstat(np.nanmax, rho),
        "top_singular_median": _nanstat(np.nanmedian, s1),
        "spectral_failures": int(np.isnan(rho).sum() + np.isnan(s1).sum()),
        "retrieval_same_frac": float(same["noisy"][head].mean()),
        "retrieval_any_frac": _frac(kind[part["noisy"]][head] == probes.TRAIN),
        "masked_same_frac": float(same["masked"].mean()),
        "basin_radius_median": float(np.median(basin)),
        "heldout_to_train_frac": _frac(kind[part["heldout"]] == probes.TRAIN),
        "random_to_train_frac": _frac(kind[part["random"]] == probes.TRAIN),
        "spurious_frac": _frac(outside == probes.SPURIOUS),
        "unconverged_frac": _frac(outside == probes.NONE),
        "cycle_frac": _frac(outcome == probes.CYCLE),
        "capped_frac": _frac(outcome == probes.CAPPED),
        "diverged_frac": _frac(outcome == probes.DIVERGED),
        "spurious_points": len(to_train),
        "spurious_train_rms_median": _nanstat(np.median, to_train),
        "spurious_mean_rms_median": _nanstat(np.median, to_mean),
        "iter_steps_median": float(limits.steps.float().median().item()),
        "iter_steps_max": int(limits.steps.max().item()),
        "span_residual_mean": _nanstat(np.mean, span_res),
        "span_input_sensitivity_mean": _nanstat(np.mean, span_f),
        "spectra_seconds": timings["spectra"], "iteration_seconds": timings["iteration"],
        "span_seconds": timings["span"],
    })
    examples = [{"trial_id": cfg.trial_id, "example": i, "fixed_point_residual": float(resid[i]),
                 "spectral_radius": float(rho[i]), "top_singular_value": float(s1[i]),
                 "basin_radius": float(basin[i]), "attractor": bool(attractor[i]),
                 "memory_found": bool(mem.found[i]), "memory_offset": float(mem.offset[i]),
                 "memory_spectral_radius": float(rho_mem[i]), "memory_top_singular_value": float(s1_mem[i]),
                 "memory_rho_spread": float(spread[i]),
                 "attractor_unsure": bool(unsure[i])} for i in range(n)]
    return Probed(metrics, examples, retrieval, timings)


def recall(f, x: torch.Tensor, starts: torch.Tensor, cfg: TrialConfig, gen: torch.Generator
           ) -> tuple[probes.Memories, probes.Limits, torch.Tensor, torch.Tensor]:
    """x's memories, and where each of ``starts`` goes: the training examples, ``probes.MEMORY_CHECKS``
    points beside each (``probes.memory_starts``, drawn from ``gen``) and ``starts`` iterate in one
    batch with ``cfg``'s iteration settings; the first two give the memories (``probes.memories``).
    -> (memories, the limits of ``starts``, their nearest memory, their kind: ``probes.classify``)."""
    head = torch.cat([x.cpu(), probes.memory_starts(x.cpu(), gen)])
    lim = probes.iterate(f, torch.cat([head, starts.cpu()]).to(x.device), cfg.iter_steps, cfg.iter_tol,
                         cfg.confirm_steps, max_total=cfg.iter_max_steps)
    mem = probes.memories(lim, x, cfg.memory_tol, cfg.match_tol, probes.MEMORY_CHECKS)
    nearest, kind = probes.classify(lim, mem, cfg.match_tol)
    k = len(head)
    rest = probes.Limits(lim.x[k:], lim.converged[k:], lim.steps[k:], lim.outcome[k:], lim.period[k:])
    return mem, rest, nearest[k:], kind[k:]


def _retrieval_rows(cfg: TrialConfig, kind: np.ndarray, outcome: np.ndarray, where: np.ndarray,
                    part: dict[str, slice], same: dict[str, np.ndarray], sigma: np.ndarray) -> list[dict[str, Any]]:
    """One row per start kind (and per sigma for noisy starts): where those starts' limits went, by
    kind (``probes.classify``: any, spurious, none) and by census class (``probes.census``)."""
    rows = []
    for name in ("noisy", "masked", "heldout", "random"):
        k, o, c = kind[part[name]], outcome[part[name]], where[part[name]]
        levels = np.unique(sigma) if name == "noisy" else [None]
        for level in levels:
            at = sigma == level if name == "noisy" else np.ones(len(k), bool)
            rows.append({
                "trial_id": cfg.trial_id, "start": name,
                "sigma": float(level) if level is not None else (cfg.mask_frac if name == "masked" else None),
                "n_starts": int(at.sum()),
                "same_frac": float(same[name][at].mean()) if name in same and at.any() else None,
                "spurious_frac": _frac(k[at] == probes.SPURIOUS), "none_frac": _frac(k[at] == probes.NONE),
                **{col: _frac(c[at] == cls) for cls, col in enumerate(CENSUS_COLUMNS)},
                "capped_frac": _frac(o[at] == probes.CAPPED)})
    return rows


def _frac(mask: np.ndarray) -> float | None:
    return float(mask.mean()) if mask.size else None


def _nanstat(fn, values: np.ndarray) -> float | None:
    values = np.asarray(values, dtype=float)
    return None if values.size == 0 or np.isnan(values).all() else float(fn(values))
