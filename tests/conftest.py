import pytest

from study import results
from study.sweep import PRESETS, run_pack


@pytest.fixture(scope="session")
def smoke_results(tmp_path_factory):
    """The smoke preset's results, written by the same code a Ray trial runs (no Ray: seconds)."""
    out = tmp_path_factory.mktemp("smoke-results")
    grid = PRESETS["smoke"]
    run_pack(grid.configs(), str(out))
    results.write_manifest(str(out), results.sweep_manifest(grid.to_json(), "smoke", len(grid.configs()), ["test"]))
    return out


def pytest_addoption(parser):
    parser.addoption("--stress", action="store_true", help="fault suite: kill the sweep's driver 20 times, not 5")


@pytest.fixture
def stress(request) -> int:
    return 20 if request.config.getoption("--stress") else 5
