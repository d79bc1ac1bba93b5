"""Resume start-up: from ``memsweep run`` on an interrupted sweep to its first new result.

A sweep of 480 tiny configs, one Tune trial each, is started and killed (SIGKILL of its whole
process session, as a lost driver) once half of them are written. The same command is then run
again, and the bench notes when its progress line first counts a config beyond those already
done. For reference it also times a fresh start of the same grid to its first result: Ray's
start-up and the first trial, which a resume cannot avoid.

With ``--against DIR`` (another checkout of memsweep, e.g. ``git worktree add /tmp/old REV``) the
same measurements run on that code too, side by side in this run.

    python benchmarks/resume_bench.py [--against DIR] [--out benchmarks/resume_bench.md]
"""
from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

GRID = """{per_trial} = "none"
[axes]
depth = [2, 3, 4, 5]
width = [8, 16]
activation = ["leaky_relu", "selu", "tanh", "elu", "softplus"]
seed = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]
[fixed]
n_train = 2
n_heldout = 2
max_steps = 20
iter_steps = 10
confirm_steps = 2
n_random_starts = 2
starts_per_example = 1
noise_levels = [0.1]
headline_sigma = 0.1
"""
N_TRIALS = 480
DONE = re.compile(r"(\d+)/(\d+) trials done")
ALREADY = re.compile(r"\((\d+) already done\)")


def start(tree: str, grid: str, out: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": tree, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen([sys.executable, "-m", "study", "run", "--grid", grid, "--out", out, "--no-compact"],
                            cwd=tree, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)


def kill(proc: subprocess.Popen) -> None:
    for target in (lambda: os.killpg(proc.pid, signal.SIGKILL), lambda: os.kill(proc.pid, signal.SIGKILL)):
        try:
            target()
        except ProcessLookupError:
            pass
    proc.wait()


def first_result(proc: subprocess.Popen, t0: float, stop_at: int | None = None) -> tuple[float, int]:
    """Seconds from ``t0`` to the first progress line counting a config beyond those already done (or,
    with ``stop_at``, to the line reaching that count), and the count then. Kills the command."""
    already = 0
    try:
        for line in proc.stdout:
            if m := ALREADY.search(line):
                already = int(m.group(1))
            if m := DONE.search(line):
                done = int(m.group(1))
                if (stop_at is None and done > already) or (stop_at is not None and done >= stop_at):
                    return time.perf_counter() - t0, done
        raise RuntimeError(f"the command ended before its first result (exit {proc.wait()})")
    finally:
        kill(proc)


def measure(tree: str, work: str) -> dict[str, float]:
    with open(os.path.join(tree, "study", "grid.py")) as fh:
        key = "per_trial" if "per_trial" in fh.read() else "pack"  # the name older code gave the axis
    grid = os.path.join(work, "grid.toml")
    with open(grid, "w") as fh:
        fh.write(GRID.format(per_trial=key))
    fresh = os.path.join(work, "fresh")
    t0 = time.perf_counter()
    fresh_s, _ = first_result(start(tree, grid, fresh), t0)
    out = os.path.join(work, "killed")
    _, done = first_result(start(tree, grid, out), time.perf_counter(), stop_at=N_TRIALS // 2)
    time.sleep(2)
    t0 = time.perf_counter()
    resume_s, _ = first_result(start(tree, grid, out), t0)
    return {"fresh": fresh_s, "resume": resume_s, "killed_at": done}


def revision(tree: str) -> str:
    try:
        return subprocess.run(["git", "-C", tree, "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                              check=True).stdout.strip()
    except (subprocess.CalledProcessError, FileNotFoundError):
        return os.path.basename(os.path.abspath(tree))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--against", action="append", default=[], metavar="DIR", help="another checkout to measure too")
    ap.add_argument("--out", help="also write the table to this Markdown file")
    args = ap.parse_args()
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    rows = []
    for tree in [here, *args.against]:
        work = tempfile.mkdtemp(prefix="memsweep-resume-")
        try:
            m = measure(os.path.abspath(tree), work)
        finally:
            shutil.rmtree(work, ignore_errors=True)
        rows.append(f"| {revision(tree)} | {m['fresh']:.1f} | {m['killed_at']} | {m['resume']:.1f} |")
        print(rows[-1], flush=True)
    text = "\n".join([
        f"## Resume of a {N_TRIALS}-trial sweep (one Tune trial per config), killed at half", "",
        "| code | fresh start to its first result (s) | configs written before the kill | resume to its first "
        "new result (s) |", "|---|---|---|---|", *rows])
    print(text)
    if args.out:
        with open(args.out, "w") as fh:
            fh.write(f"Written by `python benchmarks/resume_bench.py{' --against OLD' if args.against else ''}` "
                     f"on a {os.cpu_count()}-CPU machine{' (OLD: a checkout of the previous revision)' if args.against else ''}."
                     f"\n\n{text}\n")


if __name__ == "__main__":
    main()
