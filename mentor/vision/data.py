"""Image blocks (images, masks, points) and the one-line `ImageDataLoaders` factories."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import Any

import pandas as pd

from mentor.data.block_loaders import BlockDataLoaders
from mentor.data.blocks import CategoryBlock, MultiCategoryBlock, TransformBlock
from mentor.data.datablock import DataBlock
from mentor.data.items import get_image_files
from mentor.data.labels import ColReader, RegexLabeller, parent_label
from mentor.data.splitters import ColSplitter, GrandparentSplitter, RandomSplitter
from mentor.vision.blocks import ImageBlock, MaskBlock


def image_stats(dls: BlockDataLoaders, n_batches: int = 8) -> tuple[list[float], list[float]]:
    """Per-channel mean and standard deviation of images in [0, 1], from training batches
    (before normalization); for `Normalize.from_stats`."""
    valid = dls.valid
    loader = valid if valid is not None else dls.train
    sums = sq_sums = None
    count = 0
    for i, batch in enumerate(loader):
        images = batch[0].float()
        images = images / 255 if images.max() > 1.5 else images
        flat = images.transpose(0, 1).reshape(images.shape[1], -1)
        sums = flat.sum(1) if sums is None else sums + flat.sum(1)
        sq_sums = (flat**2).sum(1) if sq_sums is None else sq_sums + (flat**2).sum(1)
        count += flat.shape[1]
        if i + 1 >= n_batches:
            break
    if sums is None or sq_sums is None:
        raise ValueError("no batches to compute image statistics from")
    mean = sums / count
    std = (sq_sums / count - mean**2).clamp(min=0).sqrt()
    return mean.tolist(), std.tolist()


class ImageDataLoaders:
    """One-line loaders for image classification, from folders, CSVs, frames or file names.

    Every factory takes `item_tfms`, `batch_tfms`, `bs`, `num_workers`, `device` and
    `img_mode` ('RGB' or 'L'), and returns a `BlockDataLoaders`.
    """

    @staticmethod
    def from_folder(
        path: str | Path,
        train: str = "train",
        valid: str = "valid",
        valid_pct: float | None = None,
        seed: int | None = None,
        vocab: Sequence[Any] | None = None,
        **kwargs: Any,
    ) -> BlockDataLoaders:
        """Images in `path/train/<label>/` and `path/valid/<label>/` (or one folder of
        label subfolders split at random with `valid_pct`).

        Example:
            >>> dls = ImageDataLoaders.from_folder(path, item_tfms=Resize(224))
        """
        get_items: Callable[..., list[Path]]
        if valid_pct is None:
            get_items = partial(get_image_files, folders=[train, valid])
            splitter: Any = GrandparentSplitter(train, valid)
        else:
            get_items, splitter = get_image_files, RandomSplitter(valid_pct, seed)
        return _image_dls(
            path, CategoryBlock(vocab), get_items, None, parent_label, splitter, kwargs
        )

    @staticmethod
    def from_df(
        df: pd.DataFrame,
        path: str | Path = ".",
        folder: str | None = None,
        fn_col: int | str = 0,
        label_col: int | str = 1,
        label_delim: str | None = None,
        valid_col: int | str | None = None,
        suffix: str = "",
        valid_pct: float = 0.2,
        seed: int | None = None,
        **kwargs: Any,
    ) -> BlockDataLoaders:
        """Images named in column `fn_col` (under `path/folder`, plus `suffix`), labels in
        `label_col` (several per image when `label_delim` is given: multi-label), split by
        the boolean `valid_col` or at random."""
        fn_name, label_name = _column(df, fn_col), _column(df, label_col)
        prefix = Path(path) / folder if folder else Path(path)
        target = MultiCategoryBlock(label_delim=label_delim) if label_delim else CategoryBlock()
        splitter: Any = (
            ColSplitter(_column(df, valid_col))
            if valid_col is not None
            else RandomSplitter(valid_pct, seed)
        )
        get_x = ColReader(fn_name, pref=prefix, suff=suffix)
        get_y = ColReader(label_name, label_delim=label_delim)
        return _image_dls(df, target, None, get_x, get_y, splitter, kwargs)

    @staticmethod
    def from_csv(
        path: str | Path, csv_fname: str = "labels.csv", header: str | None = "infer", **kwargs: Any
    ) -> BlockDataLoaders:
        """`from_df` on `path/csv_fname` (same arguments)."""
        df = pd.read_csv(Path(path) / csv_fname, header=header)
        return ImageDataLoaders.from_df(df, path, **kwargs)

    @staticmethod
    def from_name_func(
        path: str | Path,
        fnames: Sequence[str | Path],
        label_func: Callable[[str], Any],
        valid_pct: float = 0.2,
        seed: int | None = None,
        **kwargs: Any,
    ) -> BlockDataLoaders:
        """Labels from the file NAME (`label_func(name)`), a random split."""
        return ImageDataLoaders.from_path_func(
            path, fnames, lambda p: label_func(Path(p).name), valid_pct, seed, **kwargs
        )

    @staticmethod
    def from_path_func(
        path: str | Path,
        fnames: Sequence[str | Path],
        label_func: Callable[[Any], Any],
        valid_pct: float = 0.2,
        seed: int | None = None,
        **kwargs: Any,
    ) -> BlockDataLoaders:
        """Labels from the full path (`label_func(path)`), a random split."""
        items = [Path(path) / f for f in fnames]
        splitter = RandomSplitter(valid_pct, seed)
        return _image_dls(items, CategoryBlock(), None, None, label_func, splitter, kwargs)

    @staticmethod
    def from_name_re(
        path: str | Path, fnames: Sequence[str | Path], pat: str, **kwargs: Any
    ) -> BlockDataLoaders:
        """Labels from the first group of the regular expression `pat` on the file name.

        Example:
            >>> ImageDataLoaders.from_name_re(path, fnames, r"^(.+)_\\d+\\.jpg$")
        """
        return ImageDataLoaders.from_path_func(path, fnames, RegexLabeller(pat), **kwargs)

    @staticmethod
    def from_lists(
        path: str | Path,
        fnames: Sequence[str | Path],
        labels: Sequence[Any],
        valid_pct: float = 0.2,
        seed: int | None = None,
        **kwargs: Any,
    ) -> BlockDataLoaders:
        """Parallel lists of file names and labels, a random split."""
        if len(fnames) != len(labels):
            raise ValueError(f"{len(fnames)} file names but {len(labels)} labels; give one each")
        items = [(Path(path) / f, label) for f, label in zip(fnames, labels)]
        splitter = RandomSplitter(valid_pct, seed)
        return _image_dls(items, CategoryBlock(), None, _first, _second, splitter, kwargs)


class SegmentationDataLoaders:
    """One-line loaders for segmentation: images and their masks (one class index per pixel).

    Takes the same keywords as `ImageDataLoaders` (`item_tfms`, `batch_tfms`, `bs`,
    `num_workers`, `device`, `img_mode`); spatial transforms move each mask with its image.
    """

    @staticmethod
    def from_label_func(
        path: str | Path,
        fnames: Sequence[str | Path],
        label_func: Callable[[Path], Any],
        codes: Sequence[str] | None = None,
        valid_pct: float = 0.2,
        seed: int | None = None,
        **kwargs: Any,
    ) -> BlockDataLoaders:
        """Masks found by `label_func(image_path)` (a mask file's path), classes named by
        `codes` (index = pixel value), a random `valid_pct` split.

        Example:
            >>> codes = (path / "codes.txt").read_text().split()
            >>> dls = SegmentationDataLoaders.from_label_func(
            ...     path, get_image_files(path / "images"),
            ...     lambda o: path / "labels" / f"{o.stem}_P{o.suffix}", codes=codes)
        """
        items = [Path(path) / f for f in fnames]
        if not items:
            raise ValueError(f"no image files given (fnames is empty) for {str(path)!r}")
        splitter = RandomSplitter(valid_pct, seed)
        return _image_dls(items, MaskBlock(codes), None, None, label_func, splitter, kwargs)


def _image_dls(
    source: Any,
    target: TransformBlock,
    get_items: Any,
    get_x: Any,
    get_y: Any,
    splitter: Any,
    kwargs: dict[str, Any],
) -> BlockDataLoaders:
    """The DataBlock behind the factories, and its loaders."""
    item_tfms, batch_tfms = kwargs.pop("item_tfms", None), kwargs.pop("batch_tfms", None)
    block = DataBlock(
        blocks=(ImageBlock(kwargs.pop("img_mode", "RGB")), target),
        get_items=get_items,
        get_x=get_x,
        get_y=get_y,
        splitter=splitter,
        item_tfms=item_tfms,
        batch_tfms=batch_tfms,
        skip_bad=kwargs.pop("skip_bad", False),
    )
    return block.dataloaders(source, **kwargs)


def _column(df: pd.DataFrame, col: int | str) -> str:
    """A column's name from its name or position, with a clear error."""
    if isinstance(col, int):
        if not 0 <= col < len(df.columns):
            raise IndexError(f"column {col} does not exist; the frame has {list(df.columns)}")
        return str(df.columns[col])
    if col not in df.columns:
        raise KeyError(f"column {col!r} not found; the frame has {list(df.columns)}")
    return col


def _first(pair: tuple[Any, Any]) -> Any:
    return pair[0]


def _second(pair: tuple[Any, Any]) -> Any:
    return pair[1]
