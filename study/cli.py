"""The ``memsweep`` command: one entry point, one subcommand per job.

    memsweep trial --depth 8 --activation selu --out results/one    # one trial, printed and saved
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import sys
import threading
import time
from collections.abc import Callable

from .config import ConfigError, TrialConfig, field_names, field_type, parse_value, unknown
from .registry import CHOICES, DEVICES, meaning
from .rules import BOUND, ERROR, NOT_CONVERGED, NOT_MONOTONE, OK, REACHED, THRESHOLD

EXAMPLES = """examples:
  memsweep run --preset local                      # the local sweep on sklearn's digits (minutes, 2 cores)
  memsweep run --preset smoke --set depth=2,8 --out results/try
  memsweep plan --preset paper-fc --address auto --gpus-per-trial 0.25 --out s3://bucket/paper-fc
  memsweep run --preset paper-fc --address auto --gpus-per-trial 0.25 --out s3://bucket/paper-fc
  memsweep trial                                   # the default trial on sklearn's digits (about 10 s)
  memsweep trial --depth 8 --activation selu --out results/one --save-model
  memsweep trial --arch conv_down --width 64 --depth 6 --lr 1e-3 --loss-tol 1e-7   # converges in about 25 s
"""


def version() -> str:
    """The installed memsweep's version, from its package metadata (no torch or Ray imported)."""
    import importlib.metadata
    try:
        return importlib.metadata.version("memsweep")
    except importlib.metadata.PackageNotFoundError:  # a source tree on sys.path that was never installed
        return "unknown (not installed: pip install -e .)"


def _one_of(what: str, names) -> Callable[[str], str]:
    """argparse's ``type`` for a choice option: the name itself, or one line naming the closest known one."""
    def check(text: str) -> str:
        if text not in names:
            raise argparse.ArgumentTypeError(unknown(what, text, names))
        return text
    return check


def _choices_help(names: dict) -> str:
    """'name: its meaning; ...' for a registry of study/registry.py (or any name -> meaning table)."""
    return "; ".join(f"{k}: {meaning(v)}" for k, v in names.items())


def _add_config_flags(p: argparse.ArgumentParser) -> None:
    defaults = TrialConfig()
    g = p.add_argument_group("trial config (any field of study.config.TrialConfig)")
    for name in field_names():
        base, optional, is_tuple = field_type(name)
        default = getattr(defaults, name)
        shown = ",".join(map(str, default)) if is_tuple else "none" if default is None else default
        if name in CHOICES:  # a name of study/registry.py: argparse lists and checks them
            g.add_argument("--" + name.replace("_", "-"), dest="cfg_" + name, choices=list(CHOICES[name]),
                           type=_one_of(name, CHOICES[name]), help=f"{_choices_help(CHOICES[name])} (default: {shown})")
            continue
        kind = f"comma-separated {base.__name__}s" if is_tuple else base.__name__ + (" or none" if optional else "")
        g.add_argument("--" + name.replace("_", "-"), dest="cfg_" + name, metavar=base.__name__.upper(),
                       help=f"{kind} (default: {shown})")


def config_from_args(args: argparse.Namespace) -> TrialConfig:
    values = {name: parse_value(name, text) for name in field_names()
              if (text := getattr(args, "cfg_" + name)) is not None}
    return TrialConfig(**values)


