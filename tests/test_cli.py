"""The command as a newcomer meets it: ``--version``; every option's ``--help`` shows its default and every
choice its allowed values with their meanings; a mistyped name (preset, field, value, grid key, subcommand,
option) is answered with the closest known one; a bad flag is one line before torch is imported; ``trial``
runs on one torch thread unless told otherwise. No test here trains a net."""
import argparse
import importlib.metadata
import os
import pathlib
import subprocess
import sys

import pytest

from study.cli import main, parser
from study.config import ConfigError, TrialConfig, unknown
from study.registry import CHOICES, DEVICES, meaning
from study.sweep.presets import ABOUT, PRESETS

ROOT = pathlib.Path(__file__).resolve().parents[1]


def python(code: str) -> subprocess.CompletedProcess:
    """``code`` in a fresh interpreter that imports this checkout's packages."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=ROOT, env=env)


def error(capsys) -> str:
    """The one line a refused command printed, without its prefix."""
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and err.startswith("memsweep: error: "), err
    return err.strip().removeprefix("memsweep: error: ")


def subcommands() -> dict[str, argparse.ArgumentParser]:
    return next(a for a in parser()._actions if a.dest == "command").choices


# --- --version --------------------------------------------------------------------------------------------

def test_version_prints_the_installed_version_without_torch_or_ray():
    out = python("import sys\nfrom study.cli import main\ntry:\n    main(['--version'])\nexcept SystemExit as exc:\n"
                 "    assert exc.code == 0, exc.code\n"
                 "assert not {'torch', 'ray'} & set(sys.modules), sorted({'torch', 'ray'} & set(sys.modules))")
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == f"memsweep {importlib.metadata.version('memsweep')}"


# --- --help: defaults and choices -----------------------------------------------------------------------------

@pytest.mark.parametrize("command", ["trial", "run", "plan", "refine", "report", "compact"])
def test_every_option_shows_its_default_and_every_choice_its_meaning(command):
    """Each option that takes a value says its default in its help (what no value means included); each option
    with choices names every choice with its one-line meaning. A flag (store_true) is off unless given."""
    sub = subcommands()[command]
    for action in sub._actions:
        if not action.option_strings or action.nargs == 0:  # positionals, --help and on/off flags
            continue
        flag = action.option_strings[0]
        assert "default" in (action.help or ""), f"memsweep {command} {flag}: no default in its help"
        for name in action.choices or ():
            known = {**CHOICES.get(flag[2:].replace("-", "_"), {}), **DEVICES}
            assert f"{name}: {meaning(known[name]) if name in known else ''}" in action.help, (command, flag, name)
    if command in ("run", "plan", "refine"):  # --preset's choices, listed below the options
        text = sub.format_help()
        assert all(f"  {name}" in text and ABOUT[name] in text for name in PRESETS)
        assert sorted(ABOUT) == sorted(PRESETS)


def test_the_help_says_the_defaults_the_issue_asked_about():
    text = {name: " ".join(sub.format_help().split()) for name, sub in subcommands().items()}
    assert "retries of a Tune trial whose process or node died (default 2)" in text["run"]
    assert "(default: no cap," in text["run"]  # --max-concurrent: what no value means
    assert "marks the onset (default 0.5)" in text["refine"]
    assert "torch threads (default 1," in text["trial"] and "0: torch's own choice" in text["trial"]
    assert "cuda when torch sees a GPU here, else cpu" in text["trial"]


# --- did you mean ------------------------------------------------------------------------------------------

def test_unknown_names_are_answered_with_the_closest_known_one():
    assert unknown("preset", "locl", PRESETS, "memsweep run --help") == \
        "unknown preset 'locl'; did you mean 'local'? (every preset: memsweep run --help)"
    assert unknown("arch", "mlp", ["fc", "conv"]) == "unknown arch 'mlp'; known: fc, conv"  # nothing close: the list
    with pytest.raises(ConfigError, match=r"^unknown activation 'seluu'; did you mean 'selu'\? \(known: identity, "):
        TrialConfig(activation="seluu")


def test_one_helper_owns_the_suggestions():
    users = [p.relative_to(ROOT).as_posix() for folder in ("study", "analysis") for p in (ROOT / folder).rglob("*.py")
             if "get_close_matches" in p.read_text()]
    assert users == ["study/config.py"]


def never_start_ray(*args, **kwargs):
    raise AssertionError("Ray was started before the input was refused")


@pytest.mark.parametrize("argv, expected", [
    (["run", "--preset", "locl"], "unknown preset 'locl'; did you mean 'local'? (every preset: memsweep run --help)"),
    (["refine", "--preset", "boundary-lfw-locl"], "unknown preset 'boundary-lfw-locl'; did you mean 'boundary-lfw-local'?"),
    (["run", "--preset", "smoke", "--set", "dept=2,4"],
     "unknown config field 'dept' in --set dept=2,4; did you mean 'depth'? (every config field: memsweep trial --help)"),
    (["run", "--preset", "smoke", "--set", "activation=seluu"], "unknown activation 'seluu'; did you mean 'selu'?"),
    (["plan", "--preset", "smoke", "--set", "arch=conv_dwn"], "unknown arch 'conv_dwn'; did you mean 'conv_down'?"),
    (["run", "--grid", "GRID:[axes]\ndept = [2, 4]"], "[axes]; did you mean 'depth'?"),
    (["run", "--grid", "GRID:[axis]\ndepth = [2, 4]"], "unknown top-level key 'axis'; did you mean 'axes'?"),
    (["run", "--preset", "smoke", "--log", "tensorbord"], "unknown tracker 'tensorbord'; did you mean 'tensorboard'?"),
    (["trial", "--activation", "seluu"], "argument --activation: unknown activation 'seluu'; did you mean 'selu'?"),
    (["trial", "--device", "cdua"], "argument --device: unknown device 'cdua'; did you mean 'cuda'?"),
    (["tral"], "unknown command 'tral'; did you mean 'trial'?"),
    (["trial", "--treads", "2"], "unknown option '--treads'; did you mean '--threads'? (every option: memsweep trial "
                                 "--help)"),
])
def test_a_mistyped_name_gets_one_line_with_the_closest_known_one(argv, expected, tmp_path, capsys, monkeypatch):
    from study.sweep import engine
    monkeypatch.setattr(engine, "start_ray", never_start_ray)
    if argv[-1].startswith("GRID:"):
        (tmp_path / "grid.toml").write_text(argv[-1].removeprefix("GRID:"))
        argv = [*argv[:-1], str(tmp_path / "grid.toml")]
    if argv[0] in ("run", "refine"):
        argv = [*argv, "--out", str(tmp_path / "o")]
    assert exit_code(argv) == 2
    line = error(capsys)
    assert expected in line
    if "every preset" in expected:  # the suggestion instead of all 28 presets
        assert line == expected


def exit_code(argv: list[str]) -> int:
    """main's exit code, whether it returns it or argparse exits with it."""
    try:
        return main(argv)
    except SystemExit as exc:
        return exc.code


