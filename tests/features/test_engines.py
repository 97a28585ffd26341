"""How the backbone runs: bf16 features must match fp32 features of the same clips (stored as float16),
the fast engines (torch.compile, onnxruntime) must give the features eager torch gives, a failing engine
falls back to eager, and `auto` picks the engine the device and run length repay."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch

from actrec.devices import resolve_precision
from actrec.errors import ActrecError
from actrec.features import engines
from actrec.features.backbones import load_backbone
from actrec.features.engines import BackboneRunner
from actrec.features.extractor import extract_features
from actrec.features.sources.image import BackboneEmbedder, ImageSource
from actrec.runtime import Runtime


def _features(paths: list[str], net, precision: str = "fp32", engine: str = "eager") -> np.ndarray:
    run = BackboneEmbedder(BackboneRunner(net, torch.device("cpu"), precision, 16, engine))
    runtime = Runtime.resolve("cpu", precision=precision, engine=engine, batch_size=16, num_workers=0)
    out = extract_features(paths, paths, ImageSource(net), run, runtime, frames=4, views=1, seed=0)
    return np.stack([feats for _, feats, _, _ in out]).astype(np.float32).reshape(-1, net.feature_dim)


# ResNet50 (the design's backbone) must keep cosine >= 0.999. EfficientNet-Lite0's 16 depthwise blocks
# lose more in bf16 (measured: min 0.9985, mean 0.9992 over these frames), so its bar is 0.998, as for every
# family. (Random-init InceptionV3 and EfficientNet-B* give features that round to zero in float16: left out.)
@pytest.mark.parametrize(
    "backbone, weights, bar",
    [
        ("resnet50", None, 0.999),
        ("efficientnet_lite0", "imagenet", 0.998),
        ("resnet18", None, 0.998),
        ("timm:vit_tiny_patch16_224", None, 0.998),
        ("open_clip:ViT-B-32", None, 0.998),
    ],
)
def test_bf16_features_match_fp32(ucf_mini, backbone: str, weights: str | None, bar: float) -> None:
    paths = [str(p) for p in sorted((ucf_mini / "UCF-101").rglob("*_g01_c01.avi"))]
    torch.manual_seed(0)
    net = load_backbone(backbone, weights, image_size=160)

    cosine = _cosine(_features(paths, net, precision="fp32"), _features(paths, net, precision="bf16"))
    print(f"\n{backbone}: bf16 vs fp32 cosine min {cosine.min():.5f}, mean {cosine.mean():.5f}")
    assert cosine.min() >= bar


def _cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


NATIVE_BF16 = resolve_precision("auto", torch.device("cpu")) == "bf16"


# torch.compile is one call whatever the family: it is checked on a small network, in each precision (a
# compilation takes 10-30 s on a 2-core CPU with the cold cache of a fresh machine, longer the larger the graph).
COMPILED = "resnet18"
BF16_ENGINE_CASES = [
    (engine, backbone, weights)
    for backbone, weights in (
        ("resnet50", None),
        ("efficientnet_lite0", "imagenet"),
        ("timm:vit_tiny_patch16_224", None),
        (COMPILED, None),
    )
    for engine in ("eager", "compile", "openvino")
    if (engine == "compile") == (backbone == COMPILED)
]


@pytest.mark.parametrize("engine, backbone, weights", BF16_ENGINE_CASES)
def test_every_bf16_engine_auto_may_pick_keeps_the_fp32_features(ucf_mini, engine, backbone, weights) -> None:
    """Whatever engine `auto` runs in bf16 gives the features of fp32 eager torch, to cosine >= 0.998."""
    if not NATIVE_BF16:
        pytest.skip("this CPU has no native bf16 (AVX512-BF16 or AMX): auto never picks bf16 here")
    if not engines.available(engine):
        pytest.skip(f"{engine} is not installed")
    paths = [str(p) for p in sorted((ucf_mini / "UCF-101").rglob("*_g01_c01.avi"))]
    net = load_backbone(backbone, weights, image_size=96)
    cosine = _cosine(_features(paths, net), _features(paths, net, precision="bf16", engine=engine))
    print(f"\n{backbone} {engine} bf16 vs eager fp32: cosine min {cosine.min():.5f}, mean {cosine.mean():.5f}")
    assert cosine.min() >= 0.998


# Every exporting engine on each family (torch.compile on the small network); torchvision's ViT-B/32 (224 px
# only) for the exporting engines alone: ViTs export too (torchvision's and OpenCLIP's attention without its fused
# inference operator).
FAST_ENGINE_CASES = [
    *(
        pytest.param(engine, backbone, weights, marks=[pytest.mark.slow] * slow)
        for engine in ("compile", "onnxruntime", "openvino")
        for backbone, weights, slow in (
            ("efficientnet_lite0", "imagenet", False),
            ("timm:vit_tiny_patch16_224", None, False),
            (COMPILED, None, False),
            ("open_clip:ViT-B-32", None, True),
        )
        if (engine == "compile") == (backbone == COMPILED)
    ),
    *(pytest.param(engine, "vit_b_32", None, marks=pytest.mark.slow) for engine in ("onnxruntime", "openvino")),
]


@pytest.mark.parametrize("engine, backbone, weights", FAST_ENGINE_CASES)
def test_fast_engines_give_the_eager_features(ucf_mini, engine: str, backbone: str, weights: str | None) -> None:
    # 3 clips x 4 frames = 12 images against batches of 16: the short batch is padded to the compiled
    # shape; the runtimes take it as it is (batch size left free in the exported graph).
    if not engines.available(engine):
        pytest.skip(f"{engine} is not installed")
    paths = [str(p) for p in sorted((ucf_mini / "UCF-101").rglob("*_g01_c01.avi"))]
    net = load_backbone(backbone, weights, image_size=224 if backbone == "vit_b_32" else 96)
    eager = _features(paths, net, engine="eager")
    fast = _features(paths, net, engine=engine)
    assert len(paths) * 4 % 16 and fast.shape == eager.shape
    np.testing.assert_allclose(fast, eager, rtol=2e-3, atol=2e-3)  # float16 storage rounding


def _broken_compile(model, **_):
    def forward(x):
        raise RuntimeError("InductorError: no working C++ compiler found")

    return forward


def _broken_onnxruntime(*_, **__):
    raise RuntimeError("Could not find an implementation for Conv(11) node")


@pytest.mark.parametrize(
    "engine, target, broken, message",
    [
        (
            "compile",
            (engines.torch, "compile"),
            _broken_compile,
            "the compile engine failed (RuntimeError: InductorError: no working C++ compiler found)",
        ),
        (
            "onnxruntime",
            ("onnxruntime.InferenceSession",),
            _broken_onnxruntime,
            "the onnxruntime engine failed (RuntimeError: Could not find an implementation for Conv(11) node)",
        ),
    ],
)
def test_engine_failure_falls_back_to_eager(ucf_mini, monkeypatch, caplog, engine, target, broken, message) -> None:
    """Where an engine cannot run the model (no C++ compiler, a missing operator), extraction warns and goes on."""
    paths = [str(p) for p in sorted((ucf_mini / "UCF-101").rglob("*_g01_c01.avi"))]
    net = load_backbone("efficientnet_lite0", "imagenet", image_size=96)
    monkeypatch.setattr(*target, broken)
    with caplog.at_level(logging.WARNING, logger="actrec.features.engines"):
        fallen_back = _features(paths, net, engine=engine)
    assert message in caplog.text
    np.testing.assert_array_equal(fallen_back, _features(paths, net, engine="eager"))


CPU, CUDA = torch.device("cpu"), torch.device("cuda")


@pytest.mark.parametrize(
    "engine, device, precision, frames, native_bf16, expected",
    [
        ("auto", CPU, "fp32", 100, True, "onnxruntime"),  # the rule without a trial: a runtime on a CPU,
        ("auto", CPU, "fp32", 99, True, "eager"),  # once the run repays its set-up
        ("auto", CPU, "bf16", 100, True, "openvino"),  # bf16: the runtime that runs it natively
        ("auto", CPU, "bf16", 10**6, False, "compile"),  # a CPU without bf16: OpenVINO would compute fp32
        ("auto", CPU, "fp16", 10**6, True, "compile"),  # no runtime for it: torch, compiled when worth it
        ("auto", CUDA, "bf16", 1_999, True, "eager"),
        ("auto", CUDA, "bf16", 2_000, True, "compile"),
        ("eager", CPU, "fp32", 10**6, True, "eager"),
        ("compile", CPU, "fp32", 16, True, "compile"),
    ],
)
def test_auto_engine(
    monkeypatch, engine: str, device: torch.device, precision: str, frames: int, native_bf16: bool, expected: str
) -> None:
    """The rule, on a CPU with native bf16 and on one without, whichever CPU runs the test."""
    monkeypatch.setattr(engines, "available", lambda runtime: True)
    monkeypatch.setattr(engines, "native_precision", lambda precision, device: native_bf16)
    assert engines.resolve_engine(engine, device, precision, frames) == expected


@pytest.mark.parametrize("device, precision", [(CUDA, "fp16"), (CPU, "bf16")])
def test_onnxruntime_engine_refuses_what_it_cannot_run(device: torch.device, precision: str) -> None:
    with pytest.raises(ActrecError, match=r"extract\.engine = 'onnxruntime' runs the backbone in fp32 on the CPU"):
        engines.resolve_engine("onnxruntime", device, precision, 10**6)


def test_openvino_bf16_is_not_a_candidate_where_the_cpu_lacks_it(monkeypatch) -> None:
    """OpenVINO ignores its bf16 hint on a CPU without AVX512-BF16 or AMX and computes fp32: there it is not
    offered for bf16, by the rule or by name."""
    monkeypatch.setattr(engines, "available", lambda runtime: True)
    assert engines.supports("openvino", "bf16", CPU) == engines.native_precision("bf16", CPU)
    monkeypatch.setattr(engines, "native_precision", lambda precision, device: precision == "fp32")
    assert not engines.supports("openvino", "bf16", CPU) and engines.supports("openvino", "fp32", CPU)
    assert engines.resolve_engine("auto", CPU, "bf16", 10**6) != "openvino"
    with pytest.raises(ActrecError, match=r"extract\.engine = 'openvino'"):
        engines.resolve_engine("openvino", CPU, "bf16", 10**6)
