"""Running the app: uvicorn, one or more worker processes, PyTorch threads sized to the cores.

Each worker process runs its own model and inference thread. PyTorch's intra-op threads per
worker are `cores // workers` (at least 1) unless `threads` is given: on a busy 2-core
machine, two processes with two threads each made single predictions about 50x slower than
one thread each, from oversubscription.
"""

from __future__ import annotations

import ipaddress
import json
import os
from dataclasses import asdict, dataclass, field
from typing import Any

from mentor.serve.limits import Limits

CONFIG_ENV = "MENTOR_SERVE_CONFIG"  # how `--workers N` hands the settings to each process


@dataclass
class ServeConfig:
    """The settings of `mentor serve` (see `mentor serve --help`)."""

    model: str
    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = 1
    threads: int | None = None
    max_batch: int = 32
    max_wait_ms: float = 5.0
    api_key: str | None = None
    insecure: bool = False
    device: str = "cpu"
    limits: Limits = field(default_factory=Limits)


def cores() -> int:
    """The CPU cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def threads_per_worker(workers: int, threads: int | None = None) -> int:
    """PyTorch threads for each of `workers` processes: `threads`, or the cores shared out."""
    if threads is not None:
        return max(1, threads)
    return max(1, cores() // max(1, workers))


def is_loopback(host: str) -> bool:
    """Whether `host` is reachable from this machine only (127.0.0.0/8, ::1, localhost)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:  # a host name: it may resolve to anything
        return False


def check_exposure(config: ServeConfig) -> None:
    """Refuse to serve beyond this machine without an API key, unless told it is fine."""
    if not is_loopback(config.host) and not config.api_key and not config.insecure:
        raise ValueError(
            f"--host {config.host} makes the model reachable from other machines: give "
            "--api-key KEY (or set MENTOR_API_KEY), or --insecure to serve it to anyone"
        )


def build_app(config: ServeConfig) -> Any:
    """The app of one worker process, with its PyTorch threads set first."""
    import torch

    from mentor.serve.app import create_app

    torch.set_num_threads(threads_per_worker(config.workers, config.threads))
    return create_app(config.model, config.limits, config.max_batch, config.max_wait_ms,
                      config.api_key, config.device)  # fmt: skip


def app_from_env() -> Any:
    """The app factory each uvicorn worker process calls (`--workers` > 1)."""
    data = json.loads(os.environ[CONFIG_ENV])
    data["limits"] = Limits(**data["limits"])
    return build_app(ServeConfig(**data))


def serve(config: ServeConfig) -> None:
    """Serve until interrupted (uvicorn: Ctrl-C stops it gracefully)."""
    import uvicorn

    check_exposure(config)
    common: dict[str, Any] = {"host": config.host, "port": config.port, "log_level": "warning",
                              "timeout_graceful_shutdown": 5}  # fmt: skip
    if config.workers == 1:
        uvicorn.run(build_app(config), **common)
        return
    os.environ[CONFIG_ENV] = json.dumps(asdict(config))
    uvicorn.run("mentor.serve.server:app_from_env", factory=True, workers=config.workers, **common)


__all__ = ["ServeConfig", "check_exposure", "is_loopback", "serve", "threads_per_worker"]
