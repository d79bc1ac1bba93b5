"""Fault suite: a driver killed at random moments, a worker dying mid-trial, damaged parts,
unwritable results folders. Each test runs `memsweep run` in subprocesses, each in a process
session of its own, and kills what is left of a session by process group, never by name
(``sessions`` in conftest.py).

    pytest tests/faults                 # all but the random-kill stress test
    pytest tests/faults --stress        # and the driver killed 20 times at random moments
"""
import os
import random
import signal
import time

import pandas as pd
import pyarrow.parquet as pq

from study.store.reader import finished_ids
from study.store.schema import TRIAL_SCHEMA
from study.sweep.grid import build_grid

def snapshot(folder) -> dict[str, tuple[int, int]]:
    """Each visible part's (inode, mtime): a part written again gets a new inode."""
    out = {}
    for name in os.listdir(folder) if os.path.isdir(folder) else []:
        st = os.stat(os.path.join(folder, name))
        out[name] = (st.st_ino, st.st_mtime_ns)
    return out


def kill_grid(tmp_path, n_seeds: int) -> tuple[list[str], set[str]]:
    """The smoke preset over 3 depths x n_seeds, one config per Tune trial (no packing): many small
    trials, so kills land between, during and after trials."""
    path = tmp_path / "kill.toml"
    path.write_text(f'per_trial = "none"\n[axes]\ndepth = [2, 4, 6]\nseed = {list(range(n_seeds))}\n')
    grid = build_grid("smoke", str(path))
    # parts stay parts (no compaction at the end), so that each one's fate can be followed
    return ["--preset", "smoke", "--grid", str(path), "--no-compact"], {c.trial_id for c in grid.configs()}


def test_driver_killed_at_random_moments_loses_and_repeats_nothing(tmp_path, stress, sessions):
    args, expected = kill_grid(tmp_path, 8 * stress)  # enough trials that every kill lands mid-sweep
    out = tmp_path / "killed"
    rng = random.Random(1234)
    kills, seen, parts_at_kill = 0, {}, []
    while kills < stress:
        proc = sessions.start("run", *args, "--out", str(out))
        # the moment of each kill is set by the sweep's progress, not by a clock: the first kill lands
        # during start-up (imports, Ray's start: no part can be written yet), each later one right
        # after 1-3 new parts appeared, i.e. amid trials and part writes
        target = len(seen) + (rng.randint(1, 3) if kills else 0)
        deadline = time.time() + (1.0 if not kills else 180.0)
        while len(snapshot(out / "trials")) < target and proc.poll() is None and time.time() < deadline:
            time.sleep(0.05)
        if proc.poll() is not None:  # finished before the kill: the grid is complete
            break
        sessions.kill(proc)
        kills += 1
        now = snapshot(out / "trials")
        for name, stamp in seen.items():  # a part, once written, is never written again
            assert now.get(name) == stamp, f"{name} was rewritten after kill {kills}"
        seen = now
        parts_at_kill.append(len(now))
        if now:
            assert len(pd.read_parquet(out / "trials")) == len(now)  # every visible part reads
    code, text = sessions.run("run", *args, "--out", str(out))
    assert code == 0, text
    final = snapshot(out / "trials")
    assert all(final[n] == s for n, s in seen.items())
    trials = pd.read_parquet(out / "trials")
    assert sorted(trials.trial_id) == sorted(expected)  # every grid point exactly once
    assert sorted(f[:-8] for f in os.listdir(out / "trials")) == sorted(expected)  # nothing else there
    assert kills == stress, f"the grid finished after {kills} kills"
    # the kills fell at different moments: during start-up (no part yet), then each after new parts
    assert parts_at_kill[0] == 0 and all(a < b for a, b in zip(parts_at_kill, parts_at_kill[1:]))
    print(f"\nkills survived: {kills}; parts on disk at each kill: {parts_at_kill}; "
          f"grid points at the end: {len(trials)} of {len(expected)}; rows lost: 0; duplicates: 0")


def test_worker_dying_mid_trial_is_retried_and_its_row_written_once(tmp_path, sessions):
    out, markers = tmp_path / "crash", tmp_path / "markers"
    markers.mkdir()
    code, text = sessions.run("run", "--preset", "smoke", "--out", str(out),
                              env={"MEMSWEEP_FAULT_CRASH_ONCE": str(markers)})
    assert code == 0, text
    assert len(os.listdir(markers)) == 2  # both Tune trials lost their worker once
    trials = pd.read_parquet(out / "trials")
    assert sorted(trials.trial_id) == sorted(c.trial_id for c in build_grid("smoke").configs())
    assert (trials.status == "ok").all()


