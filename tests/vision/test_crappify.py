"""crappify and crappify_folder on real imagenette images, and the `mentor crappify` command."""

from __future__ import annotations

import hashlib
import random
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from mentor.cli import main
from mentor.data.external import untar_data
from mentor.data.items import get_image_files
from mentor.vision.crappifier import crappify, crappify_folder
from mentor.vision.image_metrics import PSNR, SSIM


@pytest.fixture(scope="module")
def val_files() -> list[Path]:
    """Twelve imagenette_small validation JPEGs (224 x 224), from several classes."""
    try:
        root = untar_data("imagenette_small")
    except FileNotFoundError as err:
        pytest.skip(f"imagenette_small is not available: {err}")
    return get_image_files(root / "val")[::41][:12]


@pytest.fixture()
def small_tree(tmp_path: Path, val_files: list[Path]) -> Path:
    """src/<class>/<name>.JPEG for six images, one as PNG in a nested folder, and a text
    file that is not an image."""
    src = tmp_path / "src"
    for file in val_files[:5]:
        (src / file.parent.name).mkdir(parents=True, exist_ok=True)
        shutil.copy(file, src / file.parent.name / file.name)
    (src / "nested" / "deeper").mkdir(parents=True)
    Image.open(val_files[5]).crop((0, 0, 200, 150)).save(src / "nested" / "deeper" / "x.png")
    (src / "labels.csv").write_text("name,label\n")
    return src


def _pixels(image: Image.Image) -> torch.Tensor:
    return (
        torch.tensor(np.asarray(image.convert("RGB")), dtype=torch.float32).permute(2, 0, 1)[None]
        / 255
    )


def _digest(folder: Path) -> dict[str, str]:
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}  # fmt: skip


def test_crappify_keeps_the_size_and_degrades_clearly(val_files: list[Path]) -> None:
    image = Image.open(val_files[0]).convert("RGB")
    wide = image.crop((0, 20, 224, 180))  # 224 x 160: not square
    for original in (image, wide, wide.convert("L")):
        out = crappify(original, rng=random.Random(0))
        assert out.size == original.size and out.mode == original.mode
    psnrs = [PSNR()(_pixels(crappify(Image.open(f), rng=random.Random(i))), _pixels(Image.open(f)))
             for i, f in enumerate(val_files[:6])]  # fmt: skip
    assert all(15 < p < 40 for p in psnrs), psnrs
    # a gentler degradation scores higher: low_size 160 at quality 90
    gentle = crappify(image, low_size=160, quality=(90, 90), rng=random.Random(0))
    harsh = crappify(image, low_size=32, quality=(10, 10), rng=random.Random(0))
    assert PSNR()(_pixels(gentle), _pixels(image)) > PSNR()(_pixels(harsh), _pixels(image)) + 5
    assert SSIM()(_pixels(gentle), _pixels(image)) > SSIM()(_pixels(harsh), _pixels(image))


def test_crappify_is_reproducible_and_text_changes_it(val_files: list[Path]) -> None:
    image = Image.open(val_files[1]).convert("RGB")
    same = [np.asarray(crappify(image, text=True, rng=random.Random(3))) for _ in range(2)]
    assert np.array_equal(*same)
    other = np.asarray(crappify(image, text=True, rng=random.Random(4)))
    assert not np.array_equal(same[0], other)
    # the same draws without the number: the number shows as a patch of changed pixels
    plain = crappify(image, quality=(40, 40), rng=random.Random(5))
    marked = crappify(image, quality=(40, 40), text=True, rng=random.Random(5))
    changed = np.abs(np.asarray(plain, dtype=int) - np.asarray(marked, dtype=int)).max(axis=2)
    assert (changed > 60).sum() > 50


