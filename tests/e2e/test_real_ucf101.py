"""The whole pipeline, default params, on the real UCF-101 clips in ../shared with the official split 1."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import yaml

from tests.helpers import ROOT, run_stage


@pytest.mark.slow
def test_real_ucf101_clips_official_split1(ucf_mini: Path, tmp_path: Path) -> None:
    params = yaml.safe_load((ROOT / "params.yaml").read_text())  # the defaults, on real clips
    params["dataset"].update({"name": "ucf101", "root": str(ucf_mini), "group_pattern": None})
    params["split"]["official"] = 1
    params["extract"].update({"cache_dir": str(tmp_path / "cache")})
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    for stage in ("subset", "split", "extract", "train", "evaluate"):
        run_stage(stage, tmp_path)

    split = json.loads((tmp_path / "reports/split.json").read_text())
    assert split["source"] == "official split 1"
    assert split["test"] == 95 and split["train"] + split["val"] == 55
    assert split["listed_missing"] == 13320 - 150 and split["groups_in_two_parts"] == 0
    # 150 clips x 16 frames: long enough for the engine trial, which reports what it measured and ran the fastest
    choice = json.loads((tmp_path / "reports/extract.json").read_text())["engine_choice"]
    assert choice["chosen_by"] in ("trial", "cached") and choice["trials"], choice
    fastest = max((t for t in choice["trials"] if not t.get("error")), key=lambda t: t["fps"])
    ran = next(t for t in choice["trials"] if (t["engine"], t["precision"]) == (choice["engine"], choice["precision"]))
    assert ran["fps"] >= 0.9 * fastest["fps"] or ran["setup_s"] < fastest["setup_s"], choice
    metrics = json.loads((tmp_path / "reports/metrics.json").read_text())
    print(f"\nUCF-101 mini, official split 1, efficientnet_lite0 + lstm: top-1 {metrics['top1']:.3f}")
    assert metrics["test_clips"] == 95
    assert metrics["top1"] >= 0.85
    per_class = pd.read_csv(tmp_path / "reports/per_class.csv")
    assert per_class["class"].tolist() == ["TrampolineJumping", "UnevenBars", "VolleyballSpiking"]
