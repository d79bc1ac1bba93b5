"""Sweeps: a grid over ``TrialConfig`` fields (``study.grid``), run by Ray Tune, one Parquet part
per trial.

``param_space`` turns every axis of the ``Grid`` except the packed one into a
``tune.grid_search``; the packed axis (default ``seed``) is run inside one Tune trial, so
Ray's per-trial overhead is paid once per grid point rather than once per seed.

The trainable is a thin wrapper around ``run_pack``, a plain function that runs configs in
order, skips those whose ``trials/`` part already exists (that is what makes resume exact),
and writes each config's parts as soon as it finishes. Scheduling, resources, retries
(``FailureConfig``) and resume (``Tuner.restore``) are Ray Tune's.
"""
from __future__ import annotations

import json
import logging
import os
import sys
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from . import results
from .config import ConfigError, TrialConfig, field_names
from .grid import Grid, estimated_costs, ordered_axes, validate


def param_space(grid: Grid, configs: list[TrialConfig], run: dict[str, Any],
                costs: list[float] | None = None) -> dict[str, Any]:
    """Tune's param_space: a ``tune.grid_search`` per axis (expensive values first, ``ordered_axes``),
    the packed axis as a plain list that one Tune trial runs through, the fixed values, and the run's
    settings under ``_run`` (results folder, CPUs, GPUs, packed axis)."""
    from ray import tune
    space: dict[str, Any] = {**grid.fixed, "_run": run}
    for name, values in ordered_axes(grid, configs, costs).items():
        space[name] = tune.grid_search(values)
    if grid.pack in grid.axes:
        space[grid.pack] = grid.axes[grid.pack]
    return space


# --- the work inside one Tune trial ---------------------------------------------------------------

def pack_configs(params: dict[str, Any], pack: str | None) -> list[TrialConfig]:
    """The configs one Tune trial runs: ``params`` holds the packed axis as a list."""
    names = set(field_names())
    base = {k: v for k, v in params.items() if k in names}
    if pack is None or not isinstance(base.get(pack), list):
        return [TrialConfig(**base)]
    return [TrialConfig(**{**base, pack: v}) for v in base[pack]]


def run_pack(configs: list[TrialConfig], out: str, device: str = "cpu",
             on_done: Callable[[dict[str, Any], bool], None] | None = None, pack: bool = True) -> list[dict[str, Any]]:
    """Run ``configs``, writing each one's parts under ``out`` as soon as it finishes.

    A config whose ``trials/<trial_id>.parquet`` already exists is skipped: on resume nothing
    that finished is run twice. With ``pack``, fc configs differing only in seed train together
    as one batch of models (``study.packed``). Returns the trial rows (None for skipped ones)."""
    from .trial import run_trials
    finished = results.finished_ids(out)
    todo = [c for c in configs if c.trial_id not in finished]
    for cfg in configs:
        if cfg.trial_id in finished and on_done:
            on_done({"trial_id": cfg.trial_id, "status": "skipped"}, True)
    rows = {}
    for result in run_trials(todo, device, pack=pack):
        results.write_trial(out, result)
        rows[result.config.trial_id] = result.trial
        if on_done:
            on_done(result.trial, False)
    return [rows.get(c.trial_id) for c in configs]


def _trainable(params: dict[str, Any]) -> None:
    """Ray Tune's entry point: threads, device, then ``run_pack``; reports once per config."""
    import torch
    from ray import tune

    run = params["_run"]
    torch.set_num_threads(max(1, int(run["cpus"])))  # Ray reuses workers: an earlier task's count leaks
    device = "cpu"
    if run["gpus"] > 0 and torch.cuda.is_available():
        device = "cuda"
        if run["gpus"] < 1:  # Ray does not enforce GPU memory; each fractional trial caps itself
            torch.cuda.set_per_process_memory_fraction(run["gpus"])
    crash_dir = os.environ.get("MEMSWEEP_FAULT_CRASH_ONCE")  # fault injection for tests/faults only
    if crash_dir:
        marker = os.path.join(crash_dir, tune.get_context().get_trial_id())
        if not os.path.exists(marker):
            open(marker, "w").close()
            os._exit(17)  # the worker process dies mid-trial, as on a lost node
    configs = pack_configs(params, run["pack"])
    counts = {"configs_done": 0, "configs_failed": 0, "configs_skipped": 0}

    def report(row: dict[str, Any], skipped: bool) -> None:
        # cumulative counts: Tune may hand callbacks only the latest of several quick reports
        counts["configs_skipped" if skipped else "configs_done"] += 1
        counts["configs_failed"] += row["status"] == "error"
        tune.report(dict(counts))

    run_pack(configs, run["out"], device, report)


