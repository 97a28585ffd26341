"""`actrec export`: ONNX and TorchScript files give the probabilities of the PyTorch model they came from."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch

from actrec.export import build_export, export
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
