"""The Kinetics layout on a generated miniature in the official CSV format: label folders (with spaces or
underscores) and flat folders, clips gone from YouTube counted and reported, train/validate as train/test."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from actrec.data.kinetics import KineticsError, annotations, clip_name, scan
from tests.helpers import call_stage, tiny_project, write_video

LABELS = ("abseiling", "air drumming", "yoga")


def _miniature(root: Path, flat_val: bool = True) -> dict[str, int]:
    """train.csv (4 clips a class, the last one never downloaded) and validate.csv (2 a class, one missing in
    all), videos as downloaders save them; returns how many clips of each split are on disk."""
    rows = {"train": [], "validate": []}
    on_disk = {"train": 0, "validate": 0}
    for k, label in enumerate(LABELS):
        for split, count in (("train", 4), ("validate", 2)):
            for i in range(count):
                youtube_id, start = f"{split[:2]}{k}{i}-xYz_{k}", 10 * i
                rows[split].append(
                    {
                        "label": label,
                        "youtube_id": youtube_id,
                        "time_start": start,
                        "time_end": start + 10,
                        "split": "train" if split == "train" else "val",
                    }
                )
                if i == count - 1:
                    continue  # gone from YouTube
                name = f"{clip_name(youtube_id, start, start + 10)}.mp4"
                if split == "train":  # label folders, one with the spaces turned into underscores
                    folder = root / "train" / (label.replace(" ", "_") if k == 1 else label)
                else:
                    folder = root / "val" if flat_val else root / "val" / label
                write_video(folder / name, frames=12 + i, seed=10 * k + i, codec="libx264")
                on_disk[split] += 1
    (root / "annotations").mkdir(parents=True)
    for split, table in rows.items():
        pd.DataFrame(table).to_csv(root / "annotations" / f"{split}.csv", index=False)
    return on_disk


def test_the_annotations_decide_labels_groups_and_official_split(tmp_path: Path) -> None:
    on_disk = _miniature(tmp_path)
    table = scan(tmp_path)
    assert len(table) == 3 * (4 + 2) and int(table["on_disk"].sum()) == sum(on_disk.values())
    assert sorted(table["label"].unique()) == sorted(LABELS), "labels as the CSV writes them, spaces included"
    found = table[table["on_disk"]]
    assert set(found["listed_split"]) == {"train", "val"} and found["group"].str.contains("-xYz_").all()
    assert all(Path(p).is_file() for p in found["path"])


def test_files_that_are_not_kinetics_annotations_are_one_clear_error(tmp_path: Path) -> None:
    (tmp_path / "train.csv").write_text("name,class\na,b\n")
    with pytest.raises(KineticsError, match=r"not a Kinetics annotation file: no label, youtube_id"):
        annotations(tmp_path)
    with pytest.raises(KineticsError, match="no Kinetics annotations"):
        annotations(tmp_path / "elsewhere")


@pytest.mark.parametrize("flat_val", [True, False])
def test_subset_and_split_stages_on_the_miniature(tmp_path: Path, monkeypatch, flat_val: bool) -> None:
    root = tmp_path / "kinetics"
    on_disk = _miniature(root, flat_val)
    tiny_project(tmp_path, root, dataset={"name": "kinetics", "group_pattern": None}, split={"official": 1})
    monkeypatch.chdir(tmp_path)
    call_stage("subset")
    call_stage("split")
    counts = json.loads(Path("reports/subset.json").read_text())
    assert (counts["classes"], counts["clips"], counts["missing"]) == (3, sum(on_disk.values()), 3 * 2)
    unreadable = pd.read_csv("reports/unreadable.csv")
    assert (unreadable["reason"] == "not on disk (listed in the annotations)").sum() == 6
    split = pd.read_csv("data/split.csv")
    report = json.loads(Path("reports/split.json").read_text())
    assert report["source"] == "official kinetics train / validate" and report["groups_in_two_parts"] == 0
    assert report["test"] == on_disk["validate"] and report["train"] + report["val"] == on_disk["train"]
    assert set(split.loc[split["split"] == "test", "clip_id"].str.split("/").str[0]) == {"val"}
