"""The linear probe: the simple baseline every run measures its temporal head against.

The frame features of a clip are pooled over time (mean and standard deviation of the T frames,
the K views averaged first) and a standardised logistic regression is fitted on the train and val
clips: no frame order, no early stopping, nothing tuned. Where the trained head does not beat it,
temporal modelling has not earned its keep on this dataset, and the summary page says so.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler


def pool(features: Any, chunk: int = 1024) -> np.ndarray:
    """(N, K, T, D) features → (N, 2·D): mean and standard deviation over the T frames of the averaged views.

    `chunk` clips at a time, so streamed features are read once and never all held (nor cast to float32).
    """
    pooled = []
    for start in range(0, len(features), chunk):
        frames = np.asarray(features[start : start + chunk]).astype(np.float32).mean(1)
        pooled.append(np.concatenate([frames.mean(1), frames.std(1)], axis=1))
    return np.concatenate(pooled)


def linear_probe(train: Any, labels: np.ndarray, test: Any, num_classes: int) -> np.ndarray | None:
    """Class probabilities (N_test, C) of the probe fitted on `train`; None with fewer than 2 classes to fit."""
    if len(np.unique(labels)) < 2:
        return None
    model = make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=2000))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # tiny training sets separate perfectly
        model.fit(pool(train), labels)
    probs = np.zeros((len(test), num_classes))
    probs[:, model.classes_] = model.predict_proba(pool(test))  # a class absent from training gets 0
    return probs
