"""Dataset layouts scanned into the clip table: groups per layout, class selection, limits, empty classes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from actrec.data.datasets import (
    DatasetError,
    drop_empty_classes,
    group_of,
    limit_per_class,
    read_video_info,
    scan,
    select_classes,
    video_root,
)
from actrec.params import DatasetParams
from tests.helpers import class_folders, write_video


@pytest.mark.parametrize(
    "name, clip_id, group",
    [
        ("ucf101", "ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi", "g08"),
        ("hmdb51", "brush_hair/April_09_brush_hair_u_nm_np1_ba_goo_0.avi", "April_09_brush_hair_u_nm_np1_ba_goo"),
        ("folder", "jump/jump_g3_c01.avi", "g03"),
        ("folder", "jump/holiday.mp4", "jump/holiday.mp4"),  # no group in the name: the clip is its own group
    ],
)
def test_groups_keep_clips_of_one_source_together(name: str, clip_id: str, group: str) -> None:
    assert group_of(clip_id, DatasetParams(name=name)) == group


def test_scan_lists_videos_per_class_folder(tmp_path: Path) -> None:
    written = class_folders(tmp_path, groups=2, clips=2)
    (tmp_path / "jump" / "notes.txt").write_text("not a video\n")
    table = scan(DatasetParams(name="folder", root=str(tmp_path)))
    assert sorted(table["clip_id"]) == sorted(written)
    assert set(table["label"]) == {"jump", "wave"} and set(table["group"]) == {"g01", "g02"}
    with pytest.raises(DatasetError, match="does not exist"):
        video_root(DatasetParams(name="folder", root=str(tmp_path / "nowhere")))


def test_scan_lists_folders_of_frames_as_clips(tmp_path: Path) -> None:
    write_video(tmp_path / "jump" / "jump_g01_c01.avi", frames=5)
    frames = tmp_path / "jump" / "jump_g02_c01"
    frames.mkdir()
    for i in range(3):
        Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(frames / f"img_{i + 1:05d}.jpg")
    (tmp_path / "wave" / "notes").mkdir(parents=True)
    (tmp_path / "wave" / "notes" / "readme.txt").write_text("no frames here\n")
    write_video(tmp_path / "wave" / "wave_g01_c01.mp4", frames=5)
    table = scan(DatasetParams(name="folder", root=str(tmp_path))).set_index("clip_id")
    assert list(table.index) == ["jump/jump_g01_c01.avi", "jump/jump_g02_c01", "wave/wave_g01_c01.mp4"]
    assert table.at["jump/jump_g02_c01", "group"] == "g02" and table.at["jump/jump_g02_c01", "path"] == str(frames)
    info = read_video_info(table.reset_index(), frame_rate=12.0).set_index("clip_id")
    assert info.at["jump/jump_g02_c01", "frames"] == 3 and info.at["jump/jump_g02_c01", "fps"] == 12.0
    assert info["readable"].all()


def test_classes_by_count_or_name_with_a_hint_for_typos() -> None:
    table = pd.DataFrame({"label": ["Bowling", "archery", "Diving"]})
    assert select_classes(table, "all") == ["archery", "Bowling", "Diving"]
    assert select_classes(table, 2) == ["archery", "Bowling"]
    assert select_classes(table, ["diving", "ARCHERY"]) == ["Diving", "archery"]
    with pytest.raises(DatasetError, match="'Bowlling' \\(did you mean 'Bowling'\\?\\)"):
        select_classes(table, ["Bowlling"])


def test_limit_per_class_keeps_unreadable_rows_listed() -> None:
    table = pd.DataFrame({"label": ["a"] * 5 + ["b"] * 2, "readable": [True] * 4 + [False] + [True] * 2})
    kept = limit_per_class(table, 2, seed=0)
    assert kept.groupby("label")["readable"].sum().to_dict() == {"a": 2, "b": 2}
    assert (~kept["readable"]).sum() == 1
    assert limit_per_class(table, 2, seed=0).index.equals(kept.index), "the same seed draws the same clips"


def test_classes_without_readable_clips_are_dropped_unless_named() -> None:
    table = pd.DataFrame(
        {
            "label": ["a", "b", "c"],
            "readable": [True, True, False],
            "clip_id": ["a/1", "b/1", "c/1"],
            "reason": ["", "", "empty file"],
        }
    )
    assert drop_empty_classes(table, ["a", "b", "c"], DatasetParams()) == ["a", "b"]
    with pytest.raises(DatasetError, match=r"c \(e\.g\. c/1: empty file\)"):
        drop_empty_classes(table, ["a", "c"], DatasetParams(classes=["a", "c"]))
    with pytest.raises(DatasetError, match="needs at least 2"):
        drop_empty_classes(table, ["a", "c"], DatasetParams())
