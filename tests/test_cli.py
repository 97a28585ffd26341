"""`actrec predict` on a model trained by the pipeline's own stages: what it computes through its main() in this
process, and how it behaves as a process (one error line, exit codes, no decoder's words beside actrec's) run as a
user runs it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from actrec.data.decoding import read_frames
from tests.helpers import actrec, actrec_main, dump_frames, one_error_line, write_video


def test_predict_one_video_as_the_evaluation_saw_it(trained_run: Path) -> None:
    predictions = pd.read_csv(trained_run / "reports/predictions.csv")
    clip = predictions.iloc[0]
    done = actrec_main("predict", f"videos/{clip['clip_id']}", cwd=trained_run)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    # Two classes: the top-5 shows both, the prediction first.
    assert lines[0] == f"Prediction: {clip['predicted']} ({clip['confidence']:.1%})"
    other = ({"Dim", "Bright"} - {clip["predicted"]}).pop()
    assert lines[1] == f"  2. {other} ({1 - clip['confidence']:.1%})" and len(lines) == 2

    done = actrec_main("predict", f"videos/{clip['clip_id']}", "--json", "--top-k", "1", cwd=trained_run)
    as_json = json.loads(done.stdout)
    assert as_json["prediction"] == clip["predicted"] and len(as_json["top_k"]) == 1
    assert as_json["probability"] == pytest.approx(clip["confidence"], abs=2e-4)


def test_batch_predict_reports_bad_files_and_predicts_the_rest(trained_run: Path, tmp_path: Path) -> None:
    folder = tmp_path / "new"
    good = [write_video(folder / f"clip{i}.avi", frames=20 + i, seed=100 + i) for i in range(3)]
    mp4 = write_video(tmp_path / "whole.mp4", frames=30, codec="libx264").read_bytes()
    (folder / "corrupt.mp4").write_bytes(mp4[: len(mp4) // 2])  # cut mid-file: no index (moov atom)
    (folder / "notes.avi").write_text("not a video\n")
    done = actrec("predict", folder, "--out", tmp_path / "preds.csv", "--model", trained_run / "models", cwd=tmp_path)
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


def test_windows_along_a_long_video(trained_run: Path, tmp_path: Path) -> None:
    video = write_video(tmp_path / "long.avi", frames=100, fps=25, seed=3)
    out = tmp_path / "windows.csv"
    done = actrec_main(
        "predict",
        video,
        "--window",
        "16",
        "--stride",
        "8",
        "--out",
        out,
        "--model",
        trained_run / "models",
        cwd=tmp_path,
    )
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


def test_windows_are_written_beside_the_video_and_drawn_on_it(trained_run: Path, tmp_path: Path) -> None:
    """Without --out the CSV and PNG go beside the video, wherever the command runs; --render writes the video
    with each frame's window's answer on a dark band across the top, the rest of the picture as it was."""
    video = write_video(tmp_path / "clips" / "long.avi", frames=60, fps=25, seed=3)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    rendered = tmp_path / "drawn.mp4"
    args = ("--window", "20", "--render", rendered, "--model", trained_run / "models")
    done = actrec_main("predict", video, *args, cwd=elsewhere)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "clips/long_windows.csv").is_file() and (tmp_path / "clips/long_windows.png").is_file()
    assert not list(elsewhere.iterdir()), "nothing is written where the command runs"
    assert f"{rendered} (60 frames drawn on)" in done.stdout
    original, drawn = read_frames(video, np.arange(60)), read_frames(rendered, np.arange(60))
    assert drawn.shape == original.shape
    band = max(14, original.shape[1] // 10)  # the band render draws
    top = np.abs(drawn[:, :band].astype(int) - original[:, :band]).mean()
    below = np.abs(drawn[:, band + 4 :].astype(int) - original[:, band + 4 :]).mean()
    assert top > 20 and below < 6, (top, below)

    done = actrec_main("predict", video, "--render", rendered, "--model", trained_run / "models", cwd=elsewhere)
    assert one_error_line(done) == "error: --render needs --window: the class drawn on each frame is its window's"


def _other_backbone(run: Path, tmp_path: Path) -> Path:
    checkpoint = torch.load(run / "models/model.pt", weights_only=True)
    checkpoint["features"].update({"backbone": "resnet50", "weights": ""})
    tmp_path.mkdir()
    torch.save(checkpoint, tmp_path / "model.pt")
    return tmp_path


@pytest.mark.parametrize(
    "case, expected",
    [
        ("missing file", "no such file or folder: missing.avi"),
        ("not a video", "notes.avi: cannot open"),
        ("corrupt clip", "corrupt.mp4: cannot open"),
        ("empty folder", "no videos"),
        ("missing model", "not found; run the train stage"),
        ("not a model", "is not a model checkpoint"),
        ("other backbone", "takes 1280-d features but its recorded backbone resnet50 gives 2048-d features"),
    ],
)
def test_bad_input_gives_one_error_line_and_exit_2(trained_run: Path, tmp_path: Path, case: str, expected: str) -> None:
    clip = write_video(tmp_path / "clip.avi", frames=20)
    (tmp_path / "notes.avi").write_text("not a video\n")
    mp4 = write_video(tmp_path / "whole.mp4", frames=30, codec="libx264").read_bytes()
    (tmp_path / "corrupt.mp4").write_bytes(mp4[: len(mp4) // 2])
    (tmp_path / "empty").mkdir()
    model = trained_run / "models"
    target = {
        "missing file": "missing.avi",
        "not a video": "notes.avi",
        "corrupt clip": "corrupt.mp4",
        "empty folder": "empty",
    }.get(case, clip)
    if case == "missing model":
        model = tmp_path / "nowhere"
    elif case == "not a model":
        model = tmp_path / "notes.avi"
    elif case == "other backbone":
        model = _other_backbone(trained_run, tmp_path / "other")
    # the decoders' cases as a process (FFmpeg may write to stderr itself), the others through main()
    command = actrec if case in ("not a video", "corrupt clip") else actrec_main
    assert expected in one_error_line(command("predict", target, "--model", model, cwd=tmp_path))


def test_report_says_what_the_run_kept_and_scored(trained_run: Path, tmp_path: Path) -> None:
    """`make demo` ends with `actrec report`: a few lines read from the reports dvc repro wrote."""
    done = actrec("report", cwd=trained_run)
    assert done.returncode == 0, done.stderr
    metrics = json.loads((trained_run / "reports/metrics.json").read_text())
    training = json.loads((trained_run / "reports/train/metrics.json").read_text())
    lines = done.stdout.splitlines()
    assert len(lines) == 4 and max(map(len, lines)) <= 120
    assert lines[0].startswith(f"head kept: {training['head']}, by {training['chosen_by']}: ")
    assert f"test top-1 {metrics['top1']:.3f} [{metrics['top1_ci95_low']:.3f}," in lines[1]
    assert f"linear probe {metrics['linear_probe_top1']:.3f}" in lines[1]
    assert "reports/summary.md" in lines[2] and "actrec serve" in lines[3]
    done = actrec("report", "--reports", tmp_path / "none", cwd=tmp_path)
    assert one_error_line(done).endswith("run dvc repro first")


def test_a_reader_that_goes_away_gets_no_traceback(trained_run: Path) -> None:
    """`actrec report | head -1` and the like: output cut short by the reader is no error to show."""
    child = subprocess.Popen(
        [sys.executable, "-m", "actrec", "report"], cwd=trained_run, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    child.stdout.close()  # before the command has written anything: its first write meets a closed pipe
    stderr = child.stderr.read().decode()
    assert child.wait() == 1 and stderr == "", stderr


def test_a_folder_of_frames_is_predicted_as_its_video(trained_run: Path, tmp_path: Path) -> None:
    clip = pd.read_csv(trained_run / "reports/predictions.csv").iloc[0]
    frames = dump_frames(trained_run / "videos" / clip["clip_id"], tmp_path / "frames")
    done = actrec_main("predict", frames, "--json", cwd=trained_run)
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout)
    assert answer["prediction"] == clip["predicted"] and answer["probability"] == pytest.approx(
        clip["confidence"], abs=0.01
    )


def test_broken_files_give_exactly_one_line_each(trained_run: Path, tmp_path: Path) -> None:
    """Only actrec speaks: no FFmpeg or decord lines beside its own, alone or in a folder of videos."""
    folder = tmp_path / "new"
    write_video(folder / "good.avi", frames=20)
    (folder / "notes.mp4").write_text("these are my notes, not a video\n" * 40)
    (folder / "noise.avi").write_bytes(np.random.default_rng(1).bytes(30_000))
    model = trained_run / "models"
    for name in ("notes.mp4", "noise.avi"):
        done = actrec("predict", folder / name, "--model", model, cwd=tmp_path)
        assert done.stderr.splitlines() == [one_error_line(done)], done.stderr
        assert "cannot open" in done.stderr
    done = actrec("predict", folder, "--model", model, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    lines = [line for line in done.stderr.splitlines() if not line.startswith("predict:")]  # the progress bar
    assert sorted(lines) == [
        f"WARNING actrec: skipping {folder / n}: cannot open: Invalid data found when processing input"
        for n in ("noise.avi", "notes.mp4")
    ], done.stderr
