"""A video model, then the motion stream joined to it, through the stages (in this process) on real UCF-101 clips,
and every command on the models they train: predict (whole clips and windows), watch, serve's page and export."""

from __future__ import annotations

import json

import h5py
import numpy as np
import onnxruntime as ort
import pandas as pd
import pytest
import torch
import yaml

from actrec.export import build_export
from actrec.inference.inputs import Span
from actrec.inference.predictor import Predictor
from actrec.serving.app import Analyst, ServeOptions
from tests.helpers import TINY_UCF, UCF_CLASSES, actrec_main, run_pipeline, tiny_ucf_project

pytestmark = pytest.mark.slow


def _commands(project, clip) -> pd.DataFrame:
    """predict on the whole clip and per window, watch on it, and the page of `actrec serve` given it: the answer
    predict gave and the windows predict --window wrote."""
    done = actrec_main("predict", clip, "--json", cwd=project)
    assert done.returncode == 0, done.stderr
    predicted = json.loads(done.stdout)
    assert predicted["prediction"] in UCF_CLASSES
    out = project / "windows.csv"
    done = actrec_main("predict", clip, "--window", "1s", "--stride", "1s", "--out", out, cwd=project)
    assert done.returncode == 0, done.stderr
    windows = pd.read_csv(out)
    done = actrec_main("watch", clip, "--window", "1s", "--stride", "1s", "--json", cwd=project)
    assert done.returncode == 0, done.stderr
    updates = [e for e in map(json.loads, done.stdout.splitlines()) if e["event"] == "update"]
    assert [u["start_s"] for u in updates] == windows["start_s"].tolist(), "watching a file gives its windows"
    for update, row in zip(updates, windows.itertuples(), strict=True):
        assert update["prediction"] == row.predicted and update["probability"] == pytest.approx(row.probability, 2e-4)
    options = ServeOptions(window=Span(1, seconds=True), stride=Span(1, seconds=True))
    analyst = Analyst(Predictor(project / "models" / "model.pt", "cpu"), {}, options)
    status, *_, timeline, _, answer = analyst.upload(str(clip), progress=lambda *_, **__: None)
    assert answer["prediction"] == predicted["prediction"], status
    assert answer["probability"] == pytest.approx(predicted["probability"], abs=2e-4)
    assert sorted(set(timeline["value"]["start_s"])) == windows["start_s"].tolist(), "the page's timeline"
    return windows


def test_a_video_model_and_motion_run_every_stage_and_command(ucf_split, tmp_path, monkeypatch) -> None:
    """mc3_18 at random init, 2 windows of 4 frames at 32 px (the cheapest); then hofmbh joined to its features."""
    (tmp_path / "page").mkdir()
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(tmp_path / "page"))  # where the page draws its answers
    root, split = ucf_split
    extract = {**TINY_UCF, "backbone": "mc3_18", "image_size": 32, "clip_len": 4, "frames": 2}
    head = {"head": "lstm", "hidden_size": 16}
    project = tiny_ucf_project(tmp_path / "run", root, split, extract=extract, model=head)
    report = run_pipeline(project)
    assert report["feature_dim"] == 512 and report["videos"] == 8
    with h5py.File(project / "features/features.h5") as f:
        video = f["features"][:]
        assert video.shape == (8, 1, 2, 512) and f.attrs["clip_len"] == 4 and "motion" not in f.attrs
    clip = root / "UCF-101" / UCF_CLASSES[1] / f"v_{UCF_CLASSES[1]}_g08_c01.avi"  # 4.4 s: four windows
    _commands(project, clip)
    module, example, meta = build_export(project / "models", with_backbone=True)  # the network and the head
    assert meta["input"]["shape"] == ["batch", 2, 4, 3, 32, 32] and meta["preprocess"]["clip_len"] == 4
    done = actrec_main("export", "--with-backbone", "--out", tmp_path / "full.onnx", cwd=project)
    assert done.returncode == 0, done.stderr
    got = ort.InferenceSession(str(tmp_path / "full.onnx")).run(None, {"frames": example.numpy()})[0]
    with torch.no_grad():
        np.testing.assert_allclose(got, module(example).numpy(), atol=1e-4)

    video_shards = {p: p.stat().st_mtime_ns for p in (project / "features/cache").rglob("shard-*.h5")}
    params = yaml.safe_load((project / "params.yaml").read_text())
    params["extract"]["motion"] = "hofmbh"
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    report = run_pipeline(project)
    shards = {p: p.stat().st_mtime_ns for p in (project / "features/cache").rglob("shard-*.h5")}
    assert {p: t for p, t in shards.items() if p in video_shards} == video_shards, "the video model's untouched"
    assert {p.parent.name.split("-")[0] for p in set(shards) - set(video_shards)} == {"hofmbh"}
    assert report["hofmbh"]["feature_dim"] == 353 and report["feature_dim"] == 512 + 353
    assert (report["hofmbh"]["engine"], report["engine"]) == ("none", "eager"), "each part by what ran it"
    with h5py.File(project / "features/features.h5") as f:
        joined = f["features"][:]
        assert f.attrs["motion"] == "hofmbh"
    np.testing.assert_array_equal(joined[..., :512], video)
    assert np.isfinite(joined).all() and joined[..., 512:].any()
    assert len(_commands(project, clip)) >= 2
    done = actrec_main("export", "--out", tmp_path / "head.onnx", cwd=project)
    assert done.returncode == 0, done.stderr
    assert json.loads((tmp_path / "head.onnx.json").read_text())["input"]["shape"] == ["batch", 2, 865]
    done = actrec_main("export", "--with-backbone", "--out", tmp_path / "joined.onnx", cwd=project)
    assert done.returncode == 2 and "optical flow, which no ONNX or TorchScript graph holds" in done.stderr
    assert "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1
