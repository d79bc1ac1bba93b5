"""Loading results (running sweeps, damaged parts), the report, the notebook."""
import os
import shutil
import warnings

import nbformat
import pandas as pd
import pytest
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

import analysis
from analysis import claims, evidence, report
from study.cli import main

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_load_reads_every_table(smoke_results):
    res = analysis.load(str(smoke_results))
    assert len(res.trials) == 6 and set(res.trials.depth) == {2, 6}
    assert len(res.examples) == 60 and set(res.examples.trial_id) == set(res.trials.trial_id)
    assert set(res.retrieval.start) == {"noisy", "masked", "heldout", "random"}
    assert len(res.curves) > 4 and res.manifest["preset"] == "smoke"


@pytest.mark.parametrize("damage", ["truncated", "zero-byte", "foreign"])
def test_damaged_part_fails_clearly_or_is_skipped_when_asked(smoke_results, tmp_path, damage):
    out = tmp_path / damage
    shutil.copytree(smoke_results, out)
    victim = sorted((out / "trials").iterdir())[0]
    if damage == "truncated":
        victim.write_bytes(victim.read_bytes()[:200])
    elif damage == "zero-byte":
        victim.write_bytes(b"")
    else:
        pd.DataFrame({"x": [1, 2]}).to_parquet(victim)
    with pytest.raises(analysis.DamagedPartError) as err:
        analysis.load(str(out))
    assert victim.name in str(err.value) and "skip_damaged=True" in str(err.value)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = analysis.load(str(out), skip_damaged=True)
    assert len(res.trials) == 5 and res.skipped == [str(victim)]
    assert any(victim.name in str(w.message) for w in caught)


def test_report_holds_figures_table_and_verdicts(smoke_results, tmp_path):
    page = report.build(str(smoke_results), str(tmp_path / "rep"))
    text = open(page).read()
    for name in ("phase_map", "attractor_frac", "spectral_radius", "retrieval_sigma", "stored_share", "census",
                 "robustness", "loss_curves", "trajectories"):
        assert os.path.getsize(tmp_path / "rep" / f"{name}.png") > 1000
    assert text.count("data:image/png;base64,") == 9 and "not drawn" not in text
    assert "<h2>Onset depth</h2>" in text and "<table" in text
    lines = open(tmp_path / "rep" / "claims.txt").read().splitlines()
    claims = [c for c in lines if not c.startswith("warning: ")]
    assert [c.split(" ")[0] for c in claims] == ["C1", "C2", "C3", "C3-linear", "C4", "C5", "C6"]
    # the budget warnings follow the claims, and the page shows them too
    assert lines[:len(claims)] == claims and all(w.removeprefix("warning: ") in text for w in lines[len(claims):])
    assert claims[0].startswith("C1 [not covered]")  # the smoke grid has no depth-1 trials
    assert claims[3].startswith("C3-linear [not covered]")  # nor linear nets
    assert claims[5] == "C5 [not covered]: no task = sequence trials in this grid"
    assert not os.path.exists(tmp_path / "rep" / "operator_study.png")
    # three seeds per depth, paired by seed: the smallest one-sided p is 1/8, so the test cannot say yes
    assert claims[1].startswith("C2 [insufficient evidence]") and "paired by seed (3 seeds)" in claims[1]


def test_report_command(smoke_results, tmp_path, capsys):
    assert main(["report", str(smoke_results), "--out", str(tmp_path / "r"), "--no-trajectories"]) == 0
    out = capsys.readouterr().out
    assert "report:" in out and "C2 [" in out
    assert main(["report", str(tmp_path / "nothing")]) == 2


