"""The linear probe: mean and std over time of the frame features, a standardised logistic regression."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from actrec.model.probe import linear_probe, pool, probe_head


def test_pool_is_mean_and_std_over_frames_of_the_averaged_views() -> None:
    features = np.arange(2 * 2 * 3 * 4, dtype=np.float16).reshape(2, 2, 3, 4)  # (N, K, T, D)
    pooled = pool(features)
    views = features.astype(np.float32).mean(1)
    assert pooled.shape == (2, 8)
    np.testing.assert_allclose(pooled[:, :4], views.mean(1))
    np.testing.assert_allclose(pooled[:, 4:], views.std(1))


def test_the_probe_separates_classes_whose_frames_differ_and_gives_every_class_a_column() -> None:
    rng = np.random.default_rng(0)
    labels = np.arange(60) % 3
    features = (rng.standard_normal((60, 1, 8, 16)) + labels[:, None, None, None]).astype(np.float16)
    probs = linear_probe(features[:40], labels[:40], features[40:], num_classes=4)  # class 3 never seen
    assert probs.shape == (20, 4) and np.allclose(probs.sum(1), 1) and (probs[:, 3] == 0).all()
    assert (probs.argmax(1) == labels[40:]).mean() >= 0.9


def test_no_probe_from_a_single_class() -> None:
    features = np.zeros((4, 1, 2, 3), dtype=np.float16)
    assert linear_probe(features, np.zeros(4, dtype=int), features, num_classes=2) is None


@pytest.mark.parametrize("classes", [2, 3])
def test_the_probe_head_gives_the_regressions_probabilities(classes: int) -> None:
    """The probe as a head (what a run saves when the probe is chosen) answers as scikit-learn's fit does,
    for the two-class (sigmoid) and multi-class (softmax) regressions, with a class never seen at 0."""
    rng = np.random.default_rng(1)
    labels = np.arange(48) % classes
    features = (rng.standard_normal((48, 1, 6, 10)) + 0.5 * labels[:, None, None, None]).astype(np.float16)
    expected = linear_probe(features[:36], labels[:36], features[36:], num_classes=classes + 1)
    head = probe_head(features[:36], labels[:36], num_classes=classes + 1)
    with torch.no_grad():
        got = head(torch.from_numpy(features[36:, 0])).softmax(1).numpy()
    np.testing.assert_allclose(got, expected, atol=1e-5)
    assert got[:, classes].max() < 1e-6
