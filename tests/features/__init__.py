"""Tests of actrec.features; the settings below extract small, fast features with the real ImageNet Lite0."""

from actrec.features.backbones import load_backbone
from actrec.features.store import ExtractionSettings
from actrec.params import ExtractParams

CFG = ExtractParams(
    backbone="efficientnet_lite0",
    weights="imagenet",
    frames=4,
    image_size=64,
    batch_size=8,
    num_workers=0,
    shard_size=2,
)
LITE0 = load_backbone(CFG.backbone, CFG.weights, CFG.image_size)
SETTINGS = ExtractionSettings.from_params(CFG, "fp32", 0, LITE0)
