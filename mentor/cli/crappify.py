"""`mentor crappify SRC DST`: write a degraded copy of an image folder (lesson 7's inputs for
image restoration), through `mentor.vision.crappifier.crappify_folder`."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from mentor.cli.errors import CLIError
from mentor.cli.parser import MAN, at_least

CRAPPIFY_EPILOG = """\
examples:
  mentor crappify imagenette/val crappy/val --size 128
  mentor crappify photos/ crappy/ --low-size 48 --quality 20 50 --text --workers 4

Each image under SRC is shrunk so its shorter side is --low-size, optionally marked with a
random number (--text), saved as a JPEG of a random quality in --quality LOW HIGH and scaled
back up; the copy goes to the same relative path under DST (PNG stays PNG, a .jpg is saved
at quality 95). With --size N each image is first scaled so its shorter side is N: train a
model to map DST's images to SRC's resized to N. The same --seed gives the same files."""


def add_crappify_parser(sub: argparse._SubParsersAction) -> None:
    """The `crappify` subcommand's options."""
    p = sub.add_parser("crappify", help="write a degraded copy of an image folder",
                       description="Write a crappified copy (shrunk, JPEG-compressed, scaled "
                       "back up) of every image under SRC to DST, for image restoration.",
                       epilog=CRAPPIFY_EPILOG, formatter_class=MAN)  # fmt: skip
    p.add_argument("src", metavar="SRC", help="the folder of originals (searched recursively)")
    p.add_argument("dst", metavar="DST", help="where the copies go (not inside SRC)")
    p.add_argument(
        "--size",
        type=at_least(1),
        default=None,
        metavar="N",
        help="first scale each image so its shorter side is N (default: keep)",
    )
    p.add_argument(
        "--low-size",
        type=at_least(1),
        default=64,
        metavar="N",
        help="shorter side of the shrunk image (default: 64)",
    )
    p.add_argument(
        "--quality",
        type=at_least(1),
        nargs=2,
        default=[10, 70],
        metavar=("LOW", "HIGH"),
        help="JPEG quality range, both included, in 1..95 (default: 10 70)",
    )
    p.add_argument("--text", action="store_true", help="draw a random number on each image")
    p.add_argument("--seed", type=at_least(0), default=0, help="random seed (default: 0)")
    p.add_argument(
        "--workers",
        type=at_least(1),
        default=None,
        metavar="N",
        help="processes (default: one per CPU)",
    )
    p.add_argument("--debug", action="store_true", help="show full tracebacks")
    p.set_defaults(command="crappify")


def crappify_command(args: argparse.Namespace) -> int:
    """Crappify the folder and print how many files were written, where, and how long it took."""
    from mentor.vision.crappifier import crappify_folder

    src, dst = Path(args.src), Path(args.dst)
    if not src.is_dir():
        raise CLIError(f"SRC {args.src!r} is not a folder; give a folder of images")
    start = time.perf_counter()
    written = crappify_folder(src, dst, size=args.size, low_size=args.low_size,
                              quality=tuple(args.quality), text=args.text, seed=args.seed,
                              workers=args.workers)  # fmt: skip
    seconds = time.perf_counter() - start
    print(f"mentor: wrote {written} crappified image(s) to {dst} in {seconds:.1f} s")
    return 0


__all__ = ["add_crappify_parser", "crappify_command"]
