"""Exporting a trained model for runtimes without this project: ONNX (onnxruntime) or TorchScript.

Two graphs: the temporal head alone (features (B, T, D) float32 → class probabilities (B, C)), for
any feature source, or the source's network + head (preprocessed frames (B, T, 3, S, S) uint8 for an
image backbone, windows of L frames (B, T, L, 3, S, S) for a video model → probabilities), where the
source has a network a graph can hold (FeatureSource.export_network; optical flow and skeleton files
have none and say so). A JSON file beside the model records the classes and how frames must be sampled
and preprocessed.
ONNX goes through torch's TorchScript-based exporter: it needs no onnxscript and keeps the
batch size dynamic; the frame count is the T the model was trained on (the transformer head's
traced attention shapes fix it).
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import torch
from torch import nn

from actrec.errors import ActrecError
from actrec.features.engines import to_onnx
from actrec.files import output_file
from actrec.inference.predictor import recorded_source
from actrec.model.checkpoint import load_model

SUFFIX = {"onnx": ".onnx", "torchscript": ".torchscript.pt"}
SAMPLING = {  # extract.sampling, in words
    "uniform": "T frames at the centres of T equal segments of the video; with K views, average the "
    "probabilities of K jittered samplings",
    "strided": "T frames {stride} apart, centred in the video (its first and last frames repeated when it is "
    "shorter); with K views, average the probabilities of K clips starting at random",
}


class HeadProbabilities(nn.Module):
    """The head with its softmax: features (B, T, D) → probabilities (B, C)."""

    def __init__(self, head: nn.Module) -> None:
        super().__init__()
        self.head = head

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.head(features).softmax(-1)


class VideoClassifier(nn.Module):
    """The source's network + head: prepared uint8 inputs (B, T, *input) → probabilities (B, C)."""

    def __init__(self, net: nn.Module, head: nn.Module) -> None:
        super().__init__()
        self.net, self.head = net, head

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        feats = self.net(frames.flatten(0, 1))
        return self.head(feats.unflatten(0, frames.shape[:2])).softmax(-1)


def build_export(model_path: str | Path, with_backbone: bool) -> tuple[nn.Module, torch.Tensor, dict[str, Any]]:
    """The module to export (eval mode), an example input, and the metadata written beside it."""
    head, checkpoint = load_model(model_path)
    source = recorded_source(checkpoint, model_path)
    record = checkpoint.features
    frames = int(record["frames"])
    meta: dict[str, Any] = {
        "classes": checkpoint.classes,
        "frames": frames,
        "views": int(record["views"]),
        "sampling": SAMPLING[str(record.get("sampling") or "uniform")].format(stride=record.get("stride")),
        "backbone": source.name,
        "output": {"name": "probabilities", "shape": ["batch", len(checkpoint.classes)], "dtype": "float32"},
    }
    if with_backbone:
        network = source.export_network()
        module = VideoClassifier(network.module, head)
        example = torch.randint(0, 256, (1, frames, *network.shape), dtype=torch.uint8)
        meta["input"] = {"name": "frames", "shape": ["batch", frames, *network.shape], "dtype": "uint8"}
        meta["preprocess"] = {**source.preparation(), "channels": "RGB", "normalisation": "inside the model"}
    else:
        module = HeadProbabilities(head)
        example = torch.randn(1, frames, source.feature_dim)
        meta["input"] = {"name": "features", "shape": ["batch", frames, source.feature_dim], "dtype": "float32"}
        meta["features"] = {"backbone": source.name, "weights": record["weights"] or None, **source.preparation()}
    return module.eval(), example, meta


def export(model_path: str | Path, fmt: str, out: str | Path | None = None, with_backbone: bool = False) -> Path:
    """Write the model in `fmt` (onnx | torchscript) and its metadata (<out>.json); return the model path."""
    if fmt not in SUFFIX:
        raise ActrecError(f"unknown export format {fmt!r}; expected {' or '.join(SUFFIX)}")
    module, example, meta = build_export(model_path, with_backbone)
    model_path = Path(model_path)
    folder = model_path if model_path.is_dir() else model_path.parent
    out = Path(out) if out else folder / f"model.{'full' if with_backbone else 'head'}{SUFFIX[fmt]}"
    with output_file(out) as tmp:
        if fmt == "onnx":
            to_onnx(module, example, str(tmp), meta["input"]["name"], "probabilities")
        else:  # through a file object, so the archive is not named after the temporary file
            with tmp.open("wb") as f, warnings.catch_warnings():
                warnings.simplefilter("ignore")  # the tracer's notices say nothing a user can act on
                torch.jit.save(torch.jit.trace(module, example), f)
    with output_file(f"{out}.json") as tmp:
        tmp.write_text(json.dumps({**meta, "format": fmt}, indent=2) + "\n")
    return out
