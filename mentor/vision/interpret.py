"""Grad-CAM heat maps (where an image classifier looked) and interpretation for vision.

`grad_cam` weights a layer's activation maps by the mean gradient of a class score with
respect to each map (Selvaraju et al., 2017): `ReLU(sum_k mean(dscore/dA_k) * A_k)`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mentor.callbacks.hooks import hook_output
from mentor.train.interpret import ClassificationInterpretation, draw_heatmap

if TYPE_CHECKING:
    from matplotlib.axes import Axes

    from mentor.train.learner import Learner

__all__ = ["ClassificationInterpretation", "grad_cam", "show_heatmap"]


def grad_cam(
    learn: Learner, img: Any, target: int | None = None, layer: nn.Module | None = None
) -> Tensor:
    """A Grad-CAM heat map `[H, W]` in [0, 1] at the input's resolution, on the CPU.

    Args:
        learn: an image classifier. img: a path, PIL image or array (prepared with
            `learn.dls.test_dl`), or a tensor `[C, H, W]` / `[1, C, H, W]` already on the
            model's input scale (e.g. an item of a batch).
        target: the class to explain (default: the predicted class).
        layer: the layer whose activation maps are weighted (default: the body,
            `learn.model[0]`, of a `vision_learner` model). On small images the body's
            last maps can be 1x1 (28 pixels through a resnet: 1x1), which gives a flat
            map; pass an earlier block then, e.g. `learn.model[0][5]`.

    Example:
        >>> cam = grad_cam(learn, "cat.jpg")
        >>> cam.shape  # the image's [H, W]
    """
    model = learn.model
    layer = _default_layer(model) if layer is None else layer
    x = _prepared_input(learn, img)
    was_training = model.training
    model.eval()
    try:
        with torch.enable_grad(), hook_output(layer, detach=False) as hook:
            # the input requires grad so that frozen layers still build a graph to the layer
            out = model(x.detach().requires_grad_(True))
            activation = _checked_activation(hook.stored, layer)
            target = int(out[0].argmax()) if target is None else target
            _check_target(target, out)
            (grads,) = torch.autograd.grad(out[0, target], activation)
    finally:
        model.train(was_training)
    weights = grads.mean(dim=(2, 3), keepdim=True)
    cam = F.relu((weights * activation.detach()).sum(dim=1, keepdim=True))
    cam = F.interpolate(cam, size=x.shape[-2:], mode="bilinear", align_corners=False)[0, 0]
    peak = cam.max()
    cam = torch.where(peak > 0, cam / peak.clamp_min(1e-12), torch.zeros_like(cam))
    return cam.float().cpu()


def show_heatmap(
    image_array: np.ndarray | Tensor, cam: np.ndarray | Tensor, ax: Axes, alpha: float = 0.6
) -> None:
    """Draw an image (`[H, W]` or `[H, W, C]`) with a heat map over it.

    Args:
        image_array: the image as people see it (e.g. `ImageBlock.decode` of an item).
        cam: the heat map in [0, 1], e.g. from `grad_cam`. ax: a matplotlib axis.
        alpha: the heat map's opacity (0.6).
    """
    image = image_array.cpu().numpy() if isinstance(image_array, Tensor) else image_array
    ax.imshow(image, cmap="gray" if image.ndim == 2 else None)
    draw_heatmap(ax, cam, alpha)
    ax.axis("off")


def _default_layer(model: nn.Module) -> nn.Module:
    if isinstance(model, nn.Sequential) and len(model) >= 2:
        return model[0]
    raise ValueError(
        f"grad_cam cannot tell which layer to use in a {type(model).__name__}: the default "
        "is the body of a vision_learner model, nn.Sequential(body, head); pass layer= (e.g. "
        "the last convolutional block)"
    )


def _prepared_input(learn: Learner, img: Any) -> Tensor:
    """A batch of one image `[1, C, H, W]` on the model's device."""
    if isinstance(img, Tensor):
        x = img.unsqueeze(0) if img.ndim == 3 else img
        if x.ndim != 4 or x.shape[0] != 1:
            raise ValueError(
                f"grad_cam takes one image: a tensor [C, H, W] or [1, C, H, W], got shape "
                f"{list(img.shape)}; pass one item of the batch"
            )
    else:
        x = next(iter(learn.dls.test_dl([img])))[0]
    device = next((p.device for p in learn.model.parameters()), x.device)
    return x.float().to(device)


def _checked_activation(stored: Any, layer: nn.Module) -> Tensor:
    if not isinstance(stored, Tensor) or stored.ndim != 4:
        shape = list(stored.shape) if isinstance(stored, Tensor) else type(stored).__name__
        raise ValueError(
            f"grad_cam needs a layer that outputs feature maps [1, K, h, w]; "
            f"{type(layer).__name__} gave {shape}; pass a convolutional layer= instead"
        )
    if not stored.requires_grad:
        raise ValueError(
            f"the output of {type(layer).__name__} does not depend on the input through "
            "differentiable operations, so it has no gradient; pass another layer="
        )
    return stored


def _check_target(target: int, out: Tensor) -> None:
    n_classes = out.shape[-1]
    if not 0 <= target < n_classes:
        raise ValueError(
            f"target={target} is not a class of this model; it has {n_classes} outputs, "
            f"so pick 0..{n_classes - 1}"
        )
