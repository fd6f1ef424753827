"""Serving: `mentor serve` (dynamic batching) against a hand-written one-at-a-time server.

Both servers run the same exported model (efficientnet_lite0 at 128 x 128, ImageNet-size
classifier head over imagenette's 10 classes) in a process of their own on 127.0.0.1, with
the same PyTorch threads (the cores); the baseline (`bench.serve_baseline`) calls
`Predictor.predict` once per request from FastAPI's thread pool. A bounded load generator
(`bench.load_client`: C keep-alive connections, a fixed number of requests and a time limit)
sends imagenette validation JPEGs as multipart uploads, for C = 1, 8 and 32, alternating
the two servers, `runs` times each; the report gives medians of images/s and p50/p95/p99
latency, and the status codes.

The same for a small model (resnet18 on 28 px digits), where the cost of each model call
and not its arithmetic dominates, as for many models served in practice.

The mixed run sends `mixed_requests` requests (10,000 by default) to the batching server
from 8 clients, one in five malformed (a truncated image, a wrong content type, a JSON body
over the limit, a missing field, a wrong type, a 20 MB body), and checks: no 5xx, every
malformed request a 4xx, /health still answering, and the server's memory (RSS) after all
requests within 50 MB of its memory after the first 1,000.

Run: `python -m bench.serve` (about 6 minutes on 2 cores), or `--quick`.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from bench.common import machine
from bench.load_client import LoadResult, Request, multipart_image, run_load
from mentor.core.seed import set_seed

SIZE = 128
CLIENTS = (1, 8, 32)
RSS_LIMIT_MB = 50.0


MODELS = {
    "photos": f"efficientnet_lite0 at {SIZE} x {SIZE} px, imagenette JPEGs (224 px)",
    "digits": "resnet18 at 28 x 28 px, mnist_sample PNGs",
}


def export_model(folder: Path, which: str = "photos") -> tuple[Path, list[bytes]]:
    """One of the benchmark's models (untrained: the speed is the same) and 64 of its
    validation images: efficientnet_lite0 on imagenette photos at 128 px ('photos': the
    model's compute dominates), or resnet18 on 28 px digits ('digits': the per-call cost
    dominates, as for small models)."""
    from mentor.data.external import untar_data
    from mentor.vision import ImageDataLoaders, Resize, vision_learner

    set_seed(0)
    if which == "digits":
        root = untar_data("mnist_sample")
        dls = ImageDataLoaders.from_folder(root, bs=64, num_workers=0, device="cpu")
        learn = vision_learner(dls, "resnet18", pretrained=False)
        images = [p.read_bytes() for p in sorted((root / "valid").rglob("*.png"))[:64]]
        return learn.export(folder / "digits.mentor"), images
    root = untar_data("imagenette_small")
    dls = ImageDataLoaders.from_folder(
        root, train="train", valid="val", item_tfms=Resize(SIZE), bs=32, num_workers=0, device="cpu"
    )
    learn = vision_learner(dls, "efficientnet_lite0", pretrained=False)
    images = [p.read_bytes() for p in sorted((root / "val").rglob("*.JPEG"))[:64]]
    return learn.export(folder / f"efficientnet_lite0_{SIZE}.mentor"), images


class Server:
    """A server process on a free port, stopped on exit."""

    def __init__(self, command: list[str], port: int) -> None:
        env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
        self.port = port
        self.process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while not self.healthy():
            if time.monotonic() > deadline or self.process.poll() is not None:
                self.stop()
                raise RuntimeError(f"the server {command} did not start")
            time.sleep(0.2)

    def healthy(self) -> bool:
        """Whether GET /health answers 200."""
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/health", timeout=5) as r:
                return r.status == 200
        except OSError:
            return False

    def rss_mb(self) -> float:
        """The server process's resident memory, in MB."""
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return float("nan")

    def stop(self) -> None:
        """Stop the process (SIGTERM, then SIGKILL)."""
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()

    def __enter__(self) -> Server:
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()


