"""The extract stage keys its cache by what makes the features: switching backbones, engines or precisions
re-extracts, switching back reuses, and a weights file is known by its content, not its name."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import h5py
import pytest
import torch
import torchvision

from actrec.features import engine_trial
from actrec.features.backbones.base import file_identity
from tests.helpers import call_stage, class_folders, tiny_project

SMALL = {"weights": None, "image_size": 64}  # random init at 64 px: a few seconds a backbone
SPLIT = {"official": None, "test_fraction": 0.34, "val_fraction": 0.0}


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Six tiny videos through subset and split, the stages run in this process."""
    class_folders(tmp_path / "videos", classes=("a", "b"), groups=3, frames=12)
    tiny_project(tmp_path, "videos", split=SPLIT)
    monkeypatch.chdir(tmp_path)
    for stage in ("subset", "split"):
        call_stage(stage)
    return tmp_path


def _extract(project: Path, **extract: object) -> dict:
    """The extract stage with these extract params; its report, with the feature file's attributes."""
    tiny_project(
        project, "videos", split={"official": None, "test_fraction": 0.34, "val_fraction": 0.0}, extract=extract
    )
    call_stage("extract")
    report = json.loads((project / "reports/extract.json").read_text())
    with h5py.File(project / "features/features.h5") as f:
        report["attrs"] = dict(f.attrs)
    return report


def test_switching_backbones_extracts_again_and_switching_back_reuses(project: Path) -> None:
    lite = _extract(project, backbone="efficientnet_lite0", weights="imagenet")
    assert lite["extracted"] == 6 and lite["reused_from_cache"] == 0 and lite["attrs"]["feature_dim"] == 1280
    resnet = _extract(project, backbone="resnet18", **SMALL)
    assert resnet["extracted"] == 6 and resnet["attrs"]["feature_dim"] == 512
    vit = _extract(project, backbone="timm:vit_tiny_patch16_224", **SMALL)
    assert vit["extracted"] == 6 and vit["attrs"]["feature_dim"] == 192
    again = _extract(project, backbone="efficientnet_lite0", weights="imagenet")
    assert again["extracted"] == 0 and again["reused_from_cache"] == 6
    assert json.loads(again["attrs"]["preprocessing"])["crop_size"] == 64 and again["attrs"]["input_size"] == 64
    strided = _extract(project, backbone="efficientnet_lite0", weights="imagenet", sampling="strided", stride=2)
    assert strided["extracted"] == 6, "other frames: other features"
    auto = _extract(project, backbone="efficientnet_lite0", weights="imagenet", image_size="auto")
    assert auto["extracted"] == 6 and auto["attrs"]["input_size"] == 224
    same = _extract(project, backbone="efficientnet_lite0", weights="imagenet", image_size=224)
    assert same["extracted"] == 0, "auto is 224 for Lite0: the same features, from the cache"


def test_a_weights_file_is_known_by_its_content(project: Path) -> None:
    weights = project / "weights"
    weights.mkdir()
    for seed, name in ((1, "first.pth"), (2, "second.pth")):
        torch.manual_seed(seed)
        torch.save(torchvision.models.resnet18().state_dict(), weights / name)
    first = _extract(project, backbone="resnet18", weights="weights/first.pth", image_size=64)
    assert first["extracted"] == 6 and first["attrs"]["weights_id"] == file_identity(weights / "first.pth")
    assert first["attrs"]["weights_file"] == str((weights / "first.pth").resolve())
    shutil.copy(weights / "first.pth", weights / "copy.pth")
    moved = _extract(project, backbone="resnet18", weights="weights/copy.pth", image_size=64)
    assert moved["extracted"] == 0, "the same weights under another name: the same features"
    shutil.copy(weights / "second.pth", weights / "first.pth")
    changed = _extract(project, backbone="resnet18", weights="weights/first.pth", image_size=64)
    assert changed["extracted"] == 6, "the file now holds other weights: its old features are never reused"


def test_features_of_another_engine_or_precision_are_never_reused(project: Path, monkeypatch) -> None:
    """The engine and precision that ran key the cache and are recorded in features.h5 and the report."""
    monkeypatch.setattr(engine_trial, "native_precision", lambda precision, device: True)  # bf16 on any CPU
    lite = {"backbone": "efficientnet_lite0", "weights": "imagenet"}
    runs = {
        (engine, precision): _extract(project, **lite, engine=engine, precision=precision)
        for engine, precision in (("eager", "fp32"), ("onnxruntime", "fp32"), ("eager", "bf16"))
    }
    for (engine, precision), run in runs.items():
        assert run["extracted"] == 6 and run["reused_from_cache"] == 0, f"{engine}/{precision} computed its own"
        assert (run["engine"], run["precision"]) == (engine, precision)
        assert (run["attrs"]["engine"], run["attrs"]["precision"]) == (engine, precision)
    assert len({run["attrs"]["settings_key"] for run in runs.values()}) == 3
    again = _extract(project, **lite, engine="eager", precision="fp32")
    assert again["extracted"] == 0 and again["reused_from_cache"] == 6 and again["attrs"]["engine"] == "eager"