def test_damaged_parts_are_rerun_on_resume(tmp_path, sessions):
    out = tmp_path / "damaged"
    code, text = sessions.run("run", "--preset", "smoke", "--out", str(out), "--no-compact")
    assert code == 0, text
    parts = sorted((out / "trials").iterdir())
    parts[0].write_bytes(parts[0].read_bytes()[:100])          # truncated
    parts[1].write_bytes(b"")                                  # zero bytes
    pd.DataFrame({"x": [1]}).to_parquet(parts[2])              # another schema
    untouched = snapshot(out / "trials")[parts[3].name]
    code, text = sessions.run("run", "--preset", "smoke", "--out", str(out), "--resume", "--no-compact")
    assert code == 0, text
    for p in parts[:3]:
        assert f"damaged part trials/{p.name} moved to _damaged/trials/" in text
        assert (out / "_damaged" / "trials" / p.name).exists()  # kept for a look, never read as data
    assert "4 trials: 3 done, 1 skipped" in text
    assert snapshot(out / "trials")[parts[3].name] == untouched
    for p in parts:
        assert pq.read_schema(p).remove_metadata().equals(TRIAL_SCHEMA)
    assert len(finished_ids(str(out))) == 4


def test_unwritable_out_stops_before_any_trial(sessions):
    code, text = sessions.run("run", "--preset", "smoke", "--out", "/proc/memsweep-results")
    assert code == 2 and "cannot write results there" in text and "Traceback" not in text


def test_ctrl_c_and_sigterm_stop_promptly_leave_no_process_and_resume(tmp_path, sessions):
    """Ctrl-C (SIGINT to the whole process group, as a terminal sends it) and SIGTERM (to the driver alone,
    as `kill` sends it) mid-sweep: the command ends within seconds with one line saying how to resume,
    exit 130 / 143, its session holds no process (no Ray left), and rerunning it finishes the grid."""
    from bed import session_pids, wait_for
    args, expected = kill_grid(tmp_path, 3)
    out = tmp_path / "stopped"
    for signum, code, group in ((signal.SIGINT, 130, True), (signal.SIGTERM, 143, False)):
        before = len(snapshot(out / "trials"))
        proc = sessions.start("run", *args, "--out", str(out))
        # mid-sweep: once this run wrote a part of its own
        assert wait_for(lambda: len(snapshot(out / "trials")) > before or proc.poll() is not None, 180)
        assert proc.poll() is None, "the sweep finished before it could be stopped"
        (os.killpg if group else os.kill)(proc.pid, signum)
        sent = time.time()
        try:
            text, _ = proc.communicate(timeout=240)  # the output closes when the last process of Ray ends
        finally:
            took = time.time() - sent
        lines = text.strip().splitlines()
        assert proc.returncode == code, text[-3000:]
        assert lines[-1] == (f"memsweep: stopped by {signal.Signals(signum).name}: every finished trial is kept; "
                             "run the same command again to resume")
        assert "Tuner.restore" not in text and "Traceback" not in text and "failed" not in lines[-1]
        assert wait_for(lambda: not session_pids(proc.pid), 30), f"left behind: {session_pids(proc.pid)}"
        print(f"\n{signal.Signals(signum).name}: exit {proc.returncode} after {took:.1f} s")
        assert not (out / "_lease.json").exists()
    code, text = sessions.run("run", *args, "--out", str(out))
    assert code == 0, text
    assert sorted(pd.read_parquet(out / "trials").trial_id) == sorted(expected)


def test_a_full_disk_stops_the_sweep_in_one_line_without_retries(tmp_path, sessions):
    """Every write of the workers fails with ENOSPC (injected: MEMSWEEP_FAULT_WRITE_ERRNO=28): the sweep
    stops at the first failed trial with one line naming the disk, runs nothing again, and never says a
    worker was lost."""
    out = tmp_path / "full"
    code, text = sessions.run("run", "--preset", "smoke", "--out", str(out), env={"MEMSWEEP_FAULT_WRITE_ERRNO": "28"})
    lines = text.strip().splitlines()
    assert code == 1, text[-3000:]
    assert lines[-1].startswith(f"memsweep: error: cannot write results to {out}: disk full") and \
        "No space left on device" in lines[-1]
    assert "runs it again" not in text and "lost its worker" not in text and "Traceback" not in text
    assert sum("stopping the sweep (a retry cannot help)" in line for line in lines) == 1
    assert not (out / "trials").exists() and not (out / "_lease.json").exists()
