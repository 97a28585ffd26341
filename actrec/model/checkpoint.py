"""The checkpoint format: one writer (the train stage), one reader (evaluate, predict, export).

A checkpoint records the head, its options, the classes and how the features it was trained on
were made (backbone, weights, T, K, image size, precision), so a later reader rebuilds exactly
this model and feeds it exactly these features, whatever params.yaml says by then. `FORMAT`
changes whenever the layout does; a checkpoint of another format is refused with a clear message.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from actrec.errors import ActrecError
from actrec.features.store import (
    MATCHED_SETTINGS,
    RESOLVED_SETTINGS,
    FeatureSet,
    FeatureStoreError,
    differing_settings,
)
from actrec.files import read_torch, write_torch
from actrec.model.heads import build_head
from actrec.params import ModelParams

FORMAT = 1


class CheckpointError(ActrecError):
    """A model file that is missing, unreadable or not an actrec checkpoint of this format."""


@dataclass
class Checkpoint:
    """A trained temporal head and everything needed to use it again."""

    head: str
    head_options: dict[str, Any]
    input_dim: int
    classes: list[str]
    features: dict[str, Any]  # how the features were made, as the feature file's attributes record it
    state_dict: dict[str, torch.Tensor]

    def build(self) -> nn.Module:
        """The head with its trained weights, in eval mode."""
        options = dict(self.head_options)  # the model section as trained, and the ensemble's member
        temporal = options.pop("temporal", None)
        model = build_head(self.head, self.input_dim, len(self.classes), ModelParams(**options), temporal)
        model.load_state_dict(self.state_dict)
        return model.eval()

    def check_features(self, data: FeatureSet, path: str | Path, features_path: str | Path) -> None:
        """Refuse features other than those the head was trained on: other classes, another backbone or sampling."""
        if data.classes != self.classes:
            raise FeatureStoreError(f"{path} was trained on other classes than {features_path} holds; run train again")
        stale = differing_settings(
            {**self.features, "feature_dim": self.input_dim},
            data.attrs,
            (*MATCHED_SETTINGS, *RESOLVED_SETTINGS, "feature_dim"),
        )
        if stale:
            raise FeatureStoreError(
                f"{path} was trained on other features than {features_path} holds (model ≠ "
                f"feature file: {stale}); run train again (dvc repro)"
            )

    def save(self, path: str | Path) -> None:
        """Write the checkpoint whole or not at all; the same weights always give the same bytes."""
        record = {
            **dataclasses.asdict(self),
            "format": FORMAT,
            "features": {k: (v.item() if hasattr(v, "item") else v) for k, v in self.features.items()},
        }
        write_torch(path, record)


def resolve_path(path: str | Path) -> Path:
    """The checkpoint file: `path` itself, or model.pt in the folder `path` (a run's models/)."""
    path = Path(path)
    return path / "model.pt" if path.is_dir() else path


def load_model(path: str | Path) -> tuple[nn.Module, Checkpoint]:
    """The trained head (eval mode) and its checkpoint, or one line saying why the file cannot be used."""
    path = resolve_path(path)
    if not path.is_file():
        raise CheckpointError(f"model {path} not found; run the train stage (dvc repro) first")
    record = read_torch(path, "a model checkpoint", CheckpointError)
    if not isinstance(record, dict) or "state_dict" not in record:
        raise CheckpointError(f"{path} is not an actrec model checkpoint (no trained head in it)")
    if record.get("format", FORMAT) != FORMAT:  # checkpoints from before the format had a number are format 1
        raise CheckpointError(
            f"{path} is an actrec checkpoint of format {record['format']}; this version reads "
            f"format {FORMAT}: train it again (dvc repro)"
        )
    missing = [f.name for f in dataclasses.fields(Checkpoint) if f.name not in record]
    if missing:
        raise CheckpointError(f"{path} has no {', '.join(missing)} (a cut or edited checkpoint); train it again")
    try:
        checkpoint = Checkpoint(**{f.name: record[f.name] for f in dataclasses.fields(Checkpoint)})
        return checkpoint.build(), checkpoint
    except (KeyError, TypeError, ValueError, RuntimeError) as err:
        said = " ".join(str(err).split())[:300]  # one line: pydantic's own runs over several
        raise CheckpointError(f"{path} is not an actrec model checkpoint ({type(err).__name__}: {said})") from err
