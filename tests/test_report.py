"""The report as a newcomer reads it, top to bottom: a summary first, tables with a legend under each
that explains every column, alt text on every image, the settings as a table with the whole record
one link away, no figure left over from an earlier build, and seeds counted as every table counts them."""
import html
import json
import os
import shutil
from html.parser import HTMLParser

import pandas as pd
import pytest

import analysis
from analysis import census, plots, report
from analysis.load import load
from study.store import parts, schema


class Page(HTMLParser):
    """A report page as the tests read it: its sections in order, each table's header cells and the
    legend that follows it, every image's attributes, every link, and the text of each section."""

    def __init__(self, text: str):
        super().__init__()
        self.sections: list[str] = []
        self.tables: list[dict] = []  # {"section", "columns", "rows", "legend": {term: meaning}}
        self.images: list[dict] = []
        self.links: list[str] = []
        self.text: dict[str, str] = {}
        self._tag: list[str] = []
        self._dt = None
        self._row: list[str] | None = None
        self._cell: list[str] | None = None
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self._tag.append(tag)
        if tag == "section":
            self.sections.append(attrs.get("id"))
        elif tag == "table":
            self.tables.append({"section": self.sections[-1] if self.sections else None, "columns": [], "rows": [],
                                "legend": None})
        elif tag == "tr":
            self._row = []
        elif tag in ("th", "td"):
            self._cell = []
        elif tag == "dl" and "legend" in (attrs.get("class") or ""):
            self.tables[-1]["legend"] = {}
        elif tag == "img":
            self.images.append(attrs)
        elif tag == "a":
            self.links.append(attrs.get("href"))

    def handle_endtag(self, tag):
        if tag in ("th", "td") and self._cell is not None:
            self._row.append("".join(self._cell).strip())
            self._cell = None
        elif tag == "tr" and self._row is not None:
            table = self.tables[-1]
            if table["columns"]:
                table["rows"].append(self._row)
            else:
                table["columns"] = self._row  # the header row
            self._row = None
        while self._tag and self._tag.pop() != tag:
            pass

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)
        if self.sections:
            self.text[self.sections[-1]] = self.text.get(self.sections[-1], "") + data
        tag = self._tag[-1] if self._tag else None
        if tag == "dt":
            self._dt = data.strip()
        elif tag == "dd" and self._dt is not None:
            self.tables[-1]["legend"][self._dt] = self.tables[-1]["legend"].get(self._dt, "") + data


@pytest.fixture(scope="module")
def built(smoke_results, tmp_path_factory):
    """The smoke preset's report at three seeds, without the trajectories figure (it trains a net)."""
    out = tmp_path_factory.mktemp("report")
    page = report.build(str(smoke_results), str(out), trajectories=False)
    return out, Page(open(page).read()), open(page).read()


def table(page: Page, section: str) -> dict:
    found = [t for t in page.tables if t["section"] == section]
    assert len(found) == 1, [t["section"] for t in page.tables]
    return found[0]


def rows(t: dict) -> list[dict]:
    return [dict(zip(t["columns"], r)) for r in t["rows"]]


def test_sections_come_in_reading_order_with_the_summary_first(built):
    _, page, text = built
    assert page.sections == ["summary", "status", "claims", "onset", "census", "figures", "settings"]
    assert text.index("<h1>") < text.index("<section id='summary'>") < text.index("<h2>")
    summary = page.text["summary"]
    # what was run, in a line; how much of it is evidence; the verdicts with their evidence counts
    assert "preset smoke: 6 trials · arch fc · depth 2, 6 · width 64 · dataset digits · seeds 0, 1, 2" in summary
    assert "6 of 6 trials interpolated and were probed (left out: none)" in summary
    assert "2 of 2 cells" in summary
    verdicts = rows(table(page, "summary"))
    assert [r["claim"] for r in verdicts] == ["C1", "C2", "C3", "C3-linear", "C4", "C5", "C6"]
    c2 = verdicts[1]
    assert c2["verdict"] == "insufficient evidence" and c2["pooled test"].startswith("difference deepest - shallowest")
    assert (c2["groups tested"], c2["cells tested"], c2["usable seeds per cell"], c2["trials left out"]) == \
        ("1 of 1", "2 of 2", "3", "none")
    assert verdicts[0]["verdict"] == "not covered" and "no depth-1 trials" in verdicts[0]["pooled test"]


def test_the_census_section_and_census_txt_hold_the_census_modules_lines(built, smoke_results):
    out, page, _ = built
    res = load(str(smoke_results))
    lines = census.lines(res.trials, res.examples, res.retrieval)
    assert [x.split(":")[0] for x in lines] == ["stored", "stored", "census", "robustness", "robustness"]
    assert open(os.path.join(out, report.CENSUS_FILE)).read().splitlines() == lines
    assert all(html.unescape(x) in page.text["census"] for x in lines)
    nets = rows(table(page, "census"))  # one row per net, its census counts adding up to its starts
    assert len(nets) == 6 and all(sum(int(r[c]) for c in ("memory", "spurious point", "cycle", "diverged", "moving"))
                                  == int(r["census starts"]) for r in nets)
    for png in ("stored_share.png", "census.png", "robustness.png"):
        assert os.path.getsize(os.path.join(out, png)) > 10_000


