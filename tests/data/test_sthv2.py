"""The Something-Something v2 layout on a miniature of real UCF-101 clips re-encoded as WebM, forwards and
backwards: labels, groups and the official train / validation split through the subset and split stages, a
listed clip that is not on disk counted, and annotation files that are not Something-Something's one line each."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from actrec.data.sthv2 import SthV2Error, scan
from tests.helpers import UCF_MINI, call_stage, one_error_line, real_clips, run_stage, sthv2_miniature, tiny_project


@pytest.fixture(scope="module")
def sthv2_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not (UCF_MINI / "UCF-101").is_dir():
        pytest.skip(f"real UCF-101 clips not found at {UCF_MINI}")
    root = tmp_path_factory.mktemp("sthv2")
    clips = real_clips(UCF_MINI, ("UnevenBars", "VolleyballSpiking"), 2)
    sthv2_miniature(root, [c for cs in clips.values() for c in cs], seconds=1.0, size=64)
    return root


def test_the_template_without_brackets_is_the_class(sthv2_root: Path) -> None:
    table = scan(sthv2_root)
    assert len(table) == 8 and table["on_disk"].all()
    assert set(table["label"]) == {"Moving something forwards in time", "Moving something backwards in time"}
    assert table["group"].is_unique, "Something-Something has no groups: each clip is its own"
    assert table.groupby("listed_split").size().to_dict() == {"test": 2, "train": 6}
    assert table["clip_id"].str.match(r"20bn-something-something-v2/\d+\.webm").all()


def test_subset_and_split_stages(sthv2_root: Path, tmp_path: Path, monkeypatch) -> None:
    root = tmp_path / "ssv2"
    root.mkdir()
    for item in sthv2_root.iterdir():
        (root / item.name).symlink_to(item)
    train = json.loads((sthv2_root / "train.json").read_text())
    (root / "train.json").unlink()
    gone = {"id": "999999", "label": "x", "template": train[0]["template"], "placeholders": []}
    (root / "train.json").write_text(json.dumps([*train, gone]))  # listed, never downloaded
    tiny_project(tmp_path, root, dataset={"name": "sthv2"}, split={"official": 1, "val_fraction": 0.3})
    monkeypatch.chdir(tmp_path)
    call_stage("subset")
    call_stage("split")
    subset = json.loads(Path("reports/subset.json").read_text())
    assert (subset["clips"], subset["missing"], subset["classes"]) == (8, 1, 2)
    report = json.loads(Path("reports/split.json").read_text())
    assert report["source"] == "official something-something-v2 train / validation"
    assert (report["test"], report["train"] + report["val"]) == (2, 6) and report["val"] > 0
    split = pd.read_csv("data/split.csv")
    validation = {
        f"20bn-something-something-v2/{e['id']}.webm" for e in json.loads((root / "validation.json").read_text())
    }
    assert set(split.loc[split["split"] == "test", "clip_id"]) == validation


@pytest.mark.parametrize(
    "name, text, named",
    [
        ("train.json", '{"id": "1"}', r"train.json:1: not a JSON list of clips"),
        (
            "train.json",
            '[\n {"id": "1", "template": "Moving [something] forwards in time"},\n {"id": "2"}\n]',
            r"train.json:3: not a Something-Something clip",
        ),
        (
            "train.json",
            '[\n{"id": "1", "template": "Juggling [something]"}]',
            r"train.json:2: clip 1's class 'Juggling something' is not in labels.json",
        ),
        ("validation.json", '[{"id": "1", "template": "x"},,\n{"id": ]', r"validation.json:2: not valid JSON"),
        ("labels.json", '["a", "b"]', r"labels.json:1: not Something-Something's labels.json"),
    ],
)
def test_annotations_that_are_not_something_somethings_are_one_line(
    sthv2_root: Path, tmp_path: Path, name: str, text: str, named: str
) -> None:
    root = tmp_path / "ssv2"
    root.mkdir()
    for item in sthv2_root.iterdir():
        if item.name != name:
            (root / item.name).symlink_to(item)
    (root / name).write_text(text)
    with pytest.raises(SthV2Error, match=named):
        scan(root)
    tiny_project(tmp_path, root, dataset={"name": "sthv2"})
    line = one_error_line(run_stage("subset", tmp_path, check=False))
    assert str(root / name) in line


def test_missing_annotations_and_videos_are_one_line(sthv2_root: Path, tmp_path: Path) -> None:
    (tmp_path / "ssv2").mkdir()
    for name in ("labels.json", "train.json", "validation.json"):
        (tmp_path / "ssv2" / name).symlink_to(sthv2_root / name)
    tiny_project(tmp_path, tmp_path / "ssv2", dataset={"name": "sthv2"})
    assert "none of the 8 clips the Something-Something annotations name is on disk" in one_error_line(
        run_stage("subset", tmp_path, check=False)
    )
    (tmp_path / "ssv2" / "validation.json").unlink()
    assert "no Something-Something v2 validation.json under" in one_error_line(
        run_stage("subset", tmp_path, check=False)
    )
