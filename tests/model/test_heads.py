"""Temporal heads: output shapes for every configuration params.yaml allows, order sensitivity."""

from __future__ import annotations

import typing

import pytest
import torch

from actrec.model.heads import HEADS, build_head
from actrec.names import HeadName
from actrec.params import ModelParams

ORDER_AWARE = [
    ("lstm", {}),
    ("gru", {}),
    ("attention", {"encoder": "gru"}),
    ("attention", {"encoder": "lstm"}),
    ("attention", {"encoder": "linear"}),
    ("transformer", {}),
]


def test_params_list_every_head() -> None:
    assert set(typing.get_args(HeadName)) == set(HEADS)


@pytest.mark.parametrize("head", sorted(HEADS))
@pytest.mark.parametrize("layers, bidirectional", [(1, False), (2, True)])
def test_head_output_shape(head: str, layers: int, bidirectional: bool) -> None:
    options = ModelParams(hidden_size=32, num_layers=layers, bidirectional=bidirectional, dropout=0.1)
    model = build_head(head, 2048, 101, options)
    logits = model(torch.randn(4, 16, 2048))
    assert logits.shape == (4, 101)
    logits.sum().backward()
    assert all(p.grad is not None for p in model.parameters())


@pytest.mark.parametrize("head, options", ORDER_AWARE)
def test_order_aware_heads_depend_on_frame_order(head: str, options: dict) -> None:
    torch.manual_seed(0)
    model = build_head(head, 8, 3, ModelParams(hidden_size=16, dropout=0.0, **options)).eval()
    x = torch.randn(2, 16, 8)
    assert not torch.allclose(model(x), model(x.flip(1)), atol=1e-5)


def test_mean_head_ignores_frame_order_and_options_it_does_not_use() -> None:
    torch.manual_seed(0)
    plain = build_head("mean", 8, 3)
    options = ModelParams(hidden_size=64, bidirectional=True, encoder="lstm")
    torch.manual_seed(0)
    model = build_head("mean", 8, 3, options).eval()
    assert [p.shape for p in model.parameters()] == [p.shape for p in plain.parameters()]
    x = torch.randn(2, 16, 8)
    assert torch.allclose(model(x), model(x.flip(1)), atol=1e-6)


def test_unknown_head_is_rejected() -> None:
    with pytest.raises(ValueError, match="unknown head"):
        build_head("tcn", 8, 3)
