"""What a user names on the command line: videos (files, folders, glob patterns) and time spans.

No torch here: `actrec` resolves its inputs, and fails on a missing one, before loading a model.
"""

from __future__ import annotations

import glob
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from actrec.data.clips import FRAME_EXTENSIONS, VIDEO_EXTENSIONS, find_clips, is_frame_folder
from actrec.data.ntu_skeleton import SKELETON_SUFFIX
from actrec.errors import ActrecError


def find_videos(inputs: Sequence[str]) -> list[Path]:
    """Expand files, folders and glob patterns, in order, without repeats. A folder holding frames (JPEG/PNG)
    is one clip; any other folder stands for every clip under it (videos, NTU .skeleton files, folders of frames)."""
    found: list[Path] = []
    for item in inputs:
        path = Path(item)
        if path.is_file() or is_frame_folder(path):
            found.append(path)
        elif path.is_dir():
            videos = sorted([*find_clips(path), *(p for p in path.rglob(f"*{SKELETON_SUFFIX}") if p.is_file())])
            if not videos:
                raise ActrecError(
                    f"no videos ({', '.join(VIDEO_EXTENSIONS)}) or folders of frames "
                    f"({', '.join(FRAME_EXTENSIONS)}) under {path}"
                )
            found += videos
        elif glob.has_magic(item):
            matches = sorted(
                Path(p) for p in glob.glob(item, recursive=True) if Path(p).is_file() or is_frame_folder(p)
            )
            if not matches:
                raise ActrecError(f"no file matches {item}")
            found += matches
        else:
            raise ActrecError(f"no such file or folder: {item}")
    return list(dict.fromkeys(found))


@dataclass(frozen=True)
class Span:
    """A window or stride length: frames of the video, or seconds (written with an 's': '4s')."""

    value: float
    seconds: bool = False

    @classmethod
    def parse(cls, text: str) -> Span:
        """'16' (frames) or '2.5s' (seconds): finite, above 0, at most a day or a million frames."""
        seconds = text.strip().lower().endswith("s")
        try:
            value = float(text.strip()[:-1] if seconds else text)
        except ValueError:
            value = math.nan
        whole = math.isfinite(value) and value == int(value)
        if not 0 < value <= (86_400 if seconds else 1_000_000) or not (seconds or whole):
            raise ValueError(
                f"{text!r} is not a whole number of frames (16, at most 1000000) or of seconds (2.5s, at most 86400s)"
            )
        return cls(value, seconds)

    def frames(self, fps: float) -> int:
        return max(1, round(self.value * fps)) if self.seconds else int(self.value)