def run_notebook(results: str, monkeypatch) -> tuple[list, str | None]:
    """Run notebooks/explore.ipynb as Jupyter would, on MEMSWEEP_RESULTS=``results``; -> (its code
    cells, the error it stopped at or None)."""
    monkeypatch.setenv("MEMSWEEP_RESULTS", results)
    nb = nbformat.read(os.path.join(ROOT, "notebooks", "explore.ipynb"), as_version=4)
    try:
        NotebookClient(nb, timeout=120, kernel_name="python3",
                       resources={"metadata": {"path": os.path.join(ROOT, "notebooks")}}).execute()
    except CellExecutionError as exc:
        return [c for c in nb.cells if c.cell_type == "code"], str(exc)
    return [c for c in nb.cells if c.cell_type == "code"], None


def test_notebook_runs_on_smoke_results(smoke_results, monkeypatch):
    cells, error = run_notebook(str(smoke_results), monkeypatch)
    assert error is None, error[-3000:]
    outputs = [o for c in cells for o in c.outputs]
    assert any("image/png" in o.get("data", {}) for o in outputs)  # the figures rendered
    # the report's verdicts, its warnings, and what it says of the boundary (one width: none to show)
    printed = "".join(o.text for o in outputs if o.output_type == "stream" and o.name == "stdout").splitlines()
    trials = analysis.load(str(smoke_results)).trials
    verdicts = [v.line() for v in claims.verdicts(trials)]
    assert verdicts and all(v in printed for v in verdicts)
    assert all(f"warning: {n}" in printed for n in evidence.budget_notes(trials))
    assert "boundary: not covered (the trials hold one width and one n_train)" in printed
    own = [c for c in cells if "plots.phase_map_ax(" in c.source]  # a figure of one's own, of axes-level panels
    assert own and any("image/png" in o.get("data", {}) for o in own[0].outputs)


WITHOUT = {"missing": "no results folder at", "not results": "holds no memsweep results",
           "just started": "holds no finished trials yet"}


@pytest.mark.parametrize("where", WITHOUT)
def test_notebook_without_results_stops_at_one_line(tmp_path, monkeypatch, where):
    from study.store.folder import write_manifest
    folder = tmp_path / "sweep"
    if where == "not results":
        (folder / "notes").mkdir(parents=True)
    if where == "just started":  # a sweep's record, no trial finished yet
        write_manifest(str(folder), {"preset": "smoke", "grid": {"axes": {"depth": [2, 6]}}})
    cells, error = run_notebook(str(folder), monkeypatch)
    assert error is not None
    errors = [(i, o) for i, c in enumerate(cells) for o in c.outputs if o.output_type == "error"]
    assert len(errors) == 1
    i, out = errors[0]
    shown = "\n".join(out.traceback)  # what Jupyter prints under the cell
    assert shown.count("\n") == 0 and "\x1b" not in shown and "Traceback" not in shown and ".py" not in shown
    assert shown.startswith("ConfigError: ") and str(folder) in shown and WITHOUT[where] in shown
    # nothing else on the screen, and nothing run after it
    assert [o for c in cells for o in c.outputs if o.output_type == "stream" and o.name == "stderr"] == []
    assert all(not c.outputs for c in cells[i + 1:])


def test_parts_written_before_a_config_field_existed_still_load(smoke_results, tmp_path):
    import pyarrow.parquet as pq
    out = tmp_path / "older"
    shutil.copytree(smoke_results, out)
    part = sorted((out / "trials").iterdir())[0]
    table = pq.read_table(part)
    pq.write_table(table.drop_columns(["rho_margin"]), part)  # as if rho_margin were a newer field
    res = analysis.load(str(out))
    assert len(res.trials) == 6 and (res.trials.rho_margin == 1e-3).all()


def test_parts_from_schema_1_load_with_null_new_metrics(smoke_results, tmp_path):
    import pyarrow.parquet as pq
    from study.config import TrialConfig
    from study.store.schema import SCHEMA_1, TRIAL_SCHEMA
    added = sorted(set(TRIAL_SCHEMA.names) - set(SCHEMA_1["trials"]) - set(TrialConfig().to_row()))
    assert "memory_frac" in added and "attractor_frac" not in added  # a metric of schema 6, one of schema 1
    out = tmp_path / "schema1"
    shutil.copytree(smoke_results, out)
    for part in (out / "trials").iterdir():
        pq.write_table(pq.read_table(part).drop_columns(added), part)
    res = analysis.load(str(out))
    assert len(res.trials) == 6
    assert all(res.trials[c].isna().all() for c in added)


