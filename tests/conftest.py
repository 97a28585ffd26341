"""Fixtures the tests share, so that each pipeline runs once a session, not once a test.

- `ucf_mini`: the real UCF-101 clips in ../shared (the test skips where they are absent).
- `repo_copy`: a fresh git + DVC checkout of the project's tracked files, as a user's clone would be.
- `demo_repo`: a copy of one such checkout whose tiny demo (`helpers.tiny_demo`) ran through `dvc repro` once a
  session (`reproduced_demo`), committed: every DVC test starts from that run, each in its own copy.
- `trained_run`: a tiny folder dataset through every stage, in this process: one feature file, one model, its
  reports (read only: tests that change it work on copies).
- `ucf_split`: 2 real UCF-101 classes × 4 clips through subset and split, for the backbone and recipe runs.
"""

from __future__ import annotations

import compileall
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.helpers import (
    ROOT,
    UCF_CLASSES,
    UCF_MINI,
    call_stage,
    class_folders,
    run_command,
    tiny_demo,
    tiny_project,
    ucf_miniature,
)


@pytest.fixture(autouse=True, scope="session")
def engine_trials_in_a_temporary_folder(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """The engine trial's figures go to a folder of the test session (stages run as subprocesses inherit it),
    never to the user's ~/.cache."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("ACTREC_CACHE_DIR", str(tmp_path_factory.mktemp("actrec-cache")))
        yield


@pytest.fixture
def ucf_mini() -> Path:
    if not (UCF_MINI / "UCF-101").is_dir():
        pytest.skip(f"real UCF-101 clips not found at {UCF_MINI} (../shared is absent)")
    return UCF_MINI


def _checkout(dest: Path) -> Path:
    """The project's tracked files (and untracked ones git does not ignore) copied to `dest`, committed to a new
    git repository."""
    listing = ["git", "ls-files", "--cached", "--others", "--exclude-standard"]
    files = subprocess.run(listing, cwd=ROOT, capture_output=True, text=True, check=True).stdout
    for name in files.splitlines():
        if (ROOT / name).is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, dest / name)
    # the bytecode of the packages its stages import (`make test` compiles the checkout's own): DVC runs each stage
    # as a fresh process, which under PYTHONDONTWRITEBYTECODE would compile them again every time
    compileall.compile_dir(dest / "actrec", quiet=1)
    compileall.compile_dir(dest / "pipeline", quiet=1)
    for cmd in (
        ["git", "init", "-q"],
        ["git", "add", "-A"],
        ["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "clone"],
    ):
        subprocess.run(cmd, cwd=dest, check=True)
    return dest


@pytest.fixture
def repo_copy(tmp_path: Path) -> Path:
    """A fresh git + DVC checkout of the project's tracked files, as a user's clone would be."""
    return _checkout(tmp_path / "repo")


@pytest.fixture(scope="session")
def reproduced_demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh checkout whose tiny demo (committed) ran through `dvc repro` once, and was committed as the baseline.
    Read only: `demo_repo` gives each test a copy of it."""
    repo = tiny_demo(_checkout(tmp_path_factory.mktemp("reproduced") / "repo"))
    run_command(["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qam", "tiny demo"], repo)
    run_command(["dvc", "repro"], repo)
    run_command(["git", "add", "-A"], repo)
    run_command(["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "baseline run"], repo)
    return repo


@pytest.fixture
def demo_repo(reproduced_demo: Path, tmp_path: Path) -> Path:
    """A copy of the checkout `dvc repro` ran the tiny demo in (git history, DVC cache and outputs alike), as if
    the user had just run it there."""
    return Path(shutil.copytree(reproduced_demo, tmp_path / "repo", symlinks=True))


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny folder dataset (2 classes, 4 groups of 2 clips) through every stage: a real models/model.pt."""
    run = tmp_path_factory.mktemp("run")
    class_folders(run / "videos", classes=("Dim", "Bright"), clips=2, frames=27)
    tiny_project(
        run,
        "videos",
        split={"official": None, "test_fraction": 0.25, "val_fraction": 0.2},
        model={"head": "lstm", "hidden_size": 16},
        train={"epochs": 3, "patience": 3},
    )
    with pytest.MonkeyPatch.context() as patch:  # in-process: the end-to-end tests run the stages as commands
        patch.chdir(run)
        for stage in ("subset", "split", "extract", "train", "evaluate"):
            call_stage(stage)
    return run


@pytest.fixture(scope="session")
def ucf_split(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """2 real UCF-101 classes × 4 clips (2 test, 1 train, 1 val each under split 1) through subset and split,
    once: (the dataset root, the project holding data/clips.csv and data/split.csv)."""
    if not (UCF_MINI / "UCF-101").is_dir():
        pytest.skip(f"real UCF-101 clips not found at {UCF_MINI} (../shared is absent)")
    root = ucf_miniature(tmp_path_factory.mktemp("ucf") / "root", UCF_CLASSES, (1, 2, 8, 9))
    project = tmp_path_factory.mktemp("split")
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["dataset"].update({"name": "ucf101", "root": str(root)})
    params["split"].update({"official": 1, "val_fraction": 0.5})
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(project)
        for stage in ("subset", "split"):
            call_stage(stage)
    return root, project