def test_status_is_a_table_not_json(built):
    _, page, text = built
    status = {r["status"]: r for r in rows(table(page, "status"))}
    assert list(status) == ["ok", "not_converged", "diverged", "error"]
    assert (status["ok"]["trials"], status["ok"]["usable"]) == ("6", "6") and status["diverged"]["trials"] == "0"
    assert "loss_tol" in status["ok"]["meaning"]
    assert "{&quot;" not in text and '{"' not in text and "<pre>" not in text


def test_settings_are_a_short_table_with_the_whole_record_one_link_away(built, smoke_results):
    out, page, _ = built
    settings = {r["setting"]: r["value"] for r in rows(table(page, "settings"))}
    assert settings["preset"] == "smoke" and settings["axis: depth"] == "2, 6" and settings["axis: seed"] == "0, 1, 2"
    assert settings["fixed"].startswith("lr = 0.001, loss_tol = 1e-06") and "memsweep " in settings["versions"]
    assert len(settings) <= 15
    assert report.SETTINGS_FILE in page.links
    assert json.load(open(out / report.SETTINGS_FILE)) == analysis.load(str(smoke_results)).manifest
    assert "claims.txt" in page.links and os.path.exists(out / "claims.txt")


def test_every_column_of_every_table_is_explained_under_it(built):
    _, page, _ = built
    assert len(page.tables) == 5
    for t in page.tables:
        assert t["columns"] and t["legend"] is not None, t["section"]
        assert list(t["legend"]) == t["columns"], t["section"]
        assert all(meaning.strip() for meaning in t["legend"].values()), t["legend"]
    # one place: a column reads the same wherever it appears
    assert table(page, "onset")["legend"]["width"] == report.COLUMNS["width"]
    assert "not monotone" in report.COLUMNS["onset depth"] and "at most" in report.COLUMNS["onset depth"]
    with pytest.raises(KeyError):
        report.column_meaning("p_reached")  # a table cannot show a column it does not explain


def test_every_image_has_alt_text(built):
    _, page, _ = built
    assert len(page.images) == 8
    for img in page.images:
        assert img.get("alt", "").strip() and img["src"].startswith("data:image/png;base64,")
    assert {img["alt"] for img in page.images} <= {alt for _, alt in report.FIGURES.values()}


def test_a_figure_not_drawn_this_time_leaves_no_older_png(smoke_results, tmp_path, monkeypatch):
    out = tmp_path / "rep"
    out.mkdir()
    (out / "trajectories.png").write_bytes(b"an older build's figure")
    (out / "mine.png").write_bytes(b"not the report's")
    report.build(str(smoke_results), str(out), trajectories=False)  # skipped on request
    assert not (out / "trajectories.png").exists() and (out / "mine.png").exists()
    assert (out / "phase_map.png").exists()

    def light(*a, **k):  # as on the light install, without torch
        raise ImportError("the trajectories figure re-runs the trial, which needs memsweep's training stack")
    (out / "trajectories.png").write_bytes(b"an older build's figure")
    monkeypatch.setattr(plots, "trajectories", light)
    text = open(report.build(str(smoke_results), str(out), trajectories=True)).read()
    assert "not drawn: ImportError" in text and not (out / "trajectories.png").exists()
    assert Page(text).images and all(img.get("alt") for img in Page(text).images)


def _two_seeds(smoke_results, out) -> str:
    """The smoke preset as it runs by default, two seeds a cell: the three-seed folder's trials table
    without seed 2 (no other tables, as a copied table would be)."""
    trials = analysis.load(str(smoke_results)).trials
    trials = trials[trials.seed < 2]
    names = schema.TABLES["trials"].names
    for r in trials.astype(object).where(trials.notna(), None).to_dict("records"):
        parts.write_part(str(out), "trials", r["trial_id"], [{k: r.get(k) for k in names}])
    shutil.copy(smoke_results / "sweep.json", out / "sweep.json")
    return str(out)


def test_cells_of_two_seeds_say_two_seeds_everywhere(smoke_results, tmp_path):
    folder = _two_seeds(smoke_results, tmp_path / "res")
    out = tmp_path / "rep"
    text = open(report.build(folder, str(out), trajectories=False)).read()
    page = Page(text)
    c2 = rows(table(page, "summary"))[1]
    assert (c2["cells tested"], c2["usable seeds per cell"]) == ("0 of 2", "2")
    assert [r["usable seeds per depth"] for r in rows(table(page, "onset"))] == ["2"]
    assert "usable seeds per cell: 2. No cell is tested" in page.text["summary"]
    line = [x for x in open(out / "claims.txt").read().splitlines() if x.startswith("C2 ")][0]
    assert line.endswith("[no cell tested: at most 2 usable seeds in a cell, 3 needed; excluded: none]")
    assert "per cell 0" not in text
    # the count is the one the evidence model keeps: the phase map's and the onset table's
    counts = analysis.evidence.seed_counts(pd.read_parquet(os.path.join(folder, "trials")))
    assert set(counts.n_usable) == {2} and not counts.tested.any()
