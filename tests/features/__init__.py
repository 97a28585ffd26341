"""Tests of actrec.features; the settings below extract small, fast features with the real ImageNet Lite0."""

from actrec.features.backbones import load_backbone
from actrec.features.sources.image import ImageSource
from actrec.features.store import ExtractionSettings
from actrec.params import ExtractParams
from actrec.runtime import Runtime

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
SOURCE = ImageSource(LITE0)
SETTINGS = ExtractionSettings.from_params(CFG, "eager", "fp32", 0, SOURCE.identity())
# CFG's runtime: one process on the CPU, eager torch in fp32, 8 images a forward, clips read in the main process
RUNTIME = Runtime.resolve(
    "cpu", precision="fp32", engine="eager", batch_size=CFG.batch_size, num_workers=CFG.num_workers
)
