"""The checkpoint format: what the train stage writes loads back into the same function; foreign files are refused."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from actrec.model.checkpoint import FORMAT, Checkpoint, CheckpointError, load_model
from actrec.model.heads import HEADS, build_head
from actrec.params import ModelParams

RECORD = {
    "backbone": "efficientnet_lite0",
    "weights": "imagenet",
    "frames": 16,
    "views": 1,
    "image_size": 224,
    "precision": "fp32",
    "seed": 0,
    "feature_dim": 8,
}


def _checkpoint(head: str) -> tuple[torch.nn.Module, Checkpoint]:
    params = ModelParams(hidden_size=24, num_heads=3, bidirectional=True)
    options = params.head_options()
    torch.manual_seed(0)
    model = build_head(head, 8, 3, params).eval()
    return model, Checkpoint(
        head=head,
        head_options=options,
        input_dim=8,
        classes=["a", "b", "c"],
        features=RECORD,
        state_dict=model.state_dict(),
    )


@pytest.mark.parametrize("head", sorted(HEADS))
def test_checkpoint_rebuilds_the_same_head(head: str, tmp_path: Path) -> None:
    """Every model option is recorded, used or not, and the saved head computes the same function."""
    model, checkpoint = _checkpoint(head)
    checkpoint.save(tmp_path / "model.pt")
    loaded, record = load_model(tmp_path)  # a folder holding model.pt, as a run's models/
    x = torch.randn(2, 16, 8)
    assert torch.equal(loaded(x), model(x))
    assert (record.head, record.classes, record.features) == (head, ["a", "b", "c"], RECORD)
    assert torch.load(tmp_path / "model.pt", weights_only=True)["format"] == FORMAT


def test_the_same_weights_give_the_same_bytes(tmp_path: Path) -> None:
    """DVC hashes the file: saving the same weights twice must not change it (no temporary name inside)."""
    _, checkpoint = _checkpoint("lstm")
    checkpoint.save(tmp_path / "a.pt")
    checkpoint.save(tmp_path / "b.pt")
    assert (tmp_path / "a.pt").read_bytes() == (tmp_path / "b.pt").read_bytes()


def test_another_format_and_foreign_files_are_refused(tmp_path: Path) -> None:
    model, checkpoint = _checkpoint("gru")
    checkpoint.save(tmp_path / "model.pt")
    record = torch.load(tmp_path / "model.pt", weights_only=True)
    torch.save({**record, "format": FORMAT + 1}, tmp_path / "newer.pt")
    with pytest.raises(CheckpointError, match=f"of format {FORMAT + 1}; this version reads format {FORMAT}"):
        load_model(tmp_path / "newer.pt")
    del record["format"]  # written before the format had a number: the same layout, read as format 1
    torch.save(record, tmp_path / "unnumbered.pt")
    assert torch.equal(load_model(tmp_path / "unnumbered.pt")[0](torch.ones(1, 4, 8)), model(torch.ones(1, 4, 8)))
    torch.save({"weights": model.state_dict()}, tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match="not an actrec model checkpoint"):
        load_model(tmp_path / "other.pt")
    (tmp_path / "notes.pt").write_text("not a checkpoint\n")
    with pytest.raises(CheckpointError, match=r"torch\.load cannot read it"):
        load_model(tmp_path / "notes.pt")
    with pytest.raises(CheckpointError, match="not found; run the train stage"):
        load_model(tmp_path / "missing.pt")
