"""One driver per results folder: the lease (study/lease.py), on a local disk and on S3 (a moto server)."""
import json
import os
import signal
import subprocess
import sys
import threading
import time

import pytest

from study.store import lease
from study.cli import main
from study.store.lease import LEASE, Lease, LeaseHeld

HOLD = """
import sys, time
from study.store.lease import Lease
with Lease(sys.argv[1], "memsweep run --preset local"):
    print("held", flush=True)
    time.sleep(600)
"""


@pytest.fixture(scope="module")
def moto():
    """A moto S3 server on loopback with a bucket; yields the environment that points boto3 and pyarrow at it."""
    import boto3
    from moto.server import ThreadedMotoServer
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    env = {"AWS_ENDPOINT_URL_S3": f"http://{host}:{port}", "AWS_ACCESS_KEY_ID": "local",
           "AWS_SECRET_ACCESS_KEY": "local", "AWS_DEFAULT_REGION": "us-east-1"}
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    boto3.client("s3").create_bucket(Bucket="leases")
    try:
        yield env
    finally:
        for k, v in old.items():
            os.environ.pop(k) if v is None else os.environ.__setitem__(k, v)
        server.stop()


@pytest.fixture(params=["local", "s3"])
def root(request, tmp_path):
    if request.param == "local":
        return str(tmp_path / "res")
    request.getfixturevalue("moto")
    return f"s3://leases/{request.node.name.replace('[', '-').rstrip(']')}-{time.time_ns()}"


def test_a_second_driver_is_refused_naming_the_holder_until_the_first_gives_back(root):
    with Lease(root, "memsweep run --preset local"):
        with pytest.raises(LeaseHeld) as err:
            Lease(root, "memsweep run --preset smoke").acquire()
        msg = str(err.value)
        assert "'memsweep run --preset local'" in msg and f"pid {os.getpid()}" in msg and "\n" not in msg
    with Lease(root, "memsweep compact"):  # given back: the next driver takes it
        pass


@pytest.mark.parametrize("round_", range(5))
def test_drivers_starting_together_one_wins(root, round_):
    """The create is atomic and whole (a hard link of the written lease; S3's If-None-Match): of 8
    drivers started at one moment one holds the lease and 7 are refused, none reading a half-written
    lease (an exclusive create followed by a write let a reader see it empty)."""
    barrier, won, refused, other = threading.Barrier(8), [], [], []

    def start():
        one = Lease(root)
        barrier.wait()
        try:
            one.acquire()
            won.append(one)
        except LeaseHeld:
            refused.append(one)
        except Exception as exc:  # noqa: BLE001 - any other outcome is the failure under test
            other.append(exc)
    threads = [threading.Thread(target=start) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not other and len(won) == 1 and len(refused) == 7, other
    won[0].release()


def test_a_lease_without_heartbeat_is_taken_over_and_a_live_one_is_kept_fresh(root, monkeypatch, capsys):
    monkeypatch.setattr(lease, "HEARTBEAT_S", 0.05)
    first = Lease(root, "memsweep run --preset old")
    first.acquire()
    time.sleep(0.5)
    assert first.store.read()[2] < lease.STALE_S  # the heartbeat keeps it young
    first._stop.set()  # the first driver hangs: no more heartbeats
    first._thread.join()
    monkeypatch.setattr(lease, "STALE_S", 1.0)
    with pytest.raises(LeaseHeld):
        Lease(root).acquire()  # still within STALE_S of its last beat
    time.sleep(2.5)  # S3's clock counts whole seconds
    with Lease(root, "memsweep run --preset new") as second:
        err = capsys.readouterr().err
        assert "took over the lease" in err and "'memsweep run --preset old'" in err and "no heartbeat for" in err
        assert second.store.read()[0].command == "memsweep run --preset new"
        first.release()  # the old driver wakes up: it must not delete the lease it lost
        assert second.store.read()[0].token == second.holder.token


def test_a_killed_drivers_lease_is_taken_over_at_once_and_commands_are_refused_while_it_lives(tmp_path, capsys):
    """A real second process holds the folder: run and compact exit 2 naming it; after kill -9 (on this
    host, its pid gone) the next driver takes the lease over at once and runs."""
    from study.sweep.presets import PRESETS
    from study.store import folder
    from study.sweep import driver
    out = tmp_path / "res"
    grid = PRESETS["smoke"]
    folder.write_manifest(str(out), driver.sweep_manifest(grid.to_json(), "smoke", 4, ["test"]))
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(out)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        manifest = (out / "sweep.json").read_text()
        for argv in (["run", "--preset", "smoke", "--out", str(out)], ["compact", str(out)],
                     ["trial", "--out", str(out), "--max-steps", "1"]):
            assert main(argv) == 2
            err = capsys.readouterr().err
            assert err.count("\n") == 1 and f"pid {holder.pid}" in err and "in use by another memsweep driver" in err
        assert (out / "sweep.json").read_text() == manifest and not (out / "trials").exists()
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    assert main(["compact", str(out)]) == 0
    err = capsys.readouterr().err
    assert "took over the lease" in err and "its process is gone" in err
    assert not (out / LEASE).exists()  # given back at the end


def test_a_refused_driver_leaves_no_folder_and_a_foreign_lease_file_is_one_line(tmp_path):
    (tmp_path / "res").mkdir()
    (tmp_path / "res" / LEASE).write_text("not json")
    with pytest.raises(lease.ConfigError, match="is not a memsweep lease; if no driver runs on this folder, delete it"):
        Lease(str(tmp_path / "res")).acquire()
    with pytest.raises(lease.ConfigError, match="is a file, not a folder"):
        Lease(str(tmp_path / "res" / LEASE)).acquire()
    with Lease(str(tmp_path / "new")):
        assert json.loads((tmp_path / "new" / LEASE).read_text())["pid"] == os.getpid()
    assert not (tmp_path / "new").exists()  # created for the lease alone, and left empty
