"""mentor: train world-class models quickly on PyTorch, with the fast.ai workflow built in.

Example:
    >>> from mentor import DataLoaders, Learner, accuracy
    >>> learn = Learner(dls, model, metrics=[accuracy])
    >>> learn.fit_one_cycle(3, learn.lr_find().valley)
"""

from mentor.callbacks import (
    CSVLogger,
    EarlyStoppingCallback,
    GradientAccumulation,
    GradientClip,
    MixedPrecision,
    SaveModelCallback,
    SuggestedLRs,
)
from mentor.core import create_model, default_device, list_models, register_model, set_seed
from mentor.data import DataLoaders, TensorLoader, untar_data
from mentor.optim import SGD, Adam, AdamW, RMSProp
from mentor.train import (
    BCEWithLogitsLossFlat,
    Callback,
    CancelBatch,
    CancelEpoch,
    CancelFit,
    CrossEntropyLossFlat,
    F1Score,
    L1LossFlat,
    Learner,
    Metric,
    MSELossFlat,
    Perplexity,
    Precision,
    Recall,
    accuracy,
    accuracy_multi,
    error_rate,
    exp_rmspe,
    fbeta,
    mae,
    mse,
    r2_score,
    rmse,
    top_k_accuracy,
)

__version__ = "0.1.0"

__all__ = [
    "SGD",
    "Adam",
    "AdamW",
    "BCEWithLogitsLossFlat",
    "CSVLogger",
    "Callback",
    "CancelBatch",
    "CancelEpoch",
    "CancelFit",
    "CrossEntropyLossFlat",
    "DataLoaders",
    "EarlyStoppingCallback",
    "F1Score",
    "GradientAccumulation",
    "GradientClip",
    "L1LossFlat",
    "Learner",
    "MSELossFlat",
    "Metric",
    "MixedPrecision",
    "Perplexity",
    "Precision",
    "RMSProp",
    "Recall",
    "SaveModelCallback",
    "SuggestedLRs",
    "TensorLoader",
    "accuracy",
    "accuracy_multi",
    "create_model",
    "default_device",
    "error_rate",
    "exp_rmspe",
    "fbeta",
    "list_models",
    "mae",
    "mse",
    "r2_score",
    "register_model",
    "rmse",
    "set_seed",
    "top_k_accuracy",
    "untar_data",
]
