"""Where a sweep runs, as opposed to what it runs (the ``Grid``): ``Launch`` (results folder, which Ray,
what each Tune trial asks for, when to give up), checked before anything starts, and ``start_ray``,
which joins the cluster it names or starts a Ray of memsweep's own on this machine.
"""
from __future__ import annotations

import dataclasses
import os
import sys
from dataclasses import dataclass

from ..config import ConfigError, unknown
from ..registry import DEVICES
from ..store.uri import is_remote, one_line
from . import trackers

CLUSTER_START_TIMEOUT_S = 1200.0  # a cloud GPU node's boot and setup take minutes; twenty is generous


def resolve_device(asked: str | None, gpus: float = 0.0, cuda_here: bool = False) -> str:
    """The device trials train on, one rule for ``memsweep run``, ``plan`` and ``trial``: ``asked`` when
    it names one; else (None or 'auto') cuda when the trial holds a GPU share (``gpus`` > 0, a sweep's
    trial on whatever node Ray places it) or when this machine has a usable CUDA device (``cuda_here``,
    a trial run here), else cpu."""
    if asked in DEVICES:
        return asked
    if asked not in (None, "auto"):
        raise ConfigError(f"--device: {unknown('device', asked, ['auto', *DEVICES])}")
    return "cuda" if gpus > 0 or cuda_here else "cpu"


@dataclass(frozen=True)
class Launch:
    """How a sweep runs, as opposed to what it runs (the ``Grid``): where results go, which Ray, what
    each Tune trial asks for, and when to give up. ``checked()`` validates it before anything starts."""
    out: str
    address: str | None = None          # None (and no RAY_ADDRESS): a Ray of memsweep's own on this machine
    cpus_per_trial: float = 1.0
    gpus_per_trial: float = 0.0
    device: str | None = None           # None: cuda when the trial is given a GPU, else cpu
    shared_fs: bool = False             # the user asserts that every node mounts a local --out
    max_concurrent: int | None = None
    max_failures: int = 2
    start_timeout: float | None = None  # None: CLUSTER_START_TIMEOUT_S when joining a cluster, else off; 0: off
    batch: bool = True                  # configs of one model shape in a Tune trial train as one batch
    log: tuple[str, ...] = trackers.DEFAULT  # Tune's logger callbacks (``trackers.py``)

    @property
    def joins(self) -> bool:
        """Whether the sweep joins a running Ray cluster (``--address``, or RAY_ADDRESS as under ``ray job submit``)."""
        return bool(self.address or os.environ.get("RAY_ADDRESS"))

    @property
    def request(self) -> dict[str, float]:
        """What each Tune trial asks of a node, as Ray names it."""
        return {"CPU": self.cpus_per_trial, **({"GPU": self.gpus_per_trial} if self.gpus_per_trial else {})}

    def checked(self) -> "Launch":
        """This launch with its defaults filled in; raises ConfigError (one line) on a bad value."""
        if self.cpus_per_trial <= 0:
            raise ConfigError(f"--cpus-per-trial must be > 0, got {self.cpus_per_trial:g}")
        if not 0 <= self.gpus_per_trial <= 1:  # a Tune trial (and its batch of models) runs in one process on one GPU
            raise ConfigError(f"--gpus-per-trial must be between 0 and 1 (0.25 runs four trials per GPU), "
                              f"got {self.gpus_per_trial:g}")
        if self.max_concurrent is not None and self.max_concurrent < 1:
            raise ConfigError(f"--max-concurrent must be >= 1, got {self.max_concurrent}")
        if self.max_failures < 0:
            raise ConfigError(f"--max-failures must be >= 0, got {self.max_failures}")
        if self.start_timeout is not None and self.start_timeout < 0:
            raise ConfigError(f"--start-timeout must be >= 0 seconds (0: wait forever), got {self.start_timeout:g}")
        device = resolve_device(self.device, gpus=self.gpus_per_trial)
        if device == "cuda" and self.gpus_per_trial == 0:
            raise ConfigError("--device cuda needs --gpus-per-trial > 0: Ray hands GPUs only to trials that ask")
        remote = is_remote(self.out)
        if self.joins and not remote and not self.shared_fs:
            raise ConfigError(
                f"--out {self.out} is a folder on this machine, but the sweep joins a Ray cluster, whose other "
                "nodes would write their parts to their own disks: give shared storage (--out s3://BUCKET/PATH "
                "or gs://BUCKET/PATH), or --shared-fs if every node mounts that folder")
        timeout = self.start_timeout
        if timeout is None:
            timeout = CLUSTER_START_TIMEOUT_S if self.joins else 0.0
        out = self.out if remote else os.path.abspath(self.out)  # Tune rejects relative storage paths
        trackers.check(self.log, out)
        return dataclasses.replace(self, out=out, device=device, start_timeout=timeout)


