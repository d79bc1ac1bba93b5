"""``memsweep plan``: what a sweep would run, where, and roughly what it costs, before paying for it.

No Ray starts and no trial runs; a few training steps are timed. The plan lists the configs and
the Tune trials they form, the resources each Tune trial asks for, where the results will go, and
every config's estimated training time, most expensive first. The estimate is ``cost.StepModel`` (per-step
overhead + FLOPs at some rate) fitted to a few training steps timed on the machine that runs the
plan (``calibrate``), times each config's ``max_steps``: an upper bound, since most trials stop
early at ``loss_tol``, and probes are not counted.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

from ..config import TrialConfig
from ..store.folder import DamagedManifest, ResultsFolder
from ..store.uri import one_line
from .cost import StepModel, estimated_costs, hms, shape_flops, shape_key
from .grid import Grid, tune_trials, validate
from .launch import resources_text

TIMED_STEPS = 5   # steps timed per calibration config, after WARMUP_STEPS untimed ones
WARMUP_STEPS = 2


def fit_step_model(points: list[tuple[float, float]]) -> StepModel:
    """Least-squares fit of seconds = overhead + 3 x flops / rate to (forward FLOPs, seconds per step)
    points. With one distinct FLOP count, or a fit that makes either constant negative, the overhead
    alone explains the time (rate infinite) or the rate alone (no overhead), whichever fits."""
    xs = [3 * f for f, _ in points]
    ys = [t for _, t in points]
    n = len(points)
    mean_x, mean_y = sum(xs) / n, sum(ys) / n
    var = sum((x - mean_x) ** 2 for x in xs)
    slope = sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys)) / var if var > 0 else 0.0
    overhead = mean_y - slope * mean_x
    if slope > 0 and overhead >= 0:
        return StepModel(overhead, 1 / slope)
    if slope > 0:  # all of it scales with the FLOPs
        return StepModel(0.0, sum(xs) / sum(ys))
    return StepModel(mean_y, float("inf"))


def time_steps(cfg: TrialConfig, device: str = "cpu", steps: int = TIMED_STEPS) -> float:
    """Seconds per full-batch training step of ``cfg``'s model on its data, on ``device``."""
    import torch

    from ..trial import data, models
    from ..trial.train import make_optimizer, targets
    images = data.load(cfg)
    x = models.to_input(images.train, cfg.arch).to(device)
    model = models.build(cfg, images.shape).to(device)
    y = targets(x, cfg)
    opt = make_optimizer(cfg, model.parameters())

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        loss = torch.mean((model(x) - y) ** 2)
        loss.backward()
        opt.step()

    for _ in range(WARMUP_STEPS):
        step()
    if device == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    if device == "cuda":
        torch.cuda.synchronize()
    return (time.perf_counter() - start) / steps


@dataclass
class Calibration:
    model: StepModel
    device: str
    threads: int
    timed: list[tuple[TrialConfig, float]]  # (config, seconds per step) that the model was fitted to


def calibrate(configs: list[TrialConfig], device: str = "cpu", threads: int = 1) -> Calibration:
    """Time a few training steps of the cheapest, the median and the most expensive shape of work in
    ``configs`` (by FLOPs), with ``threads`` torch threads (a trial's CPUs), and fit ``StepModel``."""
    import torch
    flops = shape_flops(configs)
    shapes: dict[tuple, TrialConfig] = {}
    for cfg in configs:
        shapes.setdefault(shape_key(cfg), cfg)
    ranked = sorted(shapes.values(), key=lambda c: flops[shape_key(c)])
    picked = list({id(c): c for c in (ranked[0], ranked[len(ranked) // 2], ranked[-1])}.values())
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        timed = [(cfg, time_steps(cfg, device)) for cfg in picked]
    finally:
        torch.set_num_threads(before)
    return Calibration(fit_step_model([(flops[shape_key(c)], t) for c, t in timed]), device, threads, timed)


def describe_out(out: str) -> str:
    """What ``out`` holds now, read-only: new, or a sweep a run would resume or refuse."""
    try:
        folder = ResultsFolder(out)
        manifest, done = folder.manifest, len(folder.finished)
    except DamagedManifest as exc:
        return str(exc)
    except (OSError, ValueError) as exc:
        return f"not checked ({one_line(exc)})"
    if manifest is None:
        return "new" if not done else f"holds {done} trial parts but no sweep.json (run refuses without --force)"
    return f"holds a sweep (preset {manifest.get('preset')!r}) with {done} trial parts: a run resumes it"


def duration(seconds: float) -> str:
    return f"{seconds:.2g}s" if seconds < 60 else hms(seconds)


def plan(grid: Grid, launch, preset: str | None = None, show: int = 10) -> str:
    """The plan as text. ``launch`` is a ``sweep.launch.Launch``; it is checked as ``memsweep run`` would."""
    import torch
    configs = validate(grid)
    launch = launch.checked()
    device = "cuda" if launch.device == "cuda" and torch.cuda.is_available() else "cpu"
    cal = calibrate(configs, device, threads=max(1, int(launch.cpus_per_trial)))
    by_shape = shape_flops(configs)
    flops = [by_shape[shape_key(c)] for c in configs]
    seconds = estimated_costs(configs, cal.model, by_shape)
    # ties (a model whose timings show no FLOP term, on tiny nets) fall back to the FLOPs themselves
    order = sorted(range(len(configs)), key=lambda i: (seconds[i], configs[i].max_steps * flops[i]), reverse=True)
    total_h = sum(seconds) / 3600
    n_tune = len(tune_trials(grid, configs, seconds))
    where = (f"the Ray cluster at {launch.address or 'RAY_ADDRESS'}" if launch.joins
             else "a Ray of its own on this machine")
    rate = "no FLOP term" if cal.model.flops_per_s == float("inf") else f"FLOPs at {cal.model.flops_per_s / 1e9:.3g} GFLOP/s"
    lines = [
        "[memsweep] plan: no Ray starts and no trial runs (only a few training steps are timed)",
        f"  grid       {'preset ' + preset if preset else 'custom grid'}: {len(configs)} configs in {n_tune} Tune trials"
        + (f" (the {grid.per_trial} axis runs inside each Tune trial)" if grid.per_trial in grid.axes else ""),
        f"  resources  each Tune trial asks for {resources_text(launch.request)}, on {where}; trials train on "
        f"{launch.device}",
        f"  results    {launch.out}: {describe_out(launch.out)}",
        f"  timing     {TIMED_STEPS} training steps of {len(cal.timed)} configs on this machine's {cal.device}, "
        f"{cal.threads} thread(s): {cal.model.overhead_s * 1e3:.3g} ms per step + 3 x forward {rate}",
        f"  estimate   {total_h:.3g} {cal.device}-hours of training if every trial runs to max_steps (an upper "
        "bound: most stop at loss_tol; probes not counted)"
        + (f"; x {launch.gpus_per_trial:g} GPU per trial = {total_h * launch.gpus_per_trial:.3g} GPU-hours"
           if cal.device == "cuda" else "")
        + ("; timed on CPU: run `memsweep plan` on a GPU node for GPU-hours" if launch.device == "cuda"
           and cal.device == "cpu" else ""),
        "  configs by estimated training time, most expensive first:",
    ]
    shown = order if len(order) <= show + 3 else order[:show] + [None] + order[-3:]
    for i in shown:
        if i is None:
            lines.append(f"    ... {len(order) - show - 3} more ...")
        else:
            lines.append(f"    {duration(seconds[i]):>9}  {configs[i].trial_id}")
    return "\n".join(lines)
