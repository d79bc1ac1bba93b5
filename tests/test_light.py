"""Analysis without the training stack: with torch, Ray and scipy hidden from the import system,
``import analysis``, ``analysis.load``, ``memsweep report``, ``memsweep compact`` and ``memsweep --help``
still work."""
import shutil
import subprocess
import sys
import textwrap

HIDE = textwrap.dedent("""
    import importlib.abc, sys
    class Hide(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path, target=None):
            if name.split(".")[0] in ("torch", "ray", "scipy"):
                raise ModuleNotFoundError(f"No module named {name!r}", name=name)  # as when not installed
    sys.meta_path.insert(0, Hide())
""")


def run(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", HIDE + textwrap.dedent(code)], capture_output=True, text=True,
                          timeout=300)


def test_analysis_and_report_run_without_torch_and_ray(smoke_results, tmp_path):
    folder = tmp_path / "res"
    shutil.copytree(smoke_results, folder)
    out = run(f"""
        import time
        t0 = time.perf_counter()
        import analysis
        print(f"import analysis {{time.perf_counter() - t0:.2f}} s")
        res = analysis.load({str(smoke_results)!r})
        assert len(res.trials) == 6
        from study.cli import main
        assert main(["report", {str(smoke_results)!r}, "--out", {str(tmp_path / "rep")!r}]) == 0
        assert main(["compact", {str(folder)!r}]) == 0 and len(analysis.load({str(folder)!r}).trials) == 6
        assert not [m for m in sys.modules if m.split(".")[0] in ("torch", "ray", "scipy")]
    """)
    assert out.returncode == 0, out.stderr[-3000:]
    page = (tmp_path / "rep" / "report.html").read_text()
    assert "phase_map" in str(list((tmp_path / "rep").iterdir()))
    # the one figure that re-runs a trial says what it needs
    assert "not drawn: ImportError: the trajectories figure re-runs the trial" in page
    print(out.stdout.strip())


def test_help_imports_no_torch():
    out = run("""
        import sys
        from study.cli import main
        try:
            main(["--help"])
        except SystemExit as exc:
            assert exc.code == 0
        assert "torch" not in sys.modules and "ray" not in sys.modules
    """)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "memsweep" in out.stdout


def test_training_commands_of_the_light_install_say_to_install_the_study_extra(tmp_path):
    out = run(f"""
        from study.cli import main
        for argv in (["run", "--preset", "smoke", "--out", {str(tmp_path / "r")!r}], ["plan", "--preset", "smoke"],
                     ["trial", "--max-steps", "1"], ["refine", "--preset", "smoke", "--depths", "1:3",
                                                     "--out", {str(tmp_path / "f")!r}]):
            assert main(argv) == 2, argv
    """)
    assert out.returncode == 0, out.stderr[-3000:]
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 4 and "Traceback" not in out.stderr
    assert all("is not installed: pip install 'memsweep[study]'" in line for line in lines), lines
    assert [line.split()[3] for line in lines] == ["run", "plan", "trial", "refine"]
