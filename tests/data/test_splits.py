"""Official split lists (real UCF-101 lists, HMDB-51 format) and group-aware splits."""

from __future__ import annotations

import pandas as pd
import pytest

from actrec.data.datasets import read_video_info, scan
from actrec.data.splits import SplitError, carve_val, group_split, leakage, read_hmdb51_split, read_ucf101_split
from actrec.params import DatasetParams


def _table(groups: int, per_group: int, classes: int = 3) -> pd.DataFrame:
    rows = [
        {"clip_id": f"C{c}/v_C{c}_g{g:02d}_c{i:02d}.avi", "label": f"C{c}", "group": f"g{g:02d}"}
        for c in range(classes)
        for g in range(1, groups + 1)
        for i in range(per_group)
    ]
    return pd.DataFrame(rows)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_group_split_keeps_groups_whole_and_stratified(seed: int) -> None:
    table = _table(groups=12, per_group=3)
    table["split"] = group_split(table, test_fraction=0.25, val_fraction=0.2, seed=seed)
    assert leakage(table) == 0
    counts = table["split"].value_counts()
    assert set(counts.index) == {"train", "val", "test"}
    assert 0.15 <= counts["test"] / len(table) <= 0.35
    assert all(table.groupby("split")["label"].nunique() == 3), "every class is in every part"


def test_group_split_with_too_few_groups_is_a_clear_error() -> None:
    with pytest.raises(SplitError, match=r"no class has two groups of clips \(C0: 1 group\(s\), 4 clip\(s\), C1"):
        group_split(_table(groups=1, per_group=4), 0.25, 0.2, 0)


def test_classes_with_one_group_keep_it_for_training(caplog) -> None:
    """Holding out a class's only group would leave the model nothing of it to learn from: such groups stay in
    train, the other classes still give up groups, and with none to give there is no validation part."""
    table = pd.concat(
        [
            _table(groups=4, per_group=2, classes=2),
            _table(groups=1, per_group=3, classes=1).assign(label="Lone", group="lone-g1"),
        ],
        ignore_index=True,
    )
    split = group_split(table, 0.25, 0.2, seed=0)
    assert set(split[table["label"] == "Lone"]) == {"train"}
    assert {"test", "val"} <= set(split[table["label"] != "Lone"])
    single = table[table["label"] == "Lone"].assign(split="train")
    assert set(carve_val(single, 0.2, 0)) == {"train"}
    assert "no validation clips" in caplog.text and "Lone: 1 group(s), 3 clip(s)" in caplog.text


def test_leakage_counts_groups_in_two_parts() -> None:
    table = _table(groups=2, per_group=2, classes=1)
    table["split"] = ["train", "test", "test", "test"]
    assert leakage(table) == 1


def test_real_ucf101_lists_over_the_clips_present(ucf_mini) -> None:
    table = read_video_info(scan(DatasetParams(name="ucf101", root=str(ucf_mini))))
    assert len(table) == 150 and table["readable"].all()
    split = read_ucf101_split(ucf_mini / "ucfTrainTestlist", 1, table["clip_id"].tolist())
    assert split.listed == 13320
    assert split.listed_missing == 13320 - 150 and split.unlisted == 0
    parts = pd.Series(split.parts)
    assert (parts == "train").sum() == 55 and (parts == "test").sum() == 95
    groups = table.set_index("clip_id")["group"]
    assert set(groups[parts[parts == "test"].index]) == {f"g{g:02d}" for g in range(1, 8)}


def test_ucf101_lists_crlf_and_case_quirk(tmp_path) -> None:
    lists = tmp_path / "lists"
    lists.mkdir()
    # As the official files: CRLF, and the file name spells the class HandStand, the folder Handstand.
    (lists / "trainlist01.txt").write_bytes(
        b"HandstandPushups/v_HandStandPushups_g08_c01.avi 37\r\nArchery/v_Archery_g09_c01.avi 3\r\n"
    )
    (lists / "testlist01.txt").write_bytes(
        b"HandstandPushups/v_HandStandPushups_g01_c01.avi\r\nArchery/v_Archery_g01_c01.avi\r\n"
    )
    present = [
        "handstandPushups/v_HandStandPushups_g08_c01.avi",
        "HandstandPushups/v_HandStandPushups_g01_c01.avi",
        "Extra/v_Extra_g01_c01.avi",
    ]
    split = read_ucf101_split(lists, 1, present)
    assert split.parts == {present[0]: "train", present[1]: "test"}
    assert (split.listed, split.listed_missing, split.unlisted) == (4, 2, 1)


def test_official_lists_match_folders_of_frames(tmp_path) -> None:
    """MMAction2's rawframes: each clip a folder named as its video was, less the extension."""
    lists = tmp_path / "lists"
    lists.mkdir()
    (lists / "trainlist01.txt").write_bytes(b"Archery/v_Archery_g09_c01.avi 3\r\n")
    (lists / "testlist01.txt").write_bytes(b"Archery/v_Archery_g01_c01.avi\r\n")
    present = ["Archery/v_Archery_g09_c01", "Archery/v_Archery_g01_c01"]
    assert read_ucf101_split(lists, 1, present).parts == {present[0]: "train", present[1]: "test"}
    (tmp_path / "golf_test_split1.txt").write_text("Yards!!!_golf_f_nm_np1_fr_med_0.avi 1 \n")
    hmdb = read_hmdb51_split(tmp_path, 1, ["golf/Yards!!!_golf_f_nm_np1_fr_med_0"])
    assert hmdb.parts == {"golf/Yards!!!_golf_f_nm_np1_fr_med_0": "train"}


def test_hmdb51_split_files(tmp_path) -> None:
    (tmp_path / "brush_hair_test_split1.txt").write_text(
        "a_brush_hair_u_0.avi 1 \nb_brush_hair_u_0.avi 2 \nc_brush_hair_u_0.avi 0 \n"
    )
    present = ["brush_hair/a_brush_hair_u_0.avi", "brush_hair/b_brush_hair_u_0.avi", "brush_hair/c_brush_hair_u_0.avi"]
    split = read_hmdb51_split(tmp_path, 1, present)
    assert split.parts == {present[0]: "train", present[1]: "test"}, "code 0 (unused) is left out"
    with pytest.raises(SplitError):
        read_hmdb51_split(tmp_path, 2, present)


def test_val_is_carved_from_train_by_group() -> None:
    table = _table(groups=10, per_group=2)
    table["split"] = ["test" if g in ("g01", "g02") else "train" for g in table["group"]]
    table["split"] = carve_val(table, 0.25, seed=0)
    assert leakage(table) == 0
    assert set(table.loc[table["group"].isin(["g01", "g02"]), "split"]) == {"test"}, "test is untouched"
    assert (table["split"] == "val").sum() > 0