def test_crappify_refuses_bad_arguments(val_files: list[Path]) -> None:
    image = Image.open(val_files[0])
    with pytest.raises(ValueError, match="low_size 0 must be"):
        crappify(image, low_size=0)
    with pytest.raises(ValueError, match=r"low_size 300 is larger than the image's shorter side"):
        crappify(image, low_size=300)
    with pytest.raises(ValueError, match=r"quality \(0, 70\) must lie in 1..95"):
        crappify(image, quality=(0, 70))
    with pytest.raises(ValueError, match=r"quality \(10, 96\) must lie in 1..95"):
        crappify(image, quality=(10, 96))
    with pytest.raises(ValueError, match="low 70 > high 10"):
        crappify(image, quality=(70, 10))
    with pytest.raises(ValueError, match="pair of whole numbers"):
        crappify(image, quality=(10,))


def test_folder_mirrors_the_tree_reproducibly(small_tree: Path, tmp_path: Path) -> None:
    (small_tree / "broken.jpg").write_bytes(b"not a jpeg")
    with pytest.warns(UserWarning, match=r"skipped 1 file\(s\).*broken.jpg"):
        written = crappify_folder(small_tree, tmp_path / "a", size=128, workers=1)
    assert written == 6
    originals = {p.relative_to(small_tree).as_posix() for p in get_image_files(small_tree)}
    copies = _digest(tmp_path / "a")
    assert set(copies) == originals - {"broken.jpg"}
    png = Image.open(tmp_path / "a" / "nested" / "deeper" / "x.png")
    assert png.format == "PNG" and png.size == (171, 128)  # shorter side --size, aspect kept
    jpeg = next((tmp_path / "a").glob("n*/*.JPEG"))
    assert Image.open(jpeg).format == "JPEG" and Image.open(jpeg).size == (128, 128)
    (small_tree / "broken.jpg").unlink()
    # the same seed gives the same bytes with two processes; another seed other files
    assert crappify_folder(small_tree, tmp_path / "b", size=128, workers=2) == 6
    assert _digest(tmp_path / "b") == copies
    crappify_folder(small_tree, tmp_path / "c", size=128, seed=1, workers=1)
    assert all(_digest(tmp_path / "c")[name] != copies[name] for name in copies)


def test_folder_refusals(small_tree: Path, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="inside the source"):
        crappify_folder(small_tree, small_tree / "crappy", workers=1)
    with pytest.raises(ValueError, match="inside the source"):
        crappify_folder(small_tree, small_tree, workers=1)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        crappify_folder(tmp_path / "missing", tmp_path / "out", workers=1)
    (tmp_path / "empty" / "sub").mkdir(parents=True)
    with pytest.raises(ValueError, match="holds no image files"):
        crappify_folder(tmp_path / "empty", tmp_path / "out", workers=1)
    with pytest.raises(ValueError, match="size 32 must be a whole number >= low_size"):
        crappify_folder(small_tree, tmp_path / "out", size=32, workers=1)
    assert not (tmp_path / "out").exists()


def test_command_end_to_end(small_tree: Path, tmp_path: Path,
                            capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    dst = tmp_path / "crappy"
    status = main(["crappify", str(small_tree), str(dst), "--size", "96", "--low-size", "48",
                   "--quality", "20", "50", "--text", "--seed", "7", "--workers", "2"])  # fmt: skip
    out = capsys.readouterr().out
    assert status == 0
    assert f"wrote 6 crappified image(s) to {dst}" in out and " s\n" in out
    # the command writes what the function writes with the same settings
    crappify_folder(small_tree, tmp_path / "again", size=96, low_size=48, quality=(20, 50),
                    text=True, seed=7, workers=1)  # fmt: skip
    assert _digest(dst) == _digest(tmp_path / "again")
    assert main(["crappify", str(small_tree), str(tmp_path / "x"), "--quality", "70", "10"]) == 1
    assert "low 70 > high 10" in capsys.readouterr().err
    assert main(["crappify", str(tmp_path / "nowhere"), str(tmp_path / "x")]) == 1
    assert "is not a folder" in capsys.readouterr().err


def test_the_package_exports_the_functions_not_a_module() -> None:
    import mentor.vision

    # the module is `crappifier`: a submodule named `crappify` would replace the function
    # on the package once imported
    assert mentor.vision.crappify is crappify
    assert mentor.vision.crappify_folder is crappify_folder
