"""The progress line on hand-made Tune trials and a hand-made cluster: what waiting trials lack,
nodes joining and dying, retried trials counted once, the start timeout. The real thing runs in
tests/test_cluster.py; here each rule is checked on its own, without Ray."""
import time
from types import SimpleNamespace

import pytest
import ray

from study.sweep import progress
from study.sweep import stops
from study.sweep.grid import Grid

GRID = Grid(axes={"depth": [2], "seed": [0, 1]}, fixed={"width": 16})
RUN = {"out": "", "cpus": 1, "gpus": 0.5, "device": "cpu"}


def tune_trial(status: str, name: str = "t0"):
    return SimpleNamespace(trial_id=name, status=status, num_failures=1, error_file=None,
                           config={"group": 0, "_run": RUN})


class Lines:
    """The lines the progress callback wrote to stderr so far (pytest captures stderr per phase)."""

    def __init__(self, capsys):
        self.capsys, self.seen = capsys, []

    def __getitem__(self, i):
        return self.all()[i]

    def __len__(self):
        return len(self.all())

    def all(self) -> list[str]:
        self.seen += self.capsys.readouterr().err.splitlines()
        return self.seen


@pytest.fixture
def lines(capsys):
    return Lines(capsys)


@pytest.fixture
def cluster(monkeypatch):
    """A cluster whose nodes and free resources the test sets."""
    state = {"nodes": [], "free": {}}
    monkeypatch.setattr(ray, "nodes", lambda: state["nodes"])
    monkeypatch.setattr(ray, "available_resources", lambda: state["free"])
    return state


def node(node_id: str, alive: bool = True, why: str = "", **resources):
    return {"NodeID": node_id, "Alive": alive, "Resources": resources, "DeathReasonMessage": why}


def make(tmp_path, **kwargs):
    ids = [c.trial_id for c in GRID.configs()]
    p = progress.Progress(ids, set(), None, {"CPU": 1.0, "GPU": 0.5}, max_failures=2, groups=[ids], **kwargs)
    p.setup()
    return p, ids


def test_waiting_trials_say_what_they_lack(tmp_path, lines, cluster):
    cluster["nodes"] = [node("h" * 56, CPU=0.0)]  # only the head: no GPU anywhere
    p, _ = make(tmp_path)
    p.on_step_end(0, [tune_trial("PENDING")])
    assert "0 running, 2 waiting for {CPU: 1, GPU: 0.5}: no node has it yet" in lines[-1]  # 2 configs
    cluster["nodes"].append(node("a" * 56, CPU=1.0, GPU=1.0))
    cluster["free"] = {"CPU": 1.0, "GPU": 1.0}
    p.poll_nodes()
    assert "node aaaaaa..aaaaa joined: {CPU: 1, GPU: 1}" in lines[-1]
    assert "2 waiting for {CPU: 1, GPU: 0.5}: being placed" in p.waiting_text([tune_trial("PENDING")])
    cluster["free"] = {"CPU": 0.0, "GPU": 0.5}  # the node is there but taken
    p.poll_nodes()
    assert "every node that has it is busy" in p.waiting_text([tune_trial("PENDING")])


def test_the_line_repeats_while_nothing_changes(tmp_path, lines, cluster, monkeypatch):
    p, _ = make(tmp_path)
    trials = [tune_trial("PENDING")]
    p.on_step_end(0, trials)
    p.on_step_end(1, trials)
    assert len(lines) == 1  # no change, within the heartbeat: silent
    p.last_line -= progress.HEARTBEAT_S
    p.on_step_end(2, trials)
    assert len(lines) == 2 and lines[0].split(", ")[:3] == lines[1].split(", ")[:3]  # the same state, again


def test_a_dead_node_is_named_with_its_reason(tmp_path, lines, cluster):
    cluster["nodes"] = [node("b" * 51 + "00001", CPU=1.0, GPU=1.0)]
    p, _ = make(tmp_path)
    cluster["nodes"] = [node("b" * 51 + "00001", alive=False, why="health check failed")]
    p.poll_nodes()
    assert "node bbbbbb..00001 died (health check failed); Tune runs the trials it held again" in lines[-1]


