"""Any timm model as `timm:<model>[.<tag>]` (`timm:vit_small_patch14_dinov2.lvd142m`): timm's resolved data
config for its preprocessing, the tag's weights from the Hugging Face cache (HF_HOME) or the torch hub cache,
a local file, or random init; the feature is timm's pooled embedding (the classifier reset to none)."""

from __future__ import annotations

import logging
import math
from pathlib import Path

import torch

from actrec.errors import first_line
from actrec.features.backbones.base import (
    Backbone,
    BackboneError,
    Preprocessing,
    file_identity,
    finish,
    hf_cache_dir,
    hf_cached,
    hf_endpoint,
    is_file,
    local_file,
    missing_weights,
    offline,
    unreachable,
)

logger = logging.getLogger(__name__)


def load(name: str, weights: str | None, image_size: int | str) -> Backbone:
    """timm's `name`; weights imagenet (the weights of the name's tag, or of timm's default tag), a file, or None."""
    import timm
    from timm.data import resolve_data_config

    cfg = timm.models.get_pretrained_cfg(name)
    config = resolve_data_config(pretrained_cfg=cfg.to_dict() if cfg else {"input_size": (3, 224, 224)})
    height, width = config["input_size"][1:]
    if height != width:
        raise BackboneError(f"timm:{name} takes {height}x{width} images; actrec crops square frames")
    if config.get("crop_mode", "center") not in ("center", "squash"):
        raise BackboneError(f"timm:{name} crops by {config['crop_mode']!r}, which actrec does not do")
    crop = height if image_size == "auto" else int(image_size)
    options: dict = {}
    if cfg is not None and cfg.fixed_input_size and crop != height:
        options["img_size"] = crop  # a ViT: timm resamples the position embedding to the size given
    tagged = f"{cfg.architecture}.{cfg.tag}" if cfg is not None and cfg.tag else name
    if weights is None:
        model, weights_id = timm.create_model(name, pretrained=False, **options), "random init"
    elif is_file(weights):
        model, weights_id = _create(name, weights, options), file_identity(weights)
    elif weights == "imagenet":
        model, weights_id = _create(name, _published(name, tagged, cfg), options), f"timm:{tagged}"
    else:
        raise BackboneError(f"extract.weights = {weights!r}: timm takes the tag in the name (timm:<model>.<tag>)")
    model.reset_classifier(0)  # the pooled embedding, as timm gives it without a classifier
    preprocessing = Preprocessing(
        math.floor(crop / config["crop_pct"]),  # as timm's eval transform scales
        crop,
        config["interpolation"],
        tuple(config["mean"]),
        tuple(config["std"]),
        squash=config.get("crop_mode") == "squash",
    )
    return finish(f"timm:{name}", model, preprocessing, weights_id, local_file(weights))


def _create(name: str, path: str, options: dict) -> torch.nn.Module:
    """The model with the weights of a file, through timm's own loading (its checkpoint filters: position
    embeddings resampled, original checkpoints converted), strictly: every weight must fit."""
    import timm

    try:
        return timm.create_model(name, pretrained=True, pretrained_cfg_overlay={"file": path}, **options)
    except (RuntimeError, KeyError, ValueError) as err:
        raise BackboneError(f"extract.weights: {path} does not fit timm:{name} ({first_line(err)})") from err


def _published(name: str, tagged: str, cfg) -> str:
    """The tag's weights file, from the Hugging Face or torch hub cache; downloaded there first if allowed."""
    import timm

    if cfg is None or not (cfg.hf_hub_id or cfg.url):
        raise BackboneError(f"timm publishes no weights for {name}; use extract.weights: null or a file")
    found, looked = _cached(cfg)
    if found:
        return found
    repo = hf_cache_dir() / f"models--{cfg.hf_hub_id.replace('/', '--')}" if cfg.hf_hub_id else looked[-1]
    place = (
        f"On a machine with network access run `python -c \"import timm; timm.create_model('{tagged}', "
        f'pretrained=True)"`, then copy {repo} to the same place here'
    )
    if offline() or (err := unreachable(hf_endpoint() if cfg.hf_hub_id else cfg.url)):
        raise missing_weights(f"timm:{tagged}", looked, place, None if offline() else err)
    logger.info("downloading the weights of timm:%s", tagged)
    try:
        timm.create_model(tagged, pretrained=True)  # into the caches, where the lookup finds them
    except Exception as err:
        raise missing_weights(f"timm:{tagged}", looked, place, err) from err
    found, _ = _cached(cfg)
    if not found:
        raise missing_weights(f"timm:{tagged}", looked, place, FileNotFoundError("not in the caches afterwards"))
    return found


def _cached(cfg) -> tuple[str | None, list[Path | str]]:
    """Where timm keeps the tag's weights file (the Hugging Face cache, else the torch hub cache): the file if
    it is there, and the places looked in."""
    looked: list[Path | str] = []
    if cfg.hf_hub_id:
        files = [cfg.hf_hub_filename] if cfg.hf_hub_filename else ["model.safetensors", "pytorch_model.bin"]
        if found := hf_cached(cfg.hf_hub_id, files):
            return found, looked
        looked.append(f"{' or '.join(files)} of {cfg.hf_hub_id} in {hf_cache_dir()}")
    if cfg.url:
        cached = Path(torch.hub.get_dir()) / "checkpoints" / Path(cfg.url).name
        if cached.is_file():
            return str(cached), looked
        looked.append(cached)
    return None, looked
