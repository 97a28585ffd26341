"""The listing DVC watches in the dataset root's place, and links that loop: reported, never followed round."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from actrec.data.clips import find_clips
from actrec.data.datasets import read_video_info
from actrec.data.listing import list_files


def _looped_root(root: Path) -> Path:
    (root / "Wave").mkdir(parents=True)
    (root / "Wave/a_g01_c01.avi").write_bytes(b"x" * 10)
    (root / "Wave/loop_a.avi").symlink_to("loop_b.avi")
    (root / "Wave/loop_b.avi").symlink_to("loop_a.avi")
    (root / "Wave/up").symlink_to("..")  # a folder link back above the walk: os.walk would go round 40 times
    (root / "Wave/gone.avi").symlink_to(root / "nowhere.avi")
    return root


def test_the_listing_has_each_file_once_and_why_a_link_cannot_be_followed(tmp_path: Path) -> None:
    listing = list_files(_looped_root(tmp_path / "root"))
    assert listing["path"].tolist() == ["Wave/a_g01_c01.avi", "Wave/gone.avi", "Wave/loop_a.avi", "Wave/loop_b.avi"]
    assert listing["size"].tolist() == [10, -1, -1, -1]
    assert listing["problem"].tolist() == [
        "",
        "No such file or directory",
        "Too many levels of symbolic links",
        "Too many levels of symbolic links",
    ]


def test_a_looping_link_is_a_clip_probing_reports_unreadable(tmp_path: Path) -> None:
    root = _looped_root(tmp_path / "root")
    clips = find_clips(root / "Wave")
    assert [c.name for c in clips] == ["a_g01_c01.avi", "gone.avi", "loop_a.avi", "loop_b.avi"]
    table = read_video_info(pd.DataFrame({"path": [str(c) for c in clips[1:]]}), workers=1)
    assert not table["readable"].any()
    assert table["reason"].tolist() == [
        "cannot read: No such file or directory",
        "cannot read: Too many levels of symbolic links",
        "cannot read: Too many levels of symbolic links",
    ]


def test_linked_folders_are_followed(tmp_path: Path) -> None:
    (tmp_path / "store/Jump").mkdir(parents=True)
    (tmp_path / "store/Jump/j_g01_c01.avi").write_bytes(b"y" * 3)
    (tmp_path / "root").mkdir()
    (tmp_path / "root/Jump").symlink_to(tmp_path / "store/Jump")
    assert list_files(tmp_path / "root")[["path", "size"]].values.tolist() == [["Jump/j_g01_c01.avi", 3]]
