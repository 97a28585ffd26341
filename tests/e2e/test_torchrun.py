"""torchrun: two extraction processes (gloo, CPU) give the same feature file as one process, and two
training processes the same model."""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

from benchmarks.bench_train import write_feature_file
from tests.helpers import call_stage, class_folders, run_stage, tiny_project


def _read(path: Path) -> dict:
    with h5py.File(path) as f:
        return {k: f[k][:] for k in ("features", "frame_indices", "labels", "clip_ids")}


def test_torchrun_two_processes_match_one(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    class_folders(tmp_path / "videos", classes=("left", "right"), clips=2, frames=12)
    tiny_project(tmp_path, "videos", extract={"cache_dir": "cache-torchrun"})
    monkeypatch.chdir(tmp_path)
    for stage in ("subset", "split"):
        call_stage(stage)

    one_thread = {"OMP_NUM_THREADS": "1"}
    log = run_stage(
        "extract", tmp_path, launcher=("-m", "torch.distributed.run", "--nproc-per-node", "2"), env=one_thread
    ).stderr
    assert "on rank 0 of 2" in log and "on rank 1 of 2" in log, log[-2000:]
    shards = list((tmp_path / "cache-torchrun").rglob("shard-*.h5"))
    assert {s.name[:9] for s in shards} == {"shard-r0-", "shard-r1-"}, "each rank wrote its own shards"
    two = _read(tmp_path / "features/features.h5")

    tiny_project(tmp_path, "videos", extract={"cache_dir": "cache-single"})
    run_stage("extract", tmp_path, env=one_thread)
    one = _read(tmp_path / "features/features.h5")

    assert len(two["clip_ids"]) == 16 and len(set(two["clip_ids"])) == 16, "every clip exactly once"
    for key in ("clip_ids", "labels", "frame_indices"):
        np.testing.assert_array_equal(two[key], one[key])
    # Same clips, same network; batches differ in size, so allow float16 rounding.
    np.testing.assert_allclose(
        two["features"].astype(np.float32), one["features"].astype(np.float32), rtol=1e-2, atol=1e-3
    )


def test_torchrun_training_two_ranks_match_one(tmp_path: Path) -> None:
    """2 gloo ranks, each on half of every batch, train the model one process trains: the same recipe and seed
    give the same metrics. Model and frame dropout are off here: each rank draws its own masks for its own
    clips, which no single process draws, so with them the runs agree only as two seeds do."""
    # 80 train clips: whole batches of 8, so no rank's share is padded with a repeated clip
    write_feature_file(tmp_path / "features" / "features.h5", clips=140, frames=4, dim=16, classes=3)
    tiny_project(
        tmp_path,
        extract={"backbone": "resnet50", "weights": "imagenet", "frames": 4, "views": 1, "image_size": 224},
        # one head, early stopping on the validation split: the loop whose figures ranks must share
        model={"head": "lstm", "hidden_size": 16, "dropout": 0.0},
        train={"epochs": 6, "patience": 6, "batch_size": 8, "feature_dropout": 0.0, "choice_folds": 0},
    )
    one_thread = {"OMP_NUM_THREADS": "1"}
    runs = []
    for launcher in (("-m", "torch.distributed.run", "--nproc-per-node", "2"), ()):
        log = run_stage("train", tmp_path, launcher=launcher, env=one_thread).stderr
        summary = json.loads((tmp_path / "reports" / "train" / "metrics.json").read_text())
        curve = (tmp_path / "reports" / "train" / "plots" / "metrics" / "val" / "loss.tsv").read_text()
        weights = torch.load(tmp_path / "models" / "model.pt", weights_only=True)["state_dict"]
        runs.append((log, summary, curve, weights))
    (log, summary, curve, weights), (single_log, single, single_curve, single_weights) = runs
    assert "× 2 ranks" in log and "ranks" not in single_log and "features: in memory" in log
    assert summary["best_epoch"] == single["best_epoch"] and summary["epochs_run"] == single["epochs_run"] == 6
    assert summary["best_val_accuracy"] == pytest.approx(single["best_val_accuracy"], abs=1e-6)
    assert summary["best_val_loss"] == pytest.approx(single["best_val_loss"], rel=1e-3)
    # the head choice's per-clip evidence: every val clip's prediction, gathered from the ranks' shares
    assert summary["validation_accuracy_lstm"] == pytest.approx(summary["best_val_accuracy"], abs=1e-4)
    for key in ("validation_accuracy_lstm", "validation_accuracy_lstm_standard_error"):
        assert summary[key] == single[key], key
    assert len(curve.splitlines()) == len(single_curve.splitlines()) == 7, "rank 0 alone logged, once per epoch"
    for key in single_weights:
        torch.testing.assert_close(weights[key], single_weights[key], rtol=1e-3, atol=1e-4)