def cmd_trial(args: argparse.Namespace) -> int:
    # every check that needs no torch comes first: importing it takes seconds (half a minute on a busy machine)
    cfg = config_from_args(args)
    if args.threads < 0:
        raise ConfigError(f"--threads must be >= 0 (0: torch's own choice), got {args.threads}")
    if args.save_model is not None and args.save_model == "" and not args.out:
        raise ConfigError("--save-model without a path needs --out (the model goes to OUT/models/<trial_id>.pt)")
    from .store.folder import check_writable
    if args.out:
        check_writable(args.out)  # before training, not after: a file or an unwritable --out is one line

    import torch

    from .store.lease import Lease
    from .store.parts import write_trial
    from .sweep.launch import resolve_device
    from .trial import data, models
    from .trial.resources import check_memory, node_memory
    from .trial.run import run_trial
    from .trial.saved import save_model

    data.check(cfg)  # bad data settings fail here, before any compute
    models.check(cfg, data.pool_shape(cfg)[1:])
    if args.threads:  # 1 by default, as a sweep's trial: torch's own choice (every core) is slower on a shared machine
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device, cuda_here=torch.cuda.is_available())
    if device == "cuda" and not torch.cuda.is_available():
        raise ConfigError("--device cuda, but torch sees no CUDA device")
    check_memory(cfg, data.pool_shape(cfg)[1:], node_memory(device))  # before any weight exists

    with Lease(args.out) if args.out else contextlib.nullcontext():  # not beside a sweep writing there
        print(f"trial {cfg.trial_id} on {device}")
        print("config: " + json.dumps(cfg.to_row()))
        start = time.perf_counter()
        result = run_trial(cfg, device, keep_model=args.save_model is not None)
        print(summary(result.trial))
        print(f"done in {time.perf_counter() - start:.1f} s")
        if args.out:
            write_trial(args.out, result)
            print(f"rows written: {args.out}/{{trials,examples,retrieval,curves}}/{cfg.trial_id}.parquet")
        if args.save_model is not None and result.model is not None:
            path = args.save_model or os.path.join(args.out, "models", f"{cfg.trial_id}.pt")
            os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
            save_model(path, result)
            print(f"model saved: {path}  (study.load_model(path) reloads it)")
    return 0 if result.trial["status"] in (OK, NOT_CONVERGED) else 1


def launch_from_args(args: argparse.Namespace):
    """The ``sweep.launch.Launch`` that ``run`` and ``plan`` flags describe (checked later, with the grid)."""
    from .sweep import trackers
    from .sweep.launch import Launch
    out = args.out or os.path.join("results", args.preset or os.path.splitext(os.path.basename(args.grid or "grid"))[0])
    return Launch(out=out, address=args.address, cpus_per_trial=args.cpus_per_trial,
                  gpus_per_trial=args.gpus_per_trial, device=args.device, shared_fs=args.shared_fs,
                  max_concurrent=args.max_concurrent, max_failures=args.max_failures,
                  start_timeout=args.start_timeout, batch=not args.no_batch, log=trackers.parse(args.log))


def cmd_run(args: argparse.Namespace) -> int:
    from .sweep.grid import build_grid

    grid = build_grid(args.preset, args.grid, args.set or [], args.max_configs)  # a bad flag: one line, first
    launch = launch_from_args(args)
    from .sweep.driver import run_sweep
    from .sweep.stops import SweepStopped

    mode = "force" if args.force else "resume" if args.resume else "repair" if args.repair else "auto"
    try:
        summary = run_sweep(grid, launch, preset=args.preset, mode=mode, verbose=args.verbose,
                            compact=not args.no_compact)
    except SweepStopped as exc:  # no start in time, or storage refused: one line; what finished is kept
        print(f"memsweep: error: {exc}", file=sys.stderr)
        return 1
    out = launch.out
    print(f"[memsweep] {summary.line()}")
    print(f"[memsweep] results: {out}/trials (Parquet; pd.read_parquet('{out}/trials'))")
    return 1 if summary.failed else 0


def cmd_compact(args: argparse.Namespace) -> int:
    from .store import compact
    from .store.folder import open_results
    from .store.lease import Lease
    open_results(args.out)  # one line if it is not a results folder
    with Lease(args.out):  # never beside a sweep's driver or another compaction
        print(f"[memsweep] compacting {args.out}: {compact.size_line(args.out)}", file=sys.stderr)
        done = compact.compact(args.out)
    print(f"[memsweep] {done.line()}; now {compact.size_line(args.out)}")
    return 0


def cmd_plan(args: argparse.Namespace) -> int:
    from .sweep.grid import build_grid

    grid = build_grid(args.preset, args.grid, args.set or [], args.max_configs)
    from .sweep.plan import plan
    print(plan(grid, launch_from_args(args), preset=args.preset, show=args.show))
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from analysis.report import build

    from .store.uri import is_remote

    if is_remote(args.path) and not args.out:
        raise ConfigError(f"{args.path} is remote: give --out, a local folder for the report")
    # a path that is not a results folder, or a damaged part, is one line (ConfigError)
    page = build(args.path, args.out, trajectories=not args.no_trajectories, skip_damaged=args.skip_damaged)
    with open(os.path.join(os.path.dirname(page), "claims.txt")) as fh:
        print(fh.read().rstrip())
    print(f"[memsweep] report: {page}")
    return 0