# --- the driver --------------------------------------------------------------------------------------

@dataclass
class Summary:
    total: int
    done: int = 0          # rows written by this run
    skipped: int = 0       # rows already there from an earlier run
    failed: int = 0        # status 'error', or no row at all
    statuses: dict[str, int] = field(default_factory=dict)

    def line(self) -> str:
        by = ", ".join(f"{k} {v}" for k, v in sorted(self.statuses.items()))
        return (f"{self.total} trials: {self.done} done, {self.skipped} skipped (already there), "
                f"{self.failed} failed  [{by}]")


def eta_seconds(elapsed: float, done_cost: float, todo_cost: float) -> float:
    """Time left if the rest runs at the pace so far, pace measured in estimated cost per second:
    elapsed x (todo_cost - done_cost) / done_cost. Counting configs instead would overstate it at the
    start of a sweep, which runs its expensive grid points first (``ordered_axes``). NaN before any
    work is done."""
    return elapsed * max(todo_cost - done_cost, 0.0) / done_cost if done_cost > 0 else float("nan")


class Progress:
    """A Tune callback printing one progress line per finished config: done/total, running, failed, ETA."""

    def __new__(cls, *args, **kwargs):  # subclass Ray's Callback lazily, so importing sweep needs no Ray
        from ray import tune

        class _Progress(tune.Callback):
            def __init__(self, out: str, ids: list[str], costs: list[float] | None = None):
                # plain data: Tuner.restore unpickles this callback. costs: estimated seconds per id
                self.out, self.ids, self.costs = out, ids, dict(zip(ids, costs or [1.0] * len(ids)))

            def setup(self, **info):  # runs at every fit, the first and each resumed one
                self.total = len(self.ids)
                self.todo = set(self.ids) - results.finished_ids(self.out)
                self.already = self.total - len(self.todo)
                self.todo_cost = sum(self.costs[i] for i in self.todo)
                self.done, self.failed, self.start = 0, 0, time.time()
                self.per_trial: dict[str, tuple[int, int]] = {}  # Tune trial -> (done, failed) in this fit
                self.finished: dict[str, int] = {}  # Tune trial -> configs done or skipped in this fit
                self.packs: dict[str, tuple[int, int, float]] = {}  # Tune trial -> (size, to run, their cost)
                self.tty = sys.stderr.isatty()

            def on_trial_result(self, iteration, trials, trial, result, **info):
                self.count(trial, result, trials)

            def on_trial_complete(self, iteration, trials, trial, **info):
                self.count(trial, trial.last_result or {}, trials)

            def count(self, trial, result, trials) -> None:
                new = (result.get("configs_done", 0), result.get("configs_failed", 0))
                self.finished[trial.trial_id] = new[0] + result.get("configs_skipped", 0)
                if new == self.per_trial.get(trial.trial_id, (0, 0)):
                    return
                self.per_trial[trial.trial_id] = new
                self.done = sum(d for d, _ in self.per_trial.values())
                self.failed = sum(f for _, f in self.per_trial.values())
                self.show(sum(self.busy(t) for t in trials), trials)

            def pack(self, trial) -> tuple[int, int, float]:
                """Its configs: how many, how many were still to run at setup, their estimated cost."""
                if trial.trial_id not in self.packs:
                    ids = [c.trial_id for c in pack_configs(trial.config, trial.config["_run"]["pack"])]
                    todo = [i for i in ids if i in self.todo]
                    self.packs[trial.trial_id] = (len(ids), len(todo), sum(self.costs[i] for i in todo))
                return self.packs[trial.trial_id]

            def busy(self, trial) -> bool:
                """Running and not through its configs: its last report comes just before it ends."""
                return trial.status == "RUNNING" and self.finished.get(trial.trial_id, 0) < self.pack(trial)[0]

            def on_trial_error(self, iteration, trials, trial, **info):
                sys.stderr.write(f"\n[memsweep] a Tune trial failed (Ray retries it up to max_failures): "
                                  f"{trial.error_file or trial}\n")

            def done_cost(self, trials) -> float:
                """Estimated cost of the work done in this fit: each pack's share of its own cost."""
                total = 0.0
                for t in trials:
                    _, n_todo, cost = self.pack(t)
                    if n_todo:
                        total += min(1.0, self.per_trial.get(t.trial_id, (0, 0))[0] / n_todo) * cost
                return total

            def show(self, running: int, trials=()) -> None:
                elapsed = time.time() - self.start
                eta = eta_seconds(elapsed, self.done_cost(trials), self.todo_cost)
                line = (f"[memsweep] {self.already + self.done}/{self.total} trials done, {running} running, "
                        f"{self.failed} failed, {_hms(elapsed)} elapsed, ETA {_hms(eta)}")
                sys.stderr.write(("\r" + line) if self.tty else line + "\n")
                sys.stderr.flush()

        return _Progress(*args, **kwargs)


