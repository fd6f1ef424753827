"""`mentor serve` and `mentor clean` from the shell: exposure checks, worker processes and
their PyTorch threads."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from mentor.cli import main
from mentor.serve.server import cores, is_loopback, threads_per_worker
from tests.serve import models
from tests.serve.live import free_port

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return models.tabular_model(tmp_path_factory.mktemp("cli"))


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.7", "example.org"])
def test_a_non_loopback_host_needs_a_key_or_insecure(model: Path, host: str, capsys) -> None:
    assert main(["serve", str(model), "--host", host]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--api-key" in err[0] and "--insecure" in err[0] and host in err[0]
    assert main(["clean", str(model.parent), "--model", str(model), "--host", host]) == 1
    assert "--insecure" in capsys.readouterr().err


def test_loopback_hosts_and_thread_shares() -> None:
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("10.0.0.1")
    assert threads_per_worker(1) == cores()
    assert threads_per_worker(cores() * 4) == 1  # never more threads than cores in all
    assert threads_per_worker(2, threads=3) == 3  # --threads overrides


def test_workers_share_the_cores_and_a_key_guards_the_api(model: Path) -> None:
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "MENTOR_API_KEY": "k3y"}
    command = [sys.executable, "-m", "mentor", "serve", str(model), "--port", str(port),
               "--workers", "2", "--host", "127.0.0.1"]  # fmt: skip
    server = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline and server.poll() is None, server.stderr
            time.sleep(0.3)
        assert httpx.get(f"{url}/info").status_code == 401
        seen: dict[int, int] = {}
        for _ in range(40):
            info = httpx.get(f"{url}/info", headers={"X-API-Key": "k3y"}).json()
            seen[info["pid"]] = info["threads"]
        assert all(threads == max(1, cores() // 2) for threads in seen.values()), seen
        row = {"color": "red", "size": 1, "x": 0.5, "z": 2.0}
        answer = httpx.post(f"{url}/predict", json={"input": row}, headers={"X-API-Key": "k3y"})
        assert answer.json()["prediction"]["label"] in ("yes", "no")
    finally:
        server.terminate()
        server.wait(timeout=20)
