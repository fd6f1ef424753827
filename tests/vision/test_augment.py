"""Batch augmentation: the matrices move images, masks and points together, exactly."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from mentor.data.transforms import IMAGE, LABEL, MASK, POINTS, BatchPipeline
from mentor.vision.augment import (
    AffineWarp,
    Dihedral,
    Flip,
    Rotate,
    Warp,
    Zoom,
    apply_matrices,
    aug_transforms,
    rotate_matrices,
    zoom_matrices,
)
from mentor.vision.lighting import Brightness, Contrast, Lighting


def _pixel_to_point(row: torch.Tensor, col: torch.Tensor, height: int, width: int):
    """(x, y) in [-1, 1] of pixel centres."""
    return torch.stack([(2 * col + 1) / width - 1, (2 * row + 1) / height - 1], dim=-1)


def _point_to_pixel(points: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """(col, row) in pixels (pixel centres at integers) of [-1, 1] points."""
    return torch.stack(
        [(points[..., 0] + 1) * width / 2 - 0.5, (points[..., 1] + 1) * height / 2 - 0.5], -1
    )


def test_flip_matches_torch_flip_for_images_masks_and_points() -> None:
    image = torch.rand(4, 3, 6, 9)
    mask = torch.randint(0, 5, (4, 6, 9))
    points = torch.rand(4, 3, 2) * 2 - 1
    kinds = (IMAGE, MASK, POINTS, LABEL)
    labels = torch.arange(4)
    out = Flip(p=1.0).encode([image, mask, points, labels], kinds)
    assert torch.allclose(out[0], torch.flip(image, dims=[-1]), atol=1e-5)
    assert out[0].dtype == torch.float32
    assert torch.equal(out[1], torch.flip(mask, dims=[-1]))
    assert out[1].dtype == torch.int64
    assert torch.allclose(out[2], points * torch.tensor([-1.0, 1.0]), atol=1e-6)
    assert out[3] is labels


def test_rotate_90_moves_a_marked_pixel_counter_clockwise() -> None:
    image = torch.zeros(1, 1, 8, 8)
    image[0, 0, 1, 6] = 1.0  # row 1, column 6: near the top-right corner
    out = apply_matrices([image], (IMAGE,), rotate_matrices(torch.tensor([90.0]), 8, 8))[0]
    # counter-clockwise by 90: the top-right corner goes to the top-left, (r, c) -> (7 - c, r)
    expected = torch.zeros(1, 1, 8, 8)
    expected[0, 0, 1, 1] = 1.0
    assert torch.allclose(out, expected, atol=1e-5)
    assert torch.allclose(out, torch.rot90(image, 1, dims=(-2, -1)), atol=1e-5)
    point = _pixel_to_point(torch.tensor([[1.0]]), torch.tensor([[6.0]]), 8, 8)
    moved = apply_matrices(
        [image, point], (IMAGE, POINTS), rotate_matrices(torch.tensor([90.0]), 8, 8)
    )[1]
    assert torch.allclose(_point_to_pixel(moved, 8, 8), torch.tensor([[[1.0, 1.0]]]), atol=1e-5)


def test_rotation_keeps_pixel_distances_on_non_square_images() -> None:
    height, width = 20, 60
    image = torch.zeros(1, 1, height, width)
    points = torch.tensor([[[-0.5, -0.3], [0.4, 0.6], [0.0, 0.0]]])
    moved = apply_matrices(
        [image, points], (IMAGE, POINTS), rotate_matrices(torch.tensor([30.0]), height, width)
    )[1]
    before = torch.cdist(_point_to_pixel(points, height, width), _point_to_pixel(points, 20, 60))
    after = torch.cdist(_point_to_pixel(moved, height, width), _point_to_pixel(moved, 20, 60))
    assert torch.allclose(before, after, atol=1e-3)


def test_zoom_stays_inside_the_image() -> None:
    torch.manual_seed(0)
    matrices = Zoom(max_zoom=2.0, p=1.0).matrices(64, 10, 14, torch.device("cpu"))
    corners = torch.tensor([[-1.0, -1.0, 1.0], [1.0, -1.0, 1.0], [-1.0, 1.0, 1.0], [1, 1, 1]])
    viewed = corners @ matrices.transpose(1, 2)  # where the output corners read the input
    assert viewed[..., :2].abs().max() <= 1 + 1e-6
    scale = 1 / matrices[:, 0, 0]
    assert torch.equal(matrices[:, 0, 0], matrices[:, 1, 1]) and scale.min() >= 1
    assert scale.max() > 1.8 and viewed[..., 0].min() < -0.95 and viewed[..., 0].max() > 0.95
    # a centred zoom by 2 shows the middle half: its corner reads input (-0.5, -0.5)
    single = torch.arange(16.0).view(1, 1, 4, 4)
    zoomed = apply_matrices(
        [single],
        (IMAGE,),
        zoom_matrices(torch.tensor([2.0]), torch.zeros(1, 2)),
        size=2,
        mode="nearest",
    )[0]
    assert torch.equal(zoomed, single[..., 1:3, 1:3])


def _blob_batch(n: int, height: int, width: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Dark images with one bright 3x3 blob each, and the blob centres as points."""
    rows = torch.randint(4, height - 4, (n,))
    cols = torch.randint(4, width - 4, (n,))
    images = torch.zeros(n, 1, height, width)
    for offset_row in (-1, 0, 1):
        for offset_col in (-1, 0, 1):
            images[torch.arange(n), 0, rows + offset_row, cols + offset_col] = 0.5
    images[torch.arange(n), 0, rows, cols] = 1.0
    return images, _pixel_to_point(rows.float(), cols.float(), height, width).unsqueeze(1)


