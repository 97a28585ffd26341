"""Sharing with a team through a DVC remote: one clone runs the pipeline and pushes, a fresh clone pulls and
finds everything up to date, running no stage but the listing of the dataset root (here the remote is a local
folder; S3, GCS or SSH work alike)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.helpers import run_command


@pytest.mark.slow
def test_a_pull_into_a_fresh_clone_runs_nothing(demo_repo: Path, tmp_path: Path) -> None:
    repo, remote, clone = demo_repo, tmp_path / "remote", tmp_path / "clone"  # the tiny demo, run by dvc repro
    run_command(["dvc", "remote", "add", "--default", "team", str(remote)], repo)
    run_command(["dvc", "push", "--run-cache"], repo)
    run_command(["git", "add", "-A"], repo)
    run_command(["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "run and share"], repo)

    run_command(["git", "clone", "-q", str(repo), str(clone)], tmp_path)
    assert not (clone / "features/features.h5").exists()
    run_command(["dvc", "pull"], clone)
    for path in ("features/features.h5", "models/model.pt", "data/split.csv"):
        assert (clone / path).read_bytes() == (repo / path).read_bytes(), path
    # the listing of the dataset root runs every time (a stat of each file), and finds it unchanged
    assert json.loads(run_command(["dvc", "status", "--json"], clone)) == {"files": ["always changed"]}
    ran = [line for line in run_command(["dvc", "repro"], clone).splitlines() if line.startswith("Running stage")]
    assert ran == ["Running stage 'files':"]
