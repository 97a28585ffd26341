"""Class probabilities of a trained head: the one place features become predictions.

Training's validation, the evaluate stage, `actrec predict` and the benchmarks all call
`predict_proba`, so the K clips of a video are averaged the same way everywhere.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn


@torch.no_grad()
def predict_proba(model: nn.Module, features: np.ndarray | torch.Tensor, batch_size: int = 256) -> np.ndarray:
    """Class probabilities (N, C) for features (N, K, T, D), averaged over the K clips of each video."""
    model.eval()
    features = torch.as_tensor(features)
    n, k = features.shape[:2]
    out = []
    for start in range(0, n, batch_size):
        chunk = features[start : start + batch_size].float()
        logits = model(chunk.flatten(0, 1))
        out.append(logits.softmax(-1).view(chunk.shape[0], k, -1).mean(1))
    return torch.cat(out).numpy() if out else np.zeros((0, 0), dtype=np.float32)
