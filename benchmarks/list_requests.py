"""How often one `memsweep run` lists its results folder: every LIST request it and its Tune trials make
of an S3 results folder, counted by the prefix listed, on a moto S3 server on loopback.

    python benchmarks/list_requests.py [--out benchmarks/list_requests.md]

The smoke preset with three seeds (2 Tune trials of 3 configs), run twice into one folder: a fresh run,
then a rerun that finds every row there. A Tune trial looks up its own parts by path (a HEAD request
each), never by listing ``trials/``.
"""
from __future__ import annotations

import argparse
import collections
import logging
import os
import re
import shutil
import subprocess
import sys

import pyarrow.fs as pafs
from moto.server import ThreadedMotoServer

ARGS = ["run", "--preset", "smoke", "--set", "seed=0,1,2", "--out", "s3://results/bench"]


class _Requests(logging.Handler):
    """moto's server logs one line per request (werkzeug): keep them."""

    def __init__(self):
        super().__init__()
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out")
    args = ap.parse_args()
    requests = _Requests()
    logging.getLogger("werkzeug").addHandler(requests)
    logging.getLogger("werkzeug").setLevel(logging.INFO)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    env = {**os.environ, "AWS_ENDPOINT_URL_S3": f"http://{host}:{port}", "AWS_ACCESS_KEY_ID": "local",
           "AWS_SECRET_ACCESS_KEY": "local", "AWS_DEFAULT_REGION": "us-east-1"}
    pafs.S3FileSystem(endpoint_override=f"http://{host}:{port}", access_key="local", secret_key="local",
                      scheme="http", region="us-east-1", allow_bucket_creation=True).create_dir("results")
    memsweep = shutil.which("memsweep") or os.path.join(os.path.dirname(sys.executable), "memsweep")
    rows = []
    try:
        for name in ("fresh run", "rerun, every row there"):
            requests.lines.clear()
            done = subprocess.run([memsweep, *ARGS], env=env, capture_output=True, text=True)
            if done.returncode != 0:
                sys.exit(done.stderr[-2000:])
            lists = [line for line in requests.lines if "list-type=2" in line]
            by = collections.Counter(re.search(r"prefix=bench/([^& ]*)", line).group(1) or "(the folder)"
                                     for line in lists)
            rows.append(f"| {name} | {len(lists)} | {by.get('trials/', 0)} | "
                        + ", ".join(f"{k} {v}" for k, v in sorted(by.items())) + " |")
            print(rows[-1], flush=True)
    finally:
        server.stop()
    text = ("# LIST requests of one `memsweep run`\n\n`python benchmarks/list_requests.py`: `memsweep "
            + " ".join(ARGS) + "` on a moto S3 server, twice into one folder; the LIST requests of the driver "
            "and its Tune trials, by the prefix listed.\n\n"
            "| run | LIST requests | of them `trials/` | by prefix |\n|---|---|---|---|\n"
            + "\n".join(rows) + "\n")
    if args.out:
        with open(args.out, "w") as fh:
            fh.write(text)


if __name__ == "__main__":
    main()
