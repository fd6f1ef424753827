"""Layer 1: device and dtype helpers, seeding, the registries, shared types, and the
course's part-2 foundations (initialisation, LSUV, GeneralRelu, RunningBatchNorm)."""

from mentor.core.device import (
    default_device,
    find_bs,
    is_main_process,
    split_batch,
    to_cpu,
    to_device,
    uncompiled,
)
from mentor.core.init import LSUVStats, init_cnn, kaiming_init_, lsuv_init
from mentor.core.layers import GeneralRelu, SigmoidRange
from mentor.core.norm import RunningBatchNorm
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
    "GeneralRelu",
    "LSUVStats",
    "Registry",
    "RunningBatchNorm",
    "SigmoidRange",
    "create_model",
    "data_path",
    "default_device",
    "find_bs",
    "get_rng_state",
    "init_cnn",
    "is_main_process",
    "kaiming_init_",
    "list_models",
    "lsuv_init",
    "register_model",
    "set_rng_state",
    "set_seed",
    "split_batch",
    "to_cpu",
    "to_device",
    "uncompiled",
]
