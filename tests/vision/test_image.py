"""Opening images and masks, verify_images, and the geometric item transforms."""

from __future__ import annotations

import random
import shutil
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from mentor.core.paths import data_path
from mentor.data.datablock import BadItemError
from mentor.data.external import untar_data
from mentor.data.transforms import IMAGE, LABEL, MASK, POINTS, ToTensor, apply_item_tfms
from mentor.vision import image as image_module
from mentor.vision.image import (
    BadImageError,
    ConvertMode,
    draft_scale,
    open_image,
    open_mask,
    verify_images,
)
from mentor.vision.resize import CenterCrop, RandomResizedCrop, Resize

IMAGE_LABEL = (IMAGE, LABEL)


@pytest.fixture
def jpegs() -> list[Path]:
    """imagenette_small's 224x224 JPEGs (extracted once into $MENTOR_HOME/data)."""
    try:
        root = untar_data("imagenette_small")
    except FileNotFoundError as err:
        pytest.skip(f"imagenette_small not available: {err}")
    return sorted(root.glob("train/*/*.JPEG"))[:300]


@pytest.fixture
def camvid() -> Path:
    try:
        return data_path("camvid_tiny")
    except FileNotFoundError as err:
        pytest.skip(f"camvid_tiny not available: {err}")


@pytest.fixture
def mnist_png() -> Path:
    try:
        return sorted(data_path("mnist_tiny").glob("train/7/*.png"))[0]
    except FileNotFoundError as err:
        pytest.skip(f"mnist_tiny not available: {err}")


@pytest.fixture
def pillow_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """Decode JPEGs with Pillow, as where simplejpeg is not installed."""
    monkeypatch.setattr(image_module, "_simplejpeg", None)


def pipeline(tfms: list, sample: list, kinds: tuple[str, ...], train: bool = False) -> list:
    return apply_item_tfms([*tfms, ConvertMode(), ToTensor()], sample, kinds, train)


def test_open_image_is_lazy_and_converted_at_the_end(jpegs: list[Path], mnist_png: Path):
    img = open_image(jpegs[0])
    assert img.tile and img.filename == str(jpegs[0])  # nothing decoded yet
    assert pipeline([], [img, 3], IMAGE_LABEL)[0].shape == (3, 224, 224)
    grey = pipeline([], [open_image(jpegs[0], "L"), 3], IMAGE_LABEL)[0]
    reference = np.asarray(Image.open(jpegs[0]).convert("L"), dtype=np.float32)
    assert grey.shape == (1, 224, 224)
    assert np.abs(grey[0].numpy().astype(np.float32) - reference).mean() < 2
    digit = pipeline([], [open_image(mnist_png), 7], IMAGE_LABEL)[0]
    assert digit.shape == (3, 28, 28) and torch.equal(digit[0], digit[2]) and digit.max() > 100
    small = pipeline([Resize(14)], [open_image(mnist_png, "L"), 7], IMAGE_LABEL)[0]
    assert small.shape == (1, 14, 14)


def test_open_errors_name_the_file(tmp_path: Path):
    missing = tmp_path / "nope.jpg"
    with pytest.raises(FileNotFoundError, match="nope.jpg"):
        open_image(missing)
    text = tmp_path / "notes.jpg"
    text.write_text("not an image at all")
    with pytest.raises(BadImageError, match=r"notes\.jpg.*verify_images"):
        open_image(text)
    with pytest.raises(ValueError, match="'CMYK'"):
        open_image(missing, mode="CMYK")
    Image.new("RGB", (4, 4)).save(tmp_path / "colour.png")
    with pytest.raises(ValueError, match="colour.png.*'RGB'"):
        open_mask(tmp_path / "colour.png")


def test_open_mask_camvid_values_are_class_codes(camvid: Path):
    codes = (camvid / "codes.txt").read_text().split()
    files = sorted((camvid / "labels").glob("*_P.png"))[:5]
    for file in files:
        mask = open_mask(file)
        assert mask.mode == "L"
        values = pipeline([], [mask], (MASK,))[0]
        assert values.dtype == torch.uint8 and values.shape == (mask.height, mask.width)
        assert int(values.max()) < len(codes) == 32
        assert np.array_equal(values.numpy(), np.asarray(Image.open(file)))


