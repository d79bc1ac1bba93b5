"""Ray Tune running configs into a results folder: the trainable each Tune trial runs, what it tells
Tune, and ``Engine``, which starts (or joins) Ray once and runs batches of configs as Tune trials.

The configs are grouped into Tune trials (``grid.tune_trials``: the grid's ``per_trial`` axis, default
``seed``, runs inside one Tune trial, so Ray's per-trial overhead is paid once per grid point rather
than once per seed), handed to Tune most expensive first: one ``tune.grid_search`` over their places
in that order, their config rows put once in Ray's object store (``tune.with_parameters``). The
trainable is a thin wrapper around ``trial.run.run_and_write``. Scheduling, resources and retries
(``FailureConfig``) are Ray Tune's.
"""
from __future__ import annotations

import functools
import logging
import os
import sys
import threading
import time
from typing import Any

import pyarrow as pa

from .. import rules
from ..config import DEPTH, NAMED, TrialConfig
from ..rules import ERROR
from ..store import parts
from ..store.folder import ResultsFolder, TUNE, clear_tune
from ..store.schema import flat
from ..store.uri import one_line
from .cost import estimated_costs
from .grid import Grid, tune_trials
from . import trackers
from .launch import Launch, start_ray
from .stops import NO_RETRY, SweepStopped, raise_on_sigterm, storage_errno


def grid_points(grid: Grid, groups: list[list[TrialConfig]]) -> list[dict[str, Any]]:
    """Each Tune trial's config as Tune sees it: its place in ``groups`` (``group``; Tune starts them in
    this order) and the fields of its grid point (``config.NAMED``, depth, and every axis of the grid but
    the one run inside the Tune trial, as flat values), so that Tune's ResultGrid, ``get_best_result``
    and its loggers' hyper-parameters (TensorBoard, MLflow, W&B) name the science."""
    fields = [f for f in dict.fromkeys([*NAMED, DEPTH, *grid.axes]) if f != grid.per_trial]
    return [{"group": i, **{f: flat(g[0].to_row())[f] for f in fields}} for i, g in enumerate(groups)]


def param_space(points: list[dict[str, Any]], run: dict[str, Any]) -> dict[str, Any]:
    """Tune's param_space: the grid points' fields, each filled in by the search (``search``), and the
    run's settings under ``_run`` (results folder, CPUs, GPUs, device, batching). The configs themselves
    reach the trainable through ``tune.with_parameters`` (``tune_trainable``): Tune copies the param space
    for every trial it generates, so the configs, or the points as a ``grid_search`` (a 480-point smoke
    grid: 517 s to generate, against 15 s this way), would cost time quadratic in the number of trials."""
    return {**{k: None for k in points[0]}, "_run": run}


def search(points: list[dict[str, Any]]):
    """The search that hands Tune the grid points, in order, one Tune trial each."""
    from ray.tune.search import BasicVariantGenerator
    return BasicVariantGenerator(points_to_evaluate=points)


def tune_trainable(groups: list[list[TrialConfig]], launch: Launch, finished: set[str]):
    """``_trainable`` as Tune runs it: the groups' config rows put once in Ray's object store
    (``tune.with_parameters``), and the resources each Tune trial asks for."""
    from ray import tune
    rows = [[flat(c.to_row()) for c in group] for group in groups]
    known = [[c.trial_id for c in group if c.trial_id in finished] for group in groups]
    return tune.with_resources(tune.with_parameters(_trainable, rows=rows, known=known),
                               {"cpu": launch.cpus_per_trial, "gpu": launch.gpus_per_trial})


