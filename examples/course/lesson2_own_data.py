"""Lesson 2: your own image data set from lists of URLs, cleaned, trained, exported and used.

The lesson's steps, with mentor's names: one text file of image URLs per class (the course
collects them from an image search), `download_images` into a folder per class,
`verify_images` to find what does not decode (removed), `ImageDataLoaders.from_folder` with a
random split, `vision_learner` and `fine_tune`, `learn.export()`, then in "production"
`load_learner` and `predict` on a new image.

This machine has no internet, so by default the URLs point at a small web server this script
starts on 127.0.0.1, serving imagenette images of three classes (tench, English springer,
church) from `$MENTOR_DATA`; two URLs in each list are broken on purpose (a missing file and a
file that is not an image) to show what the download skips. `--urls-dir DIR` uses your own
`urls_<class>.txt` files instead.

Floors: 90% accuracy of the loaded model on held-out images it never saw (the tests also
check that every good URL was saved and every broken one skipped). Measured: 180 images
saved, 6 URLs skipped, 100% of 30 held-out images in 11 s on 2 cores (128 px); quick (3 x
24 images at 96 px): 100% of 18 in 3 s. Run with `python -m examples.course.lesson2_own_data`.
"""

from __future__ import annotations

import contextlib
import functools
import sys
import threading
import time
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from examples.course import lesson_main
from mentor.core.seed import set_seed
from mentor.data.external import untar_data
from mentor.data.items import get_image_files
from mentor.inference.learner import load_learner
from mentor.train import accuracy
from mentor.vision import ImageDataLoaders, Resize, download_images, vision_learner
from mentor.vision.image import verify_images

CLASSES = {"tench": "n01440764", "springer": "n02102040", "church": "n03028079"}
FLOOR = 0.9


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (the base's name)
        """No line per request."""


@contextlib.contextmanager
def serve_folder(folder: Path) -> Iterator[str]:
    """Serve `folder` over HTTP on 127.0.0.1 (a free port) for the block; yields its URL."""
    handler = functools.partial(_QuietHandler, directory=str(folder))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def site(source: Path, folder: Path) -> Path:
    """The served folder: links to the class folders of `source`, and a text file."""
    folder.mkdir(parents=True, exist_ok=True)
    for wnid in CLASSES.values():
        if not (folder / wnid).exists():
            (folder / wnid).symlink_to(source / wnid, target_is_directory=True)
    (folder / "not_an_image.txt").write_text("this is not a picture\n")
    return folder


def write_url_lists(source: Path, base: str, dest: Path, n: int) -> list[Path]:
    """`urls_<class>.txt` in `dest` for `n` images of each class of `source` (imagenette's
    train folder served at `base`), each with a dead link and a link to a non-image."""
    dest.mkdir(parents=True, exist_ok=True)
    files = []
    for name, wnid in CLASSES.items():
        images = sorted((source / wnid).glob("*.JPEG"))[:n]
        urls = [f"{base}/{wnid}/{f.name}" for f in images]
        urls += [f"{base}/{wnid}/missing.jpg", f"{base}/not_an_image.txt"]
        file = dest / f"urls_{name}.txt"
        file.write_text("\n".join(urls) + "\n")
        files.append(file)
    return files


def held_out(source: Path, n: int) -> list[tuple[Path, str]]:
    """`n` images per class that the URL lists do not hold (imagenette's val folder)."""
    return [
        (f, name) for name, wnid in CLASSES.items() for f in sorted((source / wnid).iterdir())[:n]
    ]


def run(quick: bool = False, out: Path | None = None, urls_dir: Path | None = None) -> dict:
    """The lesson; returns what was downloaded, skipped and removed, and the accuracy of the
    exported model after loading it, on held-out images."""
    start = time.perf_counter()
    set_seed(42)
    out = out or Path("lesson2_out")
    imagenette = untar_data("imagenette_small")
    n = 24 if quick else 60
    with serve_folder(site(imagenette / "train", out / "site")) as base:
        lists = (sorted(urls_dir.glob("urls_*.txt")) if urls_dir
                 else write_url_lists(imagenette / "train", base, out / "urls", n))  # fmt: skip
        path = out / "images"
        reports = {f.stem[5:]: download_images(f, path / f.stem[5:], max_pics=n + 2) for f in lists}
    bad = verify_images(get_image_files(path))  # download_images checks too: none left here
    for file in bad:
        file.unlink()

    size = 96 if quick else 128
    dls = ImageDataLoaders.from_folder(path, valid_pct=0.2, seed=42, item_tfms=Resize(size),
                                       bs=16 if quick else 32, num_workers=0)  # fmt: skip
    learn = vision_learner(dls, "efficientnet_lite0", metrics=accuracy)
    learn.progress.show = not quick
    learn.fine_tune(1 if quick else 2, base_lr=3e-3)
    exported = learn.export(out / "export.mentor")

    production = load_learner(exported)  # as a web app would: no training data needed
    checks = held_out(imagenette / "val", 6 if quick else 10)
    right = sum(production.predict(file)[0] == label for file, label in checks)
    return {
        "saved": sum(len(r.saved) for r in reports.values()),
        "failed": sum(len(r.failed) for r in reports.values()),
        "removed_by_verify": len(bad),
        "exported_bytes": exported.stat().st_size,
        "held_out_accuracy": right / len(checks),
        "seconds": time.perf_counter() - start,
    }


def shortfalls(found: dict[str, float], quick: bool) -> list[str]:
    """The loaded model's accuracy when below the floor."""
    accuracy = found["held_out_accuracy"]
    return [] if accuracy >= FLOOR else [f"held-out accuracy {accuracy:.1%} below {FLOOR:.0%}"]


def main(argv: list[str] | None = None) -> int:
    """Run the lesson; 1 when the loaded model misses its floor."""
    urls = {"type": Path, "default": None, "help": "a folder of your urls_<class>.txt files"}
    return lesson_main(__doc__, argv, run, shortfalls, "lesson2_out", [("--urls-dir", urls)])


if __name__ == "__main__":
    sys.exit(main())
