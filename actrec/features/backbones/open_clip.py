"""OpenCLIP image towers as `open_clip:<architecture>` with extract.weights naming the pretrained tag
(`open_clip:ViT-B-16`, `laion2b_s34b_b88k`): the tag's preprocessing, its weights from the Hugging Face cache
(HF_HOME) or OpenCLIP's own (~/.cache/clip), a local file, or random init; the feature is the image embedding."""

from __future__ import annotations

import logging
import os
from pathlib import Path

from torch import nn

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
    quiet_root_logger,
    unreachable,
)

logger = logging.getLogger(__name__)

# OpenCLIP's download folder for weights published by URL
URL_CACHE = Path(os.path.expanduser("~/.cache/clip"))


def load(arch: str, weights: str | None, image_size: int | str) -> Backbone:
    """OpenCLIP's `arch` image tower; weights a pretrained tag of it, a file (the whole CLIP model's state dict,
    as OpenCLIP saves it), or None (random init)."""
    import open_clip

    options: dict = {} if image_size == "auto" else {"force_image_size": int(image_size)}
    if weights is None:
        pretrained, weights_id = None, "random init"
    elif is_file(weights):
        pretrained, weights_id = weights, file_identity(weights)
    else:
        tag = open_clip.get_pretrained_cfg(arch, weights)
        if not tag:
            raise BackboneError(f"extract.weights = {weights!r}: OpenCLIP has no such tag for {arch}")
        pretrained, weights_id = _published(arch, weights, tag), f"open_clip:{arch}:{weights}"
        # the tag's preprocessing and activation, which OpenCLIP applies for a tag but not for a file
        preprocess = {k: tag[k] for k in ("mean", "std", "interpolation", "resize_mode") if k in tag}
        options.update(force_preprocess_cfg=preprocess, force_quick_gelu=bool(tag.get("quick_gelu")))
    try:
        with quiet_root_logger():
            model = open_clip.create_model(arch, pretrained=pretrained, **options)
    except (RuntimeError, KeyError, ValueError) as err:
        raise BackboneError(f"extract.weights: {pretrained} does not fit open_clip:{arch} ({err})") from err
    visual: nn.Module = model.visual
    cfg = visual.preprocess_cfg
    size = cfg["size"] if isinstance(cfg["size"], int) else cfg["size"][0]
    if cfg["resize_mode"] not in ("shortest", "squash"):
        raise BackboneError(f"open_clip:{arch} resizes by {cfg['resize_mode']!r}, which actrec does not do")
    # OpenCLIP's eval transform: the short side (both sides, squashed) resized to the size, then a centre crop
    preprocessing = Preprocessing(
        size, size, cfg["interpolation"], tuple(cfg["mean"]), tuple(cfg["std"]), squash=cfg["resize_mode"] == "squash"
    )
    return finish(f"open_clip:{arch}", visual, preprocessing, weights_id, local_file(weights))


def _published(arch: str, name: str, tag: dict) -> str:
    """The tag's weights file, from the Hugging Face cache or OpenCLIP's URL cache; downloaded if allowed."""
    import open_clip

    found, looked = _cached(tag)
    if found:
        return found
    repo = os.path.split(tag["hf_hub"])[0] if tag.get("hf_hub") else ""
    where = hf_cache_dir() / f"models--{repo.replace('/', '--')}" if repo else URL_CACHE
    place = (
        f"On a machine with network access run `python -c \"import open_clip; open_clip.create_model('{arch}', "
        f"pretrained='{name}')\"`, then copy {where} to the same place here"
    )
    what = f"open_clip:{arch} ({name})"
    if offline() or (err := unreachable(hf_endpoint() if tag.get("hf_hub") else tag["url"])):
        raise missing_weights(what, looked, place, None if offline() else err)
    logger.info("downloading the weights of %s", what)
    try:
        found = open_clip.download_pretrained(tag)
    except Exception as err:
        raise missing_weights(what, looked, place, err) from err
    if not found:
        raise missing_weights(what, looked, place, FileNotFoundError("OpenCLIP found nothing to download"))
    return found


def _cached(tag: dict) -> tuple[str | None, list[Path | str]]:
    """Where OpenCLIP keeps the tag's file (the Hugging Face cache, else its URL cache): the file, if it is
    there, and the places looked in."""
    looked: list[Path | str] = []
    if hub := tag.get("hf_hub"):
        repo, filename = os.path.split(hub)  # "org/model/" (the default file) or "org/model/file.bin"
        files = [filename] if filename else ["open_clip_model.safetensors", "open_clip_pytorch_model.bin"]
        if filename.endswith((".bin", ".pth")):
            files.insert(0, filename.rsplit(".", 1)[0] + ".safetensors")
        if found := hf_cached(repo, files):
            return found, looked
        looked.append(f"{' or '.join(files)} of {repo} in {hf_cache_dir()}")
    if url := tag.get("url"):
        cached = URL_CACHE / Path(url).name
        if cached.is_file():
            return str(cached), looked
        looked.append(cached)
    return None, looked
