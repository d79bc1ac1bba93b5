"""Results on disk, without torch: schema.py (the tables and the metrics' registry), uri.py (where a
folder lives, atomic writes), parts.py (one trial's rows), reader.py (each row once), folder.py (the
results folder as a whole), compact.py (many parts into few files), lease.py (one driver per folder).
"""
