"""The cost model: a trial's training time estimated from its config, before anything runs. It orders
the Tune trials (the expensive first), weighs the progress line's ETA, and bounds what a figure may
re-train; ``plan.calibrate`` fits it to steps timed on a machine.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..config import STEP_FIELDS, TrialConfig

STEP_OVERHEAD_S = 1e-3  # optimizer + Python per training step, measured ~1 ms for small nets on 1 thread
FLOPS_PER_S = 1e11      # a rough single-thread float32 rate; ordering needs only the estimates' ratios


@dataclass(frozen=True)
class StepModel:
    """Seconds per training step = overhead_s + 3 x forward FLOPs / flops_per_s (forward, backward ~2x
    forward). The defaults are rough; ``sweep.plan.calibrate`` fits both to steps timed on a machine."""
    overhead_s: float = STEP_OVERHEAD_S
    flops_per_s: float = FLOPS_PER_S

    def seconds(self, forward_flops: float) -> float:
        return self.overhead_s + 3 * forward_flops / self.flops_per_s


def forward_flops(cfg: TrialConfig) -> float:
    """FLOPs of one forward pass over the n_train training examples: sum over weight layers of
    2 x weights x output positions x n_train, the output sizes taken from a forward pass on meta
    tensors (shapes only, nothing is computed)."""
    import torch

    from ..trial import data, models
    shape = data.pool_shape(cfg)[1:]
    flops = 0

    def count(module, inputs, output):
        nonlocal flops
        positions = output[0, 0].numel()  # 1 for a Linear, H_out x W_out for a Conv2d
        flops += 2 * module.weight.numel() * positions * output.shape[0]

    with torch.device("meta"):
        model = models.ARCHS[cfg.arch](cfg, shape)
        for m in model.modules():
            if isinstance(m, (torch.nn.Linear, torch.nn.Conv2d)):
                m.register_forward_hook(count)
        model(models.to_input(torch.empty(cfg.n_train, *shape), cfg.arch))
    return float(flops)


def estimated_seconds(cfg: TrialConfig, model: StepModel = StepModel()) -> float:
    """An upper bound on a trial's training time (``estimated_costs`` of it alone)."""
    return estimated_costs([cfg], model)[0]


def shape_flops(configs: list[TrialConfig]) -> dict[tuple, float]:
    """``forward_flops`` per shape of work (``shape_key``): computed once, not per seed or lr."""
    flops: dict[tuple, float] = {}
    for cfg in configs:
        if shape_key(cfg) not in flops:
            flops[shape_key(cfg)] = forward_flops(cfg)
    return flops


def estimated_costs(configs: list[TrialConfig], model: StepModel = StepModel(),
                    flops: dict[tuple, float] | None = None) -> list[float]:
    """An upper bound on each config's training time, the one cost formula: max_steps steps of
    ``model.seconds(forward_flops)``. ``flops``: ``shape_flops(configs)``, when the caller has it."""
    flops = shape_flops(configs) if flops is None else flops
    return [cfg.max_steps * model.seconds(flops[shape_key(cfg)]) for cfg in configs]


def shape_key(cfg: TrialConfig) -> tuple:
    """The fields that set a training step's work: configs equal here cost the same per step."""
    return tuple(getattr(cfg, f) for f in STEP_FIELDS)


def hms(seconds: float) -> str:
    if seconds != seconds:  # NaN
        return "?"
    m, s = divmod(int(seconds), 60)
    h, m = divmod(m, 60)
    return f"{h}h{m:02d}m" if h else f"{m}m{s:02d}s" if m else f"{s}s"
