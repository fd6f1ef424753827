"""The errors of the `mentor` command and how they are shown: one line on stderr each.

A whole command stops on a `USER_ERRORS` error (exit status 1). An error in one INPUT of
`predict` or one item of `evaluate` (`ITEM_ERRORS`) is reported on its own line and the
other items go on; the command then exits 1.
"""

from __future__ import annotations

import sys
import traceback

from PIL import Image, UnidentifiedImageError

from mentor.data.errors import worker_message


class CLIError(ValueError):
    """Bad input from the command line, reported as one line on stderr."""


# what one bad item raises: an unreadable image (BadImageError and UnidentifiedImageError are
# OSErrors; a decompression bomb is not), a bad tabular row (ValueError, KeyError), a bad
# value's type
ITEM_ERRORS: tuple[type[Exception], ...] = (
    OSError,
    ValueError,
    KeyError,
    TypeError,
    Image.DecompressionBombError,
)

# the library's errors for bad input; anything else is a bug and keeps its traceback
USER_ERRORS: tuple[type[Exception], ...] = (
    *ITEM_ERRORS,
    FloatingPointError,  # TrainingDiverged: the fit stopped, nothing was exported
)


def message(err: BaseException) -> str:
    """One line for an error: its text without newlines (KeyError's quotes dropped)."""
    text = str(err.args[0]) if isinstance(err, KeyError) and err.args else worker_message(err)
    text = " ".join(text.split()) or type(err).__name__
    return text if not isinstance(err, UnidentifiedImageError) else f"not an image: {text}"


def report_item(name: str, err: BaseException, debug: bool = False) -> int:
    """Print `mentor: error: NAME: why` on stderr (after the traceback with `debug`) for an
    item that was skipped; return 1, the count of failed items it adds."""
    if debug:
        traceback.print_exception(err, file=sys.stderr)
    print(f"mentor: error: {name}: {message(err)}", file=sys.stderr)
    return 1
