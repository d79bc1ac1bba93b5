"""Loading results (running sweeps, damaged parts), the report, the notebook."""
import os
import shutil
import warnings

import nbformat
import pandas as pd
import pytest
from nbclient import NotebookClient

import analysis
from analysis import report
from study.cli import main

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_load_reads_every_table(smoke_results):
    res = analysis.load(str(smoke_results))
    assert len(res.trials) == 4 and set(res.trials.depth) == {2, 6}
    assert len(res.examples) == 40 and set(res.examples.trial_id) == set(res.trials.trial_id)
    assert set(res.retrieval.start) == {"noisy", "masked", "heldout", "random"}
    assert len(res.curves) > 4 and res.manifest["preset"] == "smoke"


def test_load_ignores_temp_files_of_a_running_sweep(smoke_results, tmp_path):
    out = tmp_path / "running"
    shutil.copytree(smoke_results, out)
    (out / "trials" / ".fc-d9-w1-x.1234abcd.tmp").write_bytes(b"PAR1 half a file")
    assert len(analysis.load(str(out)).trials) == 4


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
    assert len(res.trials) == 3 and res.skipped == [str(victim)]
    assert any(victim.name in str(w.message) for w in caught)


def test_report_holds_figures_table_and_verdicts(smoke_results, tmp_path):
    page = report.build(str(smoke_results), str(tmp_path / "rep"))
    text = open(page).read()
    for name in ("phase_map", "attractor_frac", "spectral_radius", "retrieval_sigma", "loss_curves", "trajectories"):
        assert os.path.getsize(tmp_path / "rep" / f"{name}.png") > 1000
    assert text.count("data:image/png;base64,") == 6 and "not drawn" not in text
    assert "<h2>Onset depth</h2>" in text and "<table" in text
    claims = open(tmp_path / "rep" / "claims.txt").read().splitlines()
    assert [c.split(" ")[0] for c in claims] == ["C1", "C2", "C3", "C3-linear", "C4", "C5", "C6"]
    assert claims[0].startswith("C1 [not covered]")  # the smoke grid has no depth-1 trials
    assert claims[3].startswith("C3-linear [not covered]")  # nor linear nets
    assert claims[5] == "C5 [not covered]: no task = sequence trials in this grid"
    assert not os.path.exists(tmp_path / "rep" / "operator_study.png")
    assert claims[1].startswith("C2 [") and "fc, width 64, 2 seeds" in claims[1]


def test_report_command(smoke_results, tmp_path, capsys):
    assert main(["report", str(smoke_results), "--out", str(tmp_path / "r"), "--no-trajectories"]) == 0
    out = capsys.readouterr().out
    assert "report:" in out and "C2 [" in out
    assert main(["report", str(tmp_path / "nothing")]) == 2


def test_notebook_runs_on_smoke_results(smoke_results, monkeypatch):
    monkeypatch.setenv("MEMSWEEP_RESULTS", str(smoke_results))
    nb = nbformat.read(os.path.join(ROOT, "notebooks", "explore.ipynb"), as_version=4)
    NotebookClient(nb, timeout=120, kernel_name="python3",
                   resources={"metadata": {"path": os.path.join(ROOT, "notebooks")}}).execute()
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    assert any("image/png" in o.get("data", {}) for o in outputs)  # the figures rendered


def _results(rows):
    from analysis.load import Results
    trials = pd.DataFrame(rows)
    return Results("hand-built", trials, pd.DataFrame(), pd.DataFrame(), pd.DataFrame(), None, [])


def _row(arch, depth, seed, memorizes, width=16, n_train=10):
    return {"trial_id": f"{arch}-{depth}-{seed}-{width}-{n_train}", "arch": arch, "depth": depth, "seed": seed,
            "width": width, "n_train": n_train, "activation": "relu", "bias": True, "dataset": "digits",
            "attractor_frac": 0.9 if memorizes else 0.0, "retrieval_same_frac": 0.9 if memorizes else 0.0,
            "span_residual_mean": 0.3}


