"""Sweeps as the README shows them: queue a grid of heads with `dvc exp run --queue -S`, run the queue,
and compare with `dvc exp show` — in a fresh copy of the repo, on a tiny demo."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml


def _run(args: list[str], cwd: Path) -> str:
    # `python` in dvc.yaml must be this interpreter, as it is in the activated .venv.
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    run = subprocess.run(args, cwd=cwd, capture_output=True, text=True, env=env)
    assert run.returncode == 0, f"{' '.join(args)} failed:\n{run.stdout[-3000:]}\n{run.stderr[-3000:]}"
    return run.stdout + run.stderr


def _experiments(shown: list[dict]) -> dict[str, dict]:
    """name → data of every experiment in `dvc exp show --json` output."""
    return {rev["name"]: rev["data"] for row in shown for exp in row.get("experiments") or [] for rev in exp["revs"]}


@pytest.mark.slow
def test_queued_sweep_over_heads(repo_copy: Path) -> None:
    repo = repo_copy
    params = yaml.safe_load((repo / "params.yaml").read_text())
    params["demo"].update(clips_per_class=4, groups=4, min_seconds=1.0, max_seconds=1.5)
    params["extract"].update(frames=4, image_size=64, num_workers=0)
    params["train"].update(epochs=3)
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    _run(["dvc", "repro"], repo)
    _run(["git", "add", "-A"], repo)
    _run(["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "baseline"], repo)

    queued = _run(["dvc", "exp", "run", "--queue", "-S", "model.head=lstm,gru"], repo)
    assert queued.count("Queued experiment") == 2, queued
    try:
        _run(["dvc", "queue", "start"], repo)
        deadline = time.monotonic() + 600
        while any(word in (status := _run(["dvc", "queue", "status"], repo)) for word in ("Queued", "Running")):
            assert time.monotonic() < deadline, status
            time.sleep(2)
    finally:
        _run(["dvc", "queue", "stop"], repo)
    assert status.count("Success") == 2, status

    runs = _experiments(json.loads(_run(["dvc", "exp", "show", "--json"], repo)))
    heads = {data["params"]["params.yaml"]["data"]["model"]["head"]: data for data in runs.values()}
    assert sorted(heads) == ["gru", "lstm"], runs.keys()
    for data in heads.values():
        metrics = data["metrics"]["reports/metrics.json"]["data"]
        assert 0 <= metrics["top1"] <= 1 and metrics["test_clips"] > 0
        assert data["metrics"]["reports/train/metrics.json"]["data"]["epochs_run"] >= 1
