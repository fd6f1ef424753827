"""The `mentor` command: train, lr-find, predict, evaluate, info and demo from the shell.

Run `mentor --help` (or `python -m mentor --help`) for the manual. Bad input ends with one
line on stderr (`mentor: error: ...`) and exit status 1; `--debug` shows the traceback.
`predict` and `evaluate` skip a bad item with one such line each and go on with the others.

Example:
    >>> from mentor.cli import main
    >>> main(["info", "model.mentor"])
"""

from __future__ import annotations

import argparse
import os
import sys
import warnings
from collections.abc import Callable, Sequence
from typing import TextIO

from mentor.cli.errors import USER_ERRORS, message
from mentor.cli.parser import build_parser

# the shell's status for a process whose output pipe was closed (128 + SIGPIPE)
BROKEN_PIPE_STATUS = 141


def _command(name: str) -> Callable[[argparse.Namespace], int]:
    """The function that runs subcommand `name` (imported late: `--help` stays fast)."""
    from mentor.cli import clean, commands, crappify, evaluate, serve, train

    table: dict[str, Callable[[argparse.Namespace], int]] = {
        "train": train.train_command,
        "lr-find": train.lr_find_command,
        "predict": commands.predict_command,
        "info": commands.info_command,
        "evaluate": evaluate.evaluate_command,
        "demo": commands.demo_command,
        "serve": serve.serve_command,
        "clean": clean.clean_command,
        "crappify": crappify.crappify_command,
    }
    return table[name]


def _run(args_list: list[str]) -> int:
    """Parse, check the options that can be checked up front, run the command."""
    from mentor.cli.checks import check_up_front

    args = build_parser().parse_args(args_list)
    args.argv = args_list  # `mentor train --nproc N` starts N processes with the same line
    try:
        with warnings.catch_warnings():
            warnings.showwarning = _WarningLines()
            check_up_front(args)
            return _command(args.command)(args)
    except BrokenPipeError:
        raise
    except USER_ERRORS as err:
        if args.debug:
            raise
        print(f"mentor: error: {message(err)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("mentor: interrupted", file=sys.stderr)
        return 130


class _WarningLines:
    """Shows warnings as one line each on stderr, `mentor: warning: ...` (no source
    location), the first `limit` of them: predicting a CSV row by row may warn per row."""

    def __init__(self, limit: int = 10) -> None:
        self.limit, self.shown = limit, 0

    def __call__(
        self,
        message: Warning | str,
        category: type[Warning],
        filename: str,
        lineno: int,
        file: TextIO | None = None,
        line: str | None = None,
    ) -> None:
        self.shown += 1
        if self.shown <= self.limit:
            print(f"mentor: warning: {' '.join(str(message).split())}", file=sys.stderr)
        elif self.shown == self.limit + 1:
            print("mentor: warning: more warnings are not shown", file=sys.stderr)


def _quiet_broken_pipe() -> int:
    """The reader of stdout went away (`mentor ... | head -1`): stop quietly, as a shell tool
    killed by SIGPIPE would. Later writes, the interpreter's final flush included, go to
    /dev/null (the Python docs' recipe, see the `signal` module's note on SIGPIPE)."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):  # stdout without a file descriptor (captured in a test)
        pass
    return BROKEN_PIPE_STATUS


def main(argv: Sequence[str] | None = None) -> int:
    """Parse `argv` (default: the command line), run the command, return the exit status."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    try:
        try:
            return _run(args_list)
        finally:  # after --help's SystemExit too: a closed pipe shows here, not at exit
            sys.stdout.flush()
    except BrokenPipeError:
        return _quiet_broken_pipe()


__all__ = ["main"]
