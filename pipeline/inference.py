"""Loading a trained model as the run recorded it, for evaluation and predictions on new videos."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch
from torch import nn

from pipeline.backbones import Backbone, load_backbone
from pipeline.errors import ActrecError
from pipeline.models import build_head

logger = logging.getLogger(__name__)


def load_model(path: str | Path) -> tuple[nn.Module, dict[str, Any]]:
    """The temporal head saved by the train stage, in eval mode, and its checkpoint record.

    `path` is the checkpoint file or a folder holding model.pt (as a run's models/ folder).
    """
    path = Path(path)
    if path.is_dir():
        path = path / "model.pt"
    if not path.is_file():
        raise ActrecError(f"model {path} not found; run the train stage (dvc repro) first")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # the unpickler fails on foreign bytes in many ways (KeyError, EOFError, ...)
        # torch's own messages run to paragraphs about weights_only; the type says enough.
        raise ActrecError(f"{path} is not a model checkpoint: torch.load cannot read it "
                          f"({type(err).__name__})") from err
    try:
        model = build_head(checkpoint["head"], checkpoint["input_dim"], len(checkpoint["classes"]),
                           **checkpoint["head_options"])
        model.load_state_dict(checkpoint["state_dict"])
    except (KeyError, TypeError, ValueError, RuntimeError) as err:
        raise ActrecError(f"{path} is not an actrec model checkpoint ({type(err).__name__}: {err})") from err
    return model.eval(), checkpoint


def recorded_backbone(checkpoint: dict[str, Any], path: str | Path) -> Backbone:
    """The backbone the model's features were extracted with, as the run recorded it (not today's params).

    Refuses a checkpoint whose record and head disagree on the feature size: its head would
    be fed features from a backbone it never saw.
    """
    record = checkpoint.get("features") or {}
    missing = [k for k in ("backbone", "weights", "image_size", "frames", "clips", "feature_dim") if k not in record]
    if missing:
        raise ActrecError(f"model {path} does not record how its features were made ({', '.join(missing)} "
                          f"missing); train it again with this version")
    if record["feature_dim"] != checkpoint["input_dim"]:
        raise ActrecError(f"model {path} is inconsistent: its head takes {checkpoint['input_dim']}-d features but "
                          f"it records {record['feature_dim']}-d {record['backbone']} features")
    weights = record["weights"] or None  # the feature file stores null as ""
    backbone = load_backbone(record["backbone"], weights, int(record["image_size"]))
    if backbone.feature_dim != checkpoint["input_dim"]:
        raise ActrecError(f"model {path} takes {checkpoint['input_dim']}-d features but its recorded backbone "
                          f"{record['backbone']} gives {backbone.feature_dim}-d features")
    if weights is None:
        logger.warning("model %s was trained on features of a randomly initialised %s (extract.weights: null); "
                       "its predictions on new videos are meaningless", path, record["backbone"])
    return backbone
