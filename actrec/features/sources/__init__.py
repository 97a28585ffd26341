"""Feature sources by name: `build_source` is the one place extract.backbone becomes what turns clips into features.

`skeleton` reads NTU's joints (skeleton.py), `hofmbh` is the optical-flow motion stream (motion.py),
torchvision's video classifiers (video.py) and Hugging Face video encoders (`hf:`, hf_video.py) give a feature
per window of frames; every other name is an image
backbone (image.py, and features/backbones for the families). extract.motion joins a motion stream to the
source extract.backbone names (joined.py). The interface every source implements is in base.py.
"""

from __future__ import annotations

from collections.abc import Callable

from actrec.features.sources.base import ClipBatch, ClipReader, Embedder, FeatureSource, clip_seed
from actrec.features.sources.hf_video import HFVideoSource
from actrec.features.sources.image import ImageSource
from actrec.features.sources.joined import JoinedSource
from actrec.features.sources.motion import MotionSource
from actrec.features.sources.skeleton import SkeletonSource
from actrec.features.sources.video import VideoSource
from actrec.names import backbone_family

__all__ = ["ClipBatch", "ClipReader", "Embedder", "FeatureSource", "build_source", "clip_seed"]

# A family (names.backbone_family) → its source's builder (name, weights, image_size, clip_len); a family not
# listed is an image backbone's.
SOURCES: dict[str, Callable[[str, str | None, int | str, int | str], FeatureSource]] = {
    "skeleton": SkeletonSource.build,
    "motion": MotionSource.build,
    "video": VideoSource.build,
    "hf": HFVideoSource.build,
}


def build_source(
    name: str,
    weights: str | None,
    image_size: int | str = "auto",
    motion: str | None = None,
    clip_len: int | str = "auto",
) -> FeatureSource:
    """The source extract.backbone names, with extract.weights, extract.image_size and (video models)
    extract.clip_len as given (or as a run recorded them): loaded, its weights' identity and preprocessing
    resolved; joined by the motion stream extract.motion names, if any."""
    family, _ = backbone_family(name)
    source = SOURCES.get(family, ImageSource.build)(name, weights, image_size, clip_len)
    return source if motion is None else JoinedSource([source, MotionSource.build(motion)])