def test_a_retried_trial_counts_each_config_once(tmp_path, lines, cluster):
    p, ids = make(tmp_path)
    trial = tune_trial("RUNNING")
    p.count(trial, {"configs_done": 1, "done_ids": ids[0]}, [trial])
    assert p.done == 1
    p.on_trial_recover(0, [trial], trial)
    assert "lost its worker" in lines[-1] and "failure 1 of at most 2" in lines[-1] and p.retried == 1
    # the next attempt starts its counts from zero: it skips what the last one wrote, then writes the rest
    p.count(trial, {"configs_skipped": 1, "done_ids": ""}, [trial])
    p.count(trial, {"configs_skipped": 1, "configs_done": 1, "done_ids": ids[1]}, [trial])
    p.show([trial])
    assert p.done == 2 and "2/2 trials done" in lines[-1] and "1 retried" in lines[-1]
    fresh, _ = make(tmp_path)
    fresh.count(trial, {"configs_done": 2, "done_ids": f"{ids[0]}!,{ids[1]}"}, [trial])
    assert fresh.done == 2 and fresh.failed == 1  # "!" marks an error row


def test_no_trial_started_in_time_stops_the_sweep_saying_why(tmp_path, lines, cluster):
    p, _ = make(tmp_path, start_timeout=5)
    p.on_step_end(0, [tune_trial("PENDING")])  # within the timeout: nothing raised
    p.start = time.time() - 6
    with pytest.raises(stops.StartTimeout, match=r"no trial started within 5 s: 2 waiting for "
                                                r"\{CPU: 1, GPU: 0.5\}: no node has it yet"):
        p.on_step_end(1, [tune_trial("PENDING")])
    started, _ = make(tmp_path, start_timeout=5)
    started.on_step_end(0, [tune_trial("RUNNING")])
    started.start = time.time() - 6
    started.on_step_end(1, [tune_trial("RUNNING")])  # a trial started: no timeout


def test_a_failures_cause_is_read_from_its_trace_and_a_dead_worker_is_called_so(tmp_path):
    from study.sweep.stops import failure_cause
    trace = tmp_path / "error.txt"
    trace.write_text("Failure # 1\nTraceback (most recent call last):\n  File \"x.py\", line 1\n"
                     "OSError: When uploading part: AWS Error NETWORK_CONNECTION: Connection refused\n")
    assert failure_cause(str(trace)) == "OSError: When uploading part: AWS Error NETWORK_CONNECTION: Connection refused"
    trace.write_text("Failure # 1\nray.exceptions.ActorDiedError: The actor died unexpectedly before finishing this "
                     "task.\n\tclass_name: ImplicitFunc\n\tThe actor died because its node has died. Node Id: 1a\n")
    assert failure_cause(str(trace)) is None  # the progress line says "lost its worker"
    trace.write_text("Failure # 1 (occurred at 2026-12-07_10-28-22)\nThe actor cfce43 is unavailable: The actor is "
                     "temporarily unavailable: RpcError: RPC error: Socket closed rpc_code: 14.\n")  # its node was killed
    assert failure_cause(str(trace)) is None
    trace.write_text("Failure # 1\nray.exceptions.OutOfMemoryError: Task was killed due to the node running low on "
                     "memory.\nMemory on the node (IP: 127.0.0.1) was 23 GB / 24 GB\n")
    assert "killed for lack of memory by Ray's memory monitor" in failure_cause(str(trace))
    assert failure_cause(str(tmp_path / "none.txt")) is None and failure_cause(None) is None


def test_tunes_trial_traceback_is_dropped_and_its_other_errors_kept():
    import logging

    from study.sweep.engine import _no_trial_traceback

    def record(msg):
        return logging.LogRecord("ray.tune.execution.tune_controller", logging.ERROR, "x.py", 1, msg, None, None)
    assert not _no_trial_traceback(record("Trial task failed for trial _trainable_e8326_00000"))
    assert _no_trial_traceback(record("Failed to restore the experiment checkpoint"))


# --- one unit, a steady ETA, few lines in a log, one bar on a terminal ---------------------------------

SIX = Grid(axes={"depth": [2, 4], "seed": [0, 1, 2]}, fixed={"width": 16})


def six(costs=None):
    """6 configs in two Tune trials of 3 (groups 0 and 1)."""
    ids = [c.trial_id for c in SIX.configs()]
    p = progress.Progress(ids, set(), costs, {"CPU": 1.0}, groups=[ids[:3], ids[3:]])
    p.setup()
    return p, ids


def grouped(status, name, group):
    return SimpleNamespace(trial_id=name, status=status, num_failures=0, error_file=None, config={"group": group},
                           last_result={})


