"""Datasets on disk: where each layout keeps its videos, classes and groups, scanned into a clip table.

The clip table is the pipeline's unit of bookkeeping: one row per video with columns
clip_id (path relative to the video root, as the official split lists write it), path, label,
group, and after probing frames, fps, width, height, readable and reason.
"""

from __future__ import annotations

import difflib
import logging
import os
import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pandas as pd

from actrec.data import kinetics, lists, ntu, sthv2
from actrec.data.clips import FRAME_EXTENSIONS, VIDEO_EXTENSIONS, VideoError, clip_stem, find_clips, fingerprint
from actrec.data.decoding import DEFAULT_FRAME_RATE, video_info
from actrec.data.ntu_skeleton import SKELETON_SUFFIX, skeleton_info
from actrec.errors import ActrecError
from actrec.params import DatasetParams
from actrec.progress import progress

logger = logging.getLogger(__name__)

UCF_GROUP = r"_g(\d+)_c\d+"
NOT_ON_DISK = "not on disk (listed in the annotations)"
HMDB_SPLITS_DIR = "testTrainMulti_7030_splits"
UCF_SPLITS_DIR = "ucfTrainTestlist"


class DatasetError(ActrecError):
    """The dataset root or its selection cannot give a usable clip table."""


def video_root(params: DatasetParams) -> Path:
    """The folder whose sub-folders are the classes."""
    root = Path(params.root)
    if not root.is_dir():
        raise DatasetError(
            f"dataset.root {str(root)!r} does not exist or is not a folder (dataset.name is {params.name!r})"
        )
    if params.name == "ucf101" and (root / "UCF-101").is_dir():
        return root / "UCF-101"
    return root


def splits_dir(params: DatasetParams) -> Path | None:
    """Where the official split lists are, if this dataset has them and they are present."""
    if params.splits_dir:
        path = Path(params.splits_dir)
        if not path.is_dir():
            raise DatasetError(f"dataset.splits_dir {str(path)!r} does not exist")
        return path
    name = {"ucf101": UCF_SPLITS_DIR, "hmdb51": HMDB_SPLITS_DIR}.get(params.name)
    if name is None:
        return None
    for candidate in (Path(params.root) / name, Path(params.root).parent / name):
        if candidate.is_dir():
            return candidate
    return None


def group_of(clip_id: str, params: DatasetParams) -> str:
    """The group a clip belongs to: clips of one group come from one source and stay in one part."""
    stem = clip_stem(clip_id)
    if params.name == "ucf101":
        match = re.search(UCF_GROUP, stem)
        return f"g{int(match.group(1)):02d}" if match else stem
    if params.name == "hmdb51":
        # HMDB names clips <source video>_<n>; clips cut from one source video form a group.
        return re.sub(r"_\d+$", "", stem)
    if params.group_pattern:
        match = re.search(params.group_pattern, stem)
        if match:
            return f"g{int(match.group(1)):02d}" if match.group(1).isdigit() else match.group(1)
    return clip_id


def scan(params: DatasetParams, files: str = "videos") -> pd.DataFrame:
    """List every video under the dataset root as (clip_id, path, label, group), classes sorted.

    Kinetics, Something-Something and annotation lists name their clips in annotation files instead
    (data/kinetics.py, data/sthv2.py, data/lists.py): the table then also has every annotated clip that
    is not on disk, which probing marks as missing. NTU names its clips by sample (data/ntu.py); with
    `files` "skeletons" (names.clip_files) the clips are its .skeleton files, and those the published lists
    name as missing skeletons stay in the table with that reason, as probing leaves them.
    """
    root = video_root(params)
    lists_dir = Path(params.splits_dir) if params.splits_dir else None
    if params.name == "ntu":
        table = ntu.scan(root, files == "skeletons", [lists_dir] if lists_dir else [root, root.parent])
        table["reason"] = table.pop("missing_skeleton").map({True: ntu.MISSING_SKELETON, False: ""})
        return table
    kinetics_dirs = ", ".join(f"{d}/" for ds in kinetics.VIDEO_DIRS.values() for d in ds)
    annotated = {
        "kinetics": (lambda: kinetics.scan(root, lists_dir), "the Kinetics annotations", f"in {kinetics_dirs}"),
        "sthv2": (lambda: sthv2.scan(root, lists_dir), "the Something-Something annotations", "as <id>.webm"),
        "list": (lambda: lists.scan(root, params.lists, params.class_names), "dataset.lists", "beside the list or"),
    }
    if params.name in annotated:
        read, source, where = annotated[params.name]
        table = read()
        gone = int((~table["on_disk"]).sum())
        if gone == len(table):
            raise DatasetError(f"none of the {len(table)} clips {source} name is on disk (looked {where} under {root})")
        if gone:
            logger.warning(
                "%d of the %d clips %s name are not on disk (listed as missing in the unreadable report)",
                gone,
                len(table),
                source,
            )
        if "group" not in table:
            table["group"] = None
        ungrouped = table["group"].isna()
        table.loc[ungrouped, "group"] = [group_of(c, params) for c in table.loc[ungrouped, "clip_id"]]
        return table.drop(columns="on_disk")
    skip = {UCF_SPLITS_DIR, HMDB_SPLITS_DIR}
    rows, empty = [], []
    for class_dir in sorted(
        (d for d in root.iterdir() if d.is_dir() and d.name not in skip), key=lambda d: d.name.lower()
    ):
        videos = find_clips(class_dir)
        if not videos:
            empty.append(class_dir.name)
        for path in videos:
            clip_id = path.relative_to(root).as_posix()
            rows.append(
                {"clip_id": clip_id, "path": str(path), "label": class_dir.name, "group": group_of(clip_id, params)}
            )
    if not rows:
        raise DatasetError(
            f"no videos ({', '.join(VIDEO_EXTENSIONS)}) or folders of frames ({', '.join(FRAME_EXTENSIONS)}) "
            f"in class folders under {root}"
        )
    if empty:
        logger.warning("skipping %d class folder(s) without videos under %s: %s", len(empty), root, ", ".join(empty))
    return pd.DataFrame(rows)