def test_open_mask_keeps_palette_indices(tmp_path: Path):
    indices = np.arange(12 * 10, dtype=np.uint8).reshape(10, 12) % 7
    mask = Image.fromarray(indices).convert("P")
    mask.putpalette([255 - 30 * i for i in range(7) for _ in range(3)])  # luminance != index
    mask.save(tmp_path / "mask.png")
    opened = open_mask(tmp_path / "mask.png")
    assert opened.mode == "P"
    out = pipeline([], [opened], (MASK,))[0]
    assert np.array_equal(out.numpy(), indices)
    resized = pipeline([Resize(24, method="squish")], [open_mask(tmp_path / "mask.png")], (MASK,))
    assert set(np.unique(resized[0].numpy())) <= set(range(7))


@pytest.mark.parametrize("train", [True, False])
@pytest.mark.parametrize("method", ["crop", "squish", "pad"])
def test_resize_output_sizes(jpegs: list[Path], method: str, train: bool):
    wide = Image.fromarray(np.random.default_rng(0).integers(0, 255, (60, 150, 3), np.uint8))
    for img in (open_image(jpegs[1]), wide):
        mask = Image.new("L", img.size, 1)
        image, mask_out, label = pipeline(
            [Resize((40, 56), method=method)], [img, mask, 5], (IMAGE, MASK, LABEL), train
        )
        assert image.shape == (3, 40, 56) and mask_out.shape == (40, 56) and label == 5
    for tfm in (RandomResizedCrop((40, 56)), CenterCrop((40, 56))):
        out = pipeline([tfm], [open_image(jpegs[1]), 5], IMAGE_LABEL, train)
        assert out[0].shape == (3, 40, 56)


def test_pad_modes():
    rows = np.repeat((50 + 3 * np.arange(50, dtype=np.uint8))[:, None], 100, axis=1)
    img = Image.fromarray(np.stack([rows] * 3, axis=-1))  # 100 wide, 50 high, rows differ
    mask = Image.new("L", (100, 50), 1)
    padded = {}
    for pad_mode in ("zeros", "border", "reflection"):
        image, mask_out = pipeline(
            [Resize(100, method="pad", pad_mode=pad_mode)], [img, mask], (IMAGE, MASK)
        )
        assert image.shape == (3, 100, 100)
        assert mask_out[:25].eq(0).all() and mask_out[75:].eq(0).all()  # masks pad with 0
        assert mask_out[25:75].eq(1).all()
        padded[pad_mode] = image[0].int()
    assert padded["zeros"][:25].eq(0).all() and padded["zeros"][75:].eq(0).all()
    assert padded["zeros"][25:75].min() >= 50
    assert padded["border"][:25].eq(padded["border"][25]).all()
    assert padded["border"][75:].eq(padded["border"][74]).all()
    reflection = padded["reflection"]
    assert torch.equal(reflection[24], reflection[26])
    assert torch.equal(reflection[0], reflection[50])
    assert not torch.equal(reflection[0], reflection[25])


CENTRES = [(30, 30), (170, 30), (100, 75), (45, 120), (170, 120), (60, 75)]


def marked_sample() -> tuple[Image.Image, Image.Image, np.ndarray]:
    """A 200x150 mask with 7x7 blocks of classes 1..6, an image built from it, and the
    blocks' centres (in pixel coordinates: the centre of pixel (x, y) is (x + 0.5, y + 0.5))."""
    mask = np.zeros((150, 200), np.uint8)
    for k, (x, y) in enumerate(CENTRES, start=1):
        mask[y - 3 : y + 4, x - 3 : x + 4] = k
    image = np.stack([mask * 40] * 3, axis=-1)
    return Image.fromarray(image), Image.fromarray(mask), np.array(CENTRES) + 0.5


def centroid(weights: np.ndarray) -> np.ndarray:
    """The (x, y) centroid of `weights` [H, W] in pixel coordinates."""
    ys, xs = np.mgrid[: weights.shape[0], : weights.shape[1]]
    total = weights.sum()
    return np.array([(weights * (xs + 0.5)).sum() / total, (weights * (ys + 0.5)).sum() / total])


