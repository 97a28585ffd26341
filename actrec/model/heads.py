"""Temporal heads: classify a sequence of frame features (B, T, D) into class logits (B, C).

Each head is one small class; HEADS maps the name used in params.yaml (model.head) to it, and
`build_head` is the one place that turns params into a module, for training and for predict.
The model section of params.yaml is flat (one place to sweep from) and each head is given it whole,
as one config object, reading the keys it uses: `mean` ignores hidden_size, `lstm` ignores num_heads.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from actrec.names import TRAINED_HEADS
from actrec.params import ModelParams


def _embed(input_dim: int, hidden_size: int, dropout: float) -> nn.Sequential:
    """Per-frame input: normalised, projected to hidden_size, dropped out.

    With 2048-d ResNet features the input is where most of the compute goes: projecting once to
    hidden_size halves an LSTM's cost against feeding it the raw features, and dropout on the
    projection costs a quarter of dropout on the input. The LayerNorm has no affine of its own
    because the projection that follows can learn any scale and shift.
    """
    return nn.Sequential(
        nn.LayerNorm(input_dim, elementwise_affine=False), nn.Linear(input_dim, hidden_size), nn.Dropout(dropout)
    )


def _rnn(cell: str, hidden_size: int, num_layers: int, bidirectional: bool, dropout: float) -> nn.RNNBase:
    rnn = {"lstm": nn.LSTM, "gru": nn.GRU}[cell]
    return rnn(
        hidden_size,
        hidden_size,
        num_layers=num_layers,
        batch_first=True,
        bidirectional=bidirectional,
        dropout=dropout if num_layers > 1 else 0.0,
    )


class RNNHead(nn.Module):
    """A recurrent net over the embedded frames; the last hidden state (both directions) is classified."""

    cell = "lstm"

    def __init__(self, input_dim: int, num_classes: int, model: ModelParams) -> None:
        super().__init__()
        hidden_size, dropout = model.hidden_size, model.dropout
        self.embed = _embed(input_dim, hidden_size, dropout)
        self.rnn = _rnn(self.cell, hidden_size, model.num_layers, model.bidirectional, dropout)
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(hidden_size * (2 if model.bidirectional else 1), num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _, hidden = self.rnn(self.embed(x))
        if isinstance(hidden, tuple):  # LSTM returns (h_n, c_n)
            hidden = hidden[0]
        last = hidden[-2:].transpose(0, 1).flatten(1) if self.rnn.bidirectional else hidden[-1]
        return self.classifier(self.dropout(last))


class LSTMHead(RNNHead):
    """LSTM over time (stacked with num_layers, BiLSTM with bidirectional)."""

    cell = "lstm"


class GRUHead(RNNHead):
    """GRU over time: fewer weights than the LSTM, often as good on short clips."""

    cell = "gru"


class PositionalEncoding(nn.Module):
    """Adds the fixed sinusoidal code of each time step, so order-blind layers can see frame order."""

    def __init__(self, dim: int, max_len: int = 512) -> None:
        super().__init__()
        position = torch.arange(max_len).unsqueeze(1)
        freq = torch.exp(torch.arange(0, dim, 2) * (-math.log(10000.0) / dim))
        table = torch.zeros(max_len, dim)
        table[:, 0::2] = torch.sin(position * freq)
        table[:, 1::2] = torch.cos(position * freq[: dim // 2])
        self.register_buffer("table", table, persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.table[: x.shape[1]]


class AttentionHead(nn.Module):
    """An encoder per time step, then learned attention pooling: a softmax over time weighs the steps.

    encoder "lstm"/"gru" reads the clip in order; "linear" encodes each frame alone, with the
    positional code added so the pooled summary still depends on when each frame came.
    """

    def __init__(self, input_dim: int, num_classes: int, model: ModelParams) -> None:
        super().__init__()
        hidden_size, dropout = model.hidden_size, model.dropout
        self.embed = _embed(input_dim, hidden_size, dropout)
        if model.encoder == "linear":
            self.encoder: nn.Module = nn.Sequential(PositionalEncoding(hidden_size), nn.GELU())
            width = hidden_size
        else:
            self.encoder = _rnn(model.encoder, hidden_size, model.num_layers, model.bidirectional, dropout)
            width = hidden_size * (2 if model.bidirectional else 1)
        self.score = nn.Sequential(nn.Linear(width, width), nn.Tanh(), nn.Linear(width, 1))
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(width, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        steps = self.encoder(self.embed(x))
        if isinstance(steps, tuple):  # recurrent encoders return (outputs, state)
            steps = steps[0]
        weights = self.score(steps).softmax(dim=1)  # (B, T, 1)
        return self.classifier(self.dropout((weights * steps).sum(1)))


class TransformerHead(nn.Module):
    """A small Transformer encoder over time (with positional encoding), mean-pooled and classified."""

    def __init__(self, input_dim: int, num_classes: int, model: ModelParams) -> None:
        super().__init__()
        hidden_size, dropout = model.hidden_size, model.dropout
        self.embed = _embed(input_dim, hidden_size, dropout)
        self.position = PositionalEncoding(hidden_size)
        layer = nn.TransformerEncoderLayer(
            hidden_size,
            model.num_heads,
            dim_feedforward=2 * hidden_size,
            dropout=dropout,
            activation="gelu",
            batch_first=True,
            norm_first=True,
        )
        self.encoder = nn.TransformerEncoder(layer, model.num_layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(hidden_size)
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(hidden_size, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        steps = self.encoder(self.position(self.embed(x)))
        return self.classifier(self.dropout(self.norm(steps.mean(1))))


class MeanHead(nn.Module):
    """Bag of frames: mean-pooled features and a linear classifier. Blind to order, the baseline."""

    def __init__(self, input_dim: int, num_classes: int, model: ModelParams) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(input_dim)
        self.dropout = nn.Dropout(model.dropout)
        self.classifier = nn.Linear(input_dim, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.dropout(self.norm(x.mean(1))))


class ProbeHead(nn.Module):
    """The linear probe as a head: mean and standard deviation of the frames, standardised, one linear layer.

    Not trained by the loop: actrec.model.probe fits it in closed form as scikit-learn's standardised logistic
    regression and copies the scaler and coefficients in, so predict and export treat it as any head.
    """

    def __init__(self, input_dim: int, num_classes: int, model: ModelParams | None = None) -> None:
        super().__init__()
        self.register_buffer("center", torch.zeros(2 * input_dim))
        self.register_buffer("scale", torch.ones(2 * input_dim))
        self.classifier = nn.Linear(2 * input_dim, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.float()
        pooled = torch.cat([x.mean(1), x.std(1, correction=0)], dim=1)
        return self.classifier((pooled - self.center) / self.scale)


class EnsembleHead(nn.Module):
    """The mean of the linear probe's and a temporal head's class probabilities: what the two agree on.

    Neither member is trained here: the head choice (actrec.model.selection) weighs the mean on held-out clips
    and builds it from the probe fitted in closed form and the temporal head as trained, so one checkpoint holds
    both. Returns log probabilities, so a softmax (predict_proba, export) gives the mean back.
    """

    def __init__(self, input_dim: int, num_classes: int, model: ModelParams, temporal: str = "lstm") -> None:
        super().__init__()
        self.probe = ProbeHead(input_dim, num_classes)
        self.temporal = build_head(temporal, input_dim, num_classes, model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        probs = (self.probe(x).softmax(-1) + self.temporal(x).softmax(-1)) / 2
        return probs.clamp_min(torch.finfo(probs.dtype).tiny).log()


HEADS: dict[str, type[nn.Module]] = {
    "lstm": LSTMHead,
    "gru": GRUHead,
    "attention": AttentionHead,
    "transformer": TransformerHead,
    "mean": MeanHead,
    "probe": ProbeHead,
    "ensemble": EnsembleHead,
}
TRAINED = TRAINED_HEADS  # the heads the training loop fits (tests/model/test_heads.py: HEADS has every name)


def build_head(
    head: str, input_dim: int, num_classes: int, model: ModelParams | None = None, temporal: str | None = None
) -> nn.Module:
    """The head named `head` (a key of HEADS) with the model section's options (its defaults where None); the
    ensemble's `temporal` names its trained member, as the head choice picked it."""
    if head not in HEADS:
        raise ValueError(f"unknown head {head!r}; expected one of {', '.join(HEADS)}")
    model = model or ModelParams()
    if head == "ensemble":  # the one head made of two
        return EnsembleHead(input_dim, num_classes, model, temporal or "lstm")
    return HEADS[head](input_dim, num_classes, model)
