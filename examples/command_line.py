"""Lesson 1 from the shell: the `mentor` command on imagenette_small, as a user types it.

`mentor train image` (`fine_tune(1)` of efficientnet_lite0 at 160 px at fine_tune's rate, the
frozen epoch on precomputed features, export, report), then `mentor evaluate` on the 500
validation JPEGs with the exported model.
`python -m examples.command_line --out cli_out` (about 4 minutes on 2 cores).
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import time
from pathlib import Path

from mentor.data.external import untar_data

TARGET = 0.96  # the README's run: 96.8%


def mentor(*args: str) -> str:
    """Run `python -m mentor ARGS` (the same as the `mentor` command), echo and return stdout."""
    done = subprocess.run([sys.executable, "-m", "mentor", *args], capture_output=True, text=True)
    print(done.stdout, end="")
    if done.returncode != 0:
        raise SystemExit(f"mentor {' '.join(args)} failed ({done.returncode}): {done.stderr}")
    return done.stdout


def main(argv: list[str] | None = None) -> int:
    """Train, export and evaluate from the shell; return 0 when accuracy reaches 96%."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", default="cli_out", help="folder for the model and its report")
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    data = untar_data("imagenette_small")
    model = out / "imagenette.mentor"

    start = time.perf_counter()
    mentor("train", "image", str(data), "--valid", "val", "--arch", "efficientnet_lite0",
           "--size", "160", "--epochs", "1", "--out", str(model))  # fmt: skip
    train_s = time.perf_counter() - start
    start = time.perf_counter()
    report = mentor("evaluate", str(model), str(data / "val"))
    evaluate_s = time.perf_counter() - start
    found = re.search(r"^accuracy: ([0-9.]+)$", report, flags=re.MULTILINE)
    if found is None:
        raise SystemExit("mentor evaluate printed no accuracy line")
    acc = float(found.group(1))
    print(
        f"mentor train image on imagenette_small: validation accuracy {acc:.4f} (target >= "
        f"{TARGET}) in {train_s:.0f} s with the export and report; evaluate {evaluate_s:.1f} s"
    )
    return 0 if acc >= TARGET else 1


if __name__ == "__main__":
    sys.exit(main())
