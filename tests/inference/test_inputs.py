"""What a user names on the command line: time spans and videos (files, folders, globs)."""

from __future__ import annotations

from pathlib import Path

import pytest

from actrec.errors import ActrecError
from actrec.inference.inputs import Span, find_videos
from tests.helpers import write_video


@pytest.mark.parametrize("text, frames", [("16", 16), ("2.5s", 62), ("0.5s", 12)])
def test_span_is_frames_or_seconds(text: str, frames: int) -> None:
    assert Span.parse(text).frames(25.0) == frames


@pytest.mark.parametrize(
    "text", ["0", "-3", "1.5", "abc", "s", "infs", "inf", "1e400", "1e400s", "nans", "nan", "90000s", "2000000"]
)
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