def test_done_running_and_waiting_count_the_same_configs_and_add_up(lines, cluster):
    cluster["nodes"] = [node("a" * 56, CPU=1.0)]
    p, ids = six()
    trials = [grouped("RUNNING", "t0", 0), grouped("PENDING", "t1", 1)]
    p.on_step_end(0, trials)
    assert lines[-1].startswith("[memsweep] 0/6 trials done, 3 running, 3 waiting for {CPU: 1}")
    p.count(trials[0], {"configs_done": 1, "done_ids": ids[0]}, trials)
    p.show(trials)
    assert lines[-1].startswith("[memsweep] 1/6 trials done, 2 running, 3 waiting for {CPU: 1}")
    p.on_step_end(1, [grouped("RUNNING", "t0", 0)])  # Tune has yet to create the second trial
    assert "2 running, 3 waiting" in p.text([grouped("RUNNING", "t0", 0)])


def test_eta_known_answers():
    assert progress.eta_seconds(busy=10.0, done_cost=20.0, todo_cost=100.0) == 40.0  # 10 s x 80 / 20
    assert progress.eta_seconds(busy=10.0, done_cost=100.0, todo_cost=100.0) == 0.0
    assert progress.eta_seconds(busy=10.0, done_cost=0.0, todo_cost=100.0) != progress.eta_seconds(0, 0, 1)  # NaN


def test_the_eta_clock_starts_with_the_first_trial_not_the_sweep(cluster):
    """On simulated sweeps (benchmarks/eta_sim.py) the first ETA is within 2.5x of the time left and no
    finished config moves it 10x; started at the sweep's start (Ray's start-up counted as work) it was
    3x the time left and more. And the callback itself starts its clock at the first running trial."""
    import sys
    sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parents[1] / "benchmarks"))
    from eta_sim import summary
    for seed in range(4):
        now, before = summary(seed, from_first_trial=True), summary(seed, from_first_trial=False)
        assert 0.5 < now["first"] < 2.5 and now["swing"] < 10, now
        assert before["first"] > 3, before
    p, ids = six()
    p.start -= 100  # Ray took 100 s to start: not the pace of the work
    trials = [grouped("RUNNING", "t0", 0), grouped("PENDING", "t1", 1)]
    p.on_trial_start(0, trials, trials[0])
    p.first_run -= 10  # the first trial has run 10 s and written one of its 3 configs
    p.count(trials[0], {"configs_done": 1, "done_ids": ids[0]}, trials)
    assert 45 <= p.eta(trials) <= 55  # 10 s x (6 - 1) / 1 configs of equal cost, not 110 s x 5


def test_a_log_gets_a_line_per_finished_tune_trial_not_per_config(lines, cluster):
    cluster["nodes"] = [node("a" * 56, CPU=2.0)]
    cluster["free"] = {"CPU": 0.0}
    p, ids = six()
    trials = [grouped("RUNNING", "t0", 0), grouped("RUNNING", "t1", 1)]
    p.on_step_end(0, trials)
    assert len(lines) == 1
    for i in ids[:2]:  # configs finish: the bar would move; a log stays quiet
        p.count(trials[0], {"configs_done": 1, "done_ids": i}, trials)
        p.on_step_end(1, trials)
    assert len(lines) == 1
    trials[0].last_result = {"configs_done": 3, "done_ids": ids[2]}
    p.count(trials[0], trials[0].last_result, trials)
    trials[0].status = "TERMINATED"
    p.on_trial_complete(2, trials, trials[0])
    assert len(lines) == 2 and lines[-1].startswith("[memsweep] 3/6 trials done, 3 running, 0 failed")


def test_a_terminal_gets_one_updating_bar_and_events_above_it(capsys, cluster):
    cluster["nodes"] = [node("a" * 56, CPU=1.0)]
    p, ids = six()
    p.tty = True
    trials = [grouped("RUNNING", "t0", 0), grouped("PENDING", "t1", 1)]
    p.on_step_end(0, trials)
    p.count(trials[0], {"configs_done": 1, "done_ids": ids[0]}, trials)
    p.say("node aaaaaa..aaaaa died")
    p.on_experiment_end(trials)
    err = capsys.readouterr().err
    assert "\r" in err and "1/6 trials done |" in err and "2 running, 3 waiting for {CPU: 1}" in err
    assert "\n[memsweep] node aaaaaa..aaaaa died\n" in err.replace("\r", "\n")
