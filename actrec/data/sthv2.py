"""The Something-Something v2 layout: labels.json, train.json and validation.json, and `<id>.webm` videos.

Each entry of train.json and validation.json is `{id, label, template, placeholders}`; the class is
the template with its brackets removed ("Pushing [something] from left to right" → "Pushing
something from left to right"), as labels.json names the 174 classes. The official test set has no
public labels, so the validation set serves as the test set and validation is carved from train.
Something-Something has no groups: each clip is its own. Videos are looked up by id anywhere under
the root (the official `20bn-something-something-v2/` folder, or flat); a folder named by the id is
taken as the clip too. A listed clip that is not on disk is kept as missing, as for Kinetics.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from actrec.data.clips import VIDEO_EXTENSIONS
from actrec.errors import ActrecError
from actrec.files import files_under

# What each file is called: the names in the official download, and the prefixed names some tools write.
FILES = {
    "labels": ("labels.json", "something-something-v2-labels.json"),
    "train": ("train.json", "something-something-v2-train.json"),
    "test": ("validation.json", "something-something-v2-validation.json"),
}


class SthV2Error(ActrecError):
    """Annotation files that are missing or not Something-Something v2's."""


def folders(root: Path, lists_dir: Path | None) -> list[Path]:
    """Where the annotation files may be: dataset.splits_dir, else the root or its labels/ or annotations/."""
    return [lists_dir] if lists_dir else [root, root / "labels", root / "annotations"]


def _find(where: list[Path], kind: str) -> Path:
    path = next((f / n for f in where for n in FILES[kind] if (f / n).is_file()), None)
    if path is None:
        raise SthV2Error(
            f"no Something-Something v2 {FILES[kind][0]} under {' or '.join(map(str, where))} "
            f"(expected {', '.join(n[0] for n in FILES.values())})"
        )
    return path


def json_entries(path: Path) -> list[tuple[int, object]]:
    """The items of a JSON array, each with the line it starts on, or one error naming the file and line."""
    text = path.read_text(encoding="utf-8", errors="replace")
    decoder = json.JSONDecoder()
    at = len(text) - len(text.lstrip())
    if not text.startswith("[", at):
        raise SthV2Error(f"{path}:{text.count(chr(10), 0, at) + 1}: not a JSON list of clips (Something-Something's)")
    entries, at = [], at + 1
    while True:
        while at < len(text) and text[at] in " \t\r\n,":
            at += 1
        if text.startswith("]", at):
            return entries
        line = text.count("\n", 0, at) + 1
        try:
            item, at = decoder.raw_decode(text, at)
        except json.JSONDecodeError as err:
            raise SthV2Error(f"{path}:{err.lineno}: not valid JSON ({err.msg})") from err
        entries.append((line, item))


def read_labels(path: Path) -> dict[str, str]:
    """labels.json: class name → index; the lower-cased name maps to the name as written."""
    try:
        labels = json.loads(path.read_text(encoding="utf-8", errors="replace"))
    except json.JSONDecodeError as err:
        raise SthV2Error(f"{path}:{err.lineno}: not valid JSON ({err.msg})") from err
    if not isinstance(labels, dict) or not labels:
        raise SthV2Error(f"{path}:1: not Something-Something's labels.json (a mapping of class name to index)")
    return {name.lower(): name for name in labels}


def _videos(root: Path) -> dict[str, Path]:
    """Video file stem → path under the root (webm first, as the dataset ships)."""
    found: dict[str, Path] = {}
    order = {ext: i for i, ext in enumerate(dict.fromkeys((".webm", *VIDEO_EXTENSIONS)))}
    for path in sorted(files_under(root, tuple(order)), key=lambda p: order[p.suffix.lower()]):
        found.setdefault(path.stem, path)
    return found


def scan(root: Path, lists_dir: Path | None = None) -> pd.DataFrame:
    """The clip table of every clip train.json and validation.json list: clip_id, path, label, group (the
    clip itself), listed_split (train or test) and on_disk."""
    where = folders(root, lists_dir)
    classes = read_labels(_find(where, "labels"))
    videos = _videos(root)
    rows = []
    for split in ("train", "test"):
        path = _find(where, split)
        for line, entry in json_entries(path):
            if not isinstance(entry, dict) or "id" not in entry or not isinstance(entry.get("template"), str):
                raise SthV2Error(
                    f"{path}:{line}: not a Something-Something clip (expected {{id, label, template, placeholders}}, "
                    f"found {json.dumps(entry)[:80]})"
                )
            clip = str(entry["id"])
            label = entry["template"].replace("[", "").replace("]", "")
            if label.lower() not in classes:
                raise SthV2Error(f"{path}:{line}: clip {clip}'s class {label!r} is not in labels.json")
            video = videos.get(clip, root / clip)  # a folder of frames named by the id, if the user has those
            on_disk = clip in videos or video.is_dir()
            rows.append(
                {
                    "clip_id": video.relative_to(root).as_posix() if on_disk else f"{clip}.webm",
                    "path": str(video if on_disk else root / f"{clip}.webm"),
                    "label": classes[label.lower()],
                    "group": clip,
                    "listed_split": split,
                    "on_disk": on_disk,
                }
            )
    return pd.DataFrame(rows)
