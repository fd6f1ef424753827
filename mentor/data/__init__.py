"""Layer 2: data: the data block API, items, labels, splits, transforms and loaders."""

from mentor.data.block_loaders import BlockDataLoaders
from mentor.data.blocks import CategoryBlock, MultiCategoryBlock, RegressionBlock, TransformBlock
from mentor.data.datablock import BadItemError, DataBlock, Datasets
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

__all__ = [
    "BadItemError",
    "BatchTransform",
    "BlockDataLoaders",
    "CategoryBlock",
    "ColReader",
    "ColSplitter",
    "DataBlock",
    "DataLoaders",
    "Datasets",
    "DeviceLoader",
    "EndSplitter",
    "FileSplitter",
    "FuncSplitter",
    "GrandparentSplitter",
    "IndexSplitter",
    "IntToFloat",
    "ItemTransform",
    "MultiCategoryBlock",
    "Normalize",
    "RandomSplitter",
    "RegexLabeller",
    "RegressionBlock",
    "TensorLoader",
    "ToTensor",
    "TrainTestSplitter",
    "TransformBlock",
    "cache_dir",
    "get_files",
    "get_image_files",
    "get_text_files",
    "image_extensions",
    "imagenet_stats",
    "parent_label",
    "untar_data",
    "using_attr",
]
