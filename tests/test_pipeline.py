"""End to end: `dvc repro` of a tiny demo in a fresh copy of the repo, and the real UCF-101 clips."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

STAGES = ("subset", "split", "extract", "train", "evaluate")


def _env() -> dict:
    # `python` in dvc.yaml must be this interpreter, as it is in the activated .venv.
    return {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}


def _run(args: list[str], cwd: Path) -> str:
    run = subprocess.run(args, cwd=cwd, capture_output=True, text=True, env=_env())
    assert run.returncode == 0, f"{' '.join(args)} failed:\n{run.stdout[-3000:]}\n{run.stderr[-3000:]}"
    return run.stdout + run.stderr


def _edit_params(repo: Path, **sections: dict) -> None:
    params = yaml.safe_load((repo / "params.yaml").read_text())
    for name, values in sections.items():
        params[name].update(values)
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


@pytest.mark.slow
def test_dvc_repro_tiny_demo_then_experiment(repo_copy: Path) -> None:
    repo = repo_copy
    _edit_params(repo, demo={"clips_per_class": 4, "groups": 4, "min_seconds": 1.0, "max_seconds": 1.5},
                 extract={"frames": 8, "image_size": 64, "num_workers": 0}, train={"epochs": 8})
    _run(["git", "commit", "-qam", "tiny demo"], repo)
    _run(["dvc", "repro"], repo)
    metrics = json.loads((repo / "reports/metrics.json").read_text())
    assert metrics["test_clips"] > 0 and 0 <= metrics["top1"] <= 1 and metrics["top5"] >= metrics["top1"]
    for name in ("predictions.csv", "per_class.csv", "train/metrics.json", "split.json", "extract.json"):
        assert (repo / "reports" / name).is_file(), name
    assert json.loads((repo / "reports/split.json").read_text())["groups_in_two_parts"] == 0

    again = _run(["dvc", "repro"], repo)
    assert "Running stage" not in again, again
    assert "up to date" in _run(["dvc", "status"], repo)

    _run(["git", "add", "-A"], repo)
    _run(["git", "commit", "-qm", "baseline run"], repo)
    exp = _run(["dvc", "exp", "run", "-S", "model.hidden_size=16"], repo)
    ran = {stage for stage in (*STAGES, "demo") if f"Running stage '{stage}'" in exp}
    assert ran == {"train", "evaluate"}, exp
    # Changing how extraction runs, not what it computes, re-runs extract alone: every clip comes from
    # the cache into a byte-identical feature file, so nothing downstream runs again.
    exp = _run(["dvc", "exp", "run", "-S", "extract.num_workers=1", "-S", "extract.engine=eager"], repo)
    ran = {stage for stage in (*STAGES, "demo") if f"Running stage '{stage}'" in exp}
    assert ran == {"extract"}, exp
    diff = _run(["dvc", "metrics", "diff", "--json"], repo)
    assert "reports/train/metrics.json" in json.loads(diff), diff
    shown = json.loads(_run(["dvc", "exp", "show", "--json"], repo))
    assert shown, "dvc exp show lists the experiment"


@pytest.mark.slow
def test_real_ucf101_clips_official_split1(ucf_mini: Path, tmp_path: Path) -> None:
    root = Path(__file__).resolve().parents[1]
    params = yaml.safe_load((root / "params.yaml").read_text())
    params["dataset"].update({"name": "ucf101", "root": str(ucf_mini), "group_pattern": None})
    params["split"]["official"] = 1
    params["extract"].update({"backbone": "efficientnet_lite0", "weights": "imagenet",
                              "cache_dir": str(tmp_path / "cache")})
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    for stage in STAGES:
        _run([sys.executable, "-m", f"pipeline.{stage}"], tmp_path)

    split = json.loads((tmp_path / "reports/split.json").read_text())
    assert split["source"] == "official split 1"
    assert split["test"] == 95 and split["train"] + split["val"] == 55
    assert split["listed_missing"] == 13320 - 150 and split["groups_in_two_parts"] == 0
    metrics = json.loads((tmp_path / "reports/metrics.json").read_text())
    print(f"\nUCF-101 mini, official split 1, efficientnet_lite0 + lstm: top-1 {metrics['top1']:.3f}")
    assert metrics["test_clips"] == 95
    assert metrics["top1"] >= 0.85
    per_class = pd.read_csv(tmp_path / "reports/per_class.csv")
    assert per_class["class"].tolist() == ["TrampolineJumping", "UnevenBars", "VolleyballSpiking"]
