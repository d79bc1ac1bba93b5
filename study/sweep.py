"""Sweeps: a grid over ``TrialConfig`` fields (``study.grid``), run by Ray Tune, one Parquet part
per trial.

The driver validates every config, groups them into Tune trials (``grid.tune_trials``: the
grid's ``per_trial`` axis, default ``seed``, runs inside one Tune trial, so Ray's per-trial
overhead is paid once per grid point rather than once per seed), and hands Tune the groups,
most expensive first: one ``tune.grid_search`` over their places in that order, their config
rows put once in Ray's object store (``tune.with_parameters``).

The trainable is a thin wrapper around ``trial.run_and_write``, which runs its configs (those of
one model shape as one batch), skips those whose row is already written, and writes each
config's parts as soon as it finishes. Scheduling, resources and retries (``FailureConfig``) are
Ray Tune's. Resume is the parts': a resumed sweep hands Tune only the groups with a config still
to run, so no Tune state is read back. A ``Launch`` says where it runs: a Ray of memsweep's own
on this machine, or a cluster it joins (which needs shared storage for ``--out``);
``study.progress`` prints what it is doing.
"""
from __future__ import annotations

import dataclasses
import functools
import json
import logging
import os
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from . import results
from .config import ConfigError, TrialConfig
from .lease import Lease
from .grid import Grid, estimated_costs, tune_trials, validate
from .progress import NO_RETRY, Progress, SweepStopped, fits, raise_on_sigterm, resources_text, storage_errno
from .rules import THRESHOLD


def param_space(groups: list[list[TrialConfig]], run: dict[str, Any]) -> dict[str, Any]:
    """Tune's param_space: one ``tune.grid_search`` over the Tune trials, each named by its place in
    ``groups`` (Tune starts them in this order), and the run's settings under ``_run`` (results
    folder, CPUs, GPUs, device, batching). The configs themselves reach the trainable through
    ``tune.with_parameters`` (``tune_trainable``): Tune copies the whole grid for every trial it
    generates, so rows in the grid would cost time quadratic in the number of Tune trials."""
    from ray import tune
    return {"group": tune.grid_search(list(range(len(groups)))), "_run": run}


def tune_trainable(groups: list[list[TrialConfig]], launch: "Launch"):
    """``_trainable`` as Tune runs it: the groups' config rows put once in Ray's object store
    (``tune.with_parameters``), and the resources each Tune trial asks for."""
    from ray import tune
    rows = [[results.flat(c.to_row()) for c in group] for group in groups]
    return tune.with_resources(tune.with_parameters(_trainable, rows=rows),
                               {"cpu": launch.cpus_per_trial, "gpu": launch.gpus_per_trial})


def _trainable(params: dict[str, Any], rows: list[list[dict[str, Any]]]) -> None:
    """Ray Tune's entry point: threads, device, then ``trial.run_and_write``; reports once per config
    (counts for the progress line, and ``headline``).

    ``device`` is the sweep's (``--device``): a trial given a GPU trains on CUDA, and when its node has
    no usable CUDA each of its configs becomes an ``error`` row saying so (``trial.check_cuda``),
    never a silent run on the CPU."""
    import torch
    from ray import tune

    from .trial import run_and_write
    run = params["_run"]
    torch.set_num_threads(max(1, int(run["cpus"])))  # Ray reuses workers: an earlier task's count leaks
    if run["device"] == "cuda" and torch.cuda.is_available() and run["gpus"] < 1:
        # Ray does not enforce GPU memory; each fractional trial caps itself
        torch.cuda.set_per_process_memory_fraction(run["gpus"])
    _fault_point("start")
    configs = [TrialConfig.from_row(row) for row in rows[params["group"]]]
    counts = {"configs_done": 0, "configs_skipped": 0}
    done: list[str] = []  # ids written by this attempt, "!" marking an error row

    def report(row: dict[str, Any], skipped: bool) -> None:
        # cumulative: Tune may hand callbacks only the latest of several quick reports. The ids let the
        # progress line count each config once when a retried trial skips what its last attempt wrote
        counts["configs_skipped" if skipped else "configs_done"] += 1
        if not skipped:
            done.append(row["trial_id"] + ("!" if row["status"] == "error" else ""))
        tune.report({**counts, "done_ids": ",".join(done), **headline(row)})
        if not skipped:
            _fault_point("part_written")

    _fault_point("write")
    try:
        run_and_write(configs, run["out"], run["device"], report, batch=run["batch"])
    except (OSError, pa.ArrowException) as exc:
        code = storage_errno(exc)
        if code not in NO_RETRY:
            raise  # perhaps passing (a storage outage, a lost node): Tune runs the trial again
        # a full disk or a refused write is as full or refused on a retry: say so once, and Tune stops
        tune.report({**counts, "done_ids": ",".join(done),
                     "fatal": f"cannot write results to {run['out']}: {NO_RETRY[code]} ({results.one_line(exc)})"})