# --- refused before any heavy import ------------------------------------------------------------------------

@pytest.mark.parametrize("argv, message", [
    (["trial", "--depth", "0"], "depth must be >= 1, got 0"),
    (["trial", "--activation", "identity", "--init", "zero", "--depth", "3"], "init='zero' needs depth=1"),
    (["trial", "--threads", "-1"], "--threads must be >= 0"),
    (["trial", "--save-model"], "--save-model without a path needs --out"),
])
def test_a_bad_trial_flag_is_one_line_before_torch_is_imported(argv, message):
    out = python(f"import sys\nfrom study.cli import main\ncode = main({argv!r})\n"
                 "print('torch' in sys.modules, 'ray' in sys.modules)\nsys.exit(code)")
    assert out.returncode == 2, out.stderr[-2000:]
    assert out.stdout.split() == ["False", "False"]  # neither torch nor Ray was imported
    lines = out.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("memsweep: error: ") and message in lines[0], out.stderr


# --- refine --depths ---------------------------------------------------------------------------------------

def test_refine_says_a_reversed_depth_range_is_empty(capsys):
    assert main(["refine", "--preset", "smoke", "--depths", "5:1"]) == 2
    line = error(capsys)
    assert "range is empty" in line and "1:5" in line and "positive" not in line
    assert main(["refine", "--preset", "smoke", "--depths", "0:3"]) == 2
    assert "must be positive" in error(capsys)


# --- trial's torch threads ------------------------------------------------------------------------------

class Stop(Exception):
    pass


@pytest.mark.parametrize("flags, calls", [([], [1]), (["--threads", "3"], [3]), (["--threads", "0"], [])])
def test_a_trial_runs_on_one_torch_thread_unless_told_otherwise(flags, calls, monkeypatch):
    """1 by default, as a sweep's trial; 0 leaves torch's own choice. Stopped where training would start."""
    import torch

    from study.trial import run
    seen = []
    monkeypatch.setattr(torch, "set_num_threads", seen.append)

    def stop(*args, **kwargs):
        raise Stop

    monkeypatch.setattr(run, "run_trial", stop)
    with pytest.raises(Stop):
        main(["trial", "--device", "cpu", *flags])
    assert seen == calls
    assert parser().parse_args(["trial"]).threads == 1
