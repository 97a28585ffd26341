"""Annotation lists a user brings, over real UCF-101 clips: MMAction2's `path label` lines with label indices and
a class-name file, a CSV with group and split columns, one list per part; paths relative to the list or the
root; listed clips that are not on disk counted; a broken list one line naming the file and line."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from actrec.data.lists import ListError, read_class_names, scan
from tests.helpers import call_stage, one_error_line, real_clips, run_stage, tiny_project

CLASSES = ("TrampolineJumping", "UnevenBars", "VolleyballSpiking")


def _videos(root: Path, ucf: Path, per_class: int = 4) -> list[str]:
    """Links to real clips as `clips/<n>.avi` (names that say nothing of the class); returns the paths."""
    written = []
    for name, clips in real_clips(ucf, CLASSES, per_class).items():
        for i, clip in enumerate(clips):
            path = root / "clips" / f"{name[:3].lower()}{i}.avi"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.symlink_to(clip)
            written.append(path.relative_to(root).as_posix())
    return written


def test_mmaction_lists_with_indices_and_class_names(tmp_path: Path, ucf_mini: Path, monkeypatch) -> None:
    root = tmp_path / "data"
    paths = _videos(root, ucf_mini)
    (root / "annotations").mkdir()
    (root / "annotations" / "classInd.txt").write_text("".join(f"{i + 1} {c}\n" for i, c in enumerate(CLASSES)))
    label = {p: p.split("/")[1][:3] for p in paths}
    index = {c[:3].lower(): i + 1 for i, c in enumerate(CLASSES)}
    train = [p for p in paths if p[-5] in "01"]
    test = [p for p in paths if p[-5] in "23"]
    # train: relative to the list's folder; test: relative to the root, with the frame count rawframe lists carry
    (root / "annotations" / "train.txt").write_text("".join(f"../{p} {index[label[p]]}\n" for p in train))
    (root / "annotations" / "test.txt").write_text(
        "".join(f"{p} 120 {index[label[p]]}\n" for p in test) + "clips/gone.avi 120 1\n"
    )
    lists = {"train": str(root / "annotations/train.txt"), "test": str(root / "annotations/test.txt")}
    tiny_project(
        tmp_path,
        root,
        dataset={"name": "list", "lists": lists, "class_names": str(root / "annotations/classInd.txt")},
        split={"official": 1},
    )
    monkeypatch.chdir(tmp_path)
    call_stage("subset")
    call_stage("split")
    subset = json.loads(Path("reports/subset.json").read_text())
    assert (subset["clips"], subset["missing"], subset["classes"]) == (12, 1, 3)
    split = pd.read_csv("data/split.csv")
    assert sorted(split["label"].unique()) == list(CLASSES)
    assert (split["label"].str[:3].str.lower() == split["clip_id"].str.slice(6, 9)).all(), "clips/<cls><n>.avi"
    assert split["clip_id"].str.startswith("clips/").all(), "ids relative to the root, however the list wrote them"
    report = json.loads(Path("reports/split.json").read_text())
    assert report["source"] == "the annotation lists" and report["test"] == 6
    assert set(split.loc[split["split"] == "test", "path"].map(lambda p: Path(p).name[3])) == {"2", "3"}


def test_a_csv_with_group_and_split_columns(tmp_path: Path, ucf_mini: Path, monkeypatch) -> None:
    root = tmp_path / "data"
    paths = _videos(root, ucf_mini)
    rows = [
        {"path": p, "label": p.split("/")[1][:3], "group": f"g{p[-5]}", "split": "test" if p[-5] == "3" else "train"}
        for p in paths
    ]
    pd.DataFrame(rows).to_csv(root / "all.csv", index=False)
    tiny_project(tmp_path, root, dataset={"name": "list", "lists": str(root / "all.csv")}, split={"official": 1})
    monkeypatch.chdir(tmp_path)
    call_stage("subset")
    call_stage("split")
    split = pd.read_csv("data/split.csv")
    assert set(split["group"]) == {"g0", "g1", "g2", "g3"}
    assert set(split.loc[split["split"] == "test", "group"]) == {"g3"}
    assert split.loc[split["split"] == "val", "group"].nunique() == 1, "val carved from train by whole groups"
    table = scan(root, str(root / "all.csv"), None)
    assert table["listed_split"].value_counts().to_dict() == {"train": 9, "test": 3}


def test_a_list_without_parts_gets_a_group_aware_split(tmp_path: Path, ucf_mini: Path) -> None:
    root = tmp_path / "data"
    paths = _videos(root, ucf_mini)
    (root / "all.txt").write_text("".join(f"{p} {p.split('/')[1][:3]}\n" for p in paths))
    table = scan(root, str(root / "all.txt"), None)
    assert "listed_split" not in table and set(table["label"]) == {"tra", "une", "vol"}


def test_class_names_a_name_a_line_from_index_0(tmp_path: Path) -> None:
    (tmp_path / "names.txt").write_text("jump\nwave\n")
    names = read_class_names(tmp_path / "names.txt")
    assert (names["0"], names["1"], names["wave"]) == ("jump", "wave", "wave")


@pytest.mark.parametrize(
    "text, named",
    [
        ("clips/tra0.avi 0\nclips/tra1.avi\n", "list.txt:2: expected `path label` or `path frames label`"),
        ("clips/tra0.avi 0\n\nclips/tra1.avi 7\n", "list.txt:3: index '7' is not in the class names"),
        ("clips/tra0.avi jump\nclips/tra1.avi run\n", "list.txt:2: class 'run' is not in the class names"),
        ("clips/tra0.avi 0\nclips/tra0.avi 1\n", "list.txt:2: clips/tra0.avi is listed twice (also at "),
        ("nowhere/a.avi 0\nnowhere/b.avi 1\n", "none of the 2 clips dataset.lists name is on disk"),
    ],
)
def test_a_broken_list_is_one_line_naming_file_and_line(tmp_path: Path, ucf_mini: Path, text: str, named: str) -> None:
    root = tmp_path / "data"
    _videos(root, ucf_mini, per_class=2)
    (root / "names.txt").write_text("jump\nwave\n")
    (root / "list.txt").write_text(text)
    lists = str(root / "list.txt")
    tiny_project(tmp_path, root, dataset={"name": "list", "lists": lists, "class_names": str(root / "names.txt")})
    line = one_error_line(run_stage("subset", tmp_path, check=False))
    assert named in line, line


@pytest.mark.parametrize(
    "text, named",
    [
        ("path,label,split\nclips/tra0.avi,jump,train\nclips/tra1.avi,wave,tset\n", "all.csv:3: split 'tset' is not"),
        ("path,label,camera\nclips/tra0.avi,jump,1\n", "all.csv:1: unknown column(s) camera"),
        ("clips/tra0.avi,jump\nclips/tra1.avi\n", "all.csv:2: expected path,label[,group][,split]"),
        ("path,label,split\nclips/tra0.avi,jump,train\nclips/tra1.avi,wave,\n", "all.csv:3: no split, where other"),
    ],
)
def test_a_broken_csv_is_one_line_naming_file_and_line(tmp_path: Path, text: str, named: str) -> None:
    (tmp_path / "all.csv").write_text(text)
    with pytest.raises(ListError) as err:
        scan(tmp_path, str(tmp_path / "all.csv"), None)
    assert named in str(err.value) and "\n" not in str(err.value)