def free_port() -> int:
    """A port nothing listens on now."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start(kind: str, model: Path, max_batch: int = 16, max_wait_ms: float = 10.0) -> Server:
    """The batching server (`mentor serve`) or the baseline."""
    port = free_port()
    if kind == "baseline":
        return Server([sys.executable, "-m", "bench.serve_baseline", str(model), str(port)], port)
    return Server(
        [
            sys.executable,
            "-m",
            "mentor",
            "serve",
            str(model),
            "--port",
            str(port),
            "--max-batch",
            str(max_batch),
            "--max-wait-ms",
            str(max_wait_ms),
            "--max-queue",
            "1024",
        ],
        port,
    )


@dataclass
class Side:
    """The runs of one server at one client count."""

    runs: list[LoadResult] = field(default_factory=list)

    def median(self, what: str) -> float:
        """The median over runs of `per_second` or a percentile ('p50', 'p95', 'p99')."""
        if what == "per_second":
            return statistics.median(r.per_second for r in self.runs)
        return statistics.median(r.percentile(float(what[1:])) for r in self.runs)

    def statuses(self) -> Counter[int]:
        """Status codes over all runs."""
        return sum((r.statuses for r in self.runs), Counter())

    def line(self, name: str) -> str:
        """One line of the report."""
        codes = " ".join(f"{code}:{n}" for code, n in sorted(self.statuses().items()))
        return (
            f"  {name:9s} {self.median('per_second'):7.1f} images/s   p50 {self.median('p50'):7.1f}"
            f"  p95 {self.median('p95'):7.1f}  p99 {self.median('p99'):7.1f} ms   status {codes}"
        )


def throughput(
    model: Path,
    images: list[bytes],
    clients: tuple[int, ...],
    runs: int,
    per_client: int,
    time_limit_s: float,
) -> dict[int, dict[str, Side]]:
    """Both servers at each client count; runs alternate between the servers."""
    requests = [multipart_image(data, f"{i}.jpg") for i, data in enumerate(images)]
    results: dict[int, dict[str, Side]] = {
        c: {"batching": Side(), "baseline": Side()} for c in clients
    }
    with start("batching", model) as batching, start("baseline", model) as baseline:
        for server in (batching, baseline):  # warm-up: first calls allocate
            run_load(server.port, requests, 4, 32, time_limit_s)
        for c in clients:
            n = max(40, per_client * c)
            for i in range(runs):
                order = [("batching", batching), ("baseline", baseline)]
                for name, server in order if i % 2 == 0 else order[::-1]:
                    results[c][name].runs.append(
                        run_load(server.port, requests, c, n, time_limit_s)
                    )
    return results


def malformed_requests(image: bytes) -> list[Request]:
    """One of each malformed kind the mixed run sends."""
    json_type = "application/json"
    return [
        multipart_image(image[: len(image) // 3], "cut.jpg", kind="truncated image"),
        Request("POST", "/predict", b"hello", "text/plain", kind="wrong content type"),
        Request(
            "POST",
            "/predict",
            json.dumps({"input": "A" * (5 * 2**20)}).encode(),
            json_type,
            kind="huge JSON",
        ),
        Request("POST", "/predict", b'{"image": "abc"}', json_type, kind="missing field"),
        Request("POST", "/predict", b'{"input": 12}', json_type, kind="wrong type"),
        Request("POST", "/predict", b"x" * (20 * 2**20), "image/jpeg", kind="20 MB body"),
    ]


@dataclass
class MixedResult:
    """The mixed run: statuses by kind, memory after the first 1,000 and after all."""

    first: LoadResult
    rest: LoadResult
    rss_first_mb: float
    rss_last_mb: float
    healthy_after: bool

    def by_kind(self) -> dict[str, Counter[int]]:
        """Status codes of each kind of request over the whole run."""
        kinds: dict[str, Counter[int]] = {}
        for result in (self.first, self.rest):
            for kind, counts in result.by_kind.items():
                kinds.setdefault(kind, Counter()).update(counts)
        return kinds

    @property
    def ok(self) -> bool:
        """No 5xx (nor dropped connection), every malformed request a 4xx, healthy, RSS bound."""
        kinds = self.by_kind()
        bad = [k for k in kinds if k != "valid"]
        return (
            all(400 <= s < 500 for k in bad for s in kinds[k])
            and all(s == 200 for s in kinds.get("valid", {}))
            and self.healthy_after
            and self.rss_last_mb - self.rss_first_mb <= RSS_LIMIT_MB
        )


def mixed(model: Path, images: list[bytes], n_requests: int, time_limit_s: float) -> MixedResult:
    """`n_requests` to the batching server, one in five malformed, from 8 clients."""
    valid = [multipart_image(data, f"{i}.jpg") for i, data in enumerate(images)]
    bad = malformed_requests(images[0])
    cycle = [r for i in range(len(bad)) for r in (*valid[4 * i : 4 * i + 4], bad[i])]
    first_n = min(1000, n_requests // 10)
    with start("batching", model) as server:
        first = run_load(server.port, cycle, 8, first_n, time_limit_s)
        rss_first = server.rss_mb()
        rest = run_load(server.port, cycle, 8, n_requests - first_n, time_limit_s)
        rss_last = server.rss_mb()
        return MixedResult(first, rest, rss_first, rss_last, server.healthy())


def report(
    by_model: dict[str, dict[int, dict[str, Side]]],
    mixed_result: MixedResult | None,
    mixed_model: str = "photos",
) -> list[str]:
    """The printed report."""
    lines = [f"machine: {machine()}, {os.cpu_count()} cores; one image per request (multipart)"]
    for which, results in by_model.items():
        lines.append(f"model: {MODELS[which]}")
        lines += _throughput_lines(results)
    if mixed_result is not None:
        lines.append(f"model: {MODELS[mixed_model]}")
        lines += _mixed_lines(mixed_result)
    return lines


def _throughput_lines(results: dict[int, dict[str, Side]]) -> list[str]:
    lines = []
    for c, sides in results.items():
        ratio = sides["batching"].median("per_second") / sides["baseline"].median("per_second")
        p99 = sides["batching"].median("p99") / sides["baseline"].median("p99")
        lines += [
            f"{c} concurrent client(s), medians of {len(sides['batching'].runs)} runs:",
            sides["batching"].line("batching"),
            sides["baseline"].line("baseline"),
            f"  images/s ratio {ratio:.2f}x, p99 ratio {p99:.2f} (batching / baseline)",
        ]
    return lines


def _mixed_lines(m: MixedResult) -> list[str]:
    total = m.first.n + m.rest.n
    lines = [f"mixed run: {total} requests, one in five malformed, 8 clients:"]
    for kind, counts in sorted(m.by_kind().items()):
        lines.append(f"  {kind:20s} " + " ".join(f"{s}:{n}" for s, n in sorted(counts.items())))
    lines.append(
        f"  RSS after {m.first.n}: {m.rss_first_mb:.1f} MB, after {total}: "
        f"{m.rss_last_mb:.1f} MB (+{m.rss_last_mb - m.rss_first_mb:.1f}, limit "
        f"{RSS_LIMIT_MB:g}); /health after: {'ok' if m.healthy_after else 'DOWN'}; "
        f"{'PASS' if m.ok else 'FAIL'}"
    )
    return lines


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print the report."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a short run (smoke test)")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--mixed-requests", type=int, default=10_000)
    parser.add_argument("--clients", type=int, nargs="+", default=list(CLIENTS))
    parser.add_argument("--per-client", type=int, default=12, help="requests per client (12)")
    parser.add_argument("--models", nargs="+", choices=list(MODELS), default=list(MODELS))
    parser.add_argument(
        "--mixed-model",
        choices=list(MODELS),
        default=None,
        help="the model of the mixed run (default: the first of --models)",
    )
    args = parser.parse_args(argv)
    runs, per_client, n_mixed = (args.runs, args.per_client, args.mixed_requests)
    if args.quick:
        runs, per_client, n_mixed = 1, 3, 500
    with tempfile.TemporaryDirectory() as folder:
        by_model = {}
        for which in args.models:
            model, images = export_model(Path(folder), which)
            by_model[which] = throughput(
                model, images, tuple(args.clients), runs, per_client, time_limit_s=120
            )
        mixed_model = args.mixed_model or args.models[0]
        model, images = export_model(Path(folder), mixed_model)
        mixed_result = mixed(model, images, n_mixed, time_limit_s=300)
    print("\n".join(report(by_model, mixed_result, mixed_model)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