def test_phase_map_wraps_its_panels_and_marks_cells_that_did_not_fit():
    from analysis import plots
    rows = [{"trial_id": f"{a}-{d}-{s}", "activation": a, "arch": "fc", "depth": d, "width": 64, "seed": s,
             "status": "not_converged" if (a == "tanh" and s == 0) else "ok", "attractor_frac": 0.9,
             "retrieval_same_frac": 0.9} for a in ("relu", "selu", "elu", "tanh", "softplus") for d in (2, 4)
            for s in range(3)]
    fig = plots.phase_map(pd.DataFrame(rows))
    shown = [ax for ax in fig.axes if ax.get_visible() and ax.get_title()]
    assert len(shown) == 5 and len({round(ax.get_position().y0, 2) for ax in shown}) == 2  # 4 + 1, two rows
    texts = {ax.get_title(): [t.get_text() for t in ax.texts] for ax in shown}
    assert texts["activation=tanh"] == ["2/3 fit:\ntoo few"] * 2 and texts["activation=relu"] == ["1.00\n3/3"] * 2


def _best(folder):
    from analysis import evidence
    ev = evidence.tested_rows(analysis.load(str(folder)).trials)
    return ev.sort_values(["attractor_frac", "depth"], ascending=False).iloc[0]


def test_report_never_retrains_a_row_on_files_the_row_names(smoke_results, tmp_path, monkeypatch):
    """A results folder from someone else whose rows name a data_dir (a CIFAR-10 folder with a pickle
    payload): the report draws everything else, trains nothing, reads none of those files, and says why."""
    import pickle

    import pyarrow as pa
    import pyarrow.parquet as pq

    from study.trial import run
    from test_data import _Payload
    data_dir, marker = tmp_path / "cifar", tmp_path / "ran"
    data_dir.mkdir()
    (data_dir / "data_batch_1").write_bytes(pickle.dumps(_Payload(marker)))
    folder = tmp_path / "foreign"
    shutil.copytree(smoke_results, folder)
    for part in (folder / "trials").iterdir():
        table = pq.read_table(part)
        for name, value in (("dataset", "cifar10"), ("data_dir", str(data_dir))):
            i = table.schema.get_field_index(name)
            table = table.set_column(i, table.schema.field(i), pa.array([value] * len(table), table.schema.field(i).type))
        pq.write_table(table, part)
    monkeypatch.setattr(run, "run_trial", lambda *a, **k: (_ for _ in ()).throw(AssertionError("a trial ran")))
    assert main(["report", str(folder), "--out", str(tmp_path / "rep")]) == 0
    page = (tmp_path / "rep" / "report.html").read_text()
    assert "reads its data from data_dir" in page and "re-trained only on bundled or generated data" in page
    assert not marker.exists() and not (tmp_path / "rep" / "trajectories.png").exists()
    assert page.count("data:image/png;base64,") == 8  # every other figure


def test_report_draws_trajectories_from_a_saved_model_without_training(smoke_results, tmp_path, monkeypatch):
    from study.trial import run
    from study.config import TrialConfig
    from study.trial.saved import save_model
    folder = tmp_path / "res"
    shutil.copytree(smoke_results, folder)
    cfg = TrialConfig.from_row(dict(_best(folder)))
    (folder / "models").mkdir()
    save_model(str(folder / "models" / f"{cfg.trial_id}.pt"), run.run_trial(cfg, keep_model=True))
    monkeypatch.setattr(run, "run_trial", lambda *a, **k: (_ for _ in ()).throw(AssertionError("a trial ran")))
    page = open(report.build(str(folder), str(tmp_path / "rep"))).read()
    assert f"({cfg.trial_id}, its saved model)" in page and "not drawn" not in page
    assert os.path.getsize(tmp_path / "rep" / "trajectories.png") > 1000
