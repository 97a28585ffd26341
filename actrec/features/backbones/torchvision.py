"""torchvision's classification models by builder name (`resnet18`, `inception_v3`, `vit_b_16`, ...): the
weights enum's own eval transforms, its published weights from the torch hub cache (TORCH_HOME), a local file,
or random init."""

from __future__ import annotations

import logging
from pathlib import Path

import torch
from torch import nn

from actrec.features.backbones.base import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    Backbone,
    BackboneError,
    Preprocessing,
    drop_classifier,
    file_identity,
    finish,
    is_file,
    local_file,
    missing_weights,
    offline,
    read_state_dict,
    scaled,
    unreachable,
)

logger = logging.getLogger(__name__)

# Auxiliary classifiers: trained with the network, never part of its features; a checkpoint may hold them.
AUXILIARY = ("AuxLogits.", "aux1.", "aux2.")


class TorchvisionBackbone(Backbone):
    """A torchvision classifier. Its blocks: ResNets' stem, layer1 .. layer4; EfficientNets' features.0 ..
    features.8, as the builder names its stages; none known for the other architectures."""

    def blocks(self) -> list[tuple[str, nn.Module]]:
        from torchvision.models import EfficientNet, ResNet

        model = self.model
        if isinstance(model, ResNet):
            stem = nn.Sequential(model.conv1, model.bn1, model.relu, model.maxpool)
            return [("stem", stem), *((f"layer{i}", getattr(model, f"layer{i}")) for i in range(1, 5))]
        if isinstance(model, EfficientNet):
            return [(f"features.{i}", stage) for i, stage in enumerate(model.features)]
        return []


def load(name: str, weights: str | None, image_size: int | str) -> Backbone:
    """torchvision's `name`; weights imagenet (the builder's default), a weights enum name, a file, or None."""
    import torchvision.models as tvm

    builder = tvm.get_model_builder(name)
    try:
        enum = tvm.get_model_weights(name)
    except ValueError:
        enum = None
    if weights not in (None, "imagenet") and not is_file(weights) and (enum is None or weights not in enum.__members__):
        raise BackboneError(f"extract.weights = {weights!r}: {name} has no such weights (params check them first)")
    # A file is read as the builder's default weights are (same transforms, same architecture options).
    chosen = (
        None if enum is None else enum.DEFAULT if weights in (None, "imagenet") or is_file(weights) else enum[weights]
    )
    transforms = chosen.transforms() if chosen is not None else None
    if hasattr(transforms, "crop_size"):  # ImageClassification, the classifiers' eval transform
        native_crop, native_resize = transforms.crop_size[0], transforms.resize_size[0]
        interpolation, mean, std = transforms.interpolation.value, tuple(transforms.mean), tuple(transforms.std)
    else:
        native_crop, native_resize, interpolation, mean, std = 224, 256, "bilinear", IMAGENET_MEAN, IMAGENET_STD
    resize, crop = scaled(native_crop, native_resize / native_crop, image_size)
    options: dict = {}
    if name in ("inception_v3", "googlenet"):  # as the builder sets them for its ImageNet weights
        # (random init as torchvision does it without init_weights: its truncated normal overflows float16 here)
        options = {"aux_logits": False, "init_weights": False, "transform_input": weights is not None}
    if name.startswith("vit_"):
        options["image_size"] = crop
    model = builder(weights=None, **options)
    head = drop_classifier(model, name)
    weights_id = "random init"
    if weights is not None:
        if is_file(weights):
            state, source, weights_id = read_state_dict(weights), weights, file_identity(weights)
        else:
            state, source, weights_id = published_weights(name, chosen), str(chosen), str(chosen)
        if name.startswith("vit_") and crop != native_crop:
            from torchvision.models.vision_transformer import interpolate_embeddings

            state = interpolate_embeddings(crop, model.patch_size, state)
        load_trunk(model, state, head, name, source)
    preprocessing = Preprocessing(resize, crop, interpolation, mean, std)
    return finish(name, model, preprocessing, weights_id, local_file(weights), TorchvisionBackbone)


def published_weights(name: str, chosen) -> dict[str, torch.Tensor]:
    """The enum's weights from the torch hub cache, downloaded there first if the network allows."""
    if chosen is None:
        raise BackboneError(f"torchvision publishes no weights for {name}; use extract.weights: null or a file")
    cached = Path(torch.hub.get_dir()) / "checkpoints" / Path(chosen.url).name
    place = f"Download {chosen.url} on a machine with network access and put it in {cached.parent}"
    if not cached.is_file():
        if offline() or (err := unreachable(chosen.url)):
            raise missing_weights(f"{name} ({chosen})", [cached], place, None if offline() else err)
        logger.info("downloading %s into %s", cached.name, cached.parent)
    try:
        return chosen.get_state_dict(progress=False, check_hash=True)
    except Exception as err:  # URLError and socket errors are OSErrors; a bad hash is a RuntimeError
        raise missing_weights(f"{name} ({chosen})", [cached], place, err) from err


def load_trunk(model: nn.Module, state: dict[str, torch.Tensor], head: str, name: str, source: str) -> None:
    """Load every weight of the network but its classifier (and auxiliary classifiers) from `state`."""
    try:
        result = model.load_state_dict(state, strict=False)
    except RuntimeError as err:  # shapes that do not fit
        reason = str(err).splitlines()[-1].strip()
        raise BackboneError(f"extract.weights: {source} does not fit {name} ({reason})") from err
    unexpected = [k for k in result.unexpected_keys if not k.startswith((f"{head}.", *AUXILIARY))]
    if result.missing_keys or unexpected:
        raise BackboneError(
            f"extract.weights: {source} does not fit {name}: {len(result.missing_keys)} of its weights missing "
            f"({', '.join(result.missing_keys[:3])}), {len(unexpected)} unknown ({', '.join(unexpected[:3])})"
        )
