"""The sweep's progress: a Ray Tune callback that says what the sweep is doing, also while it waits.

Everything is counted in one unit, memsweep's trials (configs), whichever Tune trial runs them:

    [memsweep] 3/20 trials done, 2 running, 15 waiting for {CPU: 1, GPU: 0.5}: no node has it yet, ...

On a terminal this is one updating bar (tqdm); in a log it is a line when the sweep starts running,
when a Tune trial finishes, when what the waiting trials lack changes, and otherwise at most every
``HEARTBEAT_S`` seconds. Events a user would otherwise not see get a line of their own: a node joining
or dying, a Tune trial losing its worker and being run again, a trial failing for good. With
``start_timeout`` it stops the sweep (``StartTimeout``) when no trial has started in that time, naming
what the trials wait for. The ETA is ``eta_seconds``'s.
"""
from __future__ import annotations

import sys
import time

from ray import tune

from .cost import hms
from .launch import fits, resources_text
from .stops import StartTimeout, StorageFailed, failure_cause

HEARTBEAT_S = 30.0   # in a log, the longest the line stays silent
NODES_EVERY_S = 2.0  # how often the cluster's nodes are looked at (a cheap call to Ray's GCS)
NODE_SETTLE_S = 5.0  # at the end of a sweep with a lost worker, how long to wait for Ray to name a dead node


def eta_seconds(busy: float, done_cost: float, todo_cost: float) -> float:
    """Time left if the rest runs at the pace so far: busy x (todo_cost - done_cost) / done_cost, where
    busy is the time since the first trial started running (not since the sweep began: Ray's start and
    the wait for a node are not the pace of the work) and the costs are the cost model's estimates
    (``cost.estimated_costs``), a running Tune trial credited for the configs it has written. Counting
    configs instead would overstate it at the start, which runs the expensive Tune trials first. NaN
    before any work is done. On a simulated sweep (``benchmarks/eta_sim.py``) timing from the sweep's
    start put the first ETA at 3.1-4.7x the time really left; timing from the first trial, 0.8-2.1x."""
    return busy * max(todo_cost - done_cost, 0.0) / done_cost if done_cost > 0 else float("nan")


