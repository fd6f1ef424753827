"""A small, bounded HTTP/1.1 load generator for the serving benchmark (127.0.0.1 only).

`C` clients, each with its own keep-alive connection, send requests one after another until
`n_requests` have been sent in all or `time_limit_s` has passed; each request's status and
latency are recorded. Written on asyncio streams (no HTTP library): the client must cost the
2-core machine as little CPU as possible, since the server runs beside it.
"""

from __future__ import annotations

import asyncio
import statistics
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Request:
    """One request: method, path, headers and body (`kind` names it in the report)."""

    method: str
    path: str
    body: bytes = b""
    content_type: str | None = None
    kind: str = "valid"
    length: int | None = None  # a Content-Length other than the body's (None: the body's)

    def encode(self, host: str) -> bytes:
        """The request's bytes."""
        lines = [f"{self.method} {self.path} HTTP/1.1", f"Host: {host}"]
        if self.content_type:
            lines.append(f"Content-Type: {self.content_type}")
        lines.append(f"Content-Length: {len(self.body) if self.length is None else self.length}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode() + self.body


def multipart_image(data: bytes, name: str = "image.jpg", kind: str = "valid") -> Request:
    """POST /predict with one image file in the form field 'file'."""
    boundary = uuid.uuid4().hex
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{name}"\r\n'
            f"Content-Type: image/jpeg\r\n\r\n"
        ).encode()
        + data
        + f"\r\n--{boundary}--\r\n".encode()
    )
    return Request("POST", "/predict", body, f"multipart/form-data; boundary={boundary}", kind)


@dataclass
class LoadResult:
    """Statuses and latencies of one load run."""

    clients: int
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)
    statuses: Counter[int] = field(default_factory=Counter)
    by_kind: dict[str, Counter[int]] = field(default_factory=dict)

    @property
    def n(self) -> int:
        """Requests answered."""
        return len(self.latencies)

    @property
    def per_second(self) -> float:
        """Requests answered per second."""
        return self.n / self.seconds if self.seconds else 0.0

    def percentile(self, q: float) -> float:
        """The q-th percentile latency in milliseconds."""
        if len(self.latencies) < 2:
            return 1000 * (self.latencies[0] if self.latencies else float("nan"))
        return 1000 * statistics.quantiles(self.latencies, n=100, method="inclusive")[int(q) - 1]


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bool]:
    """The status of one response, and whether the server keeps the connection open."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {
        k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:] if line)
    }
    if "content-length" in headers:
        await reader.readexactly(int(headers["content-length"]))
    elif headers.get("transfer-encoding") == "chunked":
        while True:
            size = int((await reader.readline()).strip(), 16)
            await reader.readexactly(size + 2)
            if size == 0:
                break
    return status, headers.get("connection", "").lower() != "close"


async def _client(
    port: int, next_request: Callable[[], Request | None], result: LoadResult, deadline: float
) -> None:
    reader: asyncio.StreamReader | None = None
    writer: asyncio.StreamWriter | None = None
    host = f"127.0.0.1:{port}"
    while time.monotonic() < deadline and (request := next_request()) is not None:
        if writer is None:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
        assert reader is not None
        start = time.perf_counter()
        keep = False
        try:  # no drain: a server may answer (413) and close before reading a large body
            writer.write(request.encode(host))
            status, keep = await _read_response(reader)
        except (ConnectionError, asyncio.IncompleteReadError):
            status = 0  # the server closed the connection: counted, not a crash of the client
        result.latencies.append(time.perf_counter() - start)
        result.statuses[status] += 1
        result.by_kind.setdefault(request.kind, Counter())[status] += 1
        if not keep:
            writer.close()
            reader = writer = None
    if writer is not None:
        writer.close()


def run_load(
    port: int, requests: list[Request], clients: int, n_requests: int, time_limit_s: float
) -> LoadResult:
    """Send `n_requests` (cycling through `requests`) from `clients` connections."""
    result = LoadResult(clients)
    sent = [0]

    def next_request() -> Request | None:
        if sent[0] >= n_requests:
            return None
        sent[0] += 1
        return requests[(sent[0] - 1) % len(requests)]

    async def main() -> None:
        deadline = time.monotonic() + time_limit_s
        await asyncio.gather(
            *(_client(port, next_request, result, deadline) for _ in range(clients))
        )

    start = time.perf_counter()
    asyncio.run(main())
    result.seconds = time.perf_counter() - start
    return result


__all__ = ["LoadResult", "Request", "multipart_image", "run_load"]
