"""The NTU RGB+D layout on miniatures: real UCF-101 clips under NTU's sample names (performers 1 and 3, cameras
1–3) through the subset and split stages under each published protocol, and .skeleton files written in the
official format read into joints."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from actrec.data.clips import VideoError
from actrec.data.ntu import ACTIONS, XSUB_TRAIN, NtuError, protocol_parts, sample_name, scan
from actrec.data.ntu_skeleton import read_skeleton
from actrec.features.sources.skeleton import skeleton_clip, skeleton_vectors
from tests.helpers import (
    call_stage,
    ntu_miniature,
    one_error_line,
    raising_hand,
    run_stage,
    tiny_project,
    write_skeleton,
)


def _stages(tmp_path: Path, ucf: Path, protocol: str, monkeypatch) -> tuple[pd.DataFrame, dict]:
    root = tmp_path / "ntu"
    ntu_miniature(root, ucf)
    tiny_project(tmp_path, root, dataset={"name": "ntu"}, split={"official": protocol})
    monkeypatch.chdir(tmp_path)
    call_stage("subset")
    call_stage("split")
    split = pd.read_csv("data/split.csv")
    names = split["clip_id"].map(sample_name)
    split["performer"] = names.str[9:12].astype(int)
    split["camera"] = names.str[5:8].astype(int)
    return split, json.loads(Path("reports/split.json").read_text())


def test_the_names_give_label_group_and_protocol_fields(tmp_path: Path, ucf_mini: Path) -> None:
    names = ntu_miniature(tmp_path / "ntu", ucf_mini)
    (tmp_path / "ntu" / "nturgb+d_rgb" / "notes_rgb.avi").write_bytes(b"not a sample")  # not an NTU name: skipped
    table = scan(tmp_path / "ntu", skeletons=False, list_folders=[])
    assert sorted(table["clip_id"].map(sample_name)) == sorted(names)
    assert set(table["label"]) == {"jump up", "throw"} and set(table["group"]) == {"P001", "P003"}
    assert (table["label"] == "throw").sum() == 6 and ACTIONS[1] == "drink water" and len(ACTIONS) == 120
    assert ACTIONS[60] == "walking apart from each other" and ACTIONS[120].startswith("finger-guessing game")


def test_cross_subject_trains_performer_1_and_tests_performer_3(tmp_path: Path, ucf_mini: Path, monkeypatch) -> None:
    split, report = _stages(tmp_path, ucf_mini, "xsub", monkeypatch)
    assert 1 in XSUB_TRAIN and 3 not in XSUB_TRAIN
    assert set(split.loc[split["split"] == "test", "performer"]) == {3}
    assert set(split.loc[split["split"] != "test", "performer"]) == {1}
    assert report["source"] == "ntu cross-subject (xsub)" and report["groups_in_two_parts"] == 0
    assert (report["train"], report["val"], report["test"]) == (6, 0, 6), "one training performer: no val to carve"


def test_cross_view_tests_camera_1(tmp_path: Path, ucf_mini: Path, monkeypatch) -> None:
    split, report = _stages(tmp_path, ucf_mini, "xview", monkeypatch)
    assert set(split.loc[split["split"] == "test", "camera"]) == {1}
    assert set(split.loc[split["split"] != "test", "camera"]) == {2, 3}
    assert report["test"] == 4 and report["train"] + report["val"] == 8
    # validation is carved from train by whole performers; the test part sees the training performers by design
    training = split[split["split"] != "test"]
    assert (training.groupby("performer")["split"].nunique() == 1).all() and report["val"] == 4
    assert report["kept_apart"] == ["train", "val"] and report["groups_in_two_parts"] == 0


def test_cross_setup_trains_even_setups(tmp_path: Path, ucf_mini: Path, monkeypatch, caplog) -> None:
    caplog.set_level(logging.WARNING)
    split, _ = _stages(tmp_path, ucf_mini, "xset", monkeypatch)
    setups = split["clip_id"].map(sample_name).str[1:4].astype(int)
    assert set(setups[split["split"] == "test"]) == {1} and set(setups[split["split"] != "test"]) == {2}
    assert "cross-setup is published for NTU-120" in caplog.text


def test_protocols_on_the_published_numbers() -> None:
    table = pd.DataFrame({"performer": [38, 39, 103, 104], "camera": [1, 2, 3, 1], "setup": [17, 18, 31, 32]})
    assert protocol_parts(table, "xsub").tolist() == ["train", "test", "train", "test"]
    assert protocol_parts(table, "xview").tolist() == ["test", "train", "train", "test"]
    assert protocol_parts(table, "xset").tolist() == ["test", "train", "test", "train"]


def test_an_ntu_params_file_with_a_numbered_split_fails_before_work(tmp_path: Path) -> None:
    tiny_project(tmp_path, tmp_path / "absent", dataset={"name": "ntu"}, split={"official": 2})
    line = one_error_line(run_stage("subset", tmp_path, check=False))
    assert "split.official = 2" in line and "xsub, xview (NTU-60), xset (NTU-120)" in line


def test_skeleton_files_read_in_the_official_format(tmp_path: Path) -> None:
    joints = raising_hand(12, rising=True, seed=0, bodies=3)
    present = np.ones((12, 3), dtype=bool)
    present[:4, 1] = False  # the second body comes in late, the third is there once
    present[1:, 2] = False
    present[5, 0] = False  # the first body is lost for a frame
    path = write_skeleton(tmp_path / "S001C001P001R001A023.skeleton", joints, present)
    read = read_skeleton(path)
    assert read.shape == (12, 2, 25, 3)
    np.testing.assert_allclose(read[present[:, 0], 0], joints[present[:, 0], 0], atol=1e-5)
    assert not read[5, 0].any() and not read[:4, 1].any(), "an absent body is zero"
    np.testing.assert_allclose(read[4:, 1], joints[4:, 1], atol=1e-5)  # the two most tracked bodies are kept

    vectors = skeleton_vectors(read).reshape(12, 2, 25, 3)
    assert np.abs(vectors[present[:, 0], 0, 1]).max() < 1e-6, "centred on the first body's middle of the spine"
    np.testing.assert_allclose(vectors[6, 1], joints[6, 1] - joints[6, 0, 1], atol=1e-5)
    np.testing.assert_allclose(vectors[5, 1], joints[5, 1] - joints[4, 0, 1], atol=1e-5)  # the nearest centre
    assert not vectors[:4, 1].any() and not vectors[5, 0].any()
    feats, indices = skeleton_clip(path, frames=4, views=2, seed=7)
    assert feats.shape == (2, 4, 150) and feats.dtype == np.float16
    assert indices[0].tolist() == [1, 4, 7, 10], "sampled as a video of 12 frames is"


@pytest.mark.parametrize(
    "text, named",
    [
        ("3\n1\n72057594037931101 0 1 1 1 1 0 0.1 0.1 2\n25\n0 0 0\n", "cut off at line 6"),
        ("2\n1\n72057594037931101 0 1\n", "line 3: expected a body line of 10 values"),
        ("x\n", "line 1: expected the frame count"),
        ("1\n1\n" + "7 0 1 1 1 1 0 0.1 0.1 2\n24\n", "line 4: 24 joints"),
    ],
)
def test_a_broken_skeleton_file_says_which_line(tmp_path: Path, text: str, named: str) -> None:
    path = tmp_path / "S001C001P001R001A001.skeleton"
    path.write_text(text)
    with pytest.raises(VideoError, match=named):
        read_skeleton(path)


def test_a_broken_missing_skeleton_list_is_one_line(tmp_path: Path) -> None:
    write_skeleton(tmp_path / "S001C001P001R001A001.skeleton", raising_hand(5, True, 0))
    (tmp_path / "NTU_RGBD_samples_with_missing_skeletons.txt").write_text("S001C002P005R002A008\nS001C002P5\n")
    with pytest.raises(NtuError, match=r"missing_skeletons.txt:2: 'S001C002P5' is not an NTU sample name"):
        scan(tmp_path, skeletons=True, list_folders=[tmp_path])
