"""Layer 2: data: the data block API, items, labels, splits, transforms and loaders.

Public names load lazily (see `mentor.core.lazy`).
"""

from typing import TYPE_CHECKING

from mentor.core.lazy import attach

if TYPE_CHECKING:
    from mentor.data.block_loaders import BlockDataLoaders
    from mentor.data.blocks import (
        CategoryBlock,
        MultiCategoryBlock,
        RegressionBlock,
        TransformBlock,
    )
    from mentor.data.datablock import DataBlock, Datasets
    from mentor.data.errors import BadItemError
    from mentor.data.external import cache_dir, untar_data
    from mentor.data.items import get_files, get_image_files, get_text_files, image_extensions
    from mentor.data.labels import ColReader, RegexLabeller, parent_label, using_attr
    from mentor.data.loaders import DataLoaders, DeviceLoader, TensorLoader
    from mentor.data.splitters import (
        ColSplitter,
        EndSplitter,
        FileSplitter,
        FuncSplitter,
        GrandparentSplitter,
        IndexSplitter,
        RandomSplitter,
        TrainTestSplitter,
    )
    from mentor.data.transforms import (
        BatchTransform,
        IntToFloat,
        ItemTransform,
        Normalize,
        ToTensor,
        imagenet_stats,
    )
    from mentor.data.urls import URLs
else:  # a type checker reads the imports above; Python loads each name on first use
    __getattr__, __dir__, __all__ = attach(
        __name__,
        {
            "mentor.data.block_loaders": ("BlockDataLoaders",),
            "mentor.data.blocks": (
                "CategoryBlock",
                "MultiCategoryBlock",
                "RegressionBlock",
                "TransformBlock",
            ),
            "mentor.data.datablock": ("DataBlock", "Datasets"),
            "mentor.data.errors": ("BadItemError",),
            "mentor.data.external": (
                "cache_dir",
                "untar_data",
            ),
            "mentor.data.items": (
                "get_files",
                "get_image_files",
                "get_text_files",
                "image_extensions",
            ),
            "mentor.data.labels": (
                "ColReader",
                "RegexLabeller",
                "parent_label",
                "using_attr",
            ),
            "mentor.data.loaders": (
                "DataLoaders",
                "DeviceLoader",
                "TensorLoader",
            ),
            "mentor.data.splitters": (
                "ColSplitter",
                "EndSplitter",
                "FileSplitter",
                "FuncSplitter",
                "GrandparentSplitter",
                "IndexSplitter",
                "RandomSplitter",
                "TrainTestSplitter",
            ),
            "mentor.data.urls": ("URLs",),
            "mentor.data.transforms": (
                "BatchTransform",
                "IntToFloat",
                "ItemTransform",
                "Normalize",
                "ToTensor",
                "imagenet_stats",
            ),
        },
        submodules=(
            "block_loaders",
            "block_summary",
            "blocks",
            "datablock",
            "encoders",
            "errors",
            "external",
            "items",
            "labels",
            "loaders",
            "splitters",
            "transforms",
            "urls",
        ),
    )