def parse_depths(text: str) -> list[int]:
    """'1:16' (inclusive) or '2,4,8'."""
    try:
        if ":" in text:
            lo, hi = (int(t) for t in text.split(":"))
        else:
            return sorted({int(t) for t in text.split(",")})
    except ValueError:
        raise ConfigError(f"--depths must look like 1:16 or 2,4,8, got {text!r}") from None
    if lo > hi:
        raise ConfigError(f"--depths {text}: the range is empty, its low end is above its high end "
                          f"(did you mean {hi}:{lo}?)")
    return list(range(lo, hi + 1))


def cmd_refine(args: argparse.Namespace) -> int:
    from .sweep.grid import build_grid

    grid = build_grid(args.preset, args.grid, args.set or [], args.max_configs)
    if args.depths is None and "depth" not in grid.axes:
        raise ConfigError("give --depths (the grid has no depth axis to search over)")
    depths = parse_depths(args.depths) if args.depths else sorted(grid.axes["depth"])
    if not depths or min(depths) < 1:
        raise ConfigError(f"--depths must be positive, got {args.depths!r}")
    if args.coarse < 1:
        raise ConfigError(f"--coarse must be >= 1, got {args.coarse}")
    if not 0 < args.threshold <= 1:
        raise ConfigError(f"--threshold must be in (0, 1], got {args.threshold:g}")
    from analysis.maps import memorized

    from .sweep.driver import run_refine
    from .sweep.refine import INCOMPLETE
    from .sweep.stops import SweepStopped

    launch = launch_from_args(args)  # --out defaults to results/<preset>, as for run: run fills in the dense grid
    mode = "force" if args.force else "auto"
    try:
        found, summary = run_refine(grid, depths, launch, memorized, args.threshold, args.coarse, args.preset,
                                    mode, args.verbose, compact=not args.no_compact)
    except SweepStopped as exc:
        print(f"memsweep: error: {exc}", file=sys.stderr)
        return 1
    dense = len(depths) * len(found) * max(1, len({c.seed for c in grid.configs()}))
    statuses = [o.status for o in found.values()]
    print(f"[memsweep] {len(found)} grid points: {statuses.count(REACHED) + statuses.count(BOUND)} onsets found, "
          f"{statuses.count(NOT_MONOTONE)} not monotone in depth, {statuses.count(INCOMPLETE)} incomplete")
    shown = args.depths or (f"{depths[0]}:{depths[-1]}" if depths == list(range(depths[0], depths[-1] + 1))
                            else ",".join(map(str, depths)))
    print(f"[memsweep] trained or reused {summary.total} trials; a dense grid over depths {shown} needs "
          f"{dense} ({summary.total / dense:.0%}). {summary.line()}")
    print(f"[memsweep] results: {launch.out}/trials")
    return 1 if summary.failed else 0


