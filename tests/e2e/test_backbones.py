"""Every backbone family through the pipeline's stages (extract, train, evaluate) on real UCF-101 clips, random
init: the feature size read from each model, then `actrec predict`, its windows, `export` with the backbone and
`watch` on a model trained on it (the commands' main in this process: how `actrec` behaves as a process does not
depend on the backbone, and is tested in tests/test_cli.py and tests/serving/)."""

from __future__ import annotations

import json

import h5py
import numpy as np
import onnxruntime as ort
import pytest
import torch

from actrec.export import build_export
from tests.helpers import TINY_UCF, UCF_CLASSES, actrec_main, run_pipeline, tiny_ucf_project, write_video

pytestmark = pytest.mark.slow


@pytest.mark.parametrize(
    "backbone, size, dim",
    [
        ("resnet18", 64, 512),
        ("inception_v3", 96, 2048),  # its stem needs 75 px at least
        ("timm:vit_tiny_patch16_224", 64, 192),  # the position embedding resampled to 4x4 patches
        ("open_clip:ViT-B-32", 64, 512),
    ],
)
def test_each_family_runs_the_pipeline_and_the_actrec_commands(ucf_split, tmp_path, backbone, size, dim) -> None:
    root, split = ucf_split
    project = tiny_ucf_project(
        tmp_path / "run",
        root,
        split,
        extract={**TINY_UCF, "backbone": backbone, "image_size": size},
        model={"head": "lstm", "hidden_size": 16},
    )
    report = run_pipeline(project)
    assert report["feature_dim"] == dim and report["image_size"] == size and report["videos"] == 8
    with h5py.File(project / "features/features.h5") as f:
        assert f["features"].shape == (8, 1, 4, dim) and np.isfinite(f["features"][:]).all()
    metrics = json.loads((project / "reports/metrics.json").read_text())
    assert metrics["test_clips"] == 4

    clip = root / "UCF-101" / UCF_CLASSES[0] / f"v_{UCF_CLASSES[0]}_g01_c01.avi"
    done = actrec_main("predict", clip, "--json", cwd=project)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["prediction"] in UCF_CLASSES
    windows = tmp_path / "windows.csv"
    done = actrec_main("predict", clip, "--window", "1s", "--stride", "1s", "--out", windows, cwd=project)
    assert done.returncode == 0 and windows.is_file(), done.stderr

    out = tmp_path / "full.onnx"
    done = actrec_main("export", "--format", "onnx", "--with-backbone", "--out", out, cwd=project)
    assert done.returncode == 0, done.stderr
    module, _, _ = build_export(project / "models/model.pt", with_backbone=True)
    frames = torch.randint(0, 256, (2, 4, 3, size, size), dtype=torch.uint8)
    with torch.no_grad():
        expected = module(frames).numpy()
    got = ort.InferenceSession(str(out)).run(None, {"frames": frames.numpy()})[0]
    np.testing.assert_allclose(got, expected, atol=1e-4)

    if backbone.startswith("open_clip:"):  # a live source through the same Predictor, once
        video = write_video(tmp_path / "live.avi", frames=50, fps=25)
        done = actrec_main("watch", video, "--window", "1s", "--stride", "1s", "--json", cwd=project)
        assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr
        updates = [json.loads(line) for line in done.stdout.splitlines() if '"update"' in line]
        assert updates and all(u["prediction"] in UCF_CLASSES for u in updates)
