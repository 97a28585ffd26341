"""Annotation lists a user brings: MMAction2's `path label` lines, or a CSV `path,label[,group][,split]`.

`dataset.lists` names one list (its split column, if any, gives the parts) or one list per part
{train, test, val}. A line of MMAction2's format is `path label` (video lists) or `path frames
label` (rawframe lists); the label is a class index or name, and `dataset.class_names` names the
classes of index labels (a name a line, line 0 first, or `index name` lines as UCF-101's
classInd.txt). A CSV may start with a header naming its columns. A path is relative to its list's
folder or to the dataset root, whichever holds it; a path may name a folder (of frames). A listed
clip that is not on disk is kept as missing, as for Kinetics. A malformed line, an unknown label or
a clip listed twice is one error naming the file and line.
"""

from __future__ import annotations

import csv
import os
import re
from pathlib import Path

import pandas as pd

from actrec.errors import ActrecError

PARTS = {"train": "train", "val": "val", "validation": "val", "test": "test"}
COLUMNS = ("path", "label", "group", "split")


class ListError(ActrecError):
    """An annotation list or class-name file that cannot be read as one."""


def read_class_names(path: Path) -> dict[str, str]:
    """Class index (as written) → name, and each name (lower-cased) → itself, from a class-name file."""
    if not path.is_file():
        raise ListError(f"dataset.class_names {str(path)!r} does not exist")
    lines = [(n, line.strip()) for n, line in enumerate(_text(path).splitlines(), start=1) if line.strip()]
    if not lines:
        raise ListError(f"{path}:1: no class names in it")
    indexed = all(re.fullmatch(r"\d+\s+\S.*", line) for _, line in lines)
    names: dict[str, str] = {}
    for i, (number, line) in enumerate(lines):
        index, name = line.split(maxsplit=1) if indexed else (str(i), line)
        if name.lower() in names or str(int(index)) in names:
            raise ListError(f"{path}:{number}: class {name!r} or index {index} named twice")
        names[str(int(index))] = name
        names[name.lower()] = name
    return names


def _text(path: Path) -> str:
    return path.read_text(encoding="utf-8-sig", errors="replace")


def _rows(path: Path) -> list[tuple[int, dict[str, str]]]:
    """(line, {path, label[, group][, split]}) per entry of one list file."""
    if not path.is_file():
        raise ListError(f"annotation list {path} does not exist (dataset.lists)")
    entries = []
    if path.suffix.lower() == ".csv":
        reader = csv.reader(_text(path).splitlines())
        columns = list(COLUMNS)
        for row in reader:
            number = reader.line_num
            fields = [f.strip() for f in row]
            if not any(fields):
                continue
            if number == 1 and {"path", "label"} <= {f.lower() for f in fields}:
                columns = [f.lower() for f in fields]
                unknown = sorted(set(columns) - set(COLUMNS))
                if unknown:
                    raise ListError(f"{path}:1: unknown column(s) {', '.join(unknown)}; expected {','.join(COLUMNS)}")
                continue
            if len(fields) < 2 or len(fields) > len(columns) or not fields[0] or not fields[1]:
                raise ListError(
                    f"{path}:{number}: expected {','.join(columns[:2])}[,{'][,'.join(columns[2:])}], found {row}"
                )
            entries.append((number, dict(zip(columns, fields, strict=False))))
        return entries
    for number, line in enumerate(_text(path).splitlines(), start=1):
        words = line.split()
        if not words or words[0].startswith("#"):
            continue
        if len(words) not in (2, 3) or (len(words) == 3 and not words[1].isdigit()):
            raise ListError(f"{path}:{number}: expected `path label` or `path frames label`, found {line.strip()!r}")
        entries.append((number, {"path": words[0], "label": words[-1]}))
    return entries


def _located(written: str, list_dir: Path, root: Path) -> tuple[Path, str, bool]:
    """Where a listed path is (as written if absolute, else beside the list or under the root), its clip id
    (the path relative to the root where it lies under it, else as written) and whether it is there."""
    path = Path(written)
    candidates = [path] if path.is_absolute() else [list_dir / path, root / path]
    found = next((c for c in candidates if c.exists()), None)
    where = Path(os.path.abspath(found if found is not None else candidates[-1]))
    top = Path(os.path.abspath(root))
    clip_id = where.relative_to(top).as_posix() if where.is_relative_to(top) else path.as_posix()
    return where, clip_id, found is not None


def scan(root: Path, lists: str | dict[str, str], class_names: str | None) -> pd.DataFrame:
    """The clip table of every listed clip: clip_id (relative to the root), path, label, group (when the list
    gives one), listed_split (when the lists give parts) and on_disk."""
    names = read_class_names(Path(class_names)) if class_names else None
    files = {None: lists} if isinstance(lists, str) else lists
    rows, seen = [], {}
    for part, name in files.items():
        path = Path(name)
        for number, entry in _rows(path):
            where = f"{path}:{number}"
            label = entry["label"]
            if names is not None:
                key = str(int(label)) if label.isdigit() else label.lower()
                if key not in names:
                    known = "index" if label.isdigit() else "class"
                    raise ListError(f"{where}: {known} {label!r} is not in the class names {class_names}")
                label = names[key]
            listed = part or entry.get("split") or None
            if listed is not None and listed.lower() not in PARTS:
                raise ListError(f"{where}: split {listed!r} is not one of train, val, test")
            video, clip_id, on_disk = _located(entry["path"], path.parent, root)
            if clip_id in seen:
                raise ListError(f"{where}: {clip_id} is listed twice (also at {seen[clip_id]})")
            seen[clip_id] = where
            row = {"clip_id": clip_id, "path": str(video), "label": label, "on_disk": on_disk}
            if entry.get("group"):
                row["group"] = entry["group"]
            if listed is not None:
                row["listed_split"] = PARTS[listed.lower()]
            rows.append(row)
    if not rows:
        raise ListError(f"no clips listed in {', '.join(map(str, files.values()))}")
    table = pd.DataFrame(rows)
    if "listed_split" in table and table["listed_split"].isna().any():
        first = table.index[table["listed_split"].isna()][0]
        raise ListError(f"{seen[table.at[first, 'clip_id']]}: no split, where other lines give one")
    return table
