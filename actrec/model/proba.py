"""Class probabilities of a trained head: the one place features become predictions.

Training's validation, the evaluate stage, `actrec predict` and the benchmarks all call
`predict_proba`, so the K views of a video are averaged the same way everywhere.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn


@torch.no_grad()
def predict_proba(model: nn.Module, features: Any, batch_size: int = 256) -> np.ndarray:
    """Class probabilities (N, C) for features (N, K, T, D), averaged over the K views of each video.

    `features` is an array, a tensor, or anything that slices into one (streamed features read
    `batch_size` rows at a time); batches run on the model's device.
    """
    model.eval()
    device = next(model.parameters()).device
    n, k = features.shape[:2]
    out = []
    for start in range(0, n, batch_size):
        chunk = features[start : start + batch_size]
        chunk = (chunk if torch.is_tensor(chunk) else torch.from_numpy(np.asarray(chunk))).to(device).float()
        logits = model(chunk.flatten(0, 1))
        out.append(logits.softmax(-1).view(chunk.shape[0], k, -1).mean(1).cpu())
    return torch.cat(out).numpy() if out else np.zeros((0, 0), dtype=np.float32)
