"""A web server on 127.0.0.1 for the download tests: it serves files (honouring Range),
answers 404, hangs, ignores Range, or drops the connection midway, and records each request."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType


@dataclass
class Route:
    """How the server answers one path."""

    body: bytes = b""
    status: int = 200
    hang: bool = False  # answer nothing until the server stops
    drop_after: int | None = None  # the first answer stops after this many bytes of the body
    ignore_range: bool = False  # always send the whole file with 200


class FileServer:
    """`serve(path, body, ...)` returns the URL; `requests` lists (path, Range header)."""

    def __init__(self) -> None:
        self.routes: dict[str, Route] = {}
        self.requests: list[tuple[str, str | None]] = []
        self.stop = threading.Event()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self.httpd.daemon_threads = True
        self.httpd.files = self  # type: ignore[attr-defined]
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.02,), daemon=True)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/"

    def url(self, path: str) -> str:
        return self.base + path.lstrip("/")

    def serve(self, path: str, body: bytes = b"", **how: object) -> str:
        self.routes["/" + path.lstrip("/")] = Route(body, **how)  # type: ignore[arg-type]
        return self.url(path)

    def ranges(self, path: str) -> list[str | None]:
        """The Range header of each request for `path` (None: the whole file)."""
        return [rng for got, rng in self.requests if got == "/" + path.lstrip("/")]

    def __enter__(self) -> FileServer:
        self.thread.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, err: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop.set()  # hanging answers end
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(5)


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 - the name http.server calls
        files: FileServer = self.server.files  # type: ignore[attr-defined]
        rng = self.headers.get("Range")
        files.requests.append((self.path, rng))
        route = files.routes.get(self.path)
        if route is None or route.status != 200:
            self.send_error(404 if route is None else route.status)
            return
        if route.hang:
            files.stop.wait(30)
            return
        body, start = route.body, 0
        if rng and not route.ignore_range:
            start = int(rng.removeprefix("bytes=").split("-")[0])
            if start >= len(body):
                self.send_error(416)
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
        else:
            self.send_response(200)
        self.send_header("Content-Length", str(len(body) - start))
        self.end_headers()
        rest = body[start:]
        if route.drop_after is not None:  # once: the next request gets the whole answer
            rest, route.drop_after = rest[: route.drop_after], None
        self.wfile.write(rest)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        """Quiet: the tests read `requests` instead."""