def summary(row: dict) -> str:
    """A few readable lines from a trial row."""
    def f(key: str, fmt: str = ".3f") -> str:
        v = row.get(key)
        return "n/a" if v is None else format(v, fmt)

    lines = [f"status {row['status']}: loss {f('final_loss', '.2e')} after {row['steps']} steps "
             f"({f('train_seconds', '.2f')} s), {row['n_params']} parameters"]
    if row["status"] == ERROR:
        return lines[0] + "\n" + (row.get("error") or "")
    if row.get("attractor_frac") is not None:
        lines += [
            f"fixed points        {f('fixed_point_frac')}   (r_i < {row['fixed_point_tol']})",
            f"memories            {f('memory_frac')}   (iteration from x_i and beside it settles within "
            f"{row['memory_tol']}; median offset {f('memory_offset_median', '.1e')})",
            f"attractors          {f('attractor_frac')}   (a memory with rho(J) < 1 - {row['rho_margin']} there; "
            f"a kink flips {f('attractor_unsure_frac')})",
            f"spectral radius     median {f('spectral_radius_median')}, max {f('spectral_radius_max')};"
            f" top singular value median {f('top_singular_median')}",
            f"retrieval @ sigma={row['headline_sigma']}  same {f('retrieval_same_frac')}, any {f('retrieval_any_frac')};"
            f" masked same {f('masked_same_frac')}; basin radius median {f('basin_radius_median', '.2f')}",
            f"held-out -> memory  {f('heldout_to_train_frac')};  random -> memory {f('random_to_train_frac')};"
            f"  spurious {f('spurious_frac')}",
            f"spurious points     {f('spurious_points', 'd')} distinct; median RMS to the nearest image "
            f"{f('spurious_train_rms_median')}, to the mean image {f('spurious_mean_rms_median')}",
            f"iteration           cycles {f('cycle_frac')}, diverged {f('diverged_frac')}, capped "
            f"{f('capped_frac')} of the starts; "
            f"steps median {f('iter_steps_median', '.0f')}, max {f('iter_steps_max', 'd')}",
            f"span residual       {f('span_residual_mean')}   (|(I-P_X) f(h)| / |f(h)| on held-out h)",
            f"probes took {f('probe_seconds', '.2f')} s",
        ]
    return "\n".join(lines)


def _add_sweep_flags(p: argparse.ArgumentParser) -> None:
    """The flags ``run``, ``plan`` and ``refine`` share: what to sweep, where, on what."""
    from .sweep.grid import MAX_CONFIGS
    p.add_argument("--preset", metavar="NAME", help="a named grid, one of the presets listed below (default: none; "
                                                    "give --preset, --grid or both)")
    p.add_argument("--grid", metavar="FILE.toml", help="a grid file: [axes] field = [values], [fixed] field = value; "
                                                       "with --preset, it overrides the preset (default: none)")
    p.add_argument("--set", action="append", metavar="KEY=VALUE",
                   help="fix a field (depth=8) or make it an axis (depth=2,4,8); repeatable (default: none)")
    p.add_argument("--out", help="results folder or URI (default: results/<preset>); with --address it must be "
                                 "shared storage (s3://..., gs://...) unless --shared-fs")
    p.add_argument("--address", help="join a running Ray cluster ('auto', or host:port); default: start a Ray of "
                                     "memsweep's own on this machine, even if another Ray runs here")
    p.add_argument("--shared-fs", action="store_true",
                   help="with --address and a local --out: every node mounts that folder at the same path")
    p.add_argument("--cpus-per-trial", type=float, default=1.0,
                   help="CPUs (and torch threads) per trial (default 1: two 1-thread trials beat one 2-thread)")
    p.add_argument("--gpus-per-trial", type=float, default=0.0,
                   help="GPUs per trial, e.g. 0.25 runs 4 per GPU (default 0: none)")
    p.add_argument("--device", choices=list(DEVICES), type=_one_of("device", DEVICES),
                   help=f"where trials train: {_choices_help(DEVICES)} (default: cuda when --gpus-per-trial > 0, "
                        "else cpu); a trial given a GPU that finds no CUDA is an error row, never a silent CPU run, "
                        "unless --device cpu")
    p.add_argument("--max-concurrent", type=int,
                   help="cap on Tune trials running at once (default: no cap, as many as the free CPUs and GPUs "
                        "hold at --cpus-per-trial and --gpus-per-trial)")
    p.add_argument("--max-configs", type=int, default=MAX_CONFIGS,
                   help="refuse a grid listing more configs than this, before building any (default %(default)s)")
    p.add_argument("--max-failures", type=int, default=2,
                   help="retries of a Tune trial whose process or node died (default %(default)s)")
    p.add_argument("--start-timeout", type=float, metavar="SECONDS",
                   help="stop when no trial has started after this long (default: 1200 on a cluster, none on "
                        "memsweep's own Ray; 0: wait forever)")
    p.add_argument("--log", default="tensorboard,csv", metavar="TRACKERS",
                   help="Tune's loggers, comma-separated: tensorboard: event files under OUT/_tune; csv: "
                        "OUT/_tune/*/progress.csv; mlflow: a run per Tune trial at MLFLOW_TRACKING_URI, else "
                        "OUT/_mlflow; wandb: a run per Tune trial in WANDB_PROJECT; none (default: "
                        "%(default)s); the Parquet tables are written either way")
    p.add_argument("--no-batch", action="store_true",
                   help="train every config alone, not as a batch of models with the others of its shape (same "
                        "rows to float rounding; for checking that, or timing it)")


