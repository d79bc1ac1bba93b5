"""The drivers of ``memsweep run`` and ``memsweep refine``: validate every config, take the results
folder's lease, decide between a fresh start and a resume, run the configs with an ``Engine`` (Ray
Tune), compact the folder, and record the run in ``sweep.json``.

The results folder is opened once (``store.folder.ResultsFolder``): its manifest is read once, its
finished trials are known from one pass over ``trials/`` (the one that sets damaged parts and error
rows aside), and that set is passed down to the engine, the progress line and each Tune trial. Resume
is the parts': a resumed sweep hands Tune only the groups with a config still to run, so no Tune state
is read back.
"""
from __future__ import annotations

import dataclasses
import importlib.metadata
import json
import os
import platform
import sys
import time
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from .. import __version__
from ..config import ConfigError, TrialConfig
from ..rules import ERROR, THRESHOLD
from ..store import compact as compaction
from ..store.folder import DamagedManifest, ResultsFolder, check_writable, damaged_manifest
from ..store.reader import part_files, read_trials
from ..store.schema import SCHEMA_VERSION, TABLES
from ..store.lease import Lease
from ..store.uri import is_remote, one_line
from .engine import Engine
from .grid import Grid, validate
from .launch import Launch
from .stops import SweepStopped


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


def prepare_out(folder: ResultsFolder, grid: Grid, mode: str) -> bool:
    """Check the folder and decide between a fresh start and a resume. Returns True when resuming.

    mode: 'auto' (resume if the same grid is there), 'resume' (must be there), 'force' (start over),
    'repair' (sweep.json is damaged: resume with this grid, whose configs must include every finished row).
    Only refusals: nothing under ``out`` changes (``run_sweep`` discards it for 'force' once Ray is up)."""
    out = folder.root
    if not is_remote(out) and os.path.exists(out) and not os.path.isdir(out):
        raise ConfigError(f"--out {out} is a file, not a folder")
    try:
        manifest = folder.manifest
        try:
            if manifest is not None:
                Grid.from_json(manifest["grid"])
        except (KeyError, TypeError, AttributeError, ValueError) as exc:  # a hand-edited grid
            raise damaged_manifest(out, f"its grid: {one_line(exc)}") from None
    except DamagedManifest:
        if mode not in ("repair", "force"):
            raise
        manifest = folder.forget_manifest()
    except (OSError, ValueError) as exc:  # no such bucket, no credentials
        raise ConfigError(f"--out {out}: cannot read it ({one_line(exc)})") from None
    if mode == "repair":
        done = folder.finished
        if manifest is not None:
            raise ConfigError(f"--repair: {out}/sweep.json is intact; run without --repair")
        if stray := sorted(done - {c.trial_id for c in grid.configs()}):
            raise ConfigError(f"--repair: {len(stray)} finished rows in {out} are no config of this grid (e.g. "
                              f"{stray[0]}): give the grid that wrote them")
        check_writable(out)
        return bool(done)
    if manifest is None:
        if mode == "resume":
            raise ConfigError(f"--resume: no sweep in {out} (no sweep.json)")
        if mode != "force" and any(part_files(out, t) for t in TABLES):
            raise ConfigError(f"--out {out} holds results without sweep.json; use --force to start over there")
    elif mode != "force" and Grid.from_json(manifest["grid"]).to_json() != json.loads(json.dumps(grid.to_json())):
        raise ConfigError(f"--out {out} holds a sweep of a different grid (preset {manifest.get('preset')!r}); "
                          "use another --out, or --force to discard it and start over")
    check_writable(out)
    return mode != "force" and manifest is not None


def run_sweep(grid: Grid, launch: Launch, preset: str | None = None, mode: str = "auto",
              verbose: bool = False, compact: bool = True) -> Summary:
    """Validate everything, then run the grid with Ray Tune, and compact the results folder at the end
    (``store.compact``; ``compact=False`` keeps one part per trial). Raises ConfigError before any trial
    on bad input, and StartTimeout (after recording the summary) when no trial started in time."""
    configs = validate(grid)
    launch = launch.checked()
    with Lease(launch.out):  # one driver per results folder, from here to the end
        return _sweep(grid, configs, launch, preset, mode, verbose, compact)


def _sweep(grid: Grid, configs: list[TrialConfig], launch: Launch, preset: str | None, mode: str, verbose: bool,
           compact: bool) -> Summary:
    out, folder = launch.out, ResultsFolder(launch.out)
    resuming = prepare_out(folder, grid, mode)
    ids = [c.trial_id for c in configs]
    finished: set[str] = set()  # --force discards what is there, once Ray is up
    if mode != "force":
        _set_aside(folder, compact and resuming)
        finished = set(folder.finished)
        if set(ids) <= finished:  # nothing to run: no need to start Ray
            manifest = _write_manifest(folder, grid, preset, configs, resuming)
            print(f"[memsweep] sweep of {len(configs)} trials: all done already -> {out}", file=sys.stderr)
            return _record(folder, ids, len(ids), manifest, compact=compact)

    engine = Engine(grid, launch, folder, verbose, preset)
    try:
        engine.start()  # refuses a machine that cannot hold a trial: before anything changes
        if mode == "force":  # discard what is there, sweep or stray results, so nothing mixes
            folder.clear()
        already = len(set(ids) & finished)
        manifest = _write_manifest(folder, grid, preset, configs, resuming)
        print(f"[memsweep] {'resuming' if resuming else 'starting'} sweep of {len(configs)} trials "
              f"({already} already done) -> {out}", file=sys.stderr)
        try:
            engine.run(configs)
        except SweepStopped:
            try:
                _record(folder, ids, already, manifest)  # sweep.json records what there is
            except OSError:  # the storage that stopped the sweep may refuse this too: the parts are intact
                pass
            raise
    finally:
        engine.close()
    return _record(folder, ids, already, manifest, retried=engine.retried, compact=compact)


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
    out, folder = launch.out, ResultsFolder(launch.out)
    resuming = prepare_out(folder, grid, mode)
    engine = Engine(grid, launch, folder, verbose, preset)
    try:
        if mode == "force":
            engine.start()  # as run_sweep: a launch Ray refuses changes nothing
            folder.clear()
        else:
            _set_aside(folder, compact and resuming)
        already = set(folder.finished)
        manifest = _write_manifest(folder, grid, preset, configs, resuming)
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
    return found, _record(folder, ids, len(set(ids) & already), manifest, retried=engine.retried, compact=compact)


