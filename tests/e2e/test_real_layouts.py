"""The whole pipeline on a miniature of each layout built from the real UCF-101 clips in ../shared: NTU RGB+D
(cross-view) and Something-Something v2 (WebM, forwards and backwards) stage by stage, and an annotation list
by `dvc repro` in a fresh copy of the repo."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from tests.helpers import (
    call_stage,
    ntu_miniature,
    real_clips,
    run_command,
    stages_run,
    sthv2_miniature,
    tiny_project,
)

STAGES = ("subset", "split", "extract", "train", "evaluate")
SMALL = {"model": {"head": ["lstm", "probe"], "hidden_size": 16}, "train": {"epochs": 3, "choice_folds": 0}}


def _run(project: Path, dvc: bool = False) -> dict:
    """Every stage in `project`, by `dvc repro` or each stage's main in this process; the metrics."""
    if dvc:
        log = run_command(["dvc", "repro", "evaluate"], project)
        assert set(STAGES) <= stages_run(log), log
    else:
        with pytest.MonkeyPatch.context() as patch:
            patch.chdir(project)
            for stage in STAGES:
                call_stage(stage)
    metrics = json.loads((project / "reports/metrics.json").read_text())
    assert 0 <= metrics["top1"] <= 1 and (project / "models/model.pt").is_file()
    return metrics


@pytest.mark.slow
def test_ntu_cross_view(tmp_path: Path, ucf_mini: Path) -> None:
    ntu_miniature(tmp_path / "ntu", ucf_mini)
    tiny_project(tmp_path, tmp_path / "ntu", dataset={"name": "ntu"}, split={"official": "xview"}, **SMALL)
    metrics = _run(tmp_path)
    predictions = pd.read_csv(tmp_path / "reports/predictions.csv")
    assert metrics["test_clips"] == 4 and predictions["clip_id"].str.contains("C001P").all(), "camera 1 tests"
    assert set(predictions["actual"]) == {"jump up", "throw"}


@pytest.mark.slow
def test_something_something(tmp_path: Path, ucf_mini: Path) -> None:
    clips = real_clips(ucf_mini, ("UnevenBars", "VolleyballSpiking"), 2)
    counts = sthv2_miniature(tmp_path / "ssv2", [c for cs in clips.values() for c in cs], seconds=1.0, size=64)
    project = tiny_project(tmp_path / "run", tmp_path / "ssv2", dataset={"name": "sthv2"}, **SMALL)
    metrics = _run(project)
    assert metrics["test_clips"] == counts["validation"]
    split = json.loads((project / "reports/split.json").read_text())
    assert split["source"] == "official something-something-v2 train / validation"


@pytest.mark.slow
def test_annotation_list_by_dvc_repro(tmp_path: Path, ucf_mini: Path, repo_copy: Path) -> None:
    # groups g01–g04 of each class: g04 tests, the group pattern finds the groups in the file names
    clips = real_clips(ucf_mini, ("TrampolineJumping", "UnevenBars"), 4)
    rows = [
        {"path": str(c), "label": n, "split": "test" if "_g04_" in c.name else "train"}
        for n, cs in clips.items()
        for c in cs
    ]
    (tmp_path / "lists").mkdir()
    pd.DataFrame(rows).to_csv(tmp_path / "lists/clips.csv", index=False)  # absolute paths, outside the root
    lists = {"name": "list", "root": str(tmp_path / "lists"), "lists": str(tmp_path / "lists/clips.csv")}
    tiny_project(repo_copy, dataset=lists, split={"official": 1}, **SMALL)
    metrics = _run(repo_copy, dvc=True)
    assert metrics["test_clips"] == 2