def start_ray(launch: Launch, verbose: bool):
    """Join the cluster the launch names, or start a Ray of memsweep's own, never joining another Ray
    on this machine by accident. Returns the ``ray`` module. An own Ray that cannot hold one trial
    (a GPU asked of a machine without one) is refused with a ConfigError before any trial starts."""
    if launch.joins:
        where = launch.address or os.environ["RAY_ADDRESS"]
        print(f"[memsweep] joining the Ray cluster at {where}", file=sys.stderr)
        import ray
        try:  # joining a cluster: its resources are its own (ray.init(num_cpus=...) fails there)
            ray.init(address=launch.address, log_to_driver=verbose, configure_logging=verbose)
        except (ConnectionError, RuntimeError, ValueError) as exc:  # no cluster there, wrong token, ...
            raise ConfigError(f"cannot join the Ray cluster at {where}: {one_line(exc)}") from None
        nodes = [n for n in ray.nodes() if n.get("Alive")]
        print(f"[memsweep] joined: {len(nodes)} node(s) now; each Tune trial asks for "
              f"{resources_text(launch.request)}", file=sys.stderr)
        return ray
    print(f"[memsweep] starting a Ray of its own on this machine ({os.cpu_count()} CPUs)", file=sys.stderr)
    # Ray 2.60 swaps 127.0.0.1 for the machine's network address unless this is off; a Ray of our own is
    # one node, so it stays on loopback (read when Ray is first imported)
    os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    import ray
    _no_fixed_agent_port()
    # address="local": a fresh Ray even when another one runs here (a plain ray.init() would join it)
    ray.init(address="local", num_cpus=os.cpu_count(), log_to_driver=verbose, configure_logging=verbose,
             include_dashboard=False)
    total = {k: float(v) for k, v in ray.cluster_resources().items()}
    if not fits(launch.request, total):
        ray.shutdown()
        have = resources_text({k: total.get(k, 0.0) for k in launch.request})
        raise ConfigError(f"each trial asks for {resources_text(launch.request)}, but this machine offers Ray "
                          f"{have}; lower --cpus-per-trial / --gpus-per-trial, or run on a cluster "
                          "(--address; cluster-local.yaml tries the cluster path on this machine)")
    return ray


def resources_text(request: dict[str, float]) -> str:
    """{'CPU': 1.0, 'GPU': 0.5} -> '{CPU: 1, GPU: 0.5}', as Ray's own status shows them."""
    return "{" + ", ".join(f"{k}: {v:g}" for k, v in request.items()) + "}"


def fits(request: dict[str, float], node_resources: dict[str, float]) -> bool:
    """Whether one node's total resources can hold a trial's request."""
    return all(node_resources.get(k, 0.0) >= v for k, v in request.items())


def _no_fixed_agent_port() -> None:
    """Give a Ray of memsweep's own a free port for its dashboard agent. ``ray.init`` has no argument for
    it and Ray's default is the fixed 52365, so memsweep's Ray took the port from any Ray started on the
    machine after it (a laptop cluster's head then failed ``ray job submit``: "No available agent").
    Ray's private ``RayParams`` is patched once; Ray is pinned exactly, and tests/test_sweep.py checks it."""
    import socket

    import ray._private.parameter as parameter
    init = parameter.RayParams.__init__
    if getattr(init, "memsweep", False):
        return

    def with_free_agent_port(self, *args, **kwargs):
        if kwargs.get("dashboard_agent_listen_port") is None:
            with socket.socket() as s:
                s.bind(("127.0.0.1", 0))
                kwargs["dashboard_agent_listen_port"] = s.getsockname()[1]
        init(self, *args, **kwargs)
    with_free_agent_port.memsweep = True
    parameter.RayParams.__init__ = with_free_agent_port
