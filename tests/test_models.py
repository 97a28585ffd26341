"""Temporal heads: output shapes for every configuration params.yaml allows."""

from __future__ import annotations

import pytest
import torch

from pipeline.models import HEADS, build_head


@pytest.mark.parametrize("head", sorted(HEADS))
@pytest.mark.parametrize("layers, bidirectional", [(1, False), (2, True)])
def test_head_output_shape(head: str, layers: int, bidirectional: bool) -> None:
    model = build_head(head, 2048, 101, hidden_size=32, num_layers=layers, bidirectional=bidirectional, dropout=0.1)
    logits = model(torch.randn(4, 16, 2048))
    assert logits.shape == (4, 101)
    logits.sum().backward()
    assert all(p.grad is not None for p in model.parameters())


def test_head_depends_on_frame_order() -> None:
    torch.manual_seed(0)
    model = build_head("lstm", 8, 3, hidden_size=16, num_layers=1, bidirectional=False, dropout=0.0).eval()
    x = torch.randn(2, 16, 8)
    assert not torch.allclose(model(x), model(x.flip(1)))


def test_unknown_head_is_rejected() -> None:
    with pytest.raises(ValueError, match="unknown head"):
        build_head("tcn", 8, 3)
