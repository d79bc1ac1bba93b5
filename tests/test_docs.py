"""The docs match the code: every result column is documented, CI runs the README's test command,
every memsweep run / refine / plan command in README.md, docs/*.md and REPRODUCTION.md names real
presets, fields and values and a valid launch (the cluster commands: shared storage), every memsweep
trial command there and in the CLI's examples makes a valid config, every Python
snippet runs, every relative link leads to a file, the README stays short, and the output the README
shows of `make run` is what the code prints for that run's trials (kept in docs/results/local.parquet)."""
import pathlib
import re

import pandas as pd
import pytest

from study.store.schema import TABLES, TRIAL_METRICS

ROOT = pathlib.Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
DOCS = {f"docs/{p.name}": p.read_text() for p in sorted((ROOT / "docs").glob("*.md"))}
PAGES = {"README.md": README, **DOCS}  # what a reader of the README is sent to


def test_every_result_column_is_documented_in_its_tables_section():
    """Each metric column of trials/ is a row of the trials table in docs/results.md's "Results on disk",
    and each column of the other tables is named in that table's own paragraph there."""
    doc = DOCS["docs/results.md"]
    section = doc[doc.index("## Results on disk"):doc.index("## Guarantees")]
    trials = section[section.index("**trials**"):section.index("**examples**")]
    rows = {name for cell in re.findall(r"^\| ([a-z_0-9, ]+) \|", trials, flags=re.M) for name in cell.split(", ")}
    assert sorted(set(TRIAL_METRICS) - rows) == []
    for table in ("examples", "retrieval", "curves"):
        start = section.index(f"**{table}** —")
        words = set(re.findall(r"[a-z_]+", section[start:section.index("\n\n", start)]))
        assert sorted(set(TABLES[table].names) - words) == [], table


def test_ci_runs_the_readme_test_command():
    assert "make test" in README and "make run" in README
    assert (ROOT / ".ci" / "run").read_text().strip().splitlines()[-1] == "make test"


def documented_commands() -> list[str]:
    """Every `memsweep run` / `refine` / `plan` command in the README, docs/*.md and REPRODUCTION.md:
    inline code (which may wrap across lines) and lines of code blocks; shell comments and `&&` tails cut off.
    The arguments after `cluster/slurm.sbatch`, which go to `memsweep run`, count as one too."""
    found = []
    for text in [*PAGES.values(), (ROOT / "REPRODUCTION.md").read_text()]:
        spans = re.findall(r"`(memsweep (?:run|refine|plan)\b[^`]*)`", text)
        lines = re.findall(r"^\s*(memsweep (?:run|refine|plan)\b.*)$", text, flags=re.M)
        sbatch = ["memsweep run " + a for a in re.findall(r"cluster/slurm\.sbatch(?: \\\n)?\s+(--.*)$", text,
                                                                   flags=re.M)]
        for cmd in spans + lines + sbatch:
            cmd = " ".join(re.split(r"\s(?:#|&&|;)", cmd)[0].split())
            if "--" in cmd and "--help" not in cmd:  # a command, not the subcommand's name or its help in prose
                found.append(cmd)
    return sorted(set(found))


def test_documented_commands_name_real_presets_fields_and_values():
    from study.cli import launch_from_args, parser
    from study.sweep.grid import build_grid, validate
    commands = documented_commands()
    assert any("c3-linear-local" in c for c in commands) and len(commands) >= 10
    assert any(c.startswith("memsweep plan") for c in commands) and any("--device cpu" in c for c in commands)
    for cmd in commands:
        args = parser().parse_args(cmd.split()[1:])  # argparse exits on an unknown flag
        if args.grid:  # an example grid file the reader writes
            continue
        assert validate(build_grid(args.preset, None, args.set or [])), cmd
        if args.command in ("run", "plan"):  # where it runs and what each trial asks for check out too
            assert launch_from_args(args).checked(), cmd


def test_documented_trial_commands_make_valid_configs():
    """Every `memsweep trial` command of the README, docs/*.md and the CLI's own examples parses and makes a
    config its data and architecture accept (whether it converges as the docs say was measured by hand)."""
    from study.cli import EXAMPLES, config_from_args, parser
    from study.trial import data, models
    text = "\n".join([*PAGES.values(), EXAMPLES])
    found = re.findall(r"(?<!\$ )(memsweep trial\b[^`\n]*)", text)  # "$ memsweep trial ...": shown failing
    commands = {" ".join(re.split(r"\s#", c)[0].split()) for c in found}
    commands = {c for c in commands if "--" in c and "[" not in c and "--help" not in c}
    assert any("conv_down" in c for c in commands) and len(commands) >= 4, commands
    for cmd in sorted(commands):
        cfg = config_from_args(parser().parse_args(cmd.split()[1:]))
        data.check(cfg)
        models.check(cfg, data.pool_shape(cfg)[1:])


def test_every_python_snippet_in_the_readme_runs(smoke_results, smoke_out, tmp_path):
    """Each ```python block of README.md and docs/*.md, run as written in a folder where results/local
    holds a sweep's results (and a Ray run's Tune logs) and results/trial the model the docs'
    `memsweep trial ... --save-model` saves."""
    import shutil
    import subprocess
    import sys

    from study.cli import main
    text = "\n".join(PAGES.values())
    blocks = re.findall(r"```python\n(.*?)```", text, re.S)
    assert len(blocks) >= 3 and re.search(r"```python\n", README)
    shutil.copytree(smoke_results, tmp_path / "results" / "local")
    shutil.copytree(smoke_out[0] / "_tune", tmp_path / "results" / "local" / "_tune")
    line = re.search(r"`memsweep trial ([^`]*--save-model)`", text).group(1)
    assert main(["trial", *line.replace("results/trial", str(tmp_path / "results" / "trial")).split()]) == 0
    for block in blocks:
        run = subprocess.run([sys.executable, "-c", block], cwd=tmp_path, capture_output=True, text=True, timeout=300,
                             env={**__import__("os").environ, "MPLBACKEND": "Agg"})
        assert run.returncode == 0, f"{block}\n{run.stderr[-2000:]}"


