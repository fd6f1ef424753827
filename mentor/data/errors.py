"""Errors of the data layer that item readers raise (kept apart so readers stay light)."""


class BadItemError(OSError):
    """An item that cannot be read (a corrupt image, say); its message names the file."""


def worker_message(err: BaseException) -> str:
    """The error's own message: a loader worker's error comes back as "Caught X in DataLoader
    worker process 0. Original Traceback ...", whose last line is `module.X: message`."""
    text = str(err)
    if "Original Traceback" not in text:
        return text
    last = text.strip().splitlines()[-1]
    name = f"{type(err).__module__}.{type(err).__qualname__}: "
    return last[len(name) :] if last.startswith(name) else last


__all__ = ["BadItemError", "worker_message"]