def test_c3_verdict_needs_both_conv_archs_to_say_downsampling_helps():
    rows = [_row(a, d, s, d >= first) for a, first in (("conv_down", 4), ("conv", 8)) for d in (2, 4, 8) for s in (0, 1)]
    c3 = {v.claim: v for v in report.verdicts(_results(rows))}["C3"]
    assert c3.verdict == "reproduced" and "conv_down: onset depth 4" in c3.text and "conv: onset depth 8" in c3.text
    only_down = [r for r in rows if r["arch"] == "conv_down"]
    c3 = {v.claim: v for v in report.verdicts(_results(only_down))}["C3"]
    assert c3.verdict == "partly" and "lacks conv" in c3.text
    never = [_row(a, d, s, False) for a in ("conv", "conv_down") for d in (2, 4) for s in (0, 1)]
    assert {v.claim: v for v in report.verdicts(_results(never))}["C3"].verdict == "not reproduced"


def test_c4_and_c6_verdicts():
    rows = [_row("fc", d, s, True, width=w, n_train=1) for d in (2, 4) for s in (0, 1) for w in (32, 128)]
    rows += [_row("fc", 4, s, w == 128, width=w) for s in (0, 1) for w in (32, 128)]
    v = {x.claim: x for x in report.verdicts(_results(rows))}
    assert v["C4"].verdict == "reproduced" and "90% of 8 trials" in v["C4"].text
    # C6 looks at the n_train > 1 trials only: the single-example ones are C4's
    assert v["C6"].verdict == "reproduced" and "32: 0%" in v["C6"].text and "128: 90%" in v["C6"].text


def test_parts_written_before_a_config_field_existed_still_load(smoke_results, tmp_path):
    import pyarrow.parquet as pq
    out = tmp_path / "older"
    shutil.copytree(smoke_results, out)
    part = sorted((out / "trials").iterdir())[0]
    table = pq.read_table(part)
    pq.write_table(table.drop_columns(["rho_margin"]), part)  # as if rho_margin were a newer field
    res = analysis.load(str(out))
    assert len(res.trials) == 4 and (res.trials.rho_margin == 1e-3).all()


def test_parts_from_schema_1_load_with_null_new_metrics(smoke_results, tmp_path):
    import pyarrow.parquet as pq
    from study.results import ADDED_COLUMNS
    out = tmp_path / "schema1"
    shutil.copytree(smoke_results, out)
    for part in (out / "trials").iterdir():
        pq.write_table(pq.read_table(part).drop_columns(list(ADDED_COLUMNS)), part)
    res = analysis.load(str(out))
    assert len(res.trials) == 4
    assert all(res.trials[c].isna().all() for c in ADDED_COLUMNS)


def _linear_row(arch, depth, side, seed, memorizes):
    keep = 1 if memorizes else side * side
    return {"trial_id": f"{arch}-{depth}-{side}-{seed}", "arch": arch, "depth": depth, "seed": seed, "width": 8,
            "n_train": 1, "activation": "identity", "bias": False, "dataset": "digits", "image_size": side, "input_dim": side ** 2,
            "kernel_size": 3, "status": "ok", "attractor_frac": 0.0, "retrieval_same_frac": 0.0,
            "span_dim": 1, "operator_near_one": keep, "operator_near_one_in_span": 1,
            "operator_rest_radius": 0.5 if memorizes else 0.0}


def test_c3_linear_verdict_from_the_operator_study():
    # stride 1 memorizes from depth 4 on 8x8 images (receptive field 9), downsampling from depth 2
    rows = [_linear_row(a, d, 8, s, d >= first) for a, first in (("conv", 4), ("conv_down", 2))
            for d in (2, 3, 4, 6) for s in (0, 1)]
    v = {x.claim: x for x in report.verdicts(_results(rows))}
    assert v["C3-linear"].verdict == "reproduced", v["C3-linear"].line()
    assert "acting as P_X: 0 of 4" in v["C3-linear"].text and "conv 4 (CI 4 - 4)" in v["C3-linear"].text
    assert v["C4"].verdict == "not covered"  # linear nets are not C4's attractor evidence
    # a stride-1 operator acting as P_X with a receptive field (5) below the side (8) contradicts necessity
    narrow = [dict(r, **_linear_row("conv", 2, 8, r["seed"], True)) if r["arch"] == "conv" and r["depth"] == 2 else r
              for r in rows]
    assert {x.claim: x for x in report.verdicts(_results(narrow))}["C3-linear"].verdict == "partly"
    # downsampling no earlier than stride 1, and necessity broken: not reproduced
    late = [_linear_row(a, d, 8, s, d >= first) for a, first in (("conv", 2), ("conv_down", 6))
            for d in (2, 3, 4, 6) for s in (0, 1)]
    assert {x.claim: x for x in report.verdicts(_results(late))}["C3-linear"].verdict == "not reproduced"
