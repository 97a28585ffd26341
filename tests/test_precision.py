"""Reduced precision and compilation: bf16 features must match fp32 features of the same clips (stored
as float16), and a compiled backbone must give the features the eager one gives."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch

from pipeline import extraction
from pipeline.backbones import load_backbone
from pipeline.extraction import extract_features


def _features(paths: list[str], net, **options) -> np.ndarray:
    out = extract_features(paths, paths, net, frames=4, clips=1, seed=0, batch_size=16, num_workers=0,
                           device=torch.device("cpu"), **options)
    return np.stack([feats for _, feats, _, _ in out]).astype(np.float32).reshape(-1, net.feature_dim)


# ResNet50 (the design's backbone) must keep cosine >= 0.999. EfficientNet-Lite0's 16 depthwise blocks
# lose more in bf16 (measured: min 0.9985, mean 0.9992 over these frames), so its bar is 0.998.
@pytest.mark.parametrize("backbone, weights, bar",
                         [("resnet50", None, 0.999), ("efficientnet_lite0", "imagenet", 0.998)])
def test_bf16_features_match_fp32(ucf_mini, backbone: str, weights: str | None, bar: float) -> None:
    paths = [str(p) for p in sorted((ucf_mini / "UCF-101").rglob("*_g01_c01.avi"))]
    torch.manual_seed(0)
    net = load_backbone(backbone, weights, image_size=160)

    fp32, bf16 = _features(paths, net, precision="fp32"), _features(paths, net, precision="bf16")
    cosine = (fp32 * bf16).sum(1) / (np.linalg.norm(fp32, axis=1) * np.linalg.norm(bf16, axis=1))
    print(f"\n{backbone}: bf16 vs fp32 cosine min {cosine.min():.5f}, mean {cosine.mean():.5f}")
    assert cosine.min() >= bar


def test_compiled_backbone_gives_the_eager_features(ucf_mini) -> None:
    # 3 clips x 4 frames = 12 images against batches of 16: the short batch is padded to the compiled shape.
    paths = [str(p) for p in sorted((ucf_mini / "UCF-101").rglob("*_g01_c01.avi"))]
    net = load_backbone("efficientnet_lite0", "imagenet", image_size=96)
    eager = _features(paths, net, precision="fp32")
    compiled = _features(paths, net, precision="fp32", compile=True)
    assert len(paths) * 4 % 16 and compiled.shape == eager.shape
    np.testing.assert_allclose(compiled, eager, rtol=2e-3, atol=2e-3)  # float16 storage rounding


def test_compile_failure_falls_back_to_eager(ucf_mini, monkeypatch, caplog) -> None:
    """Where compiling cannot work (no C++ compiler, say), extraction warns and runs uncompiled."""

    def broken(model, **_):
        def forward(x):
            raise RuntimeError("InductorError: no working C++ compiler found")
        return forward

    paths = [str(p) for p in sorted((ucf_mini / "UCF-101").rglob("*_g01_c01.avi"))]
    net = load_backbone("efficientnet_lite0", "imagenet", image_size=96)
    monkeypatch.setattr(extraction.torch, "compile", broken)
    with caplog.at_level(logging.WARNING, logger="pipeline.extraction"):
        fallen_back = _features(paths, net, precision="fp32", compile=True)
    assert "torch.compile failed (RuntimeError: InductorError: no working C++ compiler found)" in caplog.text
    np.testing.assert_array_equal(fallen_back, _features(paths, net, precision="fp32"))


@pytest.mark.parametrize("setting, frames, expected", [("auto", 1_999, False), ("auto", 2_000, True),
                                                       (True, 16, True), (False, 10**6, False)])
def test_auto_compiles_only_runs_long_enough_to_repay_it(setting, frames: int, expected: bool) -> None:
    assert extraction.resolve_compile(setting, frames) is expected
