"""Layer 4: the Learner and its loop, callbacks and events, metrics, losses, checkpoints.

Public names load lazily (see `mentor.core.lazy`).
"""

from typing import TYPE_CHECKING

from mentor.core.lazy import attach

if TYPE_CHECKING:
    from mentor.train.callback import (
        EVENTS,
        Callback,
        CancelBatch,
        CancelEpoch,
        CancelFit,
        CancelTrain,
        CancelValidate,
    )
    from mentor.train.checkpoint import CheckpointCallback
    from mentor.train.class_metrics import F1Score, FBeta, FBetaMulti, Precision, Recall, fbeta
    from mentor.train.fits import (
        CycleEnd,
        ParamScheduler,
        fine_tune,
        fit_flat_cos,
        fit_one_cycle,
        fit_sgdr,
    )
    from mentor.train.freeze import BnFreeze, FixedBnStats
    from mentor.train.learner import Learner
    from mentor.train.losses import (
        BCEWithLogitsLossFlat,
        CrossEntropyLossFlat,
        FocalLoss,
        L1LossFlat,
        LabelSmoothingCrossEntropy,
        MSELossFlat,
        loss_activation,
        loss_decodes,
    )
    from mentor.train.metrics import (
        RMSE,
        AvgMetric,
        ExpRMSPE,
        Metric,
        Perplexity,
        R2Score,
        SumMetric,
        accuracy,
        accuracy_multi,
        as_metric,
        error_rate,
        exp_rmspe,
        mae,
        mse,
        r2_score,
        rmse,
        top_k_accuracy,
    )
    from mentor.train.progress import ProgressCallback
    from mentor.train.recorder import Recorder
    from mentor.train.seg_metrics import (
        Dice,
        DiceMulti,
        ForegroundAcc,
        JaccardCoeff,
        SegmentationIoU,
        foreground_acc,
        mean_iou,
        per_class_iou,
        pixel_confusion,
    )
    from mentor.train.summary import ModelSummary, model_summary
    from mentor.train.terminate import TerminateOnNaN, TrainingDiverged
else:  # a type checker reads the imports above; Python loads each name on first use
    __getattr__, __dir__, __all__ = attach(
        __name__,
        {
            "mentor.train.callback": (
                "EVENTS",
                "Callback",
                "CancelBatch",
                "CancelEpoch",
                "CancelFit",
                "CancelTrain",
                "CancelValidate",
            ),
            "mentor.train.checkpoint": ("CheckpointCallback",),
            "mentor.train.class_metrics": (
                "F1Score",
                "FBeta",
                "FBetaMulti",
                "Precision",
                "Recall",
                "fbeta",
            ),
            "mentor.train.fits": (
                "CycleEnd",
                "ParamScheduler",
                "fine_tune",
                "fit_flat_cos",
                "fit_one_cycle",
                "fit_sgdr",
            ),
            "mentor.train.freeze": (
                "BnFreeze",
                "FixedBnStats",
            ),
            "mentor.train.learner": ("Learner",),
            "mentor.train.losses": (
                "BCEWithLogitsLossFlat",
                "CrossEntropyLossFlat",
                "FocalLoss",
                "L1LossFlat",
                "LabelSmoothingCrossEntropy",
                "MSELossFlat",
                "loss_activation",
                "loss_decodes",
            ),
            "mentor.train.metrics": (
                "RMSE",
                "AvgMetric",
                "ExpRMSPE",
                "Metric",
                "Perplexity",
                "R2Score",
                "SumMetric",
                "accuracy",
                "accuracy_multi",
                "as_metric",
                "error_rate",
                "exp_rmspe",
                "mae",
                "mse",
                "r2_score",
                "rmse",
                "top_k_accuracy",
            ),
            "mentor.train.progress": ("ProgressCallback",),
            "mentor.train.recorder": ("Recorder",),
            "mentor.train.seg_metrics": (
                "Dice",
                "DiceMulti",
                "ForegroundAcc",
                "JaccardCoeff",
                "SegmentationIoU",
                "foreground_acc",
                "mean_iou",
                "per_class_iou",
                "pixel_confusion",
            ),
            "mentor.train.summary": (
                "ModelSummary",
                "model_summary",
            ),
            "mentor.train.terminate": ("TerminateOnNaN", "TrainingDiverged"),
        },
        submodules=(
            "callback",
            "checkpoint",
            "class_metrics",
            "errors",
            "fits",
            "freeze",
            "inference",
            "interpret",
            "learner",
            "losses",
            "metrics",
            "progress",
            "recorder",
            "report",
            "report_plots",
            "seg_metrics",
            "summary",
            "terminate",
            "tta",
        ),
    )
