"""Folders of frames are clips wherever videos are: FFmpeg's frames of real UCF-101 clips, laid out as class
folders, give through subset, split and extract the same sampled frames and features as the videos they came from."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest

from actrec.data.decoding import video_info
from tests.helpers import call_stage, dump_frames, tiny_project

# Short clips (53-79 frames), two groups a class, whose AVI headers count exactly the frames FFmpeg decodes.
CLIPS = (
    "UnevenBars/v_UnevenBars_g07_c02.avi",
    "UnevenBars/v_UnevenBars_g06_c02.avi",
    "UnevenBars/v_UnevenBars_g06_c03.avi",
    "VolleyballSpiking/v_VolleyballSpiking_g07_c01.avi",
    "VolleyballSpiking/v_VolleyballSpiking_g05_c03.avi",
    "VolleyballSpiking/v_VolleyballSpiking_g04_c02.avi",
)


def _run(project: Path, root: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[pd.DataFrame, dict[str, tuple]]:
    """subset, split and extract over `root`: the clip table and each clip's (frame indices, features) by name."""
    tiny_project(project, root, dataset={"frame_rate": 25.0}, split={"test_fraction": 0.34, "val_fraction": 0.0})
    monkeypatch.chdir(project)
    for stage in ("subset", "split", "extract"):
        call_stage(stage)
    with h5py.File(project / "features/features.h5") as f:
        ids = [Path(c).name.removesuffix(".avi") for c in f["clip_ids"].asstr()[:]]
        rows = dict(zip(ids, zip(f["frame_indices"][:], f["features"][:].astype(np.float32), strict=True), strict=True))
    table = pd.read_csv(project / "data/split.csv", keep_default_na=False)
    table["name"] = [Path(c).name.removesuffix(".avi") for c in table["clip_id"]]
    return table.set_index("name"), rows


def test_frame_folders_give_their_videos_frames_through_subset_split_extract(
    ucf_mini: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    videos, frames = tmp_path / "videos", tmp_path / "frames"
    for clip in CLIPS:
        source = ucf_mini / "UCF-101" / clip
        (videos / clip).parent.mkdir(parents=True, exist_ok=True)
        (videos / clip).symlink_to(source)
        folder = dump_frames(source, frames / clip.removesuffix(".avi"))  # Class/v_..._gNN_cNN/img_00001.png
        assert video_info(folder).frames == video_info(source).frames

    by_video, video_rows = _run(tmp_path / "on_videos", videos, monkeypatch)
    by_frames, frame_rows = _run(tmp_path / "on_frames", frames, monkeypatch)

    assert set(by_frames.index) == set(by_video.index) == {Path(c).stem for c in CLIPS}
    for column in ("label", "group", "split", "frames", "width", "height"):
        assert by_frames[column].to_dict() == by_video[column].to_dict(), column
    assert (by_frames["fps"] == 25.0).all(), "a frame folder's rate is dataset.frame_rate"
    for name, (indices, features) in video_rows.items():
        frame_indices, frame_features = frame_rows[name]
        assert np.array_equal(frame_indices, indices)
        # PNG frames differ from the video's decode by colour rounding alone (at most 1 level on a few pixels)
        np.testing.assert_allclose(frame_features, features, atol=0.05)
        assert np.abs(frame_features - features).mean() < 2e-3