def _presets_epilog() -> str:
    """The presets, one a line with its meaning and size: the choices of ``--preset``."""
    from .sweep.grid import grid_size
    from .sweep.presets import ABOUT, PRESETS
    width = max(map(len, PRESETS))
    return "presets:\n" + "".join(f"  {name:<{width}}  {ABOUT[name]}, {grid_size(grid):,} configs\n"
                                   for name, grid in PRESETS.items())


class _Parser(argparse.ArgumentParser):
    """argparse with every error one line, ``memsweep: error: ...`` (its default prints the whole usage first),
    and a mistyped subcommand or option answered with the closest known one (``config.unknown``)."""
    commands: dict[str, argparse.ArgumentParser] = {}  # the subcommands' parsers (set on the top-level one)

    def error(self, message: str):
        hint = "" if "--help" in message else f" (see {self.prog} --help)"
        self.exit(2, f"memsweep: error: {message}{hint}\n")

    def parse_args(self, args=None, namespace=None):
        args = sys.argv[1:] if args is None else list(args)
        if self.commands and args and not args[0].startswith("-") and args[0] not in self.commands:
            self.error(unknown("command", args[0], self.commands))
        namespace, extra = self.parse_known_args(args, namespace)
        if extra:
            command = self.commands.get(getattr(namespace, "command", None), self)
            flag = next((a.split("=")[0] for a in extra if a.startswith("-")), None)
            if flag is None:
                self.error(f"unrecognized arguments: {' '.join(extra)}")
            options = dict.fromkeys(re.findall(r"(?<![\w-])(--?[a-zA-Z][\w-]*)", command.format_help()))
            self.error(unknown("option", flag, options, f"{command.prog} --help"))
        return namespace


