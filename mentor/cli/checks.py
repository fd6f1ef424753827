"""Checks the `mentor` command makes before it starts working: the device and the lr-find
plot file are refused in one line up front, not after a model was loaded or a sweep ran."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import torch

from mentor.cli.errors import CLIError


def available_devices() -> list[str]:
    """The devices torch can use here, for messages: cpu, then cuda:N and mps if present."""
    names = ["cpu"]
    if torch.cuda.is_available():
        names += [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    if torch.backends.mps.is_available():
        names.append("mps")
    return names


def check_device(text: str) -> str | None:
    """The --device option checked: None for 'auto', else `text` when torch can use it here.

    Raises CLIError naming the device and the devices that are available.
    """
    if text == "auto":
        return None
    available = available_devices()
    try:
        device = torch.device(text)
    except (RuntimeError, ValueError):
        raise CLIError(f"--device {text!r} is not a device name; use auto or one of "
                       f"{', '.join(available)}") from None  # fmt: skip
    usable = device.type == "cpu" or str(device) in available
    if device.type == "cuda" and device.index is None:
        usable = any(name.startswith("cuda:") for name in available)
    if not usable:
        raise CLIError(f"--device {text} is not available on this machine (available: "
                       f"{', '.join(available)}); use --device cpu")  # fmt: skip
    return text


def check_plot_file(path: str) -> Path:
    """The lr-find --plot file, refused before the sweep when it could not be written: its
    folder is missing or read-only, or matplotlib cannot write its suffix."""
    from matplotlib.backend_bases import FigureCanvasBase

    file = Path(path)
    folder = file.parent
    if not folder.is_dir():
        raise CLIError(f"--plot {path!r}: the folder {str(folder)!r} does not exist; create it "
                       "or write the plot elsewhere")  # fmt: skip
    if not os.access(folder, os.W_OK | os.X_OK):
        raise CLIError(f"--plot {path!r}: the folder {str(folder)!r} is not writable; write "
                       "the plot elsewhere")  # fmt: skip
    if file.is_dir():
        raise CLIError(f"--plot {path!r} is a folder; give a file name such as lr_find.png")
    formats = FigureCanvasBase.get_supported_filetypes()
    suffix = file.suffix.lower().lstrip(".")
    if suffix and suffix not in formats:
        raise CLIError(f"--plot {path!r}: matplotlib cannot write .{suffix} files; use one of "
                       f"{', '.join('.' + f for f in sorted(formats))}")  # fmt: skip
    return file


def check_up_front(args: argparse.Namespace) -> None:
    """The checks every command makes before it loads data or a model."""
    if hasattr(args, "device"):
        check_device(args.device)
    if getattr(args, "plot", None):
        check_plot_file(args.plot)
