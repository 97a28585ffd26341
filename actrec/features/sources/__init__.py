"""Feature sources by name: `build_source` is the one place extract.backbone becomes what turns clips into features.

`skeleton` reads NTU's joints (skeleton.py); every other name is an image backbone (image.py, and
features/backbones for the families). The interface every source implements is in base.py.
"""

from __future__ import annotations

from collections.abc import Callable

from actrec.features.sources.base import ClipBatch, ClipReader, Embedder, FeatureSource, clip_seed
from actrec.features.sources.image import ImageSource
from actrec.features.sources.skeleton import SkeletonSource
from actrec.names import backbone_family

__all__ = ["ClipBatch", "ClipReader", "Embedder", "FeatureSource", "build_source", "clip_seed"]

# A family (names.backbone_family) → its source's builder; a family not listed is an image backbone's.
SOURCES: dict[str, Callable[[str, str | None, int | str], FeatureSource]] = {"skeleton": SkeletonSource.build}


def build_source(name: str, weights: str | None, image_size: int | str = "auto") -> FeatureSource:
    """The source extract.backbone names, with extract.weights and extract.image_size as given (or as a run
    recorded them): loaded, its weights' identity and preprocessing resolved."""
    family, _ = backbone_family(name)
    return SOURCES.get(family, ImageSource.build)(name, weights, image_size)
