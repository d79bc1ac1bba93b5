"""The docs match the code: every result column is documented, CI runs the README's test command,
and every memsweep run / refine / plan command in README.md and REPRODUCTION.md names real presets,
fields and values and a valid launch (the cluster commands: shared storage)."""
import pathlib
import re

from study.store.schema import TABLES, TRIAL_METRICS

ROOT = pathlib.Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def test_every_result_column_is_documented_in_its_tables_section():
    """Each metric column of trials/ is a row of the trials table in "Results on disk", and each column
    of the other tables is named in that table's own paragraph there."""
    section = README[README.index("## Results on disk"):README.index("## Performance")]
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
    """Every `memsweep run` / `memsweep refine` command in the README and REPRODUCTION.md: inline code
    (which may wrap across lines) and lines of code blocks; shell comments and `&&` tails cut off."""
    found = []
    for name in ("README.md", "REPRODUCTION.md"):
        text = (ROOT / name).read_text()
        spans = re.findall(r"`(memsweep (?:run|refine|plan)\b[^`]*)`", text)
        lines = re.findall(r"^\s*(memsweep (?:run|refine|plan)\b.*)$", text, flags=re.M)
        for cmd in spans + lines:
            cmd = " ".join(re.split(r"\s(?:#|&&|;)", cmd)[0].split())
            if "--" in cmd:  # a command, not the subcommand's name in prose
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


def test_every_python_snippet_in_the_readme_runs(smoke_results, tmp_path):
    """Each ```python block of README.md, run as written in a folder where results/local holds a
    sweep's results and results/trial the model the README's `memsweep trial ... --save-model` saves."""
    import shutil
    import subprocess
    import sys

    from study.cli import main
    blocks = re.findall(r"```python\n(.*?)```", README, re.S)
    assert len(blocks) >= 3
    shutil.copytree(smoke_results, tmp_path / "results" / "local")
    line = re.search(r"`memsweep trial ([^`]*--save-model)`", README).group(1)
    assert main(["trial", *line.replace("results/trial", str(tmp_path / "results" / "trial")).split()]) == 0
    for block in blocks:
        run = subprocess.run([sys.executable, "-c", block], cwd=tmp_path, capture_output=True, text=True, timeout=300,
                             env={**__import__("os").environ, "MPLBACKEND": "Agg"})
        assert run.returncode == 0, f"{block}\n{run.stderr[-2000:]}"