def _set_aside(folder: ResultsFolder, upgrade: bool) -> None:
    """A compaction a kill interrupted is finished; damaged parts and error rows leave ``trials/``, so
    that their grid points run again. With ``upgrade``, a folder that an older schema wrote is
    compacted into the current one first, so that readers see one schema while the sweep runs."""
    out = folder.root
    if compaction.roll_forward(out):
        print("[memsweep] finished a compaction that was interrupted", file=sys.stderr)
    written = (folder.manifest or {}).get("schema_version")  # --repair: none, compacted into the current one
    if upgrade and written != SCHEMA_VERSION:
        if str(written).isdigit() and int(written) < 6:
            print(f"[memsweep] {out} was written by schema {written}: its trials decided attractors by the Jacobian "
                  "at x_i, the ones run now decide them by their dynamics; the report says how many of each "
                  "(--force starts the folder over)", file=sys.stderr)
        _compact(out)
    damaged, errored = folder.set_aside()
    for name in damaged:
        print(f"[memsweep] damaged part {name} moved to _damaged/{os.path.dirname(name)}/; its trial runs again",
              file=sys.stderr)
    if errored:
        print(f"[memsweep] {len(errored)} trials ended in error last time; they run again (their rows: "
              "_errors/trials/)", file=sys.stderr)


def _write_manifest(folder: ResultsFolder, grid: Grid, preset: str | None, configs: list[TrialConfig],
                    resuming: bool) -> dict[str, Any]:
    manifest = sweep_manifest(grid.to_json(), preset, len(configs), sys.argv)
    old = folder.manifest if resuming else None
    if folder.manifest_damaged:  # --repair: the record starts again from here, the rows kept
        manifest["repaired"] = manifest["started"]
    if old is not None:  # keep the first start; note each resume
        manifest["started"], manifest["resumed"] = old.get("started"), [*old.get("resumed", []), manifest["started"]]
    folder.write_manifest(manifest)
    return manifest


def _compact(out: str) -> None:
    print(f"[memsweep] compacting {out} ({compaction.size_line(out)}) ...", file=sys.stderr)
    try:
        done = compaction.compact(out)
    except (ConfigError, OSError, pa.ArrowException) as exc:  # the parts stay as they are: nothing lost
        print(f"[memsweep] not compacted: {one_line(exc)} (the parts are intact; `memsweep compact "
              f"{out}` retries)", file=sys.stderr)
        return
    print(f"[memsweep] compacted: {done.line()}", file=sys.stderr)


def _record(folder: ResultsFolder, ids: list[str], already: int, manifest: dict[str, Any], retried: int = 0,
            compact: bool = False) -> Summary:
    """The run's end: compact the folder, summarize the rows of ``ids``, record both in ``sweep.json``."""
    if compact:
        _compact(folder.root)
    summary = summarize(folder.root, ids, already)
    summary.retried = retried
    manifest["finished"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    manifest["summary"] = summary.__dict__
    folder.write_manifest(manifest)
    return summary


def summarize(out: str, ids: list[str], already: int) -> Summary:
    table = read_trials(out, columns=["trial_id", "status"])
    rows = table[table.trial_id.isin(ids)] if len(table) else table
    summary = Summary(total=len(ids), skipped=already)
    summary.statuses = rows.status.value_counts().to_dict() if len(rows) else {}
    missing = len(set(ids) - set(rows.trial_id if len(rows) else []))
    summary.statuses.update({"missing": missing} if missing else {})
    summary.failed = int(summary.statuses.get(ERROR, 0)) + missing
    summary.done = len(rows) - already
    return summary


def sweep_manifest(grid: dict[str, Any], preset: str | None, n_trials: int, argv: list[str]) -> dict[str, Any]:
    """What ``sweep.json`` records: the grid, versions, when, where."""
    import torch
    try:
        ray_version = importlib.metadata.version("ray")
    except importlib.metadata.PackageNotFoundError:
        ray_version = None
    return {
        "preset": preset, "grid": grid, "n_trials": n_trials, "command": " ".join(argv),
        "schema_version": SCHEMA_VERSION,
        "versions": {"memsweep": __version__, "torch": torch.__version__, "ray": ray_version,
                     "pyarrow": pa.__version__, "python": platform.python_version()},
        "host": {"name": platform.node(), "platform": platform.platform(), "cpus": os.cpu_count(),
                 "cuda_devices": torch.cuda.device_count()},
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "finished": None,
    }
