"""`actrec export`: ONNX and TorchScript files give the probabilities of the PyTorch model they came from."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch

from actrec.export import build_export, export
from actrec.features.store import load_features
from actrec.model.checkpoint import Checkpoint, load_model
from actrec.model.heads import build_head
from actrec.model.probe import probe_head
from actrec.params import ModelParams
from tests.helpers import actrec


def _onnx_matches_pytorch(out: Path, model: Path, with_backbone: bool) -> None:
    meta = json.loads(Path(f"{out}.json").read_text())
    assert meta["classes"] == ["Bright", "Dim"] and meta["frames"] == 4
    module, _, _ = build_export(model, with_backbone)
    torch.manual_seed(0)
    frames = torch.randint(0, 256, (3, 4, 3, 64, 64), dtype=torch.uint8)
    x = frames if with_backbone else torch.randn(3, 4, 1280) * 2
    with torch.no_grad():
        expected = module(x).numpy()
    got = ort.InferenceSession(str(out)).run(None, {meta["input"]["name"]: x.numpy()})[0]
    np.testing.assert_allclose(got, expected, atol=1e-4)
    assert got.shape == (3, 2) and np.allclose(got.sum(1), 1, atol=1e-5)


def test_onnx_export_of_the_head_gives_the_probabilities_of_pytorch(trained_run: Path, tmp_path: Path) -> None:
    out = tmp_path / "head.onnx"
    model = trained_run / "models/model.pt"
    done = actrec("export", "--format", "onnx", "--model", model, "--out", out, cwd=trained_run)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"wrote {out}: features float32 (batch, 4, 1280) → probabilities")
    _onnx_matches_pytorch(out, trained_run / "models/model.pt", with_backbone=False)


def test_onnx_export_with_backbone_gives_the_probabilities_of_pytorch(trained_run: Path, tmp_path: Path) -> None:
    out = export(trained_run / "models", "onnx", tmp_path / "full.onnx", with_backbone=True)
    _onnx_matches_pytorch(out, trained_run / "models", with_backbone=True)


def test_torchscript_export_gives_the_probabilities_of_pytorch(trained_run: Path, tmp_path: Path) -> None:
    out = export(trained_run / "models", "torchscript", tmp_path / "head.pt")
    module, _, _ = build_export(trained_run / "models", with_backbone=False)
    x = torch.randn(2, 4, 1280)
    with torch.no_grad():
        np.testing.assert_allclose(torch.jit.load(str(out))(x).numpy(), module(x).numpy(), atol=1e-5)


def test_an_ensemble_exports_as_any_head(trained_run: Path, tmp_path: Path) -> None:
    """The ensemble (the run's LSTM with the probe fitted on its clips) is one checkpoint that exports as one graph."""
    lstm, checkpoint = load_model(trained_run / "models/model.pt")
    labelled = load_features(trained_run / "features/features.h5", ("train", "val"))
    options = {**checkpoint.head_options, "temporal": "lstm"}  # as the train stage records an ensemble
    model = ModelParams(**checkpoint.head_options)
    ensemble = build_head("ensemble", checkpoint.input_dim, len(checkpoint.classes), model, "lstm")
    ensemble.temporal.load_state_dict(lstm.state_dict())
    probe = probe_head(labelled.features, labelled.labels, len(checkpoint.classes))
    ensemble.probe.load_state_dict(probe.state_dict())
    state = ensemble.state_dict()
    model = tmp_path / "ensemble.pt"
    Checkpoint("ensemble", options, checkpoint.input_dim, checkpoint.classes, checkpoint.features, state).save(model)
    out = export(model, "onnx", tmp_path / "ensemble.onnx")
    _onnx_matches_pytorch(out, model, with_backbone=False)
    x = torch.randn(3, 4, 1280) * 2
    with torch.no_grad():
        mean = (lstm(x).softmax(-1) + probe(x).softmax(-1)) / 2
        np.testing.assert_allclose(build_export(model, with_backbone=False)[0](x).numpy(), mean.numpy(), atol=1e-5)
