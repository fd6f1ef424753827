"""`mentor clean DATA_FOLDER`: the data cleaner's page, and applying or undoing its decisions.

`--model MODEL.mentor` scores every image and serves the page (`mentor.serve.clean_app`);
`--apply LOG` moves the files as the log's decisions say; `--undo LOG` moves them back. The
serve extra (FastAPI, uvicorn) is imported only to serve the page.
"""

from __future__ import annotations

import argparse
import socket
import threading
import webbrowser
from pathlib import Path

from mentor.cli.errors import CLIError
from mentor.cli.parser import MAN, at_least

DEFAULT_LOG = "clean_log.jsonl"

CLEAN_EPILOG = """\
examples:
  mentor clean digits/ --model digits.mentor           # http://127.0.0.1:8001
  mentor clean digits/ --model digits.mentor --split valid --log valid_log.jsonl
  mentor clean digits/ --apply digits/clean_log.jsonl  # move the files
  mentor clean digits/ --undo digits/clean_log.jsonl   # move them back

The folder holds SPLIT/CLASS/image (train/3/a.png) or CLASS/image files. The page shows
the images the model finds most confusing first (highest loss); images that cannot be read,
or whose folder is not one of the model's classes, come first of all. Each decision (keep,
delete, move to another class) is written to the log as it is made. --apply moves deleted
files into DATA_FOLDER/_removed/ and relabelled ones into their new class folder; nothing is
deleted or overwritten, and --undo reverses it (the moves are journalled in LOG.journal)."""


def add_clean_parser(sub: argparse._SubParsersAction) -> None:
    """The `clean` subcommand's options."""
    p = sub.add_parser("clean", help="clean a labelled image folder, most confusing first",
                       description="Show a labelled image folder ordered by a model's loss, "
                       "record keep / delete / relabel decisions, and apply or undo them.",
                       epilog=CLEAN_EPILOG, formatter_class=MAN)  # fmt: skip
    p.add_argument("data", metavar="DATA_FOLDER", help="images in SPLIT/CLASS/ or CLASS/ folders")
    what = p.add_mutually_exclusive_group()
    what.add_argument("--model", default=None, help="a .mentor image classifier: show the page")
    what.add_argument("--apply", metavar="LOG", default=None, help="move the files as LOG says")
    what.add_argument("--undo", metavar="LOG", default=None, help="move back what --apply moved")
    p.add_argument("--log", default=None,
                   help=f"where the decisions go (default: DATA_FOLDER/{DEFAULT_LOG})")  # fmt: skip
    p.add_argument("--split", action="append", default=None, metavar="SPLIT",
                   help="only this split, such as --split valid; repeat it for more "
                   "(default: all)")  # fmt: skip
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (127.0.0.1)")
    p.add_argument("--port", type=at_least(1), default=8001, help="port (8001)")
    p.add_argument("--insecure", action="store_true",
                   help="allow a --host other than 127.0.0.1, localhost or ::1")  # fmt: skip
    p.add_argument("--bs", type=at_least(1), default=64, help="batch size for scoring (64)")
    p.add_argument("--open-browser", choices=("yes", "no"), default="yes",
                   help="open the page in a web browser (yes)")  # fmt: skip
    p.add_argument("--debug", action="store_true", help="show full tracebacks")
    p.add_argument("--device", default="cpu", help="where the model runs: cpu, cuda, cuda:N (cpu)")
    p.set_defaults(command="clean")


def _folder(text: str) -> Path:
    folder = Path(text)
    if not folder.is_dir():
        raise CLIError(f"the data folder {text!r} does not exist; give a folder of SPLIT/CLASS/ "
                       "or CLASS/ image folders")  # fmt: skip
    return folder


def _apply_or_undo(args: argparse.Namespace, folder: Path) -> int:
    """Move the files (--apply) or move them back (--undo), one line per move."""
    from mentor.serve.clean_apply import apply_log, undo_log

    log = args.apply or args.undo
    if args.apply:
        steps = apply_log(folder, log)
        moved = sum(step.dst is not None for step in steps)
        print(f"mentor: moved {moved} file(s), skipped {len(steps) - moved}; "
              f"undo with: mentor clean {args.data} --undo {log}")  # fmt: skip
    else:
        steps = undo_log(folder, log)
        moved = sum(step.dst is not None for step in steps)
        print(f"mentor: moved {moved} file(s) back, left {len(steps) - moved} where they are")
    return 0


def _check_port(host: str, port: int) -> None:
    """CLIError when the address cannot be listened on (checked before the model loads)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        with socket.socket(infos[0][0], socket.SOCK_STREAM) as sock:
            sock.bind(infos[0][4])
    except OSError as err:
        raise CLIError(f"cannot listen on {host}:{port} ({err.strerror or err}); pick another "
                       "--port or --host") from None  # fmt: skip


def _serve(args: argparse.Namespace, folder: Path) -> int:
    """Score the folder with the model and serve the page until interrupted."""
    try:
        import uvicorn

        from mentor.serve.clean_app import create_clean_app
    except ImportError as err:  # pragma: no cover - the extra is missing
        raise CLIError(f"the cleaner's page needs the serve extra: pip install 'mentor[serve]' "
                       f"({err})") from None  # fmt: skip
    from mentor.cli.commands import load_predictor
    from mentor.serve.clean import DatasetCleaner
    from mentor.serve.server import is_loopback

    if not is_loopback(args.host) and not args.insecure:
        raise CLIError(f"--host {args.host} would let anyone on your network see the images and "
                       "record decisions; give --insecure if that is what you want")  # fmt: skip
    _check_port(args.host, args.port)
    log = Path(args.log) if args.log else folder / DEFAULT_LOG
    cleaner = DatasetCleaner.from_folder(folder, load_predictor(args), log, args.split, args.bs)
    host = f"[{args.host}]" if ":" in args.host else args.host
    url = f"http://{host}:{args.port}/"
    print(f"mentor: {len(cleaner)} images, most confusing first, on {url} (Ctrl-C stops)")
    print(f"mentor: decisions go to {log}; then: mentor clean {args.data} --apply {log}")
    if args.open_browser == "yes":
        threading.Timer(1.0, webbrowser.open, [url]).start()  # once the server listens
    uvicorn.run(create_clean_app(cleaner), host=args.host, port=args.port, log_level="warning")
    return 0


def clean_command(args: argparse.Namespace) -> int:
    """Serve the cleaner's page (--model), or apply (--apply) or undo (--undo) a log."""
    folder = _folder(args.data)
    if args.apply or args.undo:
        return _apply_or_undo(args, folder)
    if args.model is None:
        raise CLIError(f"mentor clean {args.data} needs --model MODEL.mentor to show the images "
                       "(or --apply LOG / --undo LOG to move files)")  # fmt: skip
    return _serve(args, folder)


__all__ = ["add_clean_parser", "clean_command"]
