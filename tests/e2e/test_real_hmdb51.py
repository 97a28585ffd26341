"""Nearly empty real datasets: the HMDB-51 clips in ../shared (official lists, one clip a class) stop at the split
with one line naming the class the lists leave untrained; a UCF-101 miniature with one train group a class goes
through every stage, with no validation part to carve and a test clip a class."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from actrec.data.splits import SplitError
from tests.helpers import ROOT, call_stage, tiny_project, ucf_miniature

HMDB_MINI = ROOT.parent / "shared" / "data" / "hmdb51-mini"
UCF_SIX = ROOT.parent / "shared" / "data" / "ucf101-six"


def test_hmdb51_lists_leaving_a_class_untrained_stop_the_split(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    if not (HMDB_MINI / "testTrainMulti_7030_splits").is_dir():
        pytest.skip(f"real HMDB-51 clips not found at {HMDB_MINI} (../shared is absent)")
    tiny_project(tmp_path, HMDB_MINI, dataset={"name": "hmdb51"}, split={"official": 1})
    monkeypatch.chdir(tmp_path)
    call_stage("subset")
    with pytest.raises(SplitError, match=r"no train clips of 1 class\(es\) among the clips present: punch;") as error:
        call_stage("split")
    assert "\n" not in str(error.value) and "dataset.classes" in str(error.value)
    assert not (tmp_path / "data/split.csv").exists() and not (tmp_path / "reports/split.json").exists()


@pytest.mark.slow
def test_one_train_group_a_class_runs_every_stage(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog) -> None:
    if not (UCF_SIX / "ucfTrainTestlist").is_dir():
        pytest.skip(f"real UCF-101 clips not found at {UCF_SIX} (../shared is absent)")
    classes = ("Archery", "BasketballDunk", "HorseRace", "PlayingPiano")
    root = ucf_miniature(tmp_path / "ucf", classes, (1, 8), source=UCF_SIX)  # g01 is tested on, g08 trained on
    run = tiny_project(tmp_path / "run", root, dataset={"name": "ucf101"}, split={"official": 1})
    monkeypatch.chdir(run)
    caplog.set_level(logging.INFO)
    logs = {}
    for stage in ("subset", "split", "extract", "train", "evaluate"):
        caplog.clear()
        call_stage(stage)
        logs[stage] = caplog.text
    split = json.loads((run / "reports/split.json").read_text())
    assert (split["source"], split["train"], split["val"], split["test"]) == ("official split 1", 4, 0, 4)
    assert "no validation clips: no class has a second group" in logs["split"]
    assert "early stopping watches the training accuracy" in logs["train"]
    metrics = json.loads((run / "reports/metrics.json").read_text())
    assert metrics["test_clips"] == 4 and metrics["top1_ci95_high"] - metrics["top1_ci95_low"] > 0.4
    assert "linear_probe_top1" in metrics, "four classes to fit the baseline on"
