"""The README documents what the code does: every result column, and the commands CI runs."""
import pathlib
import re

from study.config import field_names
from study.results import TABLES, TRIAL_METRICS

ROOT = pathlib.Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def test_every_result_column_is_documented():
    documented = set(re.findall(r"[a-z_]+", README))
    columns = ({c for schema in TABLES.values() for c in schema.names} | set(TRIAL_METRICS)) - set(field_names())
    assert sorted(columns - documented) == []


def test_ci_runs_the_readme_test_command():
    assert "make test" in README and "make run" in README
    assert (ROOT / ".ci" / "run").read_text().strip().splitlines()[-1] == "make test"