def read_table(path: Path, made_by: str) -> pd.DataFrame:
    """A clip table an earlier stage wrote, or a clear error naming the stage to run first."""
    if not path.is_file():
        raise DatasetError(f"{path} not found; run the {made_by} stage first (dvc repro runs every stage)")
    return pd.read_csv(path, keep_default_na=False)


def select_classes(table: pd.DataFrame, classes: str | int | list[str]) -> list[str]:
    """Resolve dataset.classes ("all", first N, or names) against the classes present."""
    present = sorted(table["label"].unique(), key=str.lower)
    if classes == "all":
        return present
    if isinstance(classes, int):
        if classes > len(present):
            logger.warning("dataset.classes asks for %d classes; only %d are present", classes, len(present))
        return present[:classes]
    by_lower = {c.lower(): c for c in present}
    missing = [c for c in classes if c.lower() not in by_lower]
    if missing:
        hints = {c: difflib.get_close_matches(c, present, n=1) for c in missing}
        said = ", ".join(f"{c!r}" + (f" (did you mean {h[0]!r}?)" if h else "") for c, h in hints.items())
        raise DatasetError(f"dataset.classes names classes without videos under the dataset root: {said}")
    return [by_lower[c.lower()] for c in classes]


def read_video_info(table: pd.DataFrame, workers: int = 4, frame_rate: float = DEFAULT_FRAME_RATE) -> pd.DataFrame:
    """Add fingerprint, frames, fps, width, height, readable and reason; unreadable clips stay, marked.

    A folder of frames has the fps `frame_rate` (dataset.frame_rate). A clip the scan already gave a
    reason to skip (a `reason` column) is not opened. NTU's .skeleton files are probed for their frames
    as videos are.
    """

    failed = {"fingerprint": "", "frames": 0, "fps": 0.0, "width": 0, "height": 0, "readable": False}
    skips = table["reason"].tolist() if "reason" in table else [""] * len(table)
    table = table.drop(columns="reason", errors="ignore")

    def one(path: str, skip: str) -> dict:
        if skip:
            return {**failed, "reason": skip}
        try:
            os.stat(path)  # through links: one that leads nowhere or round in a loop fails here, with its reason
        except OSError as err:
            missing = isinstance(err, FileNotFoundError) and not Path(path).is_symlink()  # listed, not downloaded
            return {**failed, "reason": NOT_ON_DISK if missing else f"cannot read: {err.strerror or err}"}
        try:
            info = skeleton_info(path) if path.endswith(SKELETON_SUFFIX) else video_info(path, frame_rate)
            key = fingerprint(path)
        except (VideoError, OSError) as err:
            reason = str(err) if isinstance(err, VideoError) else f"cannot read: {err.strerror or err}"
        except Exception as err:  # a decoder bug on one odd file must not end the run
            reason = f"unexpected {type(err).__name__}: {err}"
        else:
            return {
                "fingerprint": key,
                "frames": info.frames,
                "fps": round(info.fps, 3),
                "width": info.width,
                "height": info.height,
                "readable": True,
                "reason": "",
            }
        return {**failed, "reason": reason}

    with ThreadPoolExecutor(max_workers=workers) as pool:
        found = pool.map(one, table["path"], skips)
        results = list(progress(found, total=len(table), desc="probe", unit="clip"))
    return pd.concat([table.reset_index(drop=True), pd.DataFrame(results)], axis=1)


def limit_per_class(table: pd.DataFrame, max_clips: int | None, seed: int) -> pd.DataFrame:
    """At most max_clips readable clips per class, drawn with the seed; unreadable rows stay listed."""
    if max_clips is None:
        return table
    readable = table[table["readable"]]
    kept = readable.groupby("label", group_keys=False).apply(
        lambda g: g.sample(n=min(len(g), max_clips), random_state=seed)
    )
    return table[~table["readable"] | table.index.isin(kept.index)]


def drop_empty_classes(table: pd.DataFrame, classes: list[str], params: DatasetParams) -> list[str]:
    """The classes with at least one readable clip; fails if a class named in dataset.classes has none."""
    empty = [c for c in classes if not table.loc[table["label"] == c, "readable"].any()]
    if empty:
        first = table[~table["readable"]].groupby("label").first()
        said = ", ".join(f"{c} (e.g. {first.at[c, 'clip_id']}: {first.at[c, 'reason']})" for c in empty)
        if isinstance(params.classes, list):
            raise DatasetError(f"no readable clips in class(es) named by dataset.classes: {said}")
        logger.warning("dropping class(es) without readable clips (listed in the unreadable report): %s", said)
    kept = [c for c in classes if c not in empty]
    if len(kept) < 2:
        raise DatasetError(
            f"{len(kept)} class(es) with readable clips under {params.root} "
            f"({', '.join(kept) or 'none'}); telling actions apart needs at least 2"
        )
    return kept
