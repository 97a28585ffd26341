"""NTU skeletons as the feature source: generated .skeleton files in the official format through subset, split,
extract, train and evaluate, then `actrec predict` on a skeleton file; missing skeletons counted and skipped."""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest

from actrec.data.ntu import ACTIONS, MISSING_LISTS, MISSING_SKELETON
from tests.helpers import actrec, call_stage, raising_hand, tiny_project, write_skeleton

RAISE, LOWER = 23, 43  # A023 hand waving: the hand rising; A043 falling: the same poses in the other order
TRAIN_PERFORMERS, TEST_PERFORMERS = (1, 2, 4, 5), (3, 6)  # cross-subject


def _skeletons(root: Path) -> list[str]:
    """Two samples per performer and action, 40 frames of one body (a second one in replication 2), a file
    without any body and one the published list names; returns the sample names of the good files."""
    folder = root / "nturgb+d_skeletons"
    names = []
    for p in TRAIN_PERFORMERS + TEST_PERFORMERS:
        for action in (RAISE, LOWER):
            for r in (1, 2):
                name = f"S001C001P{p:03d}R{r:03d}A{action:03d}"
                joints = raising_hand(40, rising=action == RAISE, seed=100 * p + 10 * r + action, bodies=r)
                write_skeleton(folder / f"{name}.skeleton", joints)
                names.append(name)
    write_skeleton(folder / "S001C002P001R001A023.skeleton", np.zeros((30, 1, 25, 3)), np.zeros((30, 1), bool))
    write_skeleton(folder / "S001C003P001R001A023.skeleton", raising_hand(30, True, 1))
    (root / MISSING_LISTS[0]).write_text("S001C003P001R001A023\nS017C003P020R002A060\n")
    return names


@pytest.fixture(scope="module")
def skeleton_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    run = tmp_path_factory.mktemp("skeletons")
    _skeletons(run / "ntu")
    tiny_project(
        run,
        run / "ntu",
        dataset={"name": "ntu"},
        split={"official": "xsub", "val_fraction": 0.25},
        extract={"backbone": "skeleton", "frames": 8},
        model={"head": "lstm", "hidden_size": 32},  # the order-aware head alone; the head choice is tested elsewhere
        train={"epochs": 40, "patience": 40, "choice_folds": 0, "batch_size": 4, "lr": 0.003},
    )
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(run)
        for stage in ("subset", "split", "extract", "train", "evaluate"):
            call_stage(stage)
    return run


def test_missing_skeletons_are_counted_and_skipped(skeleton_run: Path) -> None:
    subset = json.loads((skeleton_run / "reports/subset.json").read_text())
    assert (subset["clips"], subset["unreadable"], subset["missing_skeletons"]) == (24, 2, 1)
    unreadable = pd.read_csv(skeleton_run / "reports/unreadable.csv").set_index("clip_id")["reason"]
    assert unreadable["nturgb+d_skeletons/S001C003P001R001A023.skeleton"] == MISSING_SKELETON
    assert "no body in any of its 30 frames" in unreadable["nturgb+d_skeletons/S001C002P001R001A023.skeleton"]


def test_skeleton_features_go_through_train_and_evaluate(skeleton_run: Path) -> None:
    with h5py.File(skeleton_run / "features/features.h5") as f:
        assert f["features"].shape == (24, 1, 8, 150) and f.attrs["backbone"] == "skeleton"
        assert np.abs(f["features"][:, 0, :, 3:6]).max() < 1e-3, "the first body's spine joint is the origin"
    extract = json.loads((skeleton_run / "reports/extract.json").read_text())
    assert (extract["videos"], extract["failed"], extract["engine"]) == (24, 0, "none")
    metrics = json.loads((skeleton_run / "reports/metrics.json").read_text())
    assert metrics["test_clips"] == 2 * 2 * len(TEST_PERFORMERS)
    # the hand rising or falling: the same poses in another order, which the recurrent head reads and the probe
    # on mean and spread over time cannot
    train = json.loads((skeleton_run / "reports/train/metrics.json").read_text())
    print(f"\nskeletons, cross-subject: {metrics['top1']:.3f} top-1 ({train.get('head', '?')})")
    assert metrics["top1"] >= 0.75, "chance is 0.5"


def test_predict_sees_a_skeleton_file_as_evaluation_did(skeleton_run: Path) -> None:
    evaluated = pd.read_csv(skeleton_run / "reports/predictions.csv")
    files = [skeleton_run / "ntu" / c for c in evaluated["clip_id"]]
    done = actrec("predict", *files, "--json", cwd=skeleton_run)
    assert done.returncode == 0, done.stderr
    answers = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    assert [a["prediction"] for a in answers] == evaluated["predicted"].tolist()
    np.testing.assert_allclose([a["probability"] for a in answers], evaluated["confidence"], atol=2e-4)
    assert set(evaluated["actual"]) == {ACTIONS[RAISE], ACTIONS[LOWER]}
