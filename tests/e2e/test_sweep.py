"""Sweeps as docs/experiments.md shows them: queue a grid of heads with `dvc exp run --queue -S`, run the queue,
and compare with `dvc exp show` — in a fresh copy of the repo whose tiny demo `dvc repro` ran (conftest's
`demo_repo`)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from tests.helpers import run_command, stages_run


def _experiments(shown: list[dict]) -> dict[str, dict]:
    """name → data of every experiment in `dvc exp show --json` output."""
    return {rev["name"]: rev["data"] for row in shown for exp in row.get("experiments") or [] for rev in exp["revs"]}


@pytest.mark.slow
def test_queued_sweep_over_heads(demo_repo: Path) -> None:
    repo = demo_repo
    queued = run_command(["dvc", "exp", "run", "--queue", "-S", "model.head=lstm,gru"], repo)
    assert queued.count("Queued experiment") == 2, queued
    try:
        run_command(["dvc", "queue", "start", "-j", "2"], repo)
        deadline = time.monotonic() + 600
        while any(word in (status := run_command(["dvc", "queue", "status"], repo)) for word in ("Queued", "Running")):
            assert time.monotonic() < deadline, status
            time.sleep(2)
    finally:
        run_command(["dvc", "queue", "stop"], repo)
    assert status.count("Success") == 2, status

    runs = _experiments(json.loads(run_command(["dvc", "exp", "show", "--json"], repo)))
    heads = {data["params"]["params.yaml"]["data"]["model"]["head"]: data for data in runs.values()}
    assert sorted(heads) == ["gru", "lstm"], runs.keys()
    for name in runs:  # the params check first, then only the stages that read model.*: features come from the cache
        log = run_command(["dvc", "queue", "logs", name], repo)
        assert stages_run(log) == {"params", "train", "crossval", "evaluate"}, log
    for head, data in heads.items():
        metrics = data["metrics"]["reports/scores/test.json"]["data"]
        assert 0 <= metrics["top1"] <= metrics["top5"] <= 1 and 0 <= metrics["probe_top1"] <= 1
        assert 0 <= data["metrics"]["reports/scores/choice.json"]["data"][f"val_{head}"] <= 1
