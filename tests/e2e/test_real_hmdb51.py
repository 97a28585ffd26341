"""A nearly empty dataset never crashes a stage: the real HMDB-51 clips in ../shared (official split lists, one
clip a class) go through every stage, with no validation part to carve and a single test clip."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from tests.helpers import ROOT, call_stage, tiny_project

HMDB_MINI = ROOT.parent / "shared" / "data" / "hmdb51-mini"


@pytest.mark.slow
def test_hmdb51_mini_runs_every_stage(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog) -> None:
    if not (HMDB_MINI / "testTrainMulti_7030_splits").is_dir():
        pytest.skip(f"real HMDB-51 clips not found at {HMDB_MINI} (../shared is absent)")
    tiny_project(tmp_path, HMDB_MINI, dataset={"name": "hmdb51"}, split={"official": 1})
    monkeypatch.chdir(tmp_path)
    caplog.set_level(logging.INFO)
    logs = {}
    for stage in ("subset", "split", "extract", "train", "evaluate"):
        caplog.clear()
        call_stage(stage)
        logs[stage] = caplog.text
    split = json.loads((tmp_path / "reports/split.json").read_text())
    assert (split["source"], split["train"], split["val"], split["test"]) == ("official split 1", 4, 0, 1)
    assert "no validation clips: no class has a second group" in logs["split"]
    assert "early stopping watches the training accuracy" in logs["train"]
    metrics = json.loads((tmp_path / "reports/metrics.json").read_text())
    assert metrics["test_clips"] == 1 and metrics["top1_ci95_high"] - metrics["top1_ci95_low"] > 0.7
    assert "linear_probe_top1" in metrics, "four classes to fit the baseline on"