def _hms(seconds: float) -> str:
    if seconds != seconds:  # NaN
        return "?"
    m, s = divmod(int(seconds), 60)
    return f"{m}m{s:02d}s" if m else f"{s}s"


def resolve_out(out: str) -> str:
    """URIs stay as they are; local paths become absolute (Tune rejects relative storage paths)."""
    return out if "://" in out else os.path.abspath(out)


def prepare_out(out: str, grid: Grid, mode: str) -> bool:
    """Check ``out`` and decide between a fresh start and a resume. Returns True when resuming.

    mode: 'auto' (resume if the same grid is there), 'resume' (must be there), 'force' (start over).
    Every refusal comes before anything under ``out`` is touched."""
    local = "://" not in out
    if local and os.path.exists(out) and not os.path.isdir(out):
        raise ConfigError(f"--out {out} is a file, not a folder")
    manifest = results.read_manifest(out)
    if manifest is None:
        if mode == "resume":
            raise ConfigError(f"--resume: no sweep in {out} (no sweep.json)")
        if local and os.path.isdir(out) and any(os.path.isdir(os.path.join(out, t)) for t in results.TABLES):
            if mode != "force":
                raise ConfigError(f"--out {out} holds results without sweep.json; use --force to start over there")
    elif mode != "force" and Grid.from_json(manifest["grid"]).to_json() != json.loads(json.dumps(grid.to_json())):
        raise ConfigError(f"--out {out} holds a sweep of a different grid (preset {manifest.get('preset')!r}); "
                          "use another --out, or --force to discard it and start over")
    if local:
        try:  # a real write, not os.access: root passes access checks on read-only file systems
            os.makedirs(out, exist_ok=True)
            probe = os.path.join(out, f".write-test-{os.getpid()}")
            with open(probe, "w") as fh:
                fh.write("ok")
            os.remove(probe)
        except OSError as exc:
            raise ConfigError(f"--out {out}: cannot write results there ({exc.strerror or exc})") from None
    if mode == "force":  # discard what is there, sweep or stray results, so nothing mixes
        results.clear(out)
        return False
    return manifest is not None


