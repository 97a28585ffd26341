"""What a clip is: a video file or a folder of frames, found under a dataset's folder, named by its stem,
known by a fingerprint of its content, described by its frame count, rate and size (VideoInfo), and
refused with a VideoError that says why. No decoding happens here (actrec.data.decoding reads frames).
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass
from pathlib import Path

from actrec.data.listing import walk
from actrec.errors import ActrecError

VIDEO_EXTENSIONS = (".avi", ".mp4", ".mkv", ".webm", ".mov", ".mpg", ".mpeg", ".m4v")
FRAME_EXTENSIONS = (".jpg", ".jpeg", ".png")


class VideoError(ActrecError):
    """A video that cannot be opened or decoded; the message says why."""


@dataclass(frozen=True)
class VideoInfo:
    frames: int
    fps: float
    width: int
    height: int


def natural_key(name: str) -> list:
    """Sort key reading digit runs as numbers: frame 2 before frame 10, whether or not names are zero-padded."""
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", name)]


def _frame_names(names: list[str]) -> list[str]:
    """The frame images among a folder's file names, in name order; MMAction2 writes optical flow
    (flow_x_/flow_y_) beside its RGB frames (img_), so where img_ frames exist only they count."""
    images = [n for n in names if Path(n).suffix.lower() in FRAME_EXTENSIONS and not n.startswith(".")]
    rgb = [n for n in images if n.lower().startswith("img_")]
    return sorted(rgb or images, key=natural_key)


def frame_files(folder: Path) -> list[Path]:
    with os.scandir(folder) as entries:
        return [folder / n for n in _frame_names([e.name for e in entries if e.is_file()])]


def is_frame_folder(path: str | Path) -> bool:
    """A folder holding JPEG/PNG frames directly: one clip."""
    path = Path(path)
    return path.is_dir() and bool(frame_files(path))


def find_clips(folder: Path) -> list[Path]:
    """Every clip under `folder`, sorted: video files, and folders of frames below it (each one clip,
    not searched further). Symbolic links to folders are followed, as datasets are often assembled from links,
    except one back to a folder the walk is inside (a loop)."""
    found: list[Path] = []
    for dirpath, dirnames, filenames in walk(folder):
        here = Path(dirpath)
        if here != folder and _frame_names(filenames):
            found.append(here)
            dirnames.clear()
            continue
        videos = [here / f for f in filenames if Path(f).suffix.lower() in VIDEO_EXTENSIONS]
        found += [v for v in videos if v.is_file() or v.is_symlink()]  # a looping link: a clip probing reports
    return sorted(found)


def clip_stem(clip_id: str) -> str:
    """A clip's name without a video extension (a frame folder's name has none; other dots stay)."""
    name = Path(clip_id).name
    return name[: -len(Path(name).suffix)] if Path(name).suffix.lower() in VIDEO_EXTENSIONS else name


def fingerprint(path: str | Path, block: int = 1 << 16) -> str:
    """Content identity of a clip: a video's size and a hash of its head and tail (cheap on large files);
    a frame folder's frame names and sizes and the heads of its first, middle and last frames.

    The clip table records it, so a changed clip changes the table, and the feature cache is
    keyed on it rather than on names, so moving or re-listing a dataset reuses features.
    """
    path = Path(path)
    if path.is_dir():
        files = frame_files(path)
        digest = hashlib.sha1(b"frames")
        for f in files:
            digest.update(f"{f.name}:{f.stat().st_size};".encode())
        for f in dict.fromkeys(files[i] for i in (0, len(files) // 2, -1)) if files else ():
            with f.open("rb") as handle:
                digest.update(handle.read(block))
        return digest.hexdigest()[:20]
    size = path.stat().st_size
    digest = hashlib.sha1(str(size).encode())
    with path.open("rb") as handle:
        digest.update(handle.read(block))
        if size > block:
            handle.seek(max(block, size - block))
            digest.update(handle.read(block))
    return digest.hexdigest()[:20]
