"""memsweep's analysis package: results folders -> pandas -> where memorization appears.

    import analysis
    res = analysis.load("results/local")                  # trials, examples, retrieval, curves, manifest
    analysis.evidence.onsets(res.trials)                  # onset depth per (arch, width, ...), with its evidence
    analysis.claims.verdicts(res.trials)                  # a verdict per claim of the papers
    analysis.plots.phase_map(res.trials)                  # a matplotlib Figure
    analysis.report.build("results/local")                # results/local/report/report.html

Modules: load (read, tolerant of running sweeps, strict about damaged parts), maps (what one trial
shows), evidence (the one evidence model: usable trials, cells of seeds, rates, onsets), stats
(exact tests), claims (a verdict per claim), boundary (onset depth against width and its trend),
calibration (the error rates of all of it, by simulation), plots (seaborn figures), report (the
HTML page).
"""
from . import boundary, claims, evidence, maps, stats
from .load import DamagedPartError, Results, load

__all__ = ["load", "Results", "DamagedPartError", "maps", "evidence", "stats", "claims", "boundary", "calibration",
           "plots", "report"]


def __getattr__(name: str):
    """``analysis.plots``, ``analysis.report`` (matplotlib, seaborn) and ``analysis.calibration`` load on
    first use."""
    if name in ("plots", "report", "calibration"):
        import importlib
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