def parser() -> argparse.ArgumentParser:
    p = _Parser(prog="memsweep", description="Memorization in overparameterized autoencoders.",
                                epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--version", action="version", version=f"%(prog)s {version()}",
                   help="print the installed memsweep's version and exit")
    sub = p.add_subparsers(dest="command", required=True)
    t = sub.add_parser("trial", help="train and probe one autoencoder", epilog=EXAMPLES,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    t.add_argument("--out", help="results folder: writes OUT/trials/<trial_id>.parquet and friends (default: none, "
                                 "the summary is only printed)")
    t.add_argument("--save-model", nargs="?", const="", default=None, metavar="PATH",
                   help="save weights + config + training examples to PATH, or without PATH to "
                        "OUT/models/<trial_id>.pt (default: not saved)")
    devices = {"auto": "cuda when torch sees a GPU here, else cpu", **DEVICES}
    t.add_argument("--device", choices=list(devices), type=_one_of("device", devices), default="auto",
                   help=f"{_choices_help(devices)} (default: auto)")
    t.add_argument("--threads", type=int, default=1,
                   help="torch threads (default 1, as each trial of a sweep; 0: torch's own choice, every core, "
                        "which can be many times slower on a busy machine)")
    _add_config_flags(t)
    t.set_defaults(func=cmd_trial)

    presets = _presets_epilog()
    r = sub.add_parser("run", help="run a sweep of trials with Ray Tune", epilog=f"{presets}\n{EXAMPLES}",
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    _add_sweep_flags(r)
    mx = r.add_mutually_exclusive_group()
    mx.add_argument("--resume", action="store_true", help="require an earlier sweep in --out and finish it")
    mx.add_argument("--force", action="store_true", help="discard what --out holds and start over")
    mx.add_argument("--repair", action="store_true",
                    help="rebuild a damaged sweep.json from this grid, keeping every finished row, and resume")
    r.add_argument("--verbose", action="store_true", help="show Ray's own output")
    r.add_argument("--no-compact", action="store_true",
                   help="keep one Parquet part per trial at the end (default: compact each table into a few files)")
    r.set_defaults(func=cmd_run)

    c = sub.add_parser("compact", help="rewrite a results folder's tables as a few Parquet files (atomic; "
                                       "a sweep does this at its end)")
    c.add_argument("out", help="results folder (local path or URI)")
    c.set_defaults(func=cmd_compact)

    pl = sub.add_parser("plan", help="what a sweep would run, where, and an estimate of its cost (no Ray)",
                        epilog=f"{presets}\nexample:\n  memsweep plan --preset paper-fc --address auto --gpus-per-trial 0.25 "
                               "--out s3://bucket/paper-fc", formatter_class=argparse.RawDescriptionHelpFormatter)
    _add_sweep_flags(pl)
    pl.add_argument("--show", type=int, default=10, help="configs listed, most expensive first (default 10)")
    pl.set_defaults(func=cmd_plan)

    ref = sub.add_parser("refine", help="find each grid point's onset depth by bisection on Ray, instead of a "
                                        "dense grid (rounds of Tune trials; run it again to resume)",
                         epilog=f"{presets}\nexample:\n  memsweep refine --preset c2-local --depths 1:16 --coarse 4",
                         formatter_class=argparse.RawDescriptionHelpFormatter)
    _add_sweep_flags(ref)
    ref.add_argument("--depths", help="candidate depths: 1:16 or 2,4,8 (default: the grid's depth axis)")
    ref.add_argument("--coarse", type=int, default=4, help="first pass over every COARSE-th depth (default 4)")
    ref.add_argument("--threshold", type=float, default=THRESHOLD,
                     help="memorization rate that marks the onset (default %(default)s)")
    ref.add_argument("--force", action="store_true", help="discard what --out holds and start over")
    ref.add_argument("--verbose", action="store_true", help="show Ray's own output")
    ref.add_argument("--no-compact", action="store_true", help="keep one Parquet part per trial at the end")
    ref.set_defaults(func=cmd_refine)

    rep = sub.add_parser("report", help="write an HTML report (figures, onset depths, claim verdicts)")
    rep.add_argument("path", help="a results folder written by memsweep run")
    rep.add_argument("--out", help="report folder (default: PATH/report)")
    rep.add_argument("--skip-damaged", action="store_true",
                     help="leave out damaged parts with a warning instead of stopping (a resumed sweep reruns them)")
    rep.add_argument("--no-trajectories", action="store_true",
                     help="skip the trajectory figure (it re-trains one trial from its row)")
    rep.set_defaults(func=cmd_report)
    p.commands = sub.choices
    return p


def main(argv: list[str] | None = None) -> int:
    import signal

    from .sweep.stops import SIGNALLED, raise_on_sigterm
    args = parser().parse_args(argv)
    before = signal.getsignal(signal.SIGTERM)
    raise_on_sigterm()
    try:
        return args.func(args)
    except KeyboardInterrupt as exc:  # Ctrl-C, or SIGTERM (progress.Interrupted): the finally blocks have run
        signum = getattr(exc, "signum", SIGNALLED[-1] if SIGNALLED else signal.SIGINT)
        command = args.func.__name__.removeprefix("cmd_")
        again = ": every finished trial is kept; run the same command again to resume" if command in (
            "run", "refine") else ""
        print(f"memsweep: stopped by {signal.Signals(signum).name}{again}", file=sys.stderr)
        return 128 + signum
    except ConfigError as exc:  # bad input: one clear line, exit 2, nothing computed
        print(f"memsweep: error: {exc}", file=sys.stderr)
        return 2
    except ModuleNotFoundError as exc:  # the light install (pip install memsweep) reads results only
        top = (exc.name or "").split(".")[0]
        if top not in TRAINING_STACK:
            raise
        print(f"memsweep: error: memsweep {args.func.__name__.removeprefix('cmd_')} trains, and {top} is not "
              "installed: pip install 'memsweep[study]' (the training stack: torch, Ray, scipy, scikit-learn)",
              file=sys.stderr)
        return 2
    finally:
        if threading.current_thread() is threading.main_thread() and before is not None:
            signal.signal(signal.SIGTERM, before)


TRAINING_STACK = ("torch", "ray", "scipy", "sklearn", "boto3")  # the study extra's packages


if __name__ == "__main__":
    sys.exit(main())
