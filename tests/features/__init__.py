"""Tests of actrec.features; the settings below extract small, fast features with the real ImageNet Lite0."""

from actrec.features.store import ExtractionSettings
from actrec.params import ExtractParams

SETTINGS = ExtractionSettings(
    backbone="efficientnet_lite0", weights="imagenet", frames=4, views=1, image_size=64, precision="fp32", seed=0
)
CFG = ExtractParams(
    backbone="efficientnet_lite0",
    weights="imagenet",
    frames=4,
    image_size=64,
    batch_size=8,
    num_workers=0,
    shard_size=2,
)