class Progress(tune.Callback):
    """A Tune callback printing the progress line (see the module's docstring)."""

    def __init__(self, ids: list[str], finished: set[str], costs: list[float] | None = None,
                 request: dict[str, float] | None = None, max_failures: int = 0,
                 start_timeout: float | None = None, groups: list[list[str]] | None = None):
        # plain data. costs: estimated seconds per id; request: what each Tune trial asks of a node;
        # groups: the config ids of each Tune trial, by the place its config's "group" names
        # finished: the ids with a row when the run began (``ResultsFolder.finished``)
        self.ids, self.finished_before = ids, set(finished)
        self.costs = dict(zip(ids, costs or [1.0] * len(ids)))
        self.id_groups = groups if groups is not None else [[i] for i in ids]
        self.request = request or {"CPU": 1.0}
        self.max_failures, self.start_timeout = max_failures, start_timeout

    def setup(self, **info):  # runs at every fit, the first and each resumed one
        self.total = len(self.ids)
        self.todo = set(self.ids) - self.finished_before
        self.already = self.total - len(self.todo)
        self.todo_cost = sum(self.costs[i] for i in self.todo)
        self.done, self.failed, self.retried, self.deaths, self.start = 0, 0, 0, 0, time.time()
        self.fatal: str | None = None  # a failure no retry can fix (StorageFailed)
        self.done_ids: dict[str, set[str]] = {}  # Tune trial -> configs it wrote in this fit
        self.failed_ids: set[str] = set()  # configs whose row is an error
        self.finished: dict[str, int] = {}  # Tune trial -> configs done or skipped in this fit
        self.groups: dict[str, tuple[int, int, float]] = {}  # Tune trial -> (size, to run, their cost)
        self.started = False   # has any Tune trial started (been placed on a node)?
        self.last_line, self.last_nodes, self.shown = 0.0, 0.0, None
        self.nodes: dict[str, dict] = {}  # alive node id -> its total resources
        self.free: dict[str, float] = {}   # resources free in the whole cluster
        self.tty = sys.stderr.isatty()
        self.bar = None  # the terminal's bar (tqdm), made at the first line
        self.why = None  # what the waiting trials lacked at the last line
        self.first_run: float | None = None  # when the first Tune trial started running
        self.poll_nodes(report=False)

    # --- Tune's events --------------------------------------------------------------------
    def on_trial_start(self, iteration, trials, trial, **info):
        self.started = True
        self.first_run = self.first_run or time.time()

    def on_trial_result(self, iteration, trials, trial, result, **info):
        self.count(trial, result, trials)
        if result.get("fatal") and not self.fatal:  # a failure no retry can fix: stop at the next step
            self.fatal = result["fatal"]  # (Tune wraps what a result callback raises; a step's passes)
            self.say(f"Tune trial {trial.trial_id} {self.fatal}: stopping the sweep (a retry cannot help)")

    def on_trial_complete(self, iteration, trials, trial, **info):
        self.count(trial, trial.last_result or {}, trials)
        self.show(trials, line=True)

    def on_trial_recover(self, iteration, trials, trial, **info):
        self.retried += 1
        cause = failure_cause(trial.error_file)
        what = "lost its worker (its process or node died)" if cause is None else f"failed ({cause})"
        self.say(f"Tune trial {trial.trial_id} {what}; Tune runs it again, failure {trial.num_failures} "
                 f"of at most {self.max_failures}, skipping the configs it already wrote")

    def on_experiment_end(self, trials, **info):
        # a worker lost in the sweep's last seconds: Ray may not have declared its node dead yet
        # (it waits for missed health checks); look a little longer, so the log says why
        end = time.time() + NODE_SETTLE_S
        while self.retried > self.deaths and time.time() < end:
            time.sleep(0.5)
            self.poll_nodes()
        if self.bar is not None:
            self.bar.close()
            self.bar = None

    def on_trial_error(self, iteration, trials, trial, **info):
        self.say(f"Tune trial {trial.trial_id} failed for good after {trial.num_failures} failures: "
                 f"{trial.error_file or trial}")

    def on_step_end(self, iteration, trials, **info):
        if self.fatal:
            raise StorageFailed(self.fatal)
        now = time.time()
        if now - self.last_nodes >= NODES_EVERY_S:
            self.poll_nodes()
        was_started, self.started = self.started, self.started or any(t.status == "RUNNING" for t in trials)
        if self.started:
            self.first_run = self.first_run or now
        self.show(trials, line=self.shown is None or self.started != was_started or now - self.last_line >= HEARTBEAT_S)
        if self.start_timeout and not self.started and now - self.start > self.start_timeout:
            raise StartTimeout(f"no trial started within {self.start_timeout:g} s: "
                               f"{self.waiting_text(trials)}; see `ray status` on the head (or the "
                               "autoscaler's monitor.log), or raise --start-timeout")

    # --- what the line says ---------------------------------------------------------------
    def count(self, trial, result, trials) -> None:
        """A Tune trial's report: the configs its current attempt handled, and the ids it wrote
        ("!" marks an error row). Ids, not counts, add up across a retried trial's attempts."""
        self.finished[trial.trial_id] = result.get("configs_done", 0) + result.get("configs_skipped", 0)
        ids = [i for i in result.get("done_ids", "").split(",") if i]
        new = {i.rstrip("!") for i in ids} - self.done_ids.get(trial.trial_id, set())
        if not new:
            return
        self.done_ids.setdefault(trial.trial_id, set()).update(new)
        self.failed_ids.update(i.rstrip("!") for i in ids if i.endswith("!"))
        self.done = sum(len(v) for v in self.done_ids.values())
        self.failed = len(self.failed_ids)
        self.show(trials, line=False)  # the bar moves; a log gets its line when the Tune trial ends

    def group(self, trial) -> tuple[int, int, float]:
        """Its configs: how many, how many were still to run at setup, their estimated cost."""
        if trial.trial_id not in self.groups:
            ids = self.id_groups[trial.config["group"]]
            todo = [i for i in ids if i in self.todo]
            self.groups[trial.trial_id] = (len(ids), len(todo), sum(self.costs[i] for i in todo))
        return self.groups[trial.trial_id]

    def busy(self, trial) -> bool:
        """Running and not through its configs: its last report comes just before it ends."""
        return trial.status == "RUNNING" and self.finished.get(trial.trial_id, 0) < self.group(trial)[0]

    def running_configs(self, trial) -> int:
        """A running Tune trial's configs not yet written: those it trains now or next."""
        return max(self.group(trial)[1] - len(self.done_ids.get(trial.trial_id, ())), 0) if self.busy(trial) else 0

    def state(self, trials) -> tuple[int, int]:
        """(running, waiting) trials, counted in configs, as done is: every config still to run that
        no running Tune trial holds is waiting, so done + running + waiting = all."""
        running = sum(self.running_configs(t) for t in trials)
        return running, max(len(self.todo) - self.done - running, 0)

    def done_cost(self, trials) -> float:
        """Estimated cost of the work done in this fit: each Tune trial's share of its own cost."""
        total = 0.0
        for t in trials:
            _, n_todo, cost = self.group(t)
            if n_todo:
                total += min(1.0, len(self.done_ids.get(t.trial_id, ())) / n_todo) * cost
        return total

    def eta(self, trials) -> float:
        busy = time.time() - self.first_run if self.first_run else 0.0
        return eta_seconds(busy, self.done_cost(trials), self.todo_cost)

    def why_waiting(self) -> str:
        """No alive node large enough means the autoscaler has yet to start one (or cannot); room left
        somewhere means trials are being placed; else all is busy."""
        if not any(fits(self.request, r) for r in self.nodes.values()):
            return "no node has it yet"
        return "being placed" if fits(self.request, self.free) else "every node that has it is busy"

    def waiting_text(self, trials, waiting: int | None = None) -> str:
        """'N waiting for {...}: why', N in configs (``waiting``, when the caller has counted them)."""
        waiting = self.state(trials)[1] if waiting is None else waiting
        return f"{waiting} waiting for {resources_text(self.request)}: {self.why_waiting()}"

    def text(self, trials, state: tuple[int, int] | None = None) -> str:
        """The progress line, without its count of done trials (the bar shows that itself); ``state``:
        (running, waiting), when the caller has counted them."""
        running, waiting = state or self.state(trials)
        parts = [f"{running} running"]
        if waiting:
            parts.append(self.waiting_text(trials, waiting))
        parts.append(f"{self.failed} failed")
        if self.retried:
            parts.append(f"{self.retried} retried")
        parts += [f"{hms(time.time() - self.start)} elapsed", f"ETA {hms(self.eta(trials))}"]
        return ", ".join(parts)

    def show(self, trials=(), line: bool = True) -> None:
        """On a terminal, redraw the bar; in a log, print the line if ``line`` or if what the waiting
        trials lack has changed since the last time."""
        state = self.state(trials)
        why = self.why_waiting() if state[1] else None
        line, self.shown, self.why = line or why != self.why, state, why
        if self.tty:
            from tqdm import tqdm
            if self.bar is None:  # the line's text goes in tqdm's free-text field, desc
                self.bar = tqdm(total=self.total, initial=self.already, file=sys.stderr, dynamic_ncols=True,
                                bar_format="[memsweep] {n_fmt}/{total_fmt} trials done |{bar:20}| {desc}")
            moved = self.bar.n != self.already + self.done
            self.bar.n = self.already + self.done
            self.bar.set_description_str(self.text(trials, state), refresh=False)
            if moved or line or time.time() - self.last_line >= 0.5:  # redraw at most twice a second
                self.bar.refresh()
                self.last_line = time.time()
        elif line:
            self.write(f"{self.already + self.done}/{self.total} trials done, {self.text(trials, state)}")

    def say(self, text: str) -> None:
        """An event line: always on a line of its own (above the bar, on a terminal)."""
        if self.bar is not None:
            self.bar.write(f"[memsweep] {text}", file=sys.stderr)
        else:
            self.write(text)

    def write(self, text: str) -> None:
        sys.stderr.write(f"[memsweep] {text}\n")
        sys.stderr.flush()
        self.last_line = time.time()

    # --- the cluster's nodes --------------------------------------------------------------
    def poll_nodes(self, report: bool = True) -> None:
        """Note nodes that joined or died since the last look; print one line for each."""
        import ray
        self.last_nodes = time.time()
        try:
            seen = ray.nodes()
            self.free = {k: float(v) for k, v in ray.available_resources().items()}
        except Exception:  # no Ray, or its GCS busy or restarting: look again next time
            return
        alive = {n["NodeID"]: {k: float(v) for k, v in n.get("Resources", {}).items()}
                 for n in seen if n.get("Alive")}
        if report:
            for node_id in sorted(set(alive) - set(self.nodes)):
                self.say(f"node {short(node_id)} joined: {resources_text(offered(alive[node_id]))}")
            reasons = {n["NodeID"]: n.get("DeathReasonMessage") or "no reason given" for n in seen}
            for node_id in sorted(set(self.nodes) - set(alive)):
                self.deaths += 1
                self.say(f"node {short(node_id)} died ({reasons.get(node_id, 'gone from the cluster')}); "
                         "Tune runs the trials it held again elsewhere, up to --max-failures times each")
        self.nodes = alive


def short(node_id: str) -> str:
    """A node id as a person can compare it: first and last characters (fake nodes differ at the end)."""
    return f"{node_id[:6]}..{node_id[-5:]}" if len(node_id) > 12 else node_id


def offered(resources: dict[str, float]) -> dict[str, float]:
    """The resources a trial can ask for, without Ray's bookkeeping entries (memory, node:...)."""
    return {k: v for k, v in resources.items() if k in ("CPU", "GPU") or k.startswith("accelerator_type")}