def _trainable(params: dict[str, Any], rows: list[list[dict[str, Any]]], known: list[list[str]]) -> None:
    """Ray Tune's entry point: threads, device, then ``trial.run.run_and_write``; reports once per config
    (counts for the progress line, and ``headline``).

    ``device`` is the sweep's (``--device``): a trial given a GPU trains on CUDA, and when its node has
    no usable CUDA each of its configs becomes an ``error`` row saying so (``trial.resources.check_cuda``),
    never a silent run on the CPU."""
    import torch
    from ray import tune

    from ..trial.run import run_and_write
    run = params["_run"]
    torch.set_num_threads(max(1, int(run["cpus"])))  # Ray reuses workers: an earlier task's count leaks
    if run["device"] == "cuda" and torch.cuda.is_available() and run["gpus"] < 1:
        # Ray does not enforce GPU memory; each fractional trial caps itself
        torch.cuda.set_per_process_memory_fraction(run["gpus"])
    _fault_point("start")
    configs = [TrialConfig.from_row(row) for row in rows[params["group"]]]
    replicate = {c.trial_id: str(getattr(c, run["per_trial"])) if run["per_trial"] else "0" for c in configs}
    counts = {"configs_done": 0, "configs_skipped": 0}
    done: list[str] = []  # ids written by this attempt, "!" marking an error row
    seeds: dict[str, dict[str, Any]] = {}  # replicate (seed) -> its config's headline, so far

    def report(row: dict[str, Any], skipped: bool) -> None:
        # cumulative: Tune may hand callbacks only the latest of several quick reports. The ids let the
        # progress line count each config once when a retried trial skips what its last attempt wrote
        counts["configs_skipped" if skipped else "configs_done"] += 1
        if not skipped:
            done.append(row["trial_id"] + ("!" if row["status"] == ERROR else ""))
        seeds[replicate[row["trial_id"]]] = headline(row)
        tune.report({**counts, "done_ids": ",".join(done), **headline(row), "replicate": replicate[row["trial_id"]],
                     "seeds": dict(seeds), **over_seeds(seeds)})
        if not skipped:
            _fault_point("part_written")

    _fault_point("write")
    try:
        # finished: what the driver knew, and the parts an earlier attempt of this Tune trial wrote (its worker
        # died): each looked up by its own path, so no Tune trial lists the results folder
        before = set(known[params["group"]])
        finished = before | parts.written(run["out"], [c.trial_id for c in configs if c.trial_id not in before])
        run_and_write(configs, run["out"], run["device"], report, batch=run["batch"], finished=finished)
    except (OSError, pa.ArrowException) as exc:
        code = storage_errno(exc)
        if code not in NO_RETRY:
            raise  # perhaps passing (a storage outage, a lost node): Tune runs the trial again
        # a full disk or a refused write is as full or refused on a retry: say so once, and Tune stops
        tune.report({**counts, "done_ids": ",".join(done),
                     "fatal": f"cannot write results to {run['out']}: {NO_RETRY[code]} ({one_line(exc)})"})


def trial_dirname(first_ids: list[str], trial) -> str:
    """A Tune trial's folder under ``_tune/``: Tune's id and the first of its configs' ids."""
    return f"{trial.trial_id}_{first_ids[trial.config['group']]}"


HEADLINE = ("attractor_frac", "spectral_radius_median", "retrieval_same_frac")


def over_seeds(seeds: dict[str, dict[str, Any]]) -> dict[str, float]:
    """``<metric>_mean``: each headline metric's mean over the usable seeds reported so far
    (``rules.usable``: interpolated and probed; NaN when none is), what ``get_best_result`` can rank
    grid points by. The report's verdicts read the Parquet tables, not this."""
    ok = [s for s in seeds.values() if rules.usable(s["status"], s["attractor_frac"])]
    return {f"{k}_mean": sum(s[k] for s in ok) / len(ok) if ok else float("nan") for k in HEADLINE}


def headline(row: dict[str, Any]) -> dict[str, Any]:
    """What Tune is told of each config, so that its ResultGrid and logger callbacks (TensorBoard, W&B,
    MLflow) show the science: the config's id and status, and the headline metrics (NaN where the
    trial has none: diverged, error, or skipped because an earlier attempt wrote it)."""
    return {"config_id": row["trial_id"], "status": row["status"],
            **{k: float("nan") if row.get(k) is None else float(row[k]) for k in HEADLINE}}


