"""memsweep's analysis package: results folders -> pandas -> where memorization appears.

    import analysis
    res = analysis.load("results/local")                  # trials, examples, retrieval, curves, manifest
    analysis.maps.onset_depth(res.trials)                 # onset depth per (arch, width, ...) with a CI
    analysis.plots.phase_map(res.trials)                  # a matplotlib Figure
    analysis.report.build("results/local")                # results/local/report/report.html

Modules: load (read, tolerant of running sweeps, strict about damaged parts), maps (pure
functions on DataFrames), claims (a verdict per claim of the papers), boundary (onset depth
against width and its trend), plots (seaborn figures), report (the HTML page).
"""
from . import boundary, claims, maps
from .load import DamagedPartError, Results, load

__all__ = ["load", "Results", "DamagedPartError", "maps", "claims", "boundary", "plots", "report"]


def __getattr__(name: str):
    """``analysis.plots`` and ``analysis.report`` (matplotlib, seaborn) load on first use."""
    if name in ("plots", "report"):
        import importlib
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
