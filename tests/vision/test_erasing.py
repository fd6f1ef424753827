"""RandomErasing: boxes of noise in training images only, within the asked share of the image."""

from __future__ import annotations

import pytest
import torch

from mentor.data.transforms import IMAGE, MASK, BatchPipeline
from mentor.vision.erasing import RandomErasing


def test_erased_boxes_cover_the_asked_share_and_hold_noise() -> None:
    gen = torch.Generator().manual_seed(0)
    images = torch.full((64, 3, 32, 32), 0.5)
    masks = torch.zeros(64, 32, 32, dtype=torch.long)
    erase = RandomErasing(p=1.0, sl=0.1, sh=0.3, generator=gen)
    out_images, out_masks = erase.encode([images, masks], (IMAGE, MASK))
    erased = (out_images != 0.5).any(1)  # [B, H, W]
    share = erased.float().mean((1, 2))
    assert bool((share >= 0.07).all()) and bool((share <= 0.33).all()), share  # rounding
    for item in range(8):  # each erased region is one box: rows and columns contiguous
        rows = erased[item].any(1).nonzero().flatten()
        cols = erased[item].any(0).nonzero().flatten()
        assert int(erased[item].sum()) == len(rows) * len(cols)
        assert int(rows[-1] - rows[0]) + 1 == len(rows)
    noise = out_images[:, 0][erased]
    assert abs(float(noise.mean())) < 0.05 and abs(float(noise.std()) - 1) < 0.05
    assert torch.equal(out_masks, masks)  # masks are left alone


def test_p_chooses_the_share_of_images_erased() -> None:
    gen = torch.Generator().manual_seed(1)
    images = torch.zeros(1000, 1, 8, 8)
    (out,) = RandomErasing(p=0.3, sl=0.2, sh=0.4, generator=gen).encode([images], (IMAGE,))
    hit = (out != 0).flatten(1).any(1).float().mean()
    assert float(hit) == pytest.approx(0.3, abs=0.05)


def test_max_count_erases_several_boxes() -> None:
    gen = torch.Generator().manual_seed(2)
    erase = RandomErasing(p=1.0, sl=0.05, sh=0.1, max_count=4, generator=gen)
    mask = erase.boxes(200, 64, 64, torch.device("cpu"))
    single = RandomErasing(p=1.0, sl=0.05, sh=0.1, max_count=1, generator=gen)
    shares = mask.float().mean((1, 2, 3))
    assert shares.max() <= 0.1 + 0.02  # the boxes share the drawn area
    # several boxes: an erased region that is not one rectangle appears
    rectangles = [int(m.sum()) == int(m.any(1).sum()) * int(m.any(0).sum()) for m in mask[:, 0]]
    assert not all(rectangles)
    assert single.boxes(4, 64, 64, torch.device("cpu")).shape == (4, 1, 64, 64)


def test_it_runs_on_training_batches_only_and_after_normalize() -> None:
    erase = RandomErasing(p=1.0)
    assert erase.train_only and erase.order > 90  # Normalize's order is 90
    images = torch.zeros(2, 3, 8, 8)
    assert torch.equal(BatchPipeline([erase], (IMAGE,), train=False)((images,))[0], images)
    assert not torch.equal(BatchPipeline([erase], (IMAGE,), train=True)((images,))[0], images)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"p": 1.5}, "p=1.5"),
        ({"sl": 0.5, "sh": 0.2}, "sl=0.5, sh=0.2"),
        ({"min_aspect": 0}, "min_aspect=0"),
        ({"max_count": 0}, "max_count=0"),
    ],
)
def test_bad_settings_are_refused(kwargs: dict[str, float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        RandomErasing(**kwargs)  # type: ignore[arg-type]
