"""`mentor serve MODEL.mentor`: the model's web page and HTTP API (`mentor.serve`).

The serve extra (FastAPI, uvicorn) is imported only when the command runs.
"""

from __future__ import annotations

import argparse
import os

from mentor.cli.errors import CLIError
from mentor.cli.parser import MAN, at_least, non_negative_float

SERVE_EPILOG = """\
examples:
  mentor serve pets.mentor                       # http://127.0.0.1:8000
  mentor serve pets.mentor --port 9000 --max-batch 64 --max-wait-ms 10
  mentor serve pets.mentor --host 0.0.0.0 --api-key "$KEY" --workers 2

endpoints:
  GET /          a page for the model (image drop zone, text box, form...)
  POST /predict  JSON {"input": ...} or {"inputs": [...]}, or image files (field 'file')
  GET /info, /health, /metrics (Prometheus), /docs
  POST /generate (language models), GET /recommend?user=U&n=10 (collab models)

Requests arriving together are predicted in one batch (--max-batch, --max-wait-ms).
A host other than 127.0.0.1/localhost needs --api-key (or MENTOR_API_KEY), or --insecure."""


def add_serve_parser(sub: argparse._SubParsersAction) -> None:
    """The `serve` subcommand's options."""
    p = sub.add_parser("serve", help="serve a model as a web page and HTTP API",
                       description="Serve an exported model: a web page, a JSON API with "
                       "request batching, health and Prometheus metrics.",
                       epilog=SERVE_EPILOG, formatter_class=MAN)  # fmt: skip
    p.add_argument("model", metavar="MODEL", help="a .mentor file")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (127.0.0.1)")
    p.add_argument("--port", type=at_least(1), default=8000, help="port (8000)")
    p.add_argument("--workers", type=at_least(1), default=1, help="server processes (1)")
    p.add_argument("--threads", type=at_least(1), default=None,
                   help="PyTorch threads per process (default: cores / workers)")  # fmt: skip
    p.add_argument("--max-batch", type=at_least(1), default=32, help="items per model call (32)")
    p.add_argument("--max-wait-ms", type=non_negative_float, default=5.0,
                   help="how long a request waits for others to batch with (5)")  # fmt: skip
    p.add_argument("--api-key", default=None,
                   help="key every API request must send (X-API-Key or Authorization: Bearer); "
                   "default: $MENTOR_API_KEY")  # fmt: skip
    p.add_argument("--insecure", action="store_true",
                   help="allow a non-loopback --host without an API key")  # fmt: skip
    p.add_argument("--max-upload-mb", type=non_negative_float, default=16.0,
                   help="largest request body in MB (16)")  # fmt: skip
    p.add_argument("--max-items", type=at_least(1), default=64, help="items per request (64)")
    p.add_argument("--max-queue", type=at_least(1), default=256,
                   help="items waiting for the model before answering 503 (256)")  # fmt: skip
    p.add_argument("--timeout", type=non_negative_float, default=30.0,
                   help="seconds a request may wait for the model before 504 (30)")  # fmt: skip
    p.add_argument("--debug", action="store_true", help="show full tracebacks")
    p.add_argument("--device", default="cpu", help="where the model runs: cpu, cuda, cuda:N (cpu)")
    p.set_defaults(command="serve")


def serve_command(args: argparse.Namespace) -> int:
    """Check the options and the model file, then serve until interrupted."""
    try:
        from mentor.serve.limits import Limits
        from mentor.serve.server import ServeConfig, check_exposure, serve
    except ImportError as err:  # pragma: no cover - the extra is missing
        raise CLIError(
            f"mentor serve needs the serve extra: pip install 'mentor[serve]' ({err})"
        ) from None
    from mentor.cli.train import _existing

    _existing(args.model, "model file")
    limits = Limits(max_upload_mb=args.max_upload_mb, max_json_mb=min(4.0, args.max_upload_mb),
                    max_items=args.max_items, max_queue=args.max_queue,
                    timeout_s=args.timeout)  # fmt: skip
    config = ServeConfig(
        model=args.model, host=args.host, port=args.port, workers=args.workers,
        threads=args.threads, max_batch=args.max_batch, max_wait_ms=args.max_wait_ms,
        api_key=args.api_key or os.environ.get("MENTOR_API_KEY") or None,
        insecure=args.insecure, device=args.device, limits=limits,
    )  # fmt: skip
    try:
        check_exposure(config)
    except ValueError as err:
        raise CLIError(str(err)) from None
    print(f"mentor: serving {args.model} on http://{args.host}:{args.port} (Ctrl-C stops)")
    serve(config)
    return 0


__all__ = ["add_serve_parser", "serve_command"]
