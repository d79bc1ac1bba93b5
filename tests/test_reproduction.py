"""REPRODUCTION.md says what the report computes: every verdict line it quotes is recomputed from the
trials table of the run it describes (kept in docs/results/) and must match character for character."""
import os
import re

import pandas as pd
import pytest

from analysis import boundary, census, claims, report

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DOC = open(os.path.join(ROOT, "REPRODUCTION.md")).read()
# <!-- verdict: PRESET --> followed by a fenced block of claims.txt lines
BLOCKS = re.findall(r"<!-- verdict: ([\w-]+) -->\n```[a-z]*\n(.*?)```", DOC, re.S)
# <!-- boundary: PRESET --> followed by a fenced block of the report's "boundary:" lines
TRENDS = re.findall(r"<!-- boundary: ([\w-]+) -->\n```[a-z]*\n(.*?)```", DOC, re.S)


def test_every_local_claim_preset_has_its_verdict_quoted():
    assert {p for p, _ in BLOCKS} >= {"c1-local", "c2-local", "c3-local", "c3-linear-local", "c4-local", "c5-local",
                                      "c6-local"}


@pytest.mark.parametrize("preset, block", BLOCKS, ids=[p for p, _ in BLOCKS])
def test_quoted_verdicts_equal_the_reports(preset, block):
    trials = pd.read_parquet(os.path.join(ROOT, "docs", "results", f"{preset}.parquet"))
    lines = {v.claim: v.line() for v in claims.verdicts(trials)}
    quoted = [line for line in block.splitlines() if line.strip()]
    assert quoted
    for line in quoted:
        assert line == lines[line.split(" ", 1)[0]]


def test_every_boundary_preset_has_its_trends_quoted():
    assert {p for p, _ in TRENDS} >= {"boundary-digits-local", "boundary-lfw-local", "boundary-photos-local",
                                      "boundary-random-local"}


@pytest.mark.parametrize("preset, block", TRENDS, ids=[p for p, _ in TRENDS])
def test_quoted_boundary_trends_equal_the_reports(preset, block):
    trials = pd.read_parquet(os.path.join(ROOT, "docs", "results", f"{preset}.parquet"))
    quoted = [line for line in block.splitlines() if line.strip()]
    assert quoted and quoted == [f"boundary: {x}" for x in boundary.trend_lines(trials)]


# <!-- onsets: PRESET --> followed by the onset table as Markdown
ONSETS = re.findall(r"<!-- onsets: ([\w-]+) -->\n((?:\|.*\|\n)+)", DOC)


def test_every_boundary_preset_has_its_onset_table_quoted():
    assert {p for p, _ in ONSETS} >= {p for p, _ in TRENDS}


@pytest.mark.parametrize("preset, block", ONSETS, ids=[p for p, _ in ONSETS])
def test_quoted_onset_tables_equal_the_reports(preset, block):
    trials = pd.read_parquet(os.path.join(ROOT, "docs", "results", f"{preset}.parquet"))
    assert block.rstrip("\n") == report.onset_markdown(trials)


# <!-- census: PRESET --> followed by a fenced block of the report's census.txt lines; the run's examples and
# retrieval tables are kept beside its trials table (docs/results/PRESET-examples.parquet, -retrieval.parquet)
CENSUS = re.findall(r"<!-- census: ([\w-]+) -->\n```[a-z]*\n(.*?)```", DOC, re.S)


def test_the_headline_run_has_its_census_lines_and_table_quoted():
    assert {p for p, _ in CENSUS} >= {"headline-local"} and {p for p, _ in NETS} >= {"headline-local"}


@pytest.mark.parametrize("preset, block", CENSUS, ids=[p for p, _ in CENSUS])
def test_quoted_census_lines_equal_the_reports(preset, block):
    tables = {name: pd.read_parquet(os.path.join(ROOT, "docs", "results", f"{preset}{suffix}.parquet"))
              for name, suffix in (("trials", ""), ("examples", "-examples"), ("retrieval", "-retrieval"))}
    quoted = [line for line in block.splitlines() if line.strip()]
    assert quoted and quoted == census.lines(tables["trials"], tables["examples"], tables["retrieval"])


# <!-- census-nets: PRESET --> followed by the report's per-net census table as Markdown
NETS = re.findall(r"<!-- census-nets: ([\w-]+) -->\n((?:\|.*\|\n)+)", DOC)


@pytest.mark.parametrize("preset, block", NETS, ids=[p for p, _ in NETS])
def test_quoted_census_tables_equal_the_reports(preset, block):
    trials = pd.read_parquet(os.path.join(ROOT, "docs", "results", f"{preset}.parquet"))
    retrieval = pd.read_parquet(os.path.join(ROOT, "docs", "results", f"{preset}-retrieval.parquet"))
    assert block.rstrip("\n") == report.markdown(census.per_net(trials, retrieval))