def check_points_on_marks(image: np.ndarray, mask: np.ndarray, points: np.ndarray) -> int:
    """Each point lies within 1 px of its block's centroid in the mask and in the image (blocks
    cut by an edge are skipped); returns how many were checked."""
    checked = 0
    for k, point in enumerate(points, start=1):
        rows, cols = np.nonzero(mask == k)
        if len(rows) == 0 or min(rows.min(), cols.min()) < 2:
            continue
        if rows.max() >= mask.shape[0] - 2 or cols.max() >= mask.shape[1] - 2:
            continue
        assert np.abs(centroid((mask == k).astype(float)) - point).max() <= 1, (k, point)
        near = np.zeros(mask.shape)  # the image around the block (blocks lie far apart)
        near[rows.min() - 2 : rows.max() + 3, cols.min() - 2 : cols.max() + 3] = 1
        assert np.abs(centroid(image * near) - point).max() <= 1, (k, point)
        checked += 1
    return checked


@pytest.mark.parametrize(
    "tfm",
    [
        Resize((64, 80)),
        Resize((64, 80), method="squish"),
        Resize((64, 80), method="pad"),
        RandomResizedCrop((64, 80), min_scale=0.3),
        CenterCrop((100, 120)),
    ],
    ids=["crop", "squish", "pad", "random_resized_crop", "center_crop"],
)
def test_points_and_masks_follow_the_image(tfm):
    random.seed(0)
    checked = 0
    for train in (True, False, True, True, True, True):
        img, mask, centres = marked_sample()
        sample = [img, mask, centres, 1]
        kinds = (IMAGE, MASK, POINTS, LABEL)
        image, mask_out, points, label = apply_item_tfms([tfm], sample, kinds, train)
        assert image.size == mask_out.size == (tfm.size[1], tfm.size[0]) and label == 1
        grey = np.asarray(image, dtype=np.float64)[:, :, 0]
        checked += check_points_on_marks(grey, np.asarray(mask_out), points)
    assert checked >= 12


def alignment_errors(image: torch.Tensor, mask: torch.Tensor) -> list[float]:
    """Mean |image - 8 * mask| with the mask in place, then shifted by 1 px four ways."""
    grey = image[0].double()[2:-2, 2:-2]
    errors = []
    for dx, dy in ((0, 0), (1, 0), (-1, 0), (0, 1), (0, -1)):
        shifted = torch.roll(mask.double(), (dy, dx), dims=(0, 1))[2:-2, 2:-2]
        errors.append(float((grey - 8 * shifted).abs().mean()))
    return errors


def test_masks_stay_aligned_on_camvid(camvid: Path):
    random.seed(1)
    mask_file = sorted((camvid / "labels").glob("*_P.png"))[0]
    tfms = [Resize(64), Resize((48, 64), "pad"), Resize(200), RandomResizedCrop(64, 0.2)]
    for tfm in tfms:
        mask = open_mask(mask_file)
        img = Image.fromarray(np.asarray(Image.open(mask_file)) * 8).convert("RGB")
        image, mask_out = pipeline([tfm], [img, mask], (IMAGE, MASK), train=True)
        aligned, *shifted = alignment_errors(image, mask_out)
        assert aligned < min(shifted), (tfm, aligned, shifted)  # off by 1 px fits worse


