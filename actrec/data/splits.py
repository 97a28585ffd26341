"""Train/val/test splits: the official UCF-101 and HMDB-51 lists, or a stratified group-aware split.

Whatever the source, clips of one group (UCF-101's gNN, one HMDB source video, a folder pattern)
never straddle two parts: near-duplicate clips of one scene in train and test would inflate
accuracy. `leakage` counts the groups that do, and the split stage records it (it must be 0).
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.model_selection import StratifiedGroupKFold

from actrec.data import ntu
from actrec.data.clips import VIDEO_EXTENSIONS, clip_stem
from actrec.data.datasets import splits_dir
from actrec.errors import ActrecError
from actrec.params import DatasetParams, SplitParams

logger = logging.getLogger(__name__)

PARTS = ("train", "val", "test")


class SplitError(ActrecError):
    """The split lists or fractions cannot give usable parts."""


@dataclass(frozen=True)
class OfficialSplit:
    """Part of each clip present on disk, plus how the lists matched the clips."""

    parts: dict[str, str]
    listed: int
    listed_missing: int
    unlisted: int


def _lines(path: Path, shape: str, code: Callable[[str], bool] | None = None) -> list[list[str]]:
    """The words of each entry of a split list: a clip's file name, then, where `code` checks one, its code. A
    line of another shape, such as the last line of a list cut short, is an error naming the list and line."""
    if not path.is_file():
        raise SplitError(f"split list {path} is missing")
    entries = []
    # The official lists have CRLF line ends; splitlines() handles both.
    for number, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), start=1):
        entry = line.split()
        if not entry:
            continue
        video = Path(entry[0]).suffix.lower() in VIDEO_EXTENSIONS
        if not video or len(entry) != (2 if code else 1) or (code and not code(entry[1])):
            raise SplitError(f"{path}:{number}: expected `{shape}`, found {line.strip()!r} (a list cut short?)")
        entries.append(entry)
    return entries


def _key(clip_id: str) -> str:
    """What a list entry and a clip must share: the path without a video extension (a folder of a clip's
    frames is named as the video was, less its extension), case-insensitive (the lists write e.g.
    HandstandPushups/v_HandStandPushups_g01_c01.avi, and copies of the dataset differ in the case of folder names)."""
    return str(Path(clip_id).parent / clip_stem(clip_id)).lower()


def _match(listed: dict[str, str], clip_ids: list[str]) -> OfficialSplit:
    by_key = {_key(c): c for c in clip_ids}
    parts = {by_key[_key(k)]: part for k, part in listed.items() if _key(k) in by_key}
    return OfficialSplit(
        parts=parts, listed=len(listed), listed_missing=len(listed) - len(parts), unlisted=len(clip_ids) - len(parts)
    )


def read_ucf101_split(lists_dir: Path, split: int, clip_ids: list[str]) -> OfficialSplit:
    """Official UCF-101 split `split` (trainlist0N/testlist0N) over the clips present."""
    listed: dict[str, str] = {}
    for entry in _lines(lists_dir / f"trainlist0{split}.txt", "Class/video.avi class_index", str.isdigit):
        listed[entry[0].replace("\\", "/").lower()] = "train"
    for entry in _lines(lists_dir / f"testlist0{split}.txt", "Class/video.avi"):
        listed[entry[0].replace("\\", "/").lower()] = "test"
    return _match(listed, clip_ids)


def read_hmdb51_split(lists_dir: Path, split: int, clip_ids: list[str]) -> OfficialSplit:
    """Official HMDB-51 split: <class>_test_split<N>.txt lines '<clip> <0|1|2>' (1 train, 2 test)."""
    files = sorted(lists_dir.glob(f"*_test_split{split}.txt"))
    if not files:
        raise SplitError(f"no *_test_split{split}.txt files in {lists_dir}")
    listed: dict[str, str] = {}
    for path in files:
        label = path.name[: -len(f"_test_split{split}.txt")]
        for name, code in _lines(path, "video.avi 0|1|2", lambda word: word in ("0", "1", "2")):
            part = {"1": "train", "2": "test"}.get(code)
            if part:
                listed[f"{label}/{name}".lower()] = part
    return _match(listed, clip_ids)


def _groups_per_class(table: pd.DataFrame) -> pd.Series:
    return table.groupby("label")["group"].nunique()


def _fold(table: pd.DataFrame, fraction: float, seed: int) -> np.ndarray:
    """Boolean mask of about `fraction` of the rows, whole groups only, stratified by label.

    Only groups whose every class has another group to stay behind may be held out, so no class
    loses all its clips to the held-out part; the mask is empty when no such groups are left.
    """
    per_class = _groups_per_class(table)
    spare = set(per_class.index[per_class >= 2])
    movable = table.groupby("group")["label"].agg(lambda labels: set(labels) <= spare)
    candidates = table[table["group"].map(movable)]
    counts = _groups_per_class(candidates)
    n_splits = min(max(2, round(1 / fraction)), candidates["group"].nunique(), int(counts.max()) if len(counts) else 0)
    mask = np.zeros(len(table), dtype=bool)
    if n_splits < 2:
        return mask
    folds = StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "the least populated class has only N members": expected
        _, held = next(folds.split(candidates, candidates["label"], candidates["group"]))
    mask[table.index.get_indexer(candidates.index[held])] = True
    return mask


def _said(table: pd.DataFrame) -> str:
    per_class = table.groupby("label").agg(groups=("group", "nunique"), clips=("group", "size"))
    return ", ".join(f"{c}: {r.groups} group(s), {r.clips} clip(s)" for c, r in per_class.iterrows())


def carve_val(table: pd.DataFrame, val_fraction: float, seed: int) -> pd.Series:
    """Turn about val_fraction of the train rows into val, by whole groups (for early stopping).

    Where no class has a second group in train to give up, there is no validation part: training
    then watches its own accuracy, and the split says so.
    """
    split = table["split"].copy()
    train = table[split == "train"]
    if val_fraction > 0 and not train.empty:
        held = _fold(train, val_fraction, seed)
        if not held.any():
            logger.warning(
                "no validation clips: no class has a second group among its training clips to hold "
                "out (%s); early stopping will watch the training accuracy",
                _said(train),
            )
        split.loc[train.index[held]] = "val"
    return split


def group_split(table: pd.DataFrame, test_fraction: float, val_fraction: float, seed: int) -> pd.Series:
    """Stratified group-aware train/val/test assignment for datasets without official lists."""
    held = _fold(table, test_fraction, seed)
    if not held.any():
        raise SplitError(
            f"cannot hold out test clips by group: no class has two groups of clips ({_said(table)}); "
            f"add videos from other sources, set dataset.group_pattern: null to make each clip its "
            f"own group, or use official split lists"
        )
    split = pd.Series("train", index=table.index)
    split[held] = "test"
    return carve_val(table.assign(split=split), val_fraction, seed + 1)


def leakage(table: pd.DataFrame, kept_apart: tuple[str, ...] | list[str] = PARTS) -> int:
    """Number of groups whose clips fall in more than one of the parts `kept_apart` (the split's record
    says which: NTU's cross-view and cross-setup protocols test the training performers, by design)."""
    table = table[table["split"].isin(kept_apart)]
    return int((table.groupby("group")["split"].nunique() > 1).sum())


def assign_parts(table: pd.DataFrame, dataset: DatasetParams, cfg: SplitParams, seed: int) -> tuple[pd.DataFrame, dict]:
    """The clips that take part, with their split column, and what the split lists said about them.

    UCF-101 and HMDB-51 use their official lists (split.official) when present, NTU its published
    protocols, Kinetics, Something-Something and annotation lists the parts their annotations give,
    with validation carved from train by group where no part is listed as val; any other dataset, or
    split.official: null, gets a stratified group-aware split.
    """
    if dataset.name == "ntu" and cfg.official:
        return _ntu_parts(table, cfg, seed)
    if "listed_split" in table and cfg.official:
        return _annotated_parts(table, dataset.name, cfg, seed)
    lists = splits_dir(dataset) if cfg.official else None
    if lists is None:
        if dataset.name in ("ucf101", "hmdb51") and cfg.official:
            logger.warning(
                "no official split lists found for %s under %s; using a group-aware split", dataset.name, dataset.root
            )
        table = table.copy()
        table["split"] = group_split(table, cfg.test_fraction, cfg.val_fraction, seed)
        return table, {"source": "group-aware"}
    reader = read_ucf101_split if dataset.name == "ucf101" else read_hmdb51_split
    official = reader(lists, cfg.official, table["clip_id"].tolist())
    if not official.parts:
        raise SplitError(
            f"the official split {cfg.official} lists in {lists} have {official.listed} entries and "
            f"none matches any of the {len(table)} clips under {dataset.root}; check dataset.root "
            f"and dataset.splits_dir, or set split.official: null for a group-aware split"
        )
    logger.info(
        "official split %d: %d clips listed, %d of them absent here; %d clips present but not listed (left out)",
        cfg.official,
        official.listed,
        official.listed_missing,
        official.unlisted,
    )
    table = table[table["clip_id"].isin(official.parts)]
    named = f"trainlist0{cfg.official}.txt" if dataset.name == "ucf101" else f"*_test_split{cfg.official}.txt"
    source = f"official split {cfg.official} ({lists / named})"
    table = _listed_parts(table, table["clip_id"].map(official.parts), source, cfg, seed)
    info = {
        "source": f"official split {cfg.official}",
        "listed": official.listed,
        "listed_missing": official.listed_missing,
        "unlisted": official.unlisted,
    }
    return table, info


def classes_missing_a_part(table: pd.DataFrame) -> list[str]:
    """Classes without clips in both train and test: their accuracy cannot be learned or measured."""
    return [c for c, parts in table.groupby("label")["split"].agg(set).items() if not {"train", "test"} <= parts]


ANNOTATED = {  # dataset → what its annotations are called, and how their parts map onto train/val/test
    "kinetics": ("official kinetics train / validate", {"train": "train", "val": "test"}),
    "sthv2": ("official something-something-v2 train / validation", {"train": "train", "test": "test"}),
    "list": ("the annotation lists", {"train": "train", "val": "val", "test": "test"}),
}


def _annotated_parts(table: pd.DataFrame, name: str, cfg: SplitParams, seed: int) -> tuple[pd.DataFrame, dict]:
    """The parts the annotations list. The official Kinetics and Something-Something test sets have no
    public labels, so their validation sets are the test sets, and validation is carved from train."""
    source, parts = ANNOTATED[name]
    return _listed_parts(table, table["listed_split"].map(parts), source, cfg, seed), {"source": source}


def _ntu_parts(table: pd.DataFrame, cfg: SplitParams, seed: int) -> tuple[pd.DataFrame, dict]:
    """NTU's published protocol: cross-subject keeps performers apart; cross-view and cross-setup test the
    training performers from another camera or setup, so only train and val are kept apart by performer."""
    source = f"ntu {ntu.PROTOCOLS[cfg.official]} ({cfg.official})"
    table = _listed_parts(table, ntu.protocol_parts(table, cfg.official), source, cfg, seed)
    return table, {"source": source, "kept_apart": list(PARTS if cfg.official == "xsub" else ("train", "val"))}


def _listed_parts(table: pd.DataFrame, parts: pd.Series, lists: str, cfg: SplitParams, seed: int) -> pd.DataFrame:
    """`table` with the parts its official lists give, validation carved from train by group unless listed."""
    table = table.assign(split=parts)
    for part in ("train", "test"):
        if not (table["split"] == part).any():
            raise SplitError(
                f"{lists}: no {part} clips among the clips present; choose another "
                f"split.official or set it to null for a group-aware split"
            )
    untrained = sorted(set(table["label"]) - set(table.loc[table["split"] == "train", "label"]))
    if untrained:  # a model that never saw a class cannot learn it: the lists are cut short, or clips missing
        raise SplitError(
            f"{lists}: no train clips of {len(untrained)} class(es) among the clips present: {', '.join(untrained)}; "
            f"name the classes to keep in dataset.classes, or set split.official: null for a group-aware split"
        )
    if not (table["split"] == "val").any():
        table["split"] = carve_val(table, cfg.val_fraction, seed)
    return table
