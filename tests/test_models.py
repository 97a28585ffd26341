"""Temporal heads: output shapes for every configuration params.yaml allows, order sensitivity, checkpoints."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from pipeline.inference import load_model
from pipeline.models import HEADS, build_head
from pipeline.params import HEADS as PARAM_HEADS
from pipeline.params import ModelParams
from pipeline.training import head_options

ORDER_AWARE = [("lstm", {}), ("gru", {}), ("attention", {"encoder": "gru"}), ("attention", {"encoder": "lstm"}),
               ("attention", {"encoder": "linear"}), ("transformer", {})]


def test_params_list_every_head() -> None:
    assert set(PARAM_HEADS) == set(HEADS)


@pytest.mark.parametrize("head", sorted(HEADS))
@pytest.mark.parametrize("layers, bidirectional", [(1, False), (2, True)])
def test_head_output_shape(head: str, layers: int, bidirectional: bool) -> None:
    model = build_head(head, 2048, 101, hidden_size=32, num_layers=layers, bidirectional=bidirectional, dropout=0.1)
    logits = model(torch.randn(4, 16, 2048))
    assert logits.shape == (4, 101)
    logits.sum().backward()
    assert all(p.grad is not None for p in model.parameters())


@pytest.mark.parametrize("head, options", ORDER_AWARE)
def test_order_aware_heads_depend_on_frame_order(head: str, options: dict) -> None:
    torch.manual_seed(0)
    model = build_head(head, 8, 3, hidden_size=16, dropout=0.0, **options).eval()
    x = torch.randn(2, 16, 8)
    assert not torch.allclose(model(x), model(x.flip(1)), atol=1e-5)


def test_mean_head_ignores_frame_order_and_options_it_does_not_use() -> None:
    torch.manual_seed(0)
    plain = build_head("mean", 8, 3)
    options = head_options(ModelParams(hidden_size=64, bidirectional=True, encoder="lstm"))
    torch.manual_seed(0)
    model = build_head("mean", 8, 3, **options).eval()
    assert [p.shape for p in model.parameters()] == [p.shape for p in plain.parameters()]
    x = torch.randn(2, 16, 8)
    assert torch.allclose(model(x), model(x.flip(1)), atol=1e-6)


@pytest.mark.parametrize("head", sorted(HEADS))
def test_checkpoint_rebuilds_the_same_head(head: str, tmp_path: Path) -> None:
    """What train.py saves (every model option, used or not) loads back into the same function."""
    options = head_options(ModelParams(head=head, hidden_size=24, num_heads=3, bidirectional=True))
    torch.manual_seed(0)
    model = build_head(head, 8, 3, **options).eval()
    torch.save({"state_dict": model.state_dict(), "head": head, "head_options": options, "input_dim": 8,
                "classes": ["a", "b", "c"]}, tmp_path / "model.pt")
    loaded, _ = load_model(tmp_path / "model.pt")
    x = torch.randn(2, 16, 8)
    assert torch.equal(loaded(x), model(x))


def test_unknown_head_is_rejected() -> None:
    with pytest.raises(ValueError, match="unknown head"):
        build_head("tcn", 8, 3)