def _fault_point(name: str) -> None:
    """Faults injected at named points of a Tune trial, for tests only (tests/faults, test_cluster.py).

    MEMSWEEP_FAULT_CRASH_ONCE=DIR, at "start": the first attempt of each Tune trial kills its own
    process, as a lost worker would. MEMSWEEP_FAULT_WRITE_ERRNO=N, at "write": every part write of
    the worker fails with OSError errno N (28: a full disk). MEMSWEEP_FAULT_HOLD=DIR, at
    "part_written": the first trial of the sweep on a worker node (not the head, whose death ends the
    cluster) to write a part writes its node's id to DIR/held and stops there, so that a test that kills
    that node kills it mid-trial, not by lucky timing."""
    from ray import tune
    if name == "write" and (code := os.environ.get("MEMSWEEP_FAULT_WRITE_ERRNO")):
        def refuse(*args, **kwargs):
            raise OSError(int(code), os.strerror(int(code)), "injected")
        parts.write_part = refuse  # this worker's writes fail as on a full disk (this process only)
        return
    if name == "start" and (folder := os.environ.get("MEMSWEEP_FAULT_CRASH_ONCE")):
        marker = os.path.join(folder, tune.get_context().get_trial_id())
        if not os.path.exists(marker):
            open(marker, "w").close()
            os._exit(17)
    if name == "part_written" and (folder := os.environ.get("MEMSWEEP_FAULT_HOLD")):
        import ray
        me = ray.get_runtime_context().get_node_id()
        if any(n["NodeID"] == me and "node:__internal_head__" in n["Resources"] for n in ray.nodes()):
            return
        try:
            fd = os.open(os.path.join(folder, "held.lock"), os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:  # another trial holds already: one hold per sweep
            return
        os.close(fd)
        tmp = os.path.join(folder, ".held")
        with open(tmp, "w") as fh:
            fh.write(me)
        os.replace(tmp, os.path.join(folder, "held"))
        time.sleep(300)  # until the test kills this node; then the trial goes on as if nothing happened


class Engine:
    """Ray Tune running batches of configs into one results folder: a Ray of memsweep's own or the
    cluster the launch joins, started at the first ``run`` (or ``start``) and kept for the next.
    ``run(configs)`` groups the configs into Tune trials (the grid's ``per_trial`` axis), hands Tune
    those with a config still to run, most expensive first, and returns when Tune is done.
    ``close()`` stops a Ray of memsweep's own."""

    def __init__(self, grid: Grid, launch: Launch, folder: ResultsFolder, verbose: bool = False,
                 preset: str | None = None):
        self.grid, self.launch, self.folder, self.verbose, self.preset = grid, launch, folder, verbose, preset
        self.out = launch.out
        self.ray = None
        self.retried = 0  # Tune trials run again after their worker or node died, over all runs

    def start(self) -> None:
        if self.ray is not None:
            return
        if not self.verbose:  # Tune's boxed banner and TensorBoard hints; our progress line replaces them
            os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
            for name in QUIET_LOGGERS:
                logging.getLogger(name).setLevel(logging.ERROR)
            logging.getLogger("ray.tune.execution.tune_controller").addFilter(_no_trial_traceback)
        # Ctrl-C and SIGTERM reach the driver as exceptions (``stops.Interrupted``), not as Tune's
        # "Resume experiment with Tuner.restore" (memsweep resumes by rerunning its command)
        os.environ["TUNE_DISABLE_SIGINT_HANDLER"] = "1"
        os.environ["TUNE_DISABLE_AUTO_CALLBACK_LOGGERS"] = "1"  # the loggers are --log's (trackers.callbacks)
        self.ray = start_ray(self.launch, self.verbose)
        raise_on_sigterm()  # ray.init put its own handler there
        if self.launch.device == "cpu" and self.launch.gpus_per_trial:
            print(f"[memsweep] --device cpu: each trial holds {self.launch.gpus_per_trial:g} GPU but trains on "
                  "the CPU", file=sys.stderr)

    def close(self) -> None:
        """Stop a Ray of memsweep's own (its raylet, workers and agents); a second Ctrl-C meanwhile
        does not cut that short."""
        if self.ray is not None and not self.launch.joins:
            import signal
            handlers = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
            main_thread = threading.current_thread() is threading.main_thread()
            for s in handlers if main_thread else ():
                signal.signal(s, signal.SIG_IGN)
            try:
                self.ray.shutdown()
            finally:
                for s, h in handlers.items() if main_thread else ():
                    signal.signal(s, h)
        self.ray = None

    def run(self, configs: list[TrialConfig]) -> None:
        """Run ``configs`` (validated) as Tune trials; configs whose row is written already are skipped.
        Raises StartTimeout when no Tune trial started in time, StorageFailed when a trial cannot write
        its results for a cause a retry cannot remove."""
        self.start()
        from ray import tune

        from .progress import Progress
        launch, out = self.launch, self.out
        ids = [c.trial_id for c in configs]
        finished = self.folder.finished
        run = {"out": out, "cpus": launch.cpus_per_trial, "gpus": launch.gpus_per_trial, "device": launch.device,
               "batch": launch.batch, "per_trial": self.grid.per_trial}
        costs = estimated_costs(configs)  # orders the Tune trials and weighs the ETA
        # a resume hands Tune only the groups with a config still to run: the parts say what is done,
        # so Tune's state of the last run is never read back
        groups = [g for g in tune_trials(self.grid, configs, costs) if any(c.trial_id not in finished for c in g)]
        if not groups:
            return
        group_ids = [[c.trial_id for c in g] for g in groups]
        progress = Progress(ids, finished, costs, launch.request, launch.max_failures, launch.start_timeout,
                            groups=group_ids)
        clear_tune(out)  # Tune's record of an earlier run
        run_config = tune.RunConfig(
            name=TUNE, storage_path=out, verbose=1 if self.verbose else 0,
            callbacks=[progress, *trackers.callbacks(launch.log, out, self.preset)],
            failure_config=tune.FailureConfig(max_failures=launch.max_failures),
            checkpoint_config=tune.CheckpointConfig(checkpoint_at_end=False))
        points = grid_points(self.grid, groups)
        tune_config = tune.TuneConfig(search_alg=search(points), num_samples=len(points), reuse_actors=True,
                                      max_concurrent_trials=launch.max_concurrent,
                                      trial_dirname_creator=functools.partial(trial_dirname, [g[0] for g in group_ids]))
        tuner = tune.Tuner(tune_trainable(groups, launch, finished), param_space=param_space(points, run),
                           run_config=run_config, tune_config=tune_config)
        try:
            tuner.fit()
        except (SweepStopped, KeyboardInterrupt):
            raise
        except Exception as exc:  # Tune's own storage or state failed (say, S3 out of reach): one line, rows kept
            if self.verbose:
                import traceback
                traceback.print_exc()
            raise SweepStopped(f"Ray Tune stopped: {type(exc).__name__}: {one_line(exc)}"
                               f"{_endpoint(out)}") from None
        finally:
            self.retried += getattr(progress, "retried", 0)
            self.folder.add_finished(i for ids in getattr(progress, "done_ids", {}).values() for i in ids)
            if sys.stderr.isatty():
                sys.stderr.write("\n")


def _endpoint(out: str) -> str:
    """' (S3 endpoint URL)' for an S3 results folder whose endpoint is set in the environment."""
    where = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
    return f" (S3 endpoint {where})" if out.startswith("s3://") and where else ""


QUIET_LOGGERS = (
    "ray._private.authentication.authentication_token_setup",  # "token auth is enabled", at every local start
    "ray.tune.execution.tune_controller",
    "ray.tune.analysis.experiment_analysis",  # "failed to fetch metrics" of trials killed with a driver
)


def _no_trial_traceback(record: logging.LogRecord) -> bool:
    """Drops Tune's "Trial task failed" traceback: the progress line says the failure and its cause in
    one line, and the trace stays in the Tune trial's error.txt (under OUT/_tune)."""
    return not record.getMessage().startswith("Trial task failed")