# --- the README's shape and the docs' links ------------------------------------------------------------

def prose(text: str) -> list[str]:
    """The lines of a Markdown page outside code blocks and tables."""
    out, fence = [], False
    for line in text.splitlines():
        if line.startswith("```"):
            fence = not fence
        elif not fence and not line.startswith("|"):
            out.append(line)
    return out


def test_the_readme_is_short_and_its_prose_wrapped():
    assert len(README.splitlines()) <= 250
    assert [line for line in prose(README) if len(line) > 110] == []


def anchors(text: str) -> set[str]:
    """GitHub's anchors of a page's headings: lower case, punctuation dropped, spaces to hyphens."""
    return {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-")
            for h in re.findall(r"^#+ (.*)$", "\n".join(prose(text)), flags=re.M)}


def test_every_relative_link_leads_to_a_file_and_its_heading():
    """Every [text](target) and ![alt](target) of README.md and docs/*.md that is not a web address
    names a file of the repository; a #fragment of a Markdown page names one of its headings."""
    checked = 0
    for name, text in PAGES.items():
        for target in re.findall(r"!?\[[^\]]*\]\(([^)\s]+)\)", "\n".join(prose(text))):
            if re.match(r"[a-z]+:", target):
                continue
            path, _, fragment = target.partition("#")
            file = (ROOT / name).parent / path if path else ROOT / name
            assert file.resolve().is_relative_to(ROOT) and file.exists(), f"{name}: {target}"
            if fragment and file.suffix == ".md":
                assert fragment in anchors(file.read_text()), f"{name}: {target}"
            checked += 1
    assert checked >= 10 and all(f"({doc})" in README for doc in DOCS)  # the README leads to every doc


# --- the README's first screen: what `make run` printed, recomputed from its trials table ------------------

LOCAL = ROOT / "docs" / "results" / "local.parquet"
FIRST_SCREEN = re.search(r"<!-- first-screen: local -->\n```\n(.*?)```", README, re.S)
ONSETS = re.search(r"<!-- onsets: local -->\n((?:\|.*\|\n)+)", README)
PROGRESS = re.compile(r"\[memsweep\] (\d+)/(\d+) trials done, (\d+) running, (\d+) failed, "
                      r"(?:\d+h\d\dm|\d+m\d\ds|\d+s) elapsed, ETA (?:\d+h\d\dm|\d+m\d\ds|\d+s)")
CUT = " …"  # a long line shown up to here


@pytest.fixture(scope="module")
def local_run(tmp_path_factory):
    """A folder whose results/local holds the README's run of the local preset as that run left it
    compacted: its trials table (docs/results/local.parquet, `python -m analysis.snapshot`) as one file."""
    import shutil
    cwd = tmp_path_factory.mktemp("first-screen")
    (cwd / "results" / "local" / "trials").mkdir(parents=True)
    shutil.copy(LOCAL, cwd / "results" / "local" / "trials" / "compacted-readme-0.parquet")
    return cwd


def test_the_kept_trials_table_is_a_run_of_the_current_local_preset():
    from study.sweep.presets import PRESETS
    trials = pd.read_parquet(LOCAL)
    assert sorted(trials.trial_id) == sorted(c.trial_id for c in PRESETS["local"].configs()), \
        "the local preset changed: run `make run`, then `python -m analysis.snapshot results/local " \
        "docs/results/local.parquet`, and paste its output into the README"


def test_the_readme_first_screen_is_what_make_run_prints_for_that_run(local_run, monkeypatch, capsys):
    """Every line of the README's output of `make run` but the timings is recomputed by the code that
    printed it: the sweep's summary (`summarize`, `Summary.line`) over the kept trials table and every
    line `memsweep report` prints for it (claims, boundary trends, warnings, the page). Lines cut with
    " …" must start the recomputed line; the progress line's numbers must match, its timings only parse."""
    from study.cli import main
    from study.sweep.presets import PRESETS
    from study.sweep.driver import summarize
    monkeypatch.chdir(local_run)
    ids = [c.trial_id for c in PRESETS["local"].configs()]
    summary = summarize("results/local", ids, 0)
    assert main(["report", "results/local", "--no-trajectories"]) == 0
    printed = [f"[memsweep] {summary.line()}",
               "[memsweep] results: results/local/trials (Parquet; pd.read_parquet('results/local/trials'))",
               *capsys.readouterr().out.splitlines()]

    assert FIRST_SCREEN, "README: no <!-- first-screen: local --> block"
    shown = FIRST_SCREEN.group(1).splitlines()
    progress = [m for m in map(PROGRESS.fullmatch, shown) if m]
    assert len(progress) == 1 and shown[0] == progress[0].group(0), "the block starts with one progress line"
    done, total, running, failed = map(int, progress[0].groups())
    assert (done, total, running, failed) == (summary.total, summary.total, 0, summary.failed)  # failed: of the done
    rest = shown[1:]
    assert len(rest) == len(printed), "\n".join(printed)
    for line, expected in zip(rest, printed):
        if line.endswith(CUT):
            assert expected.startswith(line[:-len(CUT)]) and len(expected) > len(line) - len(CUT), expected
        else:
            assert line == expected


def test_the_readme_onset_table_is_the_reports():
    from analysis import report
    assert ONSETS, "README: no <!-- onsets: local --> table"
    assert ONSETS.group(1).rstrip("\n") == report.onset_markdown(pd.read_parquet(LOCAL))
