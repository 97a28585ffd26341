"""End to end: `dvc repro` of a tiny demo in a fresh copy of the repo (conftest's `demo_repo`, run once a session),
then experiments, and DVC noticing exactly the stages a code change affects."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.helpers import run_command, stages_run


def _changed(repo: Path) -> set[str]:
    """The stages `dvc status` reports as changed (the listing of the root always is)."""
    return set(json.loads(run_command(["dvc", "status", "--json"], repo))) - {"files"}


@pytest.mark.slow
def test_dvc_repro_tiny_demo_then_experiments(demo_repo: Path) -> None:
    repo = demo_repo
    metrics = json.loads((repo / "reports/metrics.json").read_text())
    assert metrics["test_clips"] > 0 and 0 <= metrics["top1"] <= 1 and metrics["top5"] >= metrics["top1"]
    for name in ("predictions.csv", "per_class.csv", "train/metrics.json", "split.json", "extract.json"):
        assert (repo / "reports" / name).is_file(), name
    assert json.loads((repo / "reports/split.json").read_text())["groups_in_two_parts"] == 0
    assert stages_run(run_command(["dvc", "repro"], repo)) == set()
    assert _changed(repo) == set()
    assert not run_command(["git", "status", "--porcelain"], repo), "the run is committed: experiments start from it"

    # params.yaml changed: its check runs first, then only the stages that read the changed key (test_sweep's
    # queued grid changes model.*). Changing how extraction runs, not what it computes, re-runs extract alone:
    # every clip comes from the cache into a byte-identical feature file, so nothing downstream runs again.
    exp = run_command(["dvc", "exp", "run", "-S", "extract.num_workers=1", "-S", "extract.engine=eager"], repo)
    assert stages_run(exp) == {"params", "extract"}, exp
    shown = json.loads(run_command(["dvc", "metrics", "show", "--json"], repo))
    scores = shown[""]["data"]["reports/scores/test.json"]["data"]
    assert {"top1", "top5", "macro_f1", "probe_top1", "ece"} <= set(scores), shown
    assert json.loads(run_command(["dvc", "exp", "show", "--json"], repo)), "dvc exp show lists the experiments"


@pytest.mark.slow
def test_dvc_status_names_exactly_the_stages_a_code_change_affects(demo_repo: Path) -> None:
    repo = demo_repo
    assert _changed(repo) == set()
    edits = {  # a file → the stages that run it
        "actrec/evaluation/metrics.py": {"evaluate"},
        # predict_proba: validation in training and in the k-fold evaluation, and evaluation
        "actrec/model/proba.py": {"train", "crossval", "evaluate"},
        "actrec/features/store.py": {"finetune", "extract", "train", "crossval", "evaluate"},
        "actrec/model/finetune.py": {"finetune"},
        "actrec/model/selection.py": {"train", "crossval"},
        "actrec/cli.py": set(),  # predicting on new videos is no stage's business
        "actrec/export.py": set(),
    }
    for path, stages in edits.items():
        original = (repo / path).read_text()
        (repo / path).write_text(original + "\n# an edit\n")
        try:
            assert _changed(repo) == stages, path
        finally:
            (repo / path).write_text(original)
    assert _changed(repo) == set()
