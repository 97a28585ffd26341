"""Temporal heads: classify a sequence of frame features (B, T, D) into class logits (B, C).

Each head is one small class; HEADS maps the name used in params.yaml (model.head) to it, and
`build_head` is the one place that turns params into a module, for training and for predict.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn


class RNNHead(nn.Module):
    """LSTM or GRU over the frame features; the last hidden state (both directions) is classified."""

    def __init__(self, input_dim: int, num_classes: int, *, cell: str = "lstm", hidden_size: int = 256,
                 num_layers: int = 1, bidirectional: bool = False, dropout: float = 0.3) -> None:
        super().__init__()
        rnn = {"lstm": nn.LSTM, "gru": nn.GRU}[cell]
        self.norm = nn.LayerNorm(input_dim)
        self.dropout = nn.Dropout(dropout)
        self.rnn = rnn(input_dim, hidden_size, num_layers=num_layers, batch_first=True,
                       bidirectional=bidirectional, dropout=dropout if num_layers > 1 else 0.0)
        self.classifier = nn.Linear(hidden_size * (2 if bidirectional else 1), num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _, hidden = self.rnn(self.dropout(self.norm(x)))
        if isinstance(hidden, tuple):  # LSTM returns (h_n, c_n)
            hidden = hidden[0]
        last = hidden[-2:].transpose(0, 1).flatten(1) if self.rnn.bidirectional else hidden[-1]
        return self.classifier(self.dropout(last))


HEADS: dict[str, Any] = {
    "lstm": lambda d, c, **kw: RNNHead(d, c, cell="lstm", **kw),
    "gru": lambda d, c, **kw: RNNHead(d, c, cell="gru", **kw),
}


def build_head(head: str, input_dim: int, num_classes: int, **options: Any) -> nn.Module:
    """The temporal head named `head` (a key of HEADS) with its options from params.yaml."""
    if head not in HEADS:
        raise ValueError(f"unknown head {head!r}; expected one of {', '.join(HEADS)}")
    return HEADS[head](input_dim, num_classes, **options)
