"""Layer 1: device and dtype helpers, seeding, the registries, shared types."""

from mentor.core.device import (
    default_device,
    find_bs,
    is_main_process,
    split_batch,
    to_cpu,
    to_device,
)
from mentor.core.paths import data_path
from mentor.core.registry import (
    LOSSES,
    MODELS,
    OPTIMIZERS,
    Registry,
    create_model,
    list_models,
    register_model,
)
from mentor.core.seed import get_rng_state, set_rng_state, set_seed

__all__ = [
    "LOSSES",
    "MODELS",
    "OPTIMIZERS",
    "Registry",
    "create_model",
    "data_path",
    "default_device",
    "find_bs",
    "get_rng_state",
    "is_main_process",
    "list_models",
    "register_model",
    "set_rng_state",
    "set_seed",
    "split_batch",
    "to_cpu",
    "to_device",
]