@pytest.mark.parametrize("decoder", ["turbo", "pillow"])
def test_draft_points_follow_a_large_jpeg(tmp_path: Path, decoder: str, monkeypatch):
    widths: list[int] = []
    if decoder == "pillow":
        monkeypatch.setattr(image_module, "_simplejpeg", None)
    else:
        simplejpeg = pytest.importorskip("simplejpeg")

        class Spy:
            def decode_jpeg(self, data: bytes, **kw):
                pixels = simplejpeg.decode_jpeg(data, **kw)
                widths.append(pixels.shape[1])
                return pixels

        monkeypatch.setattr(image_module, "_simplejpeg", Spy())
    array = np.zeros((600, 800, 3), np.uint8)
    centres = [(100.5, 80.5), (420.5, 300.5), (700.5, 520.5)]
    for x, y in centres:
        array[int(y) - 12 : int(y) + 13, int(x) - 12 : int(x) + 13] = 255
    Image.fromarray(array).save(tmp_path / "big.jpg", quality=95)
    for tfm in (Resize((96, 128), method="squish"), Resize(96), RandomResizedCrop(96)):
        img = open_image(tmp_path / "big.jpg")
        out, points = tfm([img, np.array(centres)], (IMAGE, POINTS), train=False)
        decoded_width = img.size[0] if decoder == "pillow" else widths[-1]
        assert decoded_width < 800  # decoded at a reduced scale
        brightness = np.asarray(out.convert("L"), dtype=np.float64)
        for x, y in points:
            if not (4 <= x <= out.width - 4 and 4 <= y <= out.height - 4):
                continue
            x0, y0 = int(x), int(y)
            patch = brightness[y0 - 4 : y0 + 5, x0 - 4 : x0 + 5]
            ys, xs = np.mgrid[y0 - 4 : y0 + 5, x0 - 4 : x0 + 5]
            assert abs((patch * (xs + 0.5)).sum() / patch.sum() - x) <= 1
            assert abs((patch * (ys + 0.5)).sum() / patch.sum() - y) <= 1


