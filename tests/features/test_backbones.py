"""Backbones: every offline one loads its ImageNet weights and gives the features its head expects."""

from __future__ import annotations

import pytest
import torch

from actrec.features.backbones import LITE, BackboneError, load_backbone


@pytest.mark.parametrize(
    "name, size", [("efficientnet_lite0", 224), ("efficientnet_lite1", 240), ("efficientnet_lite2", 260)]
)
def test_offline_lite_backbones_load_imagenet_weights(name: str, size: int) -> None:
    backbone = load_backbone(name, "imagenet", size)
    frames = torch.randint(0, 256, (2, 180, 320, 3), dtype=torch.uint8)
    images = backbone.preprocess(frames)
    assert images.shape == (2, 3, size, size) and backbone.resize_size == round(size * 256 / 224)
    with torch.inference_mode():
        features = backbone.model(backbone.normalize(images))
    assert features.shape == (2, 1280) and features.abs().sum() > 0
    random = load_backbone(name, None, size)  # the trained weights are really loaded, not left at init
    assert not torch.equal(
        next(iter(random.model.state_dict().values())), next(iter(backbone.model.state_dict().values()))
    )


def test_an_unknown_backbone_is_named_with_the_choices() -> None:
    with pytest.raises(BackboneError, match="expected resnet50 or " + " or ".join(LITE)):
        load_backbone("vgg16", None)
