"""The backbone file: what the finetune stage hands extract (models/backbone.pt).

With fine-tuning on, it holds the fine-tuned network's weights, as a state dict named as the
backbone's builder names it (so it is a weights file `extract.weights` could name too), beside a
record of what they were fine-tuned from. With it off, it holds no weights: the stage passes the
pretrained ones through, and extract runs exactly as without the stage, so its features keep
their cache key and their bytes. The file is written the same, byte for byte, for the same
contents, so DVC reruns extract only when what it holds changes.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import torch

from actrec.errors import ActrecError
from actrec.files import read_torch, write_torch
from actrec.params import ExtractParams

FORMAT = 1


class BackboneFileError(ActrecError):
    """A backbone file that is missing, unreadable, or written for other params."""


def write_backbone_file(
    path: str | Path, cfg: ExtractParams, state: dict[str, torch.Tensor] | None, record: dict[str, Any]
) -> None:
    """Write the file whole or not at all: `state` None passes cfg's weights through (fine-tuning off, or the head
    alone validated best), recording nothing else; fine-tuned weights record `record` and the frames they were
    tuned on too."""
    tuned_on = {"frames": cfg.frames, "image_size": cfg.image_size, **record} if state is not None else {}
    content = {"format": FORMAT, "backbone": cfg.backbone, "pretrained": cfg.weights, **tuned_on}
    write_torch(path, {**content, "state_dict": state})


def fine_tuned(path: str | Path, cfg: ExtractParams) -> bool:
    """Whether the backbone file holds fine-tuned weights (False: a pass-through); refuses one written for
    another backbone or other pretrained weights than params.extract names."""
    path = Path(path)
    if not path.is_file():
        raise BackboneFileError(f"backbone file {path} not found; run the finetune stage first (dvc repro)")
    content = read_torch(path, "a backbone file", BackboneFileError, mmap=True)
    if not isinstance(content, dict) or content.get("format") != FORMAT:
        raise BackboneFileError(f"{path} is not a backbone file of format {FORMAT}; run the finetune stage again")
    # fine-tuned weights were tuned on frames of one size and number; passed-through ones fit any
    keys = ("backbone", "pretrained", *(("frames", "image_size") if content["state_dict"] is not None else ()))
    wanted = {"backbone": cfg.backbone, "pretrained": cfg.weights, "frames": cfg.frames, "image_size": cfg.image_size}
    stale = [f"{k} {content.get(k)} ≠ {wanted[k]}" for k in keys if content.get(k) != wanted[k]]
    if stale:
        raise BackboneFileError(
            f"{path} was written for other extract params (file ≠ params: {', '.join(stale)}); run the finetune "
            f"stage first (dvc repro)"
        )
    return content["state_dict"] is not None


def extract_params(path: str | Path | None, cfg: ExtractParams, enabled: bool) -> tuple[ExtractParams, dict[str, str]]:
    """params.extract as extract runs it, and what the feature file adds to its record: with fine-tuning on
    (`enabled`), the backbone file's fine-tuned weights in place of the pretrained ones, recorded as
    `finetuned_from`; else cfg itself. Off, the file is not read: extract runs as if there were no such stage."""
    if path is None or not enabled or not fine_tuned(path, cfg):
        return cfg, {}
    return dataclasses.replace(cfg, weights=str(path)), {"finetuned_from": cfg.weights or ""}