@pytest.mark.parametrize("flip_vert", [False, True])
def test_points_follow_the_image_under_random_transforms(flip_vert: bool) -> None:
    torch.manual_seed(1)
    height, width = 32, 40
    images, points = _blob_batch(64, height, width)
    augs = [
        Dihedral() if flip_vert else Flip(),
        Rotate(30, p=1.0),
        Zoom(1.5, p=1.0),
        Warp(0.3, p=1.0),
    ]
    out_images, out_points = AffineWarp(augs, pad_mode="zeros").encode(
        [images, points], (IMAGE, POINTS)
    )
    flat = out_images.view(64, -1)
    peak, index = flat.max(dim=1)
    found = torch.stack([index % width, index // width], dim=-1).float()
    expected = _point_to_pixel(out_points[:, 0], height, width)
    inside = (out_points[:, 0].abs() < 0.85).all(dim=1) & (peak > 0.5)
    assert inside.sum() > 32
    distance = (found - expected).abs().max(dim=1).values
    assert (distance[inside] <= 1.0).all(), distance[inside]


def test_masks_stay_aligned_with_their_images() -> None:
    torch.manual_seed(2)
    n_classes = 7
    blocks = torch.arange(4).view(4, 1) + torch.arange(4).view(1, 4)  # neighbours differ by 1
    mask = blocks.repeat_interleave(16, 0).repeat_interleave(16, 1).expand(16, 64, 64).clone()
    image = (mask.float() / (n_classes - 1)).unsqueeze(1).expand(16, 3, 64, 64).contiguous()
    out_image, out_mask = AffineWarp(
        [Flip(), Rotate(45, p=1.0), Zoom(1.5, p=1.0), Warp(0.3, p=1.0)]
    ).encode([image, mask], (IMAGE, MASK))
    derived = (out_image[:, 0] * (n_classes - 1)).round().long()
    agreement = (derived == out_mask).float().mean()
    assert agreement >= 0.99, agreement
    assert not torch.equal(out_mask, mask)


def test_validation_pipeline_leaves_the_batch_unchanged() -> None:
    image, mask = torch.rand(4, 3, 16, 16), torch.randint(0, 3, (4, 16, 16))
    points, labels = torch.rand(4, 2, 2) * 2 - 1, torch.arange(4)
    kinds = (IMAGE, MASK, POINTS, LABEL)
    batch = (image, mask, points, labels)
    valid = BatchPipeline(aug_transforms(flip_vert=True), kinds, train=False)(batch)
    assert all(torch.equal(a, b) for a, b in zip(valid, batch))
    torch.manual_seed(3)
    train = BatchPipeline(aug_transforms(flip_vert=True), kinds, train=True)(batch)
    assert not torch.equal(train[0], image)
    assert torch.equal(train[3], labels)


def test_dihedral_gives_only_the_8_exact_symmetries() -> None:
    torch.manual_seed(4)
    image = torch.rand(1, 2, 7, 7).expand(48, 2, 7, 7).contiguous()
    candidates = [
        torch.rot90(flipped, k, dims=(-2, -1))
        for flipped in (image[:1], torch.flip(image[:1], dims=[-1]))
        for k in range(4)
    ]
    out = Dihedral(p=1.0).encode([image], (IMAGE,))[0]
    seen = set()
    for item in out:
        matches = [i for i, c in enumerate(candidates) if torch.allclose(item, c[0], atol=1e-5)]
        assert len(matches) == 1
        seen.add(matches[0])
    assert len(seen) == 8


def test_lighting_changes_only_images_and_stays_in_range() -> None:
    torch.manual_seed(5)
    image, mask = torch.rand(8, 3, 5, 5), torch.randint(0, 3, (8, 5, 5))
    points, labels = torch.rand(8, 2, 2), torch.arange(8)
    kinds = (IMAGE, MASK, POINTS, LABEL)
    for tfm in (Brightness(0.4, p=1.0), Contrast(0.4, p=1.0)):
        out = tfm.encode([image, mask, points, labels], kinds)
        assert not torch.allclose(out[0], image)
        assert out[0].min() >= 0 and out[0].max() <= 1 and out[0].dtype == torch.float32
        assert out[1] is mask and out[2] is points and out[3] is labels
    brighter = Brightness(0.4, p=1.0).encode([torch.full((64, 1, 2, 2), 0.5)], (IMAGE,))[0]
    shifts = brighter[:, 0, 0, 0] - 0.5
    assert shifts.abs().max() <= 0.4 and shifts.min() < 0 < shifts.max()


def test_one_grid_sample_per_image_or_mask(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []
    original = F.grid_sample

    def counting(*args, **kwargs):
        calls.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(F, "grid_sample", counting)
    torch.manual_seed(6)
    tfms = aug_transforms(flip_vert=True, max_rotate=20, max_zoom=1.3, max_warp=0.3)
    BatchPipeline(tfms, (IMAGE, POINTS, LABEL), train=True)(
        (torch.rand(4, 3, 12, 12), torch.rand(4, 2, 2) * 2 - 1, torch.arange(4))
    )
    assert len(calls) == 1
    BatchPipeline(tfms, (IMAGE, MASK), train=True)(
        (torch.rand(4, 3, 12, 12), torch.randint(0, 2, (4, 12, 12)))
    )
    assert len(calls) == 3


def test_size_resizes_in_the_same_resample_and_keeps_dtype() -> None:
    image = torch.rand(2, 3, 16, 24, dtype=torch.float64)
    mask = torch.randint(0, 4, (2, 16, 24))
    tfms = aug_transforms(
        do_flip=False, max_rotate=0, max_zoom=1, max_warp=0, max_lighting=0, size=(8, 12)
    )
    assert len(tfms) == 1
    out_image, out_mask = tfms[0].encode([image, mask], (IMAGE, MASK))
    assert out_image.dtype == torch.float64 and out_mask.shape == (2, 8, 12)
    expected = F.interpolate(image, size=(8, 12), mode="bilinear", align_corners=False)
    assert torch.allclose(out_image, expected, atol=1e-5)


def test_bad_arguments_say_what_to_pass() -> None:
    with pytest.raises(ValueError, match="max_zoom=0.5"):
        Zoom(max_zoom=0.5)
    with pytest.raises(ValueError, match="pad_mode='wrap'"):
        AffineWarp([], pad_mode="wrap")
    with pytest.raises(ValueError, match="p=1.5"):
        Flip(p=1.5)
    with pytest.raises(ValueError, match="image or a mask"):
        AffineWarp([Flip()]).encode([torch.zeros(2, 1, 2)], (POINTS,))


def test_lighting_is_contrast_then_brightness_in_one_pass() -> None:
    """Lighting = (x - mean) * factor + mean + shift with Contrast's and Brightness's draws."""
    images = torch.rand(6, 3, 8, 8) * 0.4 + 0.3  # mid-range: no clamping for small changes
    mask = torch.randint(0, 3, (6, 8, 8))
    kinds = ("image", "mask")
    out, out_mask = Lighting(0.1, p=1.0, generator=torch.Generator().manual_seed(5)).encode(
        [images, mask], kinds
    )
    gen = torch.Generator().manual_seed(5)
    factors = Contrast(0.1, p=1.0, generator=gen).amounts(6, images.device).view(-1, 1, 1, 1)
    shifts = Brightness(0.1, p=1.0, generator=gen).amounts(6, images.device).view(-1, 1, 1, 1)
    mean = images.mean(dim=(1, 2, 3), keepdim=True)
    expected = ((images - mean) * factors + mean + shifts).clamp(0, 1)
    torch.testing.assert_close(out, expected, atol=1e-6, rtol=0)
    assert torch.equal(out_mask, mask) and not torch.equal(out, images)
    assert float(out.min()) >= 0 and float(out.max()) <= 1