def test_random_resized_crop_draws_and_centre_crop():
    width, height = 300, 200
    corners = np.array([[0.0, 0.0], [width, height]])
    img = Image.new("RGB", (width, height))
    tfm = RandomResizedCrop(64, min_scale=0.25, ratio=(3 / 4, 4 / 3))
    random.seed(2)
    boxes = set()
    for _ in range(50):
        points = tfm([img, corners], (IMAGE, POINTS), train=True)[1]
        scale = (points[1] - points[0]) / np.array([width, height])  # output px per source px
        box_w, box_h = 64 / scale
        left, top = -points[0] / scale
        assert 0.25 - 1e-3 <= box_w * box_h / (width * height) <= 1 + 1e-3
        assert 3 / 4 - 1e-3 <= box_w / box_h <= 4 / 3 + 1e-3
        assert left >= -1e-3 and top >= -1e-3 and left + box_w <= width + 1e-3
        boxes.add((round(left), round(top), round(box_w)))
    assert len(boxes) > 40
    valid = [tfm([img, corners], (IMAGE, POINTS), train=False)[1] for _ in range(3)]
    assert all(np.allclose(v, valid[0]) for v in valid)
    box_side = 64 / ((valid[0][1] - valid[0][0]) / np.array([width, height]))
    assert np.allclose(box_side, 200 / 1.14, atol=0.1)  # the centre, less val_xtra
    assert np.allclose(-valid[0][0] / (64 / box_side), [(300 - 200 / 1.14) // 2, 12], atol=1)


def test_center_crop_pixels_and_zero_padding(jpegs: list[Path]):
    source = np.asarray(Image.open(jpegs[2]).convert("RGB"))
    out = pipeline([CenterCrop((100, 60))], [open_image(jpegs[2]), 0], IMAGE_LABEL)[0]
    assert torch.equal(out.permute(1, 2, 0), torch.from_numpy(source[62:162, 82:142].copy()))
    bigger = pipeline([CenterCrop(240)], [open_image(jpegs[2]), 0], IMAGE_LABEL)[0]
    assert bigger[:, :8].eq(0).all() and bigger[:, :, -8:].eq(0).all()
    assert torch.equal(bigger[:, 8:232, 8:232].permute(1, 2, 0), torch.from_numpy(source.copy()))


def test_draft_mode_decodes_smaller_faster_and_alike(jpegs: list[Path], pillow_only: None):
    tfms = [Resize(64), ConvertMode()]
    img = open_image(jpegs[3])
    drafted = apply_item_tfms(tfms, [img, 0], IMAGE_LABEL, False)[0]
    assert img.size == (112, 112)  # libjpeg decoded at 1/2 scale: still >= 64 per side
    full = open_image(jpegs[3])
    full.load()  # already decoded: no draft
    plain = apply_item_tfms(tfms, [full, 0], IMAGE_LABEL, False)[0]
    assert full.size == (224, 224) and drafted.size == plain.size == (64, 64)
    diff = np.abs(np.asarray(drafted, dtype=np.float32) - np.asarray(plain, dtype=np.float32))
    assert diff.mean() < 3

    def decode_all(draft: bool) -> float:
        start = time.perf_counter()
        for file in jpegs[:200]:
            image = open_image(file)
            if not draft:
                image.load()
            apply_item_tfms(tfms, [image, 0], IMAGE_LABEL, False)
        return time.perf_counter() - start

    decode_all(True)  # warm the file cache
    with_draft = min(decode_all(True) for _ in range(2))
    without = min(decode_all(False) for _ in range(2))
    assert with_draft < without, (with_draft, without)


@pytest.mark.parametrize("decoder", ["turbo", "pillow"])
def test_verify_images_and_bad_image_error(
    tmp_path: Path, jpegs: list[Path], mnist_png: Path, decoder: str, monkeypatch
):
    if decoder == "pillow":
        monkeypatch.setattr(image_module, "_simplejpeg", None)
    good = tmp_path / "good.png"
    shutil.copy(mnist_png, good)
    data = jpegs[4].read_bytes()
    truncated = tmp_path / "truncated.jpg"
    truncated.write_bytes(data[: len(data) // 2])
    text = tmp_path / "text.jpg"
    text.write_text("hello, not a picture")
    files = [truncated, good, text]
    assert verify_images(files) == [truncated, text]
    assert verify_images([str(f) for f in files], workers=1) == [truncated, text]
    assert verify_images(jpegs) == []
    assert issubclass(BadImageError, BadItemError) and issubclass(BadImageError, OSError)
    for tfms in ([Resize(64)], [Resize(200, method="pad")], []):
        img = open_image(truncated)  # the header is fine: it opens
        with pytest.raises(BadImageError, match=r"truncated\.jpg.*verify_images"):
            pipeline(tfms, [img, 0], IMAGE_LABEL, train=True)


@pytest.mark.parametrize("mode", ["RGB", "L"])
def test_turbo_decode_gives_pillows_pixels(jpegs: list[Path], mode: str, monkeypatch):
    pytest.importorskip("simplejpeg")
    cases = [
        ([Resize(64)], False), ([Resize(150)], False), ([RandomResizedCrop(96)], True),
        ([Resize(200, method="pad")], True), ([Resize(40, method="squish")], False), ([], False),
    ]  # fmt: skip

    def decode(turbo: bool) -> list[torch.Tensor]:
        if not turbo:
            monkeypatch.setattr(image_module, "_simplejpeg", None)
        random.seed(0)
        return [
            pipeline(tfms, [open_image(file, mode), 0], IMAGE_LABEL, train)[0]
            for file in jpegs[:25] for tfms, train in cases
        ]  # fmt: skip

    fast, slow = decode(True), decode(False)
    assert len(fast) == len(slow) == 25 * len(cases)
    for a, b in zip(fast, slow):
        assert a.shape == b.shape and torch.equal(a, b)
    assert {t.shape[0] for t in fast} == {1 if mode == "L" else 3}


def test_draft_scale_is_pillows_choice(jpegs: list[Path]):
    for request in [(10, 10), (28, 28), (29, 29), (56, 100), (112, 112), (113, 50), (300, 300)]:
        img = open_image(jpegs[0])
        img.draft("RGB", request)
        assert img.size == tuple(-(-224 // draft_scale((224, 224), request)) for _ in "wh")


def test_transform_argument_and_sample_errors():
    with pytest.raises(ValueError, match="'fill'"):
        Resize(64, method="fill")
    with pytest.raises(ValueError, match="'mirror'"):
        Resize(64, method="pad", pad_mode="mirror")
    with pytest.raises(ValueError, match=r"min_scale 0"):
        RandomResizedCrop(64, min_scale=0)
    mismatched = [Image.new("RGB", (30, 20)), Image.new("L", (20, 30))]
    with pytest.raises(ValueError, match=r"different sizes.*\(30, 20\), \(20, 30\)"):
        Resize(16)(mismatched, (IMAGE, MASK), train=False)
    with pytest.raises(TypeError, match="before ToTensor"):
        Resize(16)([torch.zeros(3, 8, 8)], (IMAGE,), train=False)
