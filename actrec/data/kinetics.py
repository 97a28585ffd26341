"""The Kinetics layout: the official annotation CSVs, and the videos a download managed to fetch.

Kinetics-400/600/700 ship as CSVs (`label,youtube_id,time_start,time_end,split`): train.csv and
validate.csv (or val.csv), in the dataset root or its annotations/ folder. Downloaders save each
clip as `<youtube_id>_<start:06d>_<end:06d>.mp4`, in `<split>/<label>/` folders or flat in
`<split>/`, with the label's spaces kept or turned into underscores. Many videos have left YouTube,
so a listed clip that is not on disk is kept in the clip table as missing (reported and counted by
the subset stage, never fatal). The official train and validation sets serve as train and test.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from actrec.data.clips import VIDEO_EXTENSIONS
from actrec.errors import ActrecError

# official split → annotation file names and video folder names that downloaders use for it
ANNOTATIONS = {"train": ("train.csv",), "val": ("validate.csv", "val.csv", "validation.csv")}
VIDEO_DIRS = {"train": ("train",), "val": ("val", "validate", "validation")}
COLUMNS = ("label", "youtube_id", "time_start", "time_end")


class KineticsError(ActrecError):
    """Annotation files that are missing or not in the official format."""


def clip_name(youtube_id: str, start: float, end: float) -> str:
    """The file stem downloaders give a clip: `<youtube_id>_<start:06d>_<end:06d>`."""
    return f"{youtube_id}_{int(start):06d}_{int(end):06d}"


def annotations(root: Path, lists_dir: Path | None = None) -> dict[str, pd.DataFrame]:
    """The official split's annotation tables, {"train": ..., "val": ...}, from `lists_dir` or the root."""
    folders = [lists_dir] if lists_dir else [root, root / "annotations"]
    found = {}
    for split, names in ANNOTATIONS.items():
        path = next((f / n for f in folders for n in names if (f / n).is_file()), None)
        if path is None:
            continue
        table = pd.read_csv(path, dtype={"youtube_id": str, "label": str})
        missing = [c for c in COLUMNS if c not in table.columns]
        if missing:
            raise KineticsError(
                f"{path} is not a Kinetics annotation file: no {', '.join(missing)} column(s) "
                f"(expected {','.join(COLUMNS)},split)"
            )
        found[split] = table
    if "train" not in found:
        raise KineticsError(
            f"no Kinetics annotations under {' or '.join(map(str, folders))}: expected "
            f"{ANNOTATIONS['train'][0]} and {' or '.join(ANNOTATIONS['val'])}"
        )
    return found


def _videos_on_disk(root: Path, split: str) -> dict[str, Path]:
    """Clip file stem → path, for every video under the split's folder (label folders or flat)."""
    found: dict[str, Path] = {}
    for folder in (root / d for d in VIDEO_DIRS[split]):
        if folder.is_dir():
            for path in sorted(folder.rglob("*")):
                if path.suffix.lower() in VIDEO_EXTENSIONS and path.is_file():
                    found.setdefault(path.stem, path)
    return found


def scan(root: Path, lists_dir: Path | None = None) -> pd.DataFrame:
    """The clip table of every annotated clip: clip_id, path, label, group (the YouTube video),
    listed_split (train or val, as the annotations say) and on_disk."""
    rows = []
    for split, table in annotations(root, lists_dir).items():
        on_disk = _videos_on_disk(root, split)
        for label, youtube_id, start, end in table[list(COLUMNS)].itertuples(index=False):
            name = clip_name(youtube_id, start, end)
            path = on_disk.get(name, root / VIDEO_DIRS[split][0] / label / f"{name}.mp4")
            rows.append(
                {
                    "clip_id": path.relative_to(root).as_posix(),
                    "path": str(path),
                    "label": label,
                    "group": youtube_id,
                    "listed_split": split,
                    "on_disk": name in on_disk,
                }
            )
    return pd.DataFrame(rows)
