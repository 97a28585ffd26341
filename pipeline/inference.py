"""Loading a trained model as the run recorded it, for evaluation and predictions on new videos."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from pipeline.errors import ActrecError
from pipeline.models import build_head


def load_model(path: str | Path) -> tuple[nn.Module, dict[str, Any]]:
    """The temporal head saved by the train stage, in eval mode, and its checkpoint record."""
    path = Path(path)
    if not path.is_file():
        raise ActrecError(f"model {path} not found; run the train stage (dvc repro) first")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
        model = build_head(checkpoint["head"], checkpoint["input_dim"], len(checkpoint["classes"]),
                           **checkpoint["head_options"])
        model.load_state_dict(checkpoint["state_dict"])
    except (KeyError, RuntimeError, OSError) as err:
        raise ActrecError(f"{path} is not an actrec model checkpoint ({err})") from err
    return model.eval(), checkpoint
