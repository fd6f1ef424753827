"""Layer 2: data loading (train / valid / test loaders on a device)."""

from mentor.data.external import cache_dir, untar_data
from mentor.data.loaders import DataLoaders, DeviceLoader, TensorLoader

__all__ = ["DataLoaders", "DeviceLoader", "TensorLoader", "cache_dir", "untar_data"]