def trial_dirname(first_ids: list[str], trial) -> str:
    """A Tune trial's folder under ``_tune/``: Tune's id and the first of its configs' ids."""
    return f"{trial.trial_id}_{first_ids[trial.config['group']]}"


HEADLINE = ("attractor_frac", "spectral_radius_median", "retrieval_same_frac")


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
    "part_written": the first trial of the sweep to write a part writes its node's id to DIR/held and
    stops there, so that a test that kills that node kills it mid-trial, not by lucky timing."""
    from ray import tune
    if name == "write" and (code := os.environ.get("MEMSWEEP_FAULT_WRITE_ERRNO")):
        def refuse(*args, **kwargs):
            raise OSError(int(code), os.strerror(int(code)), "injected")
        results.write_part = refuse  # this worker's writes fail as on a full disk (this process only)
        return
    if name == "start" and (folder := os.environ.get("MEMSWEEP_FAULT_CRASH_ONCE")):
        marker = os.path.join(folder, tune.get_context().get_trial_id())
        if not os.path.exists(marker):
            open(marker, "w").close()
            os._exit(17)
    if name == "part_written" and (folder := os.environ.get("MEMSWEEP_FAULT_HOLD")):
        import ray
        try:
            fd = os.open(os.path.join(folder, "held.lock"), os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:  # another trial holds already: one hold per sweep
            return
        os.close(fd)
        tmp = os.path.join(folder, ".held")
        with open(tmp, "w") as fh:
            fh.write(ray.get_runtime_context().get_node_id())
        os.replace(tmp, os.path.join(folder, "held"))
        time.sleep(300)  # until the test kills this node; then the trial goes on as if nothing happened


# --- the driver --------------------------------------------------------------------------------------

@dataclass
class Summary:
    total: int
    done: int = 0          # rows written by this run
    skipped: int = 0       # rows already there from an earlier run
    failed: int = 0        # status 'error', or no row at all
    retried: int = 0       # Tune trials run again after their worker or node died
    statuses: dict[str, int] = field(default_factory=dict)

    def line(self) -> str:
        by = ", ".join(f"{k} {v}" for k, v in sorted(self.statuses.items()))
        retried = f", {self.retried} Tune trials retried" if self.retried else ""
        return (f"{self.total} trials: {self.done} done, {self.skipped} skipped (already there), "
                f"{self.failed} failed{retried}  [{by}]")


CLUSTER_START_TIMEOUT_S = 1200.0  # a cloud GPU node's boot and setup take minutes; twenty is generous


@dataclass(frozen=True)
class Launch:
    """How a sweep runs, as opposed to what it runs (the ``Grid``): where results go, which Ray, what
    each Tune trial asks for, and when to give up. ``checked()`` validates it before anything starts."""
    out: str
    address: str | None = None          # None (and no RAY_ADDRESS): a Ray of memsweep's own on this machine
    cpus_per_trial: float = 1.0
    gpus_per_trial: float = 0.0
    device: str | None = None           # None: cuda when the trial is given a GPU, else cpu
    shared_fs: bool = False             # the user asserts that every node mounts a local --out
    max_concurrent: int | None = None
    max_failures: int = 2
    start_timeout: float | None = None  # None: CLUSTER_START_TIMEOUT_S when joining a cluster, else off; 0: off
    batch: bool = True                  # configs of one model shape in a Tune trial train as one batch

    @property
    def joins(self) -> bool:
        """Whether the sweep joins a running Ray cluster (``--address``, or RAY_ADDRESS as under ``ray job submit``)."""
        return bool(self.address or os.environ.get("RAY_ADDRESS"))

    @property
    def request(self) -> dict[str, float]:
        """What each Tune trial asks of a node, as Ray names it."""
        return {"CPU": self.cpus_per_trial, **({"GPU": self.gpus_per_trial} if self.gpus_per_trial else {})}

    def checked(self) -> "Launch":
        """This launch with its defaults filled in; raises ConfigError (one line) on a bad value."""
        if self.cpus_per_trial <= 0:
            raise ConfigError(f"--cpus-per-trial must be > 0, got {self.cpus_per_trial:g}")
        if not 0 <= self.gpus_per_trial <= 1:  # a Tune trial (and its batch of models) runs in one process on one GPU
            raise ConfigError(f"--gpus-per-trial must be between 0 and 1 (0.25 runs four trials per GPU), "
                              f"got {self.gpus_per_trial:g}")
        if self.max_concurrent is not None and self.max_concurrent < 1:
            raise ConfigError(f"--max-concurrent must be >= 1, got {self.max_concurrent}")
        if self.max_failures < 0:
            raise ConfigError(f"--max-failures must be >= 0, got {self.max_failures}")
        if self.start_timeout is not None and self.start_timeout < 0:
            raise ConfigError(f"--start-timeout must be >= 0 seconds (0: wait forever), got {self.start_timeout:g}")
        device = self.device or ("cuda" if self.gpus_per_trial > 0 else "cpu")
        if device not in ("cpu", "cuda"):
            raise ConfigError(f"--device must be cpu or cuda, got {device!r}")
        if device == "cuda" and self.gpus_per_trial == 0:
            raise ConfigError("--device cuda needs --gpus-per-trial > 0: Ray hands GPUs only to trials that ask")
        remote = results.is_remote(self.out)
        if self.joins and not remote and not self.shared_fs:
            raise ConfigError(
                f"--out {self.out} is a folder on this machine, but the sweep joins a Ray cluster, whose other "
                "nodes would write their parts to their own disks: give shared storage (--out s3://BUCKET/PATH "
                "or gs://BUCKET/PATH), or --shared-fs if every node mounts that folder")
        timeout = self.start_timeout
        if timeout is None:
            timeout = CLUSTER_START_TIMEOUT_S if self.joins else 0.0
        out = self.out if remote else os.path.abspath(self.out)  # Tune rejects relative storage paths
        return dataclasses.replace(self, out=out, device=device, start_timeout=timeout)


def prepare_out(out: str, grid: Grid, mode: str) -> bool:
    """Check ``out`` and decide between a fresh start and a resume. Returns True when resuming.

    mode: 'auto' (resume if the same grid is there), 'resume' (must be there), 'force' (start over),
    'repair' (sweep.json is damaged: resume with this grid, whose configs must include every finished row).
    Only refusals: nothing under ``out`` changes (``run_sweep`` discards it for 'force' once Ray is up)."""
    local = not results.is_remote(out)
    if local and os.path.exists(out) and not os.path.isdir(out):
        raise ConfigError(f"--out {out} is a file, not a folder")
    try:
        manifest = results.read_manifest(out)
        try:
            if manifest is not None:
                Grid.from_json(manifest["grid"])
        except (KeyError, TypeError, AttributeError, ValueError) as exc:  # a hand-edited grid
            raise results.damaged_manifest(out, f"its grid: {results.one_line(exc)}") from None
    except results.DamagedManifest:
        if mode not in ("repair", "force"):
            raise
        manifest = None
    except (OSError, ValueError) as exc:  # no such bucket, no credentials
        raise ConfigError(f"--out {out}: cannot read it ({results.one_line(exc)})") from None
    if mode == "repair":
        done = results.finished_ids(out)
        if manifest is not None:
            raise ConfigError(f"--repair: {out}/sweep.json is intact; run without --repair")
        if stray := sorted(done - {c.trial_id for c in grid.configs()}):
            raise ConfigError(f"--repair: {len(stray)} finished rows in {out} are no config of this grid (e.g. "
                              f"{stray[0]}): give the grid that wrote them")
        results.check_writable(out)
        return bool(done)
    if manifest is None:
        if mode == "resume":
            raise ConfigError(f"--resume: no sweep in {out} (no sweep.json)")
        if mode != "force" and any(results.part_files(out, t) for t in results.TABLES):
            raise ConfigError(f"--out {out} holds results without sweep.json; use --force to start over there")
    elif mode != "force" and Grid.from_json(manifest["grid"]).to_json() != json.loads(json.dumps(grid.to_json())):
        raise ConfigError(f"--out {out} holds a sweep of a different grid (preset {manifest.get('preset')!r}); "
                          "use another --out, or --force to discard it and start over")
    results.check_writable(out)
    return mode != "force" and manifest is not None


def run_sweep(grid: Grid, launch: Launch, preset: str | None = None, mode: str = "auto",
              verbose: bool = False, compact: bool = True) -> Summary:
    """Validate everything, then run the grid with Ray Tune, and compact the results folder at the end
    (``study.compact``; ``compact=False`` keeps one part per trial). Raises ConfigError before any trial
    on bad input, and StartTimeout (after recording the summary) when no trial started in time."""
    configs = validate(grid)
    launch = launch.checked()
    with Lease(launch.out):  # one driver per results folder, from here to the end
        return _sweep(grid, configs, launch, preset, mode, verbose, compact)


def _sweep(grid: Grid, configs: list[TrialConfig], launch: Launch, preset: str | None, mode: str, verbose: bool,
           compact: bool) -> Summary:
    out = launch.out
    resuming = prepare_out(out, grid, mode)
    ids = [c.trial_id for c in configs]
    finished: set[str] = set()  # --force discards what is there, once Ray is up
    if mode != "force":
        _set_aside(out, compact and resuming)
        finished = results.finished_ids(out)
        if set(ids) <= finished:  # nothing to run: no need to start Ray
            manifest = _write_manifest(out, grid, preset, configs, resuming)
            print(f"[memsweep] sweep of {len(configs)} trials: all done already -> {out}", file=sys.stderr)
            return _finish(out, ids, len(ids), manifest, compact=compact)

    engine = Engine(grid, launch, verbose)
    try:
        engine.start()  # refuses a machine that cannot hold a trial: before anything changes
        if mode == "force":  # discard what is there, sweep or stray results, so nothing mixes
            results.clear(out)
        already = len(set(ids) & finished)
        manifest = _write_manifest(out, grid, preset, configs, resuming)
        print(f"[memsweep] {'resuming' if resuming else 'starting'} sweep of {len(configs)} trials "
              f"({already} already done) -> {out}", file=sys.stderr)
        try:
            engine.run(configs)
        except SweepStopped:
            try:
                _finish(out, ids, already, manifest)  # sweep.json records what there is
            except OSError:  # the storage that stopped the sweep may refuse this too: the parts are intact
                pass
            raise
    finally:
        engine.close()
    return _finish(out, ids, already, manifest, retried=engine.retried, compact=compact)


def run_refine(grid: Grid, depths: list[int], launch: Launch, memorized, threshold: float = THRESHOLD, coarse: int = 4,
               preset: str | None = None, mode: str = "auto", verbose: bool = False,
               compact: bool = True) -> tuple[dict, Summary]:
    """``refine.refine`` on Ray: the onset depth of each grid point among ``depths`` (the grid's depth
    axis replaced by them), each round a batch of Tune trials run by one ``Engine``. The results folder
    is a sweep's (its ``sweep.json`` records the grid over every candidate depth, and the search's
    settings and answers under ``refine``); a refine run again resumes from its rows. Returns the
    onsets (group -> ``refine.Onset``) and the summary of the trials the search evaluated."""
    grid = dataclasses.replace(grid, axes={**grid.axes, "depth": list(depths)},
                               fixed={k: v for k, v in grid.fixed.items() if k != "depth"})
    configs = validate(grid)  # every candidate depth checked now, before any round
    launch = launch.checked()
    with Lease(launch.out):
        return _refine(grid, configs, depths, launch, memorized, threshold, coarse, preset, mode, verbose, compact)


def _refine(grid: Grid, configs: list[TrialConfig], depths: list[int], launch: Launch, memorized, threshold: float,
            coarse: int, preset: str | None, mode: str, verbose: bool, compact: bool) -> tuple[dict, Summary]:
    from .refine import onset_records, refine, search_groups
    out = launch.out
    resuming = prepare_out(out, grid, mode)
    engine = Engine(grid, launch, verbose)
    try:
        if mode == "force":
            engine.start()  # as run_sweep: a launch Ray refuses changes nothing
            results.clear(out)
        else:
            _set_aside(out, compact and resuming)
        already = results.finished_ids(out)
        manifest = _write_manifest(out, grid, preset, configs, resuming)
        settings = {"depths": list(depths), "threshold": threshold, "coarse": coarse}
        manifest["refine"] = settings
        groups = search_groups(configs)
        print(f"[memsweep] {'resuming' if resuming else 'starting'} refine of {len(groups)} grid points over depths "
              f"{depths} (a dense grid: {len(configs)} trials) -> {out}", file=sys.stderr)
        found = refine(grid, depths, engine, memorized, threshold, coarse)
    finally:
        engine.close()
    ids = [c.replace(depth=d).trial_id for key, onset in found.items() for d in onset.evaluated for c in groups[key]]
    manifest["refine"] = {**settings, "dense_trials": len(configs), "evaluated_trials": len(ids),
                          "onsets": onset_records(found)}
    return found, _finish(out, ids, len(set(ids) & already), manifest, retried=engine.retried, compact=compact)


class Engine:
    """Ray Tune running batches of configs into one results folder: a Ray of memsweep's own or the
    cluster the launch joins, started at the first ``run`` (or ``start``) and kept for the next.
    ``run(configs)`` groups the configs into Tune trials (the grid's ``per_trial`` axis), hands Tune
    those with a config still to run, most expensive first, and returns when Tune is done.
    ``close()`` stops a Ray of memsweep's own."""

    def __init__(self, grid: Grid, launch: Launch, verbose: bool = False):
        self.grid, self.launch, self.verbose = grid, launch, verbose
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
        # Ctrl-C and SIGTERM reach the driver as exceptions (``progress.Interrupted``), not as Tune's
        # "Resume experiment with Tuner.restore" (memsweep resumes by rerunning its command)
        os.environ["TUNE_DISABLE_SIGINT_HANDLER"] = "1"
        self.ray = _start_ray(self.launch, self.verbose)
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
        launch, out = self.launch, self.out
        ids = [c.trial_id for c in configs]
        finished = results.finished_ids(out)
        run = {"out": out, "cpus": launch.cpus_per_trial, "gpus": launch.gpus_per_trial, "device": launch.device,
               "batch": launch.batch}
        costs = estimated_costs(configs)  # orders the Tune trials and weighs the ETA
        # a resume hands Tune only the groups with a config still to run: the parts say what is done,
        # so Tune's state of the last run is never read back
        groups = [g for g in tune_trials(self.grid, configs, costs) if any(c.trial_id not in finished for c in g)]
        if not groups:
            return
        group_ids = [[c.trial_id for c in g] for g in groups]
        progress = Progress(out, ids, costs, launch.request, launch.max_failures, launch.start_timeout,
                            groups=group_ids)
        results.clear_tune(out)  # Tune's record of an earlier run
        run_config = tune.RunConfig(
            name=results.TUNE, storage_path=out, verbose=1 if self.verbose else 0, callbacks=[progress],
            failure_config=tune.FailureConfig(max_failures=launch.max_failures),
            checkpoint_config=tune.CheckpointConfig(checkpoint_at_end=False))
        tuner = tune.Tuner(tune_trainable(groups, launch), param_space=param_space(groups, run), run_config=run_config,
                           tune_config=tune.TuneConfig(reuse_actors=True, max_concurrent_trials=launch.max_concurrent,
                                                       trial_dirname_creator=functools.partial(
                                                           trial_dirname, [g[0] for g in group_ids])))
        try:
            tuner.fit()
        except (SweepStopped, KeyboardInterrupt):
            raise
        except Exception as exc:  # Tune's own storage or state failed (say, S3 out of reach): one line, rows kept
            if self.verbose:
                import traceback
                traceback.print_exc()
            raise SweepStopped(f"Ray Tune stopped: {type(exc).__name__}: {results.one_line(exc)}"
                               f"{_endpoint(out)}") from None
        finally:
            self.retried += getattr(progress, "retried", 0)
            if sys.stderr.isatty():
                sys.stderr.write("\n")


def _endpoint(out: str) -> str:
    """' (S3 endpoint URL)' for an S3 results folder whose endpoint is set in the environment."""
    where = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
    return f" (S3 endpoint {where})" if out.startswith("s3://") and where else ""


def _set_aside(out: str, upgrade: bool) -> None:
    """A compaction a kill interrupted is finished; damaged parts and error rows leave ``trials/``, so
    that their grid points run again. With ``upgrade``, a folder that an older schema wrote is
    compacted into the current one first, so that readers see one schema while the sweep runs."""
    from . import compact
    if compact.roll_forward(out):
        print("[memsweep] finished a compaction that was interrupted", file=sys.stderr)
    try:
        written = (results.read_manifest(out) or {}).get("schema_version")
    except results.DamagedManifest:  # --repair: the parts are compacted into the current schema
        written = None
    if upgrade and written != results.SCHEMA_VERSION:
        if str(written).isdigit() and int(written) < 6:
            print(f"[memsweep] {out} was written by schema {written}: its trials decided attractors by the Jacobian "
                  "at x_i, the ones run now decide them by their dynamics; the report says how many of each "
                  "(--force starts the folder over)", file=sys.stderr)
        _compact(out)
    damaged, errored = results.set_aside(out)
    for name in damaged:
        print(f"[memsweep] damaged part {name} moved to _damaged/{os.path.dirname(name)}/; its trial runs again",
              file=sys.stderr)
    if errored:
        print(f"[memsweep] {len(errored)} trials ended in error last time; they run again (their rows: "
              "_errors/trials/)", file=sys.stderr)


def _write_manifest(out: str, grid: Grid, preset: str | None, configs: list[TrialConfig],
                    resuming: bool) -> dict[str, Any]:
    manifest = results.sweep_manifest(grid.to_json(), preset, len(configs), sys.argv)
    try:
        old = results.read_manifest(out) if resuming else None
    except results.DamagedManifest:  # --repair: the record starts again from here, the rows kept
        old, manifest["repaired"] = None, manifest["started"]
    if old is not None:  # keep the first start; note each resume
        manifest["started"], manifest["resumed"] = old.get("started"), [*old.get("resumed", []), manifest["started"]]
    results.write_manifest(out, manifest)
    return manifest


def _compact(out: str) -> None:
    from . import compact
    print(f"[memsweep] compacting {out} ({compact.size_line(out)}) ...", file=sys.stderr)
    try:
        done = compact.compact(out)
    except (ConfigError, OSError, pa.ArrowException) as exc:  # the parts stay as they are: nothing lost
        print(f"[memsweep] not compacted: {results.one_line(exc)} (the parts are intact; `memsweep compact "
              f"{out}` retries)", file=sys.stderr)
        return
    print(f"[memsweep] compacted: {done.line()}", file=sys.stderr)


def _finish(out: str, ids: list[str], already: int, manifest: dict[str, Any], retried: int = 0,
            compact: bool = False) -> Summary:
    if compact:
        _compact(out)
    summary = summarize(out, ids, already)
    summary.retried = retried
    manifest["finished"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    manifest["summary"] = summary.__dict__
    results.write_manifest(out, manifest)
    return summary


QUIET_LOGGERS = (
    "ray._private.authentication.authentication_token_setup",  # "token auth is enabled", at every local start
    "ray.tune.execution.tune_controller",  # a lost worker's traceback: the progress line says it in one line
    "ray.tune.analysis.experiment_analysis",  # "failed to fetch metrics" of trials killed with a driver
)


def _start_ray(launch: Launch, verbose: bool):
    """Join the cluster the launch names, or start a Ray of memsweep's own, never joining another Ray
    on this machine by accident. Returns the ``ray`` module. An own Ray that cannot hold one trial
    (a GPU asked of a machine without one) is refused with a ConfigError before any trial starts."""
    if launch.joins:
        where = launch.address or os.environ["RAY_ADDRESS"]
        print(f"[memsweep] joining the Ray cluster at {where}", file=sys.stderr)
        import ray
        try:  # joining a cluster: its resources are its own (ray.init(num_cpus=...) fails there)
            ray.init(address=launch.address, log_to_driver=verbose, configure_logging=verbose)
        except (ConnectionError, RuntimeError, ValueError) as exc:  # no cluster there, wrong token, ...
            raise ConfigError(f"cannot join the Ray cluster at {where}: {results.one_line(exc)}") from None
        nodes = [n for n in ray.nodes() if n.get("Alive")]
        print(f"[memsweep] joined: {len(nodes)} node(s) now; each Tune trial asks for "
              f"{resources_text(launch.request)}", file=sys.stderr)
        return ray
    print(f"[memsweep] starting a Ray of its own on this machine ({os.cpu_count()} CPUs)", file=sys.stderr)
    # Ray 2.60 swaps 127.0.0.1 for the machine's network address unless this is off; a Ray of our own is
    # one node, so it stays on loopback (read when Ray is first imported)
    os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    import ray
    # address="local": a fresh Ray even when another one runs here (a plain ray.init() would join it)
    ray.init(address="local", num_cpus=os.cpu_count(), log_to_driver=verbose, configure_logging=verbose,
             include_dashboard=False)
    total = {k: float(v) for k, v in ray.cluster_resources().items()}
    if not fits(launch.request, total):
        ray.shutdown()
        have = resources_text({k: total.get(k, 0.0) for k in launch.request})
        raise ConfigError(f"each trial asks for {resources_text(launch.request)}, but this machine offers Ray "
                          f"{have}; lower --cpus-per-trial / --gpus-per-trial, or run on a cluster "
                          "(--address; cluster-local.yaml tries the cluster path on this machine)")
    return ray


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
