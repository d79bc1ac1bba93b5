import os
import signal
import subprocess
import sys

import pytest

from study.store import folder
from study.store import parts
from study.store import schema
from study.sweep import driver
from study.sweep.grid import apply_sets
from study.sweep.presets import PRESETS
from study.trial.run import run_and_write


@pytest.fixture(scope="session")
def smoke_results(tmp_path_factory):
    """The smoke preset's results at three seeds, the fewest with which a cell is tested (so that its
    report has evidence to show): 6 trials, written by the same code a Ray trial runs (no Ray: seconds)."""
    out = tmp_path_factory.mktemp("smoke-results")
    grid = apply_sets(PRESETS["smoke"], ["seed=0,1,2"])
    run_and_write(grid.configs(), str(out))
    folder.write_manifest(str(out), driver.sweep_manifest(grid.to_json(), "smoke", len(grid.configs()), ["test"]))
    return out


@pytest.fixture(scope="session")
def planted_results(tmp_path_factory):
    """A results folder of 4 trials (depth 2 and 6, seeds 0 and 1) whose rows are made up, written with
    ``parts.write_trial`` as a trial writes them, without training: for the tests of storage."""
    from types import SimpleNamespace

    import pyarrow as pa

    from study.config import TrialConfig
    out = tmp_path_factory.mktemp("planted-results")
    fill = {pa.int64(): 3, pa.float64(): 0.5, pa.string(): "x"}
    for depth in (2, 6):
        for seed in (0, 1):
            cfg = TrialConfig(depth=depth, seed=seed)
            tid = cfg.trial_id
            trial = {**cfg.to_row(), **{k: fill[t] for k, (t, _) in schema.TRIAL_METRICS.items()},
                     "trial_id": tid, "status": "ok", "error": None, "attractor_frac": depth / 10 + seed / 100}
            examples = [{"trial_id": tid, "example": i, "fixed_point_residual": 1e-4 * i, "spectral_radius": 0.1 * i,
                         "top_singular_value": 0.2 * i, "basin_radius": 0.1, "attractor": i < depth,
                         "memory_found": True, "memory_offset": 1e-3, "memory_spectral_radius": 0.1 * i,
                         "memory_top_singular_value": 0.2 * i, "memory_rho_spread": None, "attractor_unsure": False} for i in range(10)]
            retrieval = [{"trial_id": tid, "start": start, "sigma": sigma, "n_starts": 8, "same_frac": 0.5,
                          "any_frac": 0.75, "spurious_frac": 0.25, "none_frac": 0.0, "cycle_frac": 0.0,
                          "capped_frac": 0.0, "spurious_point_frac": 0.25, "diverged_frac": 0.0, "moving_frac": 0.0}
                         for start, sigma in [("noisy", 0.05), ("noisy", 0.1), ("masked", 0.25), ("random", None)]]
            curve = [{"trial_id": tid, "step": k, "loss": 1.0 / (k + 1)} for k in range(100)]
            parts.write_trial(str(out), SimpleNamespace(trial=trial, examples=examples, retrieval=retrieval,
                                                          curve=curve))
    folder.write_manifest(str(out), {"preset": "planted", "grid": {"axes": {"depth": [2, 6], "seed": [0, 1]}},
                                      "schema_version": schema.SCHEMA_VERSION})
    return out


@pytest.fixture
def planted(planted_results, tmp_path):
    """A copy of ``planted_results`` in the test's own folder, for a test that changes it."""
    import shutil
    out = tmp_path / "res"
    shutil.copytree(planted_results, out)
    return out


def pytest_addoption(parser):
    parser.addoption("--stress", action="store_true",
                     help="also run the random-kill stress test: the sweep's driver killed 20 times at random moments")


@pytest.fixture
def stress(request) -> int:
    """Kills for the random-kill stress test; outside the default suite (deterministic kills at named
    moments, tests/test_durability.py and tests/test_compact.py, are in it)."""
    if not request.config.getoption("--stress"):
        pytest.skip("random-kill stress test: pytest tests/faults --stress")
    return 20


class Sessions:
    """``memsweep`` subprocesses, each in a process session of its own. Whatever a command leaves
    behind (Ray's raylet, workers and agents outlive a killed driver) is killed by process group,
    never by name."""

    def __init__(self):
        self.started: list[subprocess.Popen] = []

    def start(self, *args: str, env: dict | None = None) -> subprocess.Popen:
        proc = subprocess.Popen([sys.executable, "-m", "study", *args], stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True, start_new_session=True,
                                env={**os.environ, **(env or {})})
        self.started.append(proc)
        return proc

    def kill(self, proc: subprocess.Popen) -> None:
        """SIGKILL the command and everything in its process session."""
        for target in (lambda: os.kill(proc.pid, signal.SIGKILL), lambda: os.killpg(proc.pid, signal.SIGKILL)):
            try:
                target()
            except ProcessLookupError:
                pass
        proc.wait()

    def finish(self, proc: subprocess.Popen, timeout: float = 300) -> tuple[int, str]:
        """Wait for the command; return (exit code, its output); then clear its process session."""
        try:
            out, _ = proc.communicate(timeout=timeout)
        finally:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        return proc.returncode, out

    def run(self, *args: str, env: dict | None = None) -> tuple[int, str]:
        return self.finish(self.start(*args, env=env))


@pytest.fixture(scope="session")
def sessions():
    s = Sessions()
    yield s
    for proc in s.started:
        if proc.poll() is None:
            s.kill(proc)


@pytest.fixture(scope="session")
def smoke_out(tmp_path_factory, sessions):
    """`memsweep run --preset smoke` on Ray, as a user runs it, with every tracker that installs here:
    (results folder, its output)."""
    out = tmp_path_factory.mktemp("smoke")
    code, text = sessions.run("run", "--preset", "smoke", "--out", str(out), "--log", "tensorboard,csv,mlflow")
    assert code == 0, text
    return out, text
