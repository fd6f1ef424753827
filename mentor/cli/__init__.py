"""The `mentor` command: train, lr-find, predict, evaluate, info and demo from the shell.

Run `mentor --help` (or `python -m mentor --help`) for the manual. Bad input ends with one
line on stderr (`mentor: error: ...`) and exit status 1; `--debug` shows the traceback.

Example:
    >>> from mentor.cli import main
    >>> main(["info", "model.mentor"])
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from PIL import UnidentifiedImageError

from mentor.cli.parser import build_parser

# the library's errors for bad input; anything else is a bug and keeps its traceback
USER_ERRORS: tuple[type[BaseException], ...] = (
    FileNotFoundError,
    KeyError,
    ValueError,
    TypeError,
    OSError,
    UnidentifiedImageError,
    FloatingPointError,  # TrainingDiverged: the fit stopped, nothing was exported
)


def _command(name: str) -> Callable[[argparse.Namespace], int]:
    """The function that runs subcommand `name` (imported late: `--help` stays fast)."""
    from mentor.cli import commands, train

    table: dict[str, Callable[[argparse.Namespace], int]] = {
        "train": train.train_command,
        "lr-find": train.lr_find_command,
        "predict": commands.predict_command,
        "info": commands.info_command,
        "evaluate": commands.evaluate_command,
        "demo": commands.demo_command,
    }
    return table[name]


def _message(err: BaseException) -> str:
    """One line for an error: its text without newlines (KeyError's quotes dropped)."""
    text = str(err.args[0]) if isinstance(err, KeyError) and err.args else str(err)
    text = " ".join(text.split()) or type(err).__name__
    return text if not isinstance(err, UnidentifiedImageError) else f"not an image: {text}"


def main(argv: Sequence[str] | None = None) -> int:
    """Parse `argv` (default: the command line), run the command, return the exit status."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args_list
    args = build_parser().parse_args(args_list)
    try:
        return _command(args.command)(args)
    except USER_ERRORS as err:
        if debug:
            raise
        print(f"mentor: error: {_message(err)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("mentor: interrupted", file=sys.stderr)
        return 130


__all__ = ["main"]
