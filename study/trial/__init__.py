"""One trial on torch, as plain functions that know nothing of Ray: data.py (images) -> models.py (the
nets) -> train.py (to interpolation; batched.py trains many small nets as one) -> probes.py (the
measurements) -> run.py (one config to its result rows). resources.py checks memory and CUDA before
anything is built; saved.py writes and reads trained nets.
"""
