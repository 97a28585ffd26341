"""`actrec predict` and `actrec export` on a model trained by the pipeline's own stages, run as a user runs them."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pandas as pd
import pytest
import torch
import yaml
from conftest import write_video
from PIL import Image

from pipeline.errors import ActrecError
from pipeline.export import build_export, export
from pipeline.inputs import Span, find_videos
from pipeline.predict import Predictor

ROOT = Path(__file__).resolve().parents[1]
STAGES = ("subset", "split", "extract", "train", "evaluate")


def actrec(*args: str | Path, cwd: Path) -> subprocess.CompletedProcess:
    """The console script, as `actrec ...` runs it."""
    return subprocess.run([sys.executable, "-m", "pipeline.cli", *map(str, args)], cwd=cwd, capture_output=True,
                          text=True)


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny folder dataset (2 classes, 4 groups each) through every stage: a real models/model.pt."""
    run = tmp_path_factory.mktemp("run")
    for c, cls in enumerate(("Dim", "Bright")):
        for g in range(1, 5):
            for i in range(1, 3):
                write_video(run / "videos" / cls / f"{cls}_g{g:02d}_c{i:02d}.avi", frames=30, seed=100 * c + 10 * g + i)
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["dataset"].update({"name": "folder", "root": "videos", "classes": "all", "group_pattern": r"_g(\d+)_"})
    params["split"].update({"official": None, "test_fraction": 0.25, "val_fraction": 0.2})
    # ImageNet weights (they ship offline): a random-init backbone could not be rebuilt identically at predict time.
    params["extract"].update({"backbone": "efficientnet_lite0", "weights": "imagenet", "frames": 4, "image_size": 64,
                              "num_workers": 0, "precision": "fp32", "cache_dir": "features/cache"})
    params["model"].update({"head": "lstm", "hidden_size": 16})
    params["train"].update({"epochs": 3, "patience": 3})
    (run / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    with pytest.MonkeyPatch.context() as patch:  # in-process: test_pipeline runs the stages as commands
        patch.chdir(run)
        for stage in STAGES:
            importlib.import_module(f"pipeline.{stage}").main()
    return run


@pytest.fixture(scope="module")
def predictor(run: Path) -> Predictor:
    return Predictor(run / "models", device="cpu")


def _one_error_line(done: subprocess.CompletedProcess) -> str:
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr, done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, done.stderr
    return errors[0]


def test_predict_one_video_as_the_evaluation_saw_it(run: Path) -> None:
    predictions = pd.read_csv(run / "reports/predictions.csv")
    clip = predictions.iloc[0]
    done = actrec("predict", f"videos/{clip['clip_id']}", cwd=run)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    # Two classes: the top-5 shows both, the prediction first.
    assert lines[0] == f"Prediction: {clip['predicted']} ({clip['confidence']:.1%})"
    other = ({"Dim", "Bright"} - {clip["predicted"]}).pop()
    assert lines[1] == f"  2. {other} ({1 - clip['confidence']:.1%})" and len(lines) == 2

    as_json = json.loads(actrec("predict", f"videos/{clip['clip_id']}", "--json", "--top-k", "1", cwd=run).stdout)
    assert as_json["prediction"] == clip["predicted"] and len(as_json["top_k"]) == 1
    assert as_json["probability"] == pytest.approx(clip["confidence"], abs=2e-4)


def test_batch_predict_reports_bad_files_and_predicts_the_rest(run: Path, tmp_path: Path) -> None:
    folder = tmp_path / "new"
    good = [write_video(folder / f"clip{i}.avi", frames=20 + i, seed=100 + i) for i in range(3)]
    mp4 = write_video(tmp_path / "whole.mp4", frames=30, codec="libx264").read_bytes()
    (folder / "corrupt.mp4").write_bytes(mp4[: len(mp4) // 2])  # cut mid-file: no index (moov atom)
    (folder / "notes.avi").write_text("not a video\n")
    done = actrec("predict", folder, "--out", tmp_path / "preds.csv", "--model", run / "models", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "3 videos predicted, 2 could not be read" in done.stdout
    table = pd.read_csv(tmp_path / "preds.csv").set_index("video")
    assert len(table) == 5
    for path in good:
        row = table.loc[str(path)]
        assert pd.isna(row["error"]) and row["top1"] in {"Dim", "Bright"}
        assert row["top1_probability"] + row["top2_probability"] == pytest.approx(1, abs=2e-4)
    for name in ("corrupt.mp4", "notes.avi"):
        row = table.loc[str(folder / name)]
        assert "cannot open" in row["error"] and pd.isna(row["top1"])
        assert f"skipping {folder / name}" in done.stderr


def test_many_videos_go_through_onnxruntime_and_agree_with_one_at_a_time(run: Path) -> None:
    """A job long enough to repay onnxruntime's set-up (32 clips x 4 frames) runs through it; a single clip
    stays eager; the probabilities agree (features stored as float16 either way)."""
    paths = sorted((run / "videos").rglob("*.avi"))
    many, single = Predictor(run / "models", device="cpu"), Predictor(run / "models", device="cpu")
    together = [p.probs for p in many.predict(paths * 2)]
    one_by_one = [next(single.predict([path])).probs for path in paths]
    assert many.runner(0).engine == "onnxruntime" and single.runner(0).engine == "eager"
    np.testing.assert_allclose(together, one_by_one * 2, atol=2e-3)


def test_windows_along_a_long_video(run: Path, tmp_path: Path) -> None:
    video = write_video(tmp_path / "long.avi", frames=100, fps=25, seed=3)
    out = tmp_path / "windows.csv"
    done = actrec("predict", video, "--window", "16", "--stride", "8", "--out", out, "--model", run / "models",
                  cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    table = pd.read_csv(out)
    starts = np.arange(0, 100 - 16 + 1, 8)  # whole windows only: 0, 8, ..., 80
    assert table["start_s"].tolist() == pytest.approx(starts / 25)
    assert table["end_s"].tolist() == pytest.approx((starts + 16) / 25)
    assert table[["Dim", "Bright"]].sum(1).tolist() == pytest.approx([1] * len(starts), abs=2e-4)
    assert (table["predicted"] == table[["Dim", "Bright"]].idxmax(1)).all()
    with Image.open(out.with_suffix(".png")) as image:
        assert image.format == "PNG" and image.size[0] >= 800
    assert f"wrote {out} ({len(starts)} windows)" in done.stdout


def test_windows_in_seconds_and_short_videos(predictor: Predictor, tmp_path: Path) -> None:
    video = write_video(tmp_path / "long.avi", frames=100, fps=25, seed=3)
    table = predictor.windows(video, Span.parse("1s"), Span.parse("0.6s"))  # 25-frame windows, 15-frame steps
    assert table["start_s"].tolist() == pytest.approx([s / 25 for s in (0, 15, 30, 45, 60, 75)])
    assert (table["end_s"] - table["start_s"]).tolist() == pytest.approx([1.0] * 6)
    short = predictor.windows(write_video(tmp_path / "short.avi", frames=10, fps=25), Span(16), Span(8))
    assert short[["start_s", "end_s"]].values.tolist() == [[0.0, 0.4]], "a short video is one window"
    # The first window of a video sampled as a whole clip is the clip's own prediction.
    whole = predictor.windows(video, Span(100), Span(100))
    (clip,) = predictor.predict([video])
    assert whole[predictor.classes].to_numpy()[0] == pytest.approx(clip.probs, abs=1e-4)


@pytest.mark.parametrize("text, frames", [("16", 16), ("2.5s", 62), ("0.5s", 12)])
def test_span_is_frames_or_seconds(text: str, frames: int) -> None:
    assert Span.parse(text).frames(25.0) == frames


@pytest.mark.parametrize("text", ["0", "-3", "1.5", "abc", "s"])
def test_bad_span_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="whole number of frames"):
        Span.parse(text)


def test_find_videos_expands_folders_and_globs(tmp_path: Path) -> None:
    a = write_video(tmp_path / "a" / "x.avi", frames=5)
    b = write_video(tmp_path / "a" / "sub" / "y.mp4", frames=5)
    (tmp_path / "a" / "notes.txt").write_text("not listed from a folder")
    assert find_videos([str(tmp_path / "a")]) == [b, a], "every video under the folder, sorted by path"
    assert find_videos([str(tmp_path / "a" / "*.avi"), str(a)]) == [a], "globs expand, repeats drop"
    for bad, said in (("missing.avi", "no such file"), (str(tmp_path / "*.mkv"), "no file matches")):
        with pytest.raises(ActrecError, match=said):
            find_videos([bad])


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


def test_onnx_export_of_the_head_gives_the_probabilities_of_pytorch(run: Path, tmp_path: Path) -> None:
    out = tmp_path / "head.onnx"
    done = actrec("export", "--format", "onnx", "--model", run / "models/model.pt", "--out", out, cwd=run)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"wrote {out}: features float32 (batch, 4, 1280) → probabilities")
    _onnx_matches_pytorch(out, run / "models/model.pt", with_backbone=False)


def test_onnx_export_with_backbone_gives_the_probabilities_of_pytorch(run: Path, tmp_path: Path) -> None:
    out = export(run / "models", "onnx", tmp_path / "full.onnx", with_backbone=True)
    _onnx_matches_pytorch(out, run / "models", with_backbone=True)


def test_torchscript_export_gives_the_probabilities_of_pytorch(run: Path, tmp_path: Path) -> None:
    out = export(run / "models", "torchscript", tmp_path / "head.pt")
    module, _, _ = build_export(run / "models", with_backbone=False)
    x = torch.randn(2, 4, 1280)
    with torch.no_grad():
        np.testing.assert_allclose(torch.jit.load(str(out))(x).numpy(), module(x).numpy(), atol=1e-5)


def _other_backbone(run: Path, tmp_path: Path) -> Path:
    checkpoint = torch.load(run / "models/model.pt", weights_only=True)
    checkpoint["features"].update({"backbone": "resnet50", "weights": ""})
    tmp_path.mkdir()
    torch.save(checkpoint, tmp_path / "model.pt")
    return tmp_path


@pytest.mark.parametrize("case, expected", [
    ("missing file", "no such file or folder: missing.avi"),
    ("not a video", "notes.avi: cannot open"),
    ("corrupt clip", "corrupt.mp4: cannot open"),
    ("empty folder", "no videos"),
    ("missing model", "not found; run the train stage"),
    ("not a model", "is not a model checkpoint"),
    ("other backbone", "takes 1280-d features but its recorded backbone resnet50 gives 2048-d features"),
])
def test_bad_input_gives_one_error_line_and_exit_2(run: Path, tmp_path: Path, case: str, expected: str) -> None:
    clip = write_video(tmp_path / "clip.avi", frames=20)
    (tmp_path / "notes.avi").write_text("not a video\n")
    mp4 = write_video(tmp_path / "whole.mp4", frames=30, codec="libx264").read_bytes()
    (tmp_path / "corrupt.mp4").write_bytes(mp4[: len(mp4) // 2])
    (tmp_path / "empty").mkdir()
    model = run / "models"
    target = {"missing file": "missing.avi", "not a video": "notes.avi", "corrupt clip": "corrupt.mp4",
              "empty folder": "empty"}.get(case, clip)
    if case == "missing model":
        model = tmp_path / "nowhere"
    elif case == "not a model":
        model = tmp_path / "notes.avi"
    elif case == "other backbone":
        model = _other_backbone(run, tmp_path / "other")
    assert expected in _one_error_line(actrec("predict", target, "--model", model, cwd=tmp_path))


def test_evaluate_writes_the_summary_page_and_heatmap(run: Path) -> None:
    metrics = json.loads((run / "reports/metrics.json").read_text())
    assert 0 <= metrics["ece"] <= 1
    assert metrics["test_clips"] == len(pd.read_csv(run / "reports/predictions.csv")) > 0
    page = (run / "reports/summary.md").read_text()
    assert f"| top-1 accuracy | {metrics['top1']:.1%} |" in page
    assert f"| test clips | {metrics['test_clips']} |" in page
    with Image.open(run / "reports/confusion.png") as image:
        assert image.format == "PNG" and min(image.size) >= 400
