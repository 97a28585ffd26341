"""The linear probe: the simple baseline every run measures its temporal head against, and a head of its own.

The frame features of a clip are pooled over time (mean and standard deviation of the T frames,
the K views averaged first) and a standardised logistic regression is fitted: no frame order, no
early stopping, nothing tuned. The evaluate stage fits it on the train and val clips beside every
run; where the trained head does not beat it, temporal modelling has not earned its keep on this
dataset, and the summary page says so. As model.head `probe` it is the run's model.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import torch
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

from actrec.model.heads import ProbeHead


def pool(features: Any, chunk: int = 1024) -> np.ndarray:
    """(N, K, T, D) features → (N, 2·D): mean and standard deviation over the T frames of the averaged views.

    `chunk` clips at a time, so streamed features are read once and never all held (nor cast to float32).
    """
    pooled = []
    for start in range(0, len(features), chunk):
        frames = np.asarray(features[start : start + chunk]).astype(np.float32).mean(1)
        pooled.append(np.concatenate([frames.mean(1), frames.std(1)], axis=1))
    return np.concatenate(pooled)


def fit_probe(features: Any, labels: np.ndarray) -> Pipeline | None:
    """The standardised logistic regression on pooled (N, K, T, D) features; None with fewer than 2 classes."""
    if len(np.unique(labels)) < 2:
        return None
    model = make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=2000))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # tiny training sets separate perfectly
        model.fit(pool(features), labels)
    return model


def linear_probe(train: Any, labels: np.ndarray, test: Any, num_classes: int) -> np.ndarray | None:
    """Class probabilities (N_test, C) of the probe fitted on `train`; None with fewer than 2 classes to fit."""
    model = fit_probe(train, labels)
    if model is None:
        return None
    probs = np.zeros((len(test), num_classes))
    probs[:, model.classes_] = model.predict_proba(pool(test))  # a class absent from training gets 0
    return probs


def probe_head(features: Any, labels: np.ndarray, num_classes: int) -> ProbeHead | None:
    """The probe fitted on (N, K, T, D) features as a ProbeHead whose softmax is the regression's predict_proba.

    A two-class regression has one coefficient row for the second class (a sigmoid), which is a softmax
    over a zero row and that row. A class absent from the fit gets a bias that keeps its probability at 0.
    """
    model = fit_probe(features, labels)
    if model is None:
        return None
    scaler, regression = model[0], model[-1]
    head = ProbeHead(features.shape[-1], num_classes)
    coef, intercept = regression.coef_, regression.intercept_
    if len(regression.classes_) == 2:
        coef, intercept = np.vstack([np.zeros_like(coef), coef]), np.concatenate([[0.0], intercept])
    weight = np.zeros((num_classes, coef.shape[1]))
    bias = np.full(num_classes, -1e4)
    weight[regression.classes_], bias[regression.classes_] = coef, intercept
    with torch.no_grad():
        head.center.copy_(torch.from_numpy(scaler.mean_))
        head.scale.copy_(torch.from_numpy(scaler.scale_))
        head.classifier.weight.copy_(torch.from_numpy(weight))
        head.classifier.bias.copy_(torch.from_numpy(bias))
    return head.eval()