def run_sweep(grid: Grid, out: str, preset: str | None = None, address: str | None = None,
              cpus_per_trial: float = 1, gpus_per_trial: float = 0, max_concurrent: int | None = None,
              mode: str = "auto", verbose: bool = False, max_failures: int = 2) -> Summary:
    """Validate everything, then run the grid with Ray Tune. Raises ConfigError before Ray on bad input."""
    configs = validate(grid)
    out = resolve_out(out)
    if cpus_per_trial <= 0:
        raise ConfigError(f"--cpus-per-trial must be > 0, got {cpus_per_trial}")
    if not 0 <= gpus_per_trial <= 1:  # a trial (and a pack of models) runs in one process on one GPU
        raise ConfigError(f"--gpus-per-trial must be between 0 and 1 (0.25 runs four trials per GPU), "
                          f"got {gpus_per_trial}")
    if max_concurrent is not None and max_concurrent < 1:
        raise ConfigError(f"--max-concurrent must be >= 1, got {max_concurrent}")
    resuming = prepare_out(out, grid, mode)
    for name in results.quarantine_damaged(out):
        print(f"[memsweep] damaged part trials/{name} moved to _damaged/trials/; its trial runs again",
              file=sys.stderr)
    ids = [c.trial_id for c in configs]
    already = len(set(ids) & results.finished_ids(out))
    manifest = results.sweep_manifest(grid.to_json(), preset, len(configs), sys.argv)
    if resuming:  # keep the first start; note each resume
        old = results.read_manifest(out)
        manifest["started"], manifest["resumed"] = old["started"], [*old.get("resumed", []), manifest["started"]]
    results.write_manifest(out, manifest)
    print(f"[memsweep] {'resuming' if resuming else 'starting'} sweep of {len(configs)} trials "
          f"({already} already done) -> {out}", file=sys.stderr)
    if already == len(configs):  # nothing to run: no need to start Ray
        return _finish(out, ids, already, manifest)

    if not verbose:  # Tune's boxed banner and TensorBoard hints; our progress line replaces them
        os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
        for name in QUIET_LOGGERS:
            logging.getLogger(name).setLevel(logging.ERROR)
    import ray
    from ray import tune

    _init_ray(address, verbose)
    try:
        run = {"out": out, "cpus": cpus_per_trial, "gpus": gpus_per_trial, "pack": grid.pack}
        costs = estimated_costs(configs)  # orders the grid and weighs the ETA
        space = param_space(grid, configs, run, costs)
        trainable = tune.with_resources(_trainable, {"cpu": cpus_per_trial, "gpu": gpus_per_trial})
        exp = f"{out}/_tune"
        progress = Progress(out, ids, costs)
        run_config = tune.RunConfig(
            name="_tune", storage_path=out, verbose=1 if verbose else 0, callbacks=[progress],
            failure_config=tune.FailureConfig(max_failures=max_failures),
            checkpoint_config=tune.CheckpointConfig(checkpoint_at_end=False))
        if resuming and tune.Tuner.can_restore(exp) and _tune_unfinished(exp):
            tuner = tune.Tuner.restore(exp, trainable=trainable, resume_errored=True)
        else:  # a fresh start, or Tune's run is complete but parts are missing (damaged ones moved aside):
            # a new run over the grid, whose trainable skips every config that has its part
            tuner = tune.Tuner(trainable, param_space=space, run_config=run_config,
                               tune_config=tune.TuneConfig(reuse_actors=True, max_concurrent_trials=max_concurrent))
        tuner.fit()
        if sys.stderr.isatty():
            sys.stderr.write("\n")
    finally:
        if not address and not os.environ.get("RAY_ADDRESS"):
            ray.shutdown()
    return _finish(out, ids, already, manifest)


def _tune_unfinished(exp: str) -> bool:
    """Whether Tune's saved run has trials it would still run on restore."""
    from ray import tune
    try:
        return any(t.status != "TERMINATED" for t in tune.ExperimentAnalysis(exp).trials)
    except Exception:  # unreadable state: a fresh run is the safe choice
        return False


def _finish(out: str, ids: list[str], already: int, manifest: dict[str, Any]) -> Summary:
    summary = summarize(out, ids, already)
    manifest["finished"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    manifest["summary"] = summary.__dict__
    results.write_manifest(out, manifest)
    return summary


QUIET_LOGGERS = (
    "ray._private.authentication.authentication_token_setup",  # "token auth is enabled", at every local start
    "ray.tune.analysis.experiment_analysis",  # "failed to fetch metrics" of trials killed with a driver
)


def _init_ray(address: str | None, verbose: bool) -> None:
    import ray
    quiet = {"log_to_driver": verbose, "configure_logging": verbose, "include_dashboard": False}
    if address or os.environ.get("RAY_ADDRESS"):
        # joining a cluster: its resources are its own (ray.init(num_cpus=...) fails there)
        ray.init(address=address, log_to_driver=verbose, configure_logging=verbose)
    else:
        ray.init(num_cpus=os.cpu_count(), **quiet)


def summarize(out: str, ids: list[str], already: int) -> Summary:
    table = results.read_trials(out, columns=["trial_id", "status"])
    rows = table[table.trial_id.isin(ids)] if len(table) else table
    summary = Summary(total=len(ids), skipped=already)
    summary.statuses = rows.status.value_counts().to_dict() if len(rows) else {}
    missing = len(set(ids) - set(rows.trial_id if len(rows) else []))
    summary.statuses.update({"missing": missing} if missing else {})
    summary.failed = int(summary.statuses.get("error", 0)) + missing
    summary.done = len(rows) - already
    return summary
