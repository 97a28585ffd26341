"""A feature file or checkpoint missing a part (deleted with h5py, or a dict key gone) is one line naming the file
and the part, in every stage and command that reads it, never a KeyError."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

from actrec.features.store import FORMAT_VERSION, PARTS, FeatureStoreError, load_features, read_split
from actrec.model.checkpoint import CheckpointError, load_model


def _feature_file(path: Path, without: str) -> Path:
    with h5py.File(path, "w") as f:
        f.attrs.update({"format": FORMAT_VERSION, "classes": '["a", "b"]'})
        f["features"] = np.zeros((2, 1, 4, 8), np.float16)
        f["frame_indices"] = np.zeros((2, 1, 4), np.int32)
        f["labels"] = np.array([0, 1])
        for name in ("clip_ids", "split", "groups"):
            f.create_dataset(name, data=np.array(["x", "y"], dtype=object), dtype=h5py.string_dtype())
        del f[without]
    return path


@pytest.mark.parametrize("part", [p for p in PARTS if p != "features"])
def test_a_feature_file_missing_a_part_names_it(tmp_path: Path, part: str) -> None:
    path = _feature_file(tmp_path / "features.h5", part)
    for read in (load_features, read_split):
        with pytest.raises(FeatureStoreError, match=f"{path} has no {part} \\(a cut or edited feature file\\)"):
            read(path)


@pytest.mark.parametrize("part", ["classes", "input_dim", "head_options"])
def test_a_checkpoint_missing_a_part_names_it(tmp_path: Path, part: str) -> None:
    record = {"head": "mean", "head_options": {}, "input_dim": 8, "classes": ["a", "b"], "features": {}}
    record["state_dict"] = {"x": torch.zeros(1)}
    del record[part]
    torch.save(record, tmp_path / "model.pt")
    with pytest.raises(CheckpointError) as err:
        load_model(tmp_path / "model.pt")
    message = str(err.value)
    assert "\n" not in message and str(tmp_path / "model.pt") in message and part in message
