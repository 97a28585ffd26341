"""The crossval stage: group k-fold evaluation of the recipe over every clip (split.crossval_folds)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import h5py
import pytest
import yaml

from actrec.params import ParamsError
from tests.helpers import call_stage


def _project(trained_run: Path, tmp_path: Path, folds: int | None) -> Path:
    """The trained run's params and feature file, with model.head listing the BiLSTM and the probe."""
    (tmp_path / "features").mkdir()
    shutil.copy(trained_run / "features/features.h5", tmp_path / "features/features.h5")
    params = yaml.safe_load((trained_run / "params.yaml").read_text())
    params["split"]["crossval_folds"] = folds
    params["model"]["head"] = ["lstm", "probe"]
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    return tmp_path


def test_every_clip_is_tested_once_across_the_folds(trained_run: Path, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(_project(trained_run, tmp_path, folds=2))
    call_stage("crossval")
    report = json.loads(Path("reports/crossval.json").read_text())
    with h5py.File("features/features.h5") as f:
        clips = len(f["labels"])
    assert report["crossval_folds"] == 2 and report["clips"] == clips
    assert sum(fold["test_clips"] for fold in report["per_fold"]) == clips
    assert {fold["head"] for fold in report["per_fold"]} <= {"lstm", "probe"}
    folds_top1 = [fold["top1"] for fold in report["per_fold"]]
    assert report["top1_mean"] == pytest.approx(sum(folds_top1) / 2, abs=1e-4)
    assert report["top1_std"] == pytest.approx(abs(folds_top1[0] - folds_top1[1]) / 2, abs=1e-4)
    assert 0 <= report["linear_probe_top1_mean"] <= 1


def test_without_folds_the_stage_only_says_so(trained_run: Path, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(_project(trained_run, tmp_path, folds=None))
    call_stage("crossval")
    assert json.loads(Path("reports/crossval.json").read_text()) == {"crossval_folds": None}


def test_one_fold_is_refused_naming_the_key(trained_run: Path, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(_project(trained_run, tmp_path, folds=1))
    with pytest.raises(ParamsError, match=r"split\.crossval_folds = 1"):
        call_stage("crossval")
    assert not Path("reports/crossval.json").exists()
