"""Messy input never crashes a stage or loses work: odd and broken videos, killed extraction, mismatched
feature files, empty or missing data, outputs that cannot be written."""

from __future__ import annotations

import dataclasses
import json
import os
import random
import shutil
import signal
import subprocess
import time
from fractions import Fraction
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest
import yaml

from actrec.data.datasets import DatasetError
from actrec.data.sampling import sample_indices
from actrec.data.splits import SplitError
from actrec.features.store import ExtractionSettings, FeatureCache, FeatureStoreError, assemble
from actrec.files import OutputError
from actrec.params import ParamsError
from tests import features
from tests.helpers import (
    ROOT,
    call_stage,
    class_folders,
    run_stage,
    stage_command,
    tiny_project,
    write_audio_only,
    write_timed_video,
    write_video,
)

CLASSES = ("jump", "wave")


def _write_params(folder: Path, root: Path, **sections: dict) -> None:
    """A tiny project for a `folder` dataset at `root`, extracting 8 frames a clip."""
    tiny_project(folder, root, **{**sections, "extract": {"frames": 8, **sections.get("extract", {})}})


def _odd_videos(root: Path) -> tuple[dict[str, dict], dict[str, str], list[str]]:
    """The odd videos users have: {clip_id: what the clip table must say} for those that must be processed,
    {clip_id: reason} for those that must be skipped, and clips cut off mid-stream (either outcome)."""
    good = {
        "jump/one_frame.avi": {"frames": 1},
        "jump/three_frames_shorter_than_T.mp4": {"frames": 3},
        "jump/full_hd_1080p.mp4": {"width": 1920, "height": 1080},
        "jump/portrait_phone_72x128.mp4": {"width": 72, "height": 128},  # decord fails on this width: PyAV reads it
        "jump/grayscale.mp4": {"frames": 16},
        "wave/grayscale_ffv1.mkv": {"frames": 16},
        "wave/variable_frame_rate.mkv": {"frames": 23},  # 14 pictures over 0.9 s, played at 25 frames a second
        "wave/xvid.avi": {"frames": 18},
        "wave/h264.mp4": {"frames": 18},
        "wave/hevc.mp4": {"frames": 18},
        "wave/vp9.webm": {"frames": 18},
    }
    write_video(root / "jump/one_frame.avi", frames=1)
    write_video(root / "jump/three_frames_shorter_than_T.mp4", frames=3, codec="libx264")
    write_video(root / "jump/full_hd_1080p.mp4", frames=4, width=1920, height=1080, codec="libx264")
    write_video(root / "jump/portrait_phone_72x128.mp4", frames=12, width=72, height=128, codec="libx264")
    write_video(root / "jump/grayscale.mp4", frames=16, codec="libx264", pix_fmt="gray")
    write_video(root / "wave/grayscale_ffv1.mkv", frames=16, codec="ffv1", pix_fmt="gray")
    gaps = [20, 40, 120, 40, 20, 200, 40, 40, 80, 20, 40, 160, 40]
    write_timed_video(root / "wave/variable_frame_rate.mkv", [sum(gaps[:i]) for i in range(14)])
    write_timed_video(root / "wave/xvid.avi", list(range(18)), Fraction(1, 25), codec="mpeg4", codec_tag="XVID")
    for name, codec in (("h264.mp4", "libx264"), ("hevc.mp4", "libx265"), ("vp9.webm", "libvpx-vp9")):
        write_video(root / "wave" / name, frames=18, codec=codec, seed=5)

    bad = {
        "jump/empty.avi": "empty file",
        "jump/cut_off.mp4": "cannot open",
        "wave/random_bytes.avi": "cannot open",
        "wave/text_file.mp4": "cannot open",
        "wave/soundtrack_only.mp4": "no video stream",
    }
    (root / "jump/empty.avi").write_bytes(b"")
    whole = write_video(root / "jump/cut_off.mp4", frames=40, codec="libx264").read_bytes()
    (root / "jump/cut_off.mp4").write_bytes(whole[: len(whole) // 2])  # the index (moov) at the end is lost
    (root / "wave/random_bytes.avi").write_bytes(np.random.default_rng(1).bytes(30_000))
    (root / "wave/text_file.mp4").write_text("these are my notes, not a video\n" * 40)
    write_audio_only(root / "wave/soundtrack_only.mp4")

    cut = []
    for share in (0.3, 0.8):
        name = f"wave/cut_at_{int(share * 100)}pct.mkv"
        whole = write_video(root / name, frames=60, codec="libx264", seed=3).read_bytes()
        (root / name).write_bytes(whole[: int(len(whole) * share)])
        cut.append(name)
    return good, bad, cut


def test_odd_and_broken_videos_are_processed_or_listed(tmp_path: Path) -> None:
    root = tmp_path / "videos"
    plain = class_folders(root)
    good, bad, cut = _odd_videos(root)
    run = tmp_path / "run"
    _write_params(run, root)
    for stage in ("subset", "split"):
        run_stage(stage, run)
    gone = plain[-1]
    (root / gone).unlink()  # removed between the stages: decoding it fails in extraction
    run_stage("extract", run)

    clips = pd.read_csv(run / "data/clips.csv", keep_default_na=False).set_index("clip_id")
    unreadable = pd.read_csv(run / "reports/unreadable.csv", keep_default_na=False).set_index("clip_id")
    failed = pd.read_csv(run / "reports/extract_failed.csv", keep_default_na=False).set_index("clip_id")
    with h5py.File(run / "features/features.h5") as f:
        ids = list(f["clip_ids"].asstr()[:])
        feats, frame_idx = f["features"][:].astype(np.float32), f["frame_indices"][:]
    row = {c: i for i, c in enumerate(ids)}

    assert len(ids) == len(set(ids))
    for clip_id, expected in good.items():
        assert clip_id in row, f"{clip_id} was not processed: {unreadable.get('reason', {}).get(clip_id)}"
        for column, value in expected.items():
            assert clips.at[clip_id, column] == value, (clip_id, column)
        assert np.array_equal(frame_idx[row[clip_id], 0], sample_indices(clips.at[clip_id, "frames"], 8)[0])
    assert set(frame_idx[row["jump/one_frame.avi"]].ravel()) == {0}
    assert np.isfinite(feats).all() and (np.abs(feats).sum(axis=(1, 2, 3)) > 0).all()
    for clip_id, reason in bad.items():
        assert clip_id not in row and reason in unreadable.at[clip_id, "reason"], clip_id
    for clip_id in cut:  # whatever survived the cut: processed, or listed with a reason
        listed = unreadable["reason"].get(clip_id) or failed["reason"].get(clip_id)
        assert (clip_id in row) != bool(listed), clip_id
    assert list(failed.index) == [gone] and "no such file" in failed.at[gone, "reason"]
    assert set(ids) | set(unreadable.index) | set(failed.index) == set(clips.index), "every clip is accounted for"

    subset_counts = json.loads((run / "reports/subset.json").read_text())
    assert subset_counts["unreadable"] == len(unreadable) >= len(bad)
    assert subset_counts["clips"] == len(clips) - len(unreadable) and subset_counts["classes"] == 2
    extract_counts = json.loads((run / "reports/extract.json").read_text())
    assert (extract_counts["videos"], extract_counts["failed"]) == (len(ids), 1)

    # Decoding in a worker process (where it happens with num_workers > 0) gives the same result.
    again = tmp_path / "workers"
    _write_params(again, root, extract={"num_workers": 1})
    shutil.copytree(run / "data", again / "data")
    run_stage("extract", again)
    assert pd.read_csv(again / "reports/extract_failed.csv")["clip_id"].tolist() == [gone]
    with h5py.File(again / "features/features.h5") as f:
        assert list(f["clip_ids"].asstr()[:]) == ids
        np.testing.assert_array_equal(f["features"][:].astype(np.float32), feats)


def _shards(cache: Path) -> list[Path]:
    return sorted(cache.glob("*/shard-*.h5"))


def test_killed_extraction_resumes_without_loss_or_duplicates(tmp_path: Path, monkeypatch) -> None:
    root = tmp_path / "videos"
    class_folders(root, groups=12, frames=16)
    run, ref = tmp_path / "run", tmp_path / "ref"
    for folder in (run, ref):
        _write_params(folder, root)
    monkeypatch.chdir(run)
    call_stage("subset")
    call_stage("split")
    shutil.copytree(run / "data", ref / "data")
    expected = pd.read_csv(run / "data/split.csv")
    cache = run / "features/cache"

    rng = random.Random(6)
    outcomes, dead_pid = [], None
    for attempt in range(3):
        before = len(_shards(cache))
        proc = subprocess.Popen(
            stage_command("extract"),
            cwd=run,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        if attempt == 0:  # anywhere in start-up: importing, loading the backbone, decoding the first clips
            time.sleep(rng.uniform(0.5, 3.0))
        else:  # once this run has written `attempt` shards of its own, within the next clips
            deadline = time.monotonic() + 300
            while proc.poll() is None and len(_shards(cache)) < before + attempt and time.monotonic() < deadline:
                time.sleep(0.005)
            time.sleep(rng.uniform(0, 0.05))
        proc.send_signal(signal.SIGKILL)
        outcomes.append(proc.wait())
        dead_pid = proc.pid
        for shard in _shards(cache):  # whatever the moment of the kill, every shard is complete
            with h5py.File(shard) as f:
                assert len(f["fingerprints"]) == len(f["features"]) == len(f["frame_indices"]) > 0
        if (run / "features/features.h5").exists():  # and so is the feature file, if it got that far
            with h5py.File(run / "features/features.h5") as f:
                assert len(f["clip_ids"]) == len(expected)
    assert outcomes.count(-signal.SIGKILL) >= 2, f"the runs ended before they could be killed: {outcomes}"
    assert 0 < len(_shards(cache)) < len(expected) / 2, "the kills left the extraction part done"
    # What a kill during a write leaves: a temporary file of a dead process, or a cut-off shard.
    folder = _shards(cache)[0].parent
    (folder / f".shard-cut.h5.{dead_pid}.tmp").write_bytes(b"\x89HDF\r\n")
    (folder / "shard-cut.h5").write_bytes(_shards(cache)[-1].read_bytes()[:1000])

    resumed = run_stage("extract", run).stderr
    assert "ignoring unreadable cache shard" in resumed and "temporary file(s) left in" in resumed
    monkeypatch.chdir(ref)
    call_stage("extract")  # the uninterrupted run (in this process: no second start-up to pay for)
    counts = json.loads((run / "reports/extract.json").read_text())
    assert counts["reused_from_cache"] > 0 and counts["videos"] == len(expected)
    with h5py.File(run / "features/features.h5") as f, h5py.File(ref / "features/features.h5") as r:
        assert sorted(f["clip_ids"].asstr()[:]) == sorted(expected["clip_id"]), "every clip, exactly once"
        assert list(f["clip_ids"].asstr()[:]) == list(r["clip_ids"].asstr()[:])
        # Exactly equal: each clip's features do not depend on which clips shared its batch or run.
        np.testing.assert_array_equal(f["features"][:], r["features"][:])
        np.testing.assert_array_equal(f["frame_indices"][:], r["frame_indices"][:])
    (folder / "shard-cut.h5").unlink()
    rows = []
    for shard in _shards(cache):
        with h5py.File(shard) as f:
            rows += list(f["fingerprints"].asstr()[:])
    assert sorted(rows) == sorted(expected["fingerprint"]), "no clip was extracted twice"
    assert not list(cache.glob("*/.*.tmp")) and not list((run / "features").glob(".*.tmp"))


def _feature_file(folder: Path, settings: ExtractionSettings, dim: int = 1280, n: int = 8) -> Path:
    """features/features.h5 as extract writes it, from a cache filled with random features (no backbone run)."""
    rng = np.random.default_rng(0)
    cache = FeatureCache(folder / "features/cache", settings)
    fps = [f"clip{i}" for i in range(n)]
    cache.write_shard(
        fps, rng.normal(size=(n, settings.views, settings.frames, dim)), np.zeros((n, settings.views, settings.frames))
    )
    table = pd.DataFrame(
        {
            "clip_id": [f"{CLASSES[i % 2]}/v{i}.avi" for i in range(n)],
            "fingerprint": fps,
            "label": [CLASSES[i % 2] for i in range(n)],
            "split": (["train", "val", "test", "test"] * n)[:n],
            "group": [f"g{i // 4}" for i in range(n)],
        }
    )
    assemble(cache, table, list(CLASSES), folder / "features/features.h5", attrs={"dataset": "folder"})
    return folder / "features/features.h5"


SETTINGS = dataclasses.replace(features.SETTINGS, frames=8)


@pytest.mark.parametrize(
    "change, named",
    [
        ({"frames": 16}, "frames: 8 ≠ 16"),
        ({"image_size": 96}, "image_size: 64 ≠ 96"),
        (
            {"backbone": "resnet50", "weights": None},
            "backbone: efficientnet_lite0 ≠ resnet50, weights: imagenet ≠ None",
        ),
        ({"views": 2}, "views: 1 ≠ 2"),
    ],
)
def test_train_refuses_features_extracted_otherwise(tmp_path: Path, monkeypatch, change: dict, named: str) -> None:
    _feature_file(tmp_path, SETTINGS)
    _write_params(tmp_path, tmp_path, extract=change)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(FeatureStoreError, match="run the extract stage") as err:
        call_stage("train")
    assert named in str(err.value) and "\n" not in str(err.value)
    assert not (tmp_path / "models/model.pt").exists()


def test_evaluate_refuses_a_model_trained_on_other_features(tmp_path: Path, monkeypatch) -> None:
    _feature_file(tmp_path, SETTINGS)
    _write_params(tmp_path, tmp_path)
    monkeypatch.chdir(tmp_path)
    call_stage("train")  # the features match params: training runs
    assert (tmp_path / "models/model.pt").is_file()
    resnet = dataclasses.replace(SETTINGS, backbone="resnet50", weights=None)
    _feature_file(tmp_path, resnet, dim=2048)
    with pytest.raises(FeatureStoreError, match="run train again") as err:
        call_stage("evaluate")
    assert "backbone: efficientnet_lite0 ≠ resnet50" in str(err.value) and "feature_dim: 1280 ≠ 2048" in str(err.value)


def test_a_missing_dataset_root_is_one_clear_error(tmp_path: Path, monkeypatch) -> None:
    _write_params(tmp_path, tmp_path / "no_such_folder")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(DatasetError, match=r"no_such_folder.*does not exist"):
        call_stage("subset")
    with pytest.raises(DatasetError, match=r"data/clips\.csv not found; run the subset stage"):
        call_stage("split")


def test_classes_without_videos_are_named_and_skipped(tmp_path: Path, monkeypatch, caplog) -> None:
    root = tmp_path / "videos"
    class_folders(root)
    (root / "empty_class").mkdir()
    (root / "empty_class/readme.txt").write_text("videos go here\n")
    (root / "broken_class").mkdir()
    (root / "broken_class/only.avi").write_bytes(b"RIFF" + bytes(100))
    _write_params(tmp_path, root)
    monkeypatch.chdir(tmp_path)
    call_stage("subset")
    assert "skipping 1 class folder(s) without videos" in caplog.text and "empty_class" in caplog.text
    assert "dropping class(es) without readable clips" in caplog.text and "broken_class" in caplog.text
    counts = json.loads(Path("reports/subset.json").read_text())
    assert (counts["classes"], counts["clips"], counts["unreadable"]) == (2, 8, 1)

    _write_params(tmp_path, root, dataset={"classes": ["jump", "broken_class"]})
    with pytest.raises(DatasetError, match=r"named by dataset.classes: broken_class \(e.g. broken_class/only.avi"):
        call_stage("subset")
    _write_params(tmp_path, root, dataset={"classes": ["jump", "empty_class"]})
    with pytest.raises(DatasetError, match="without videos under the dataset root: 'empty_class'"):
        call_stage("subset")
    _write_params(tmp_path, root, dataset={"classes": 1})
    with pytest.raises(DatasetError, match="needs at least 2"):
        call_stage("subset")


def _ucf_layout(root: Path, train: list[str], test: list[str]) -> None:
    """A UCF-101 style root: UCF-101/<class>/v_<class>_gNN_cNN.avi plus split lists naming `train` and `test`."""
    for c in CLASSES:
        for g in (1, 2, 3):
            write_video(root / "UCF-101" / c / f"v_{c}_g{g:02d}_c01.avi", frames=12, seed=g)
    lists = root / "ucfTrainTestlist"
    lists.mkdir(parents=True)
    (lists / "trainlist01.txt").write_text("".join(f"{c} 1\r\n" for c in train))
    (lists / "testlist01.txt").write_text("".join(f"{c}\r\n" for c in test))


def test_split_lists_that_match_no_clip_are_an_error(tmp_path: Path, monkeypatch) -> None:
    root = tmp_path / "ucf"
    _ucf_layout(root, [f"Other/v_Other_g0{g}_c01.avi" for g in (1, 2)], ["Other/v_Other_g03_c01.avi"])
    _write_params(tmp_path, root, dataset={"name": "ucf101"}, split={"official": 1})
    monkeypatch.chdir(tmp_path)
    call_stage("subset")
    with pytest.raises(
        SplitError,
        match=r"official split 1 lists in .*ucfTrainTestlist have 3 entries and none "
        r"matches any of the 6 clips",
    ):
        call_stage("split")
    assert not Path("data/split.csv").exists()


def test_a_split_list_cut_short_is_an_error_naming_the_list_and_line(tmp_path: Path, monkeypatch) -> None:
    root = tmp_path / "ucf"
    clip = "{0}/v_{0}_g{1:02d}_c01.avi".format
    _ucf_layout(root, [clip(c, g) for c in CLASSES for g in (1, 2)], [clip(c, 3) for c in CLASSES])
    whole = (root / "ucfTrainTestlist/trainlist01.txt").read_text()
    (root / "ucfTrainTestlist/trainlist01.txt").write_text(whole[: whole.index("wave") + 9])  # mid-line, no newline
    _write_params(tmp_path, root, dataset={"name": "ucf101"}, split={"official": 1})
    monkeypatch.chdir(tmp_path)
    call_stage("subset")
    with pytest.raises(
        SplitError, match=r"trainlist01\.txt:3: expected `Class/video\.avi class_index`, found 'wave/v_wa'"
    ):
        call_stage("split")
    (root / "ucfTrainTestlist/trainlist01.txt").write_text(whole[: whole.index("wave")])  # cut between lines
    with pytest.raises(SplitError, match=r"trainlist01\.txt\): no train clips of 1 class\(es\) .*: wave; name"):
        call_stage("split")
    assert not Path("data/split.csv").exists()


def test_a_class_in_only_one_part_is_warned_about(tmp_path: Path, monkeypatch, caplog) -> None:
    root = tmp_path / "ucf"
    clip = "{0}/v_{0}_g{1:02d}_c01.avi".format
    _ucf_layout(root, [clip(c, g) for c in CLASSES for g in (1, 2)], [clip("jump", 3)])  # wave_g03 is unlisted
    _write_params(tmp_path, root, dataset={"name": "ucf101"}, split={"official": 1, "val_fraction": 0})
    monkeypatch.chdir(tmp_path)
    call_stage("subset")
    call_stage("split")
    assert "class(es) without clips in both train and test: wave" in caplog.text
    assert pd.read_csv("data/split.csv").groupby("label")["split"].agg(set).to_dict() == {
        "jump": {"train", "test"},
        "wave": {"train"},
    }


def test_an_output_folder_that_cannot_be_made_fails_before_work(tmp_path: Path) -> None:
    root = tmp_path / "videos"
    class_folders(root)
    _write_params(tmp_path, root)
    (tmp_path / "reports").write_text("a file where the reports folder goes\n")
    run = run_stage("subset", tmp_path, check=False)
    assert run.returncode == 2
    assert run.stderr.strip().splitlines() == ["error: cannot write reports: reports is a file, not a folder"]
    assert not (tmp_path / "data/clips.csv").exists()


def test_an_unwritable_feature_file_leaves_no_partial_file(tmp_path: Path, monkeypatch) -> None:
    root = tmp_path / "videos"
    class_folders(root, groups=4, frames=10)
    _write_params(tmp_path, root)
    monkeypatch.chdir(tmp_path)
    call_stage("subset")
    call_stage("split")
    Path("features/features.h5/in_the_way").mkdir(parents=True)  # a folder where the feature file goes
    with pytest.raises(OutputError, match=r"cannot write features/features\.h5"):
        call_stage("extract")
    assert [p.name for p in Path("features").iterdir()] == ["cache", "features.h5"], "no temporary file is left"
    assert Path("features/features.h5").is_dir()

    shutil.rmtree("features/features.h5")
    call_stage("extract")  # the extracted clips were kept in the cache: nothing is computed again
    counts = json.loads(Path("reports/extract.json").read_text())
    assert counts["reused_from_cache"] == counts["videos"] == 8

    Path("features/cache").rename("features/cache.old")
    Path("features/cache").write_text("")  # a file where the cache folder goes
    with pytest.raises(OutputError, match="features/cache is a file, not a folder"):
        call_stage("extract")


@pytest.mark.parametrize("stage", ["demo", "subset", "split", "finetune", "extract", "train"])
def test_every_stage_checks_params_before_any_work(stage: str, tmp_path: Path, monkeypatch) -> None:
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["split"]["test_fraction"] = 0
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ParamsError, match=r"split\.test_fraction"):
        call_stage(stage)
    assert [p.name for p in tmp_path.iterdir()] == ["params.yaml"], "nothing was written"


def test_stage_fails_before_work_with_one_line(tmp_path: Path) -> None:
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["extract"]["frames"] = -3
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    run = run_stage("subset", tmp_path, check=False)
    assert run.returncode == 2
    lines = run.stderr.strip().splitlines()
    said = "error: params: extract.frames = -3 is not allowed; expected an integer >= 1"
    assert len(lines) == 1 and lines[0].startswith(said)
    assert not (tmp_path / "data").exists(), "nothing was written"
