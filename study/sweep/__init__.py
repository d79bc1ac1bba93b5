"""Many trials on Ray Tune: grid.py (a grid over config fields) and presets.py (named grids), cost.py
(training time from a config), launch.py (where it runs), engine.py (Tune trials), driver.py
(``memsweep run`` / ``refine`` end to end), progress.py (the progress line), trackers.py (Tune's
loggers, ``--log``), stops.py (how a sweep stops early), refine.py (the onset search), plan.py (a
sweep's cost before it runs).
"""
