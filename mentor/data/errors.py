"""Errors of the data layer that item readers raise (kept apart so readers stay light)."""


class BadItemError(OSError):
    """An item that cannot be read (a corrupt image, say); its message names the file."""


__all__ = ["BadItemError"]
