"""The published systems' recipes (recipes/*.yaml): each one's `dvc exp run` line is the recipe, its params are valid,
and each runs end to end on real UCF-101 clips with its own backbone and head (random init, small clips)."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import h5py
import numpy as np
import pytest
import yaml

from actrec.params import ParamsError
from tests.helpers import ROOT, TINY_UCF, run_pipeline, tiny_ucf_project
from tools.recipe import main

RECIPES = sorted((ROOT / "recipes").glob("*.yaml"))
# The smallest size each recipe's backbone takes (InceptionV3's stem needs 75 px, DINOv2 patches are 14 px)
SMALL = {"inception_v3": 96, "timm:vit_small_patch14_dinov2.lvd142m": 56}


def test_there_is_a_recipe_for_each_seed_system_and_a_modern_one() -> None:
    backbones = {yaml.safe_load(r.read_text())["extract"]["backbone"] for r in RECIPES}
    assert {"inception_v3", "efficientnet_b7", "resnet18", "resnet50"} <= backbones
    assert any(b.startswith(("timm:", "open_clip:")) for b in backbones)


@pytest.mark.parametrize("recipe", RECIPES, ids=lambda p: p.stem)
def test_the_dvc_exp_run_line_in_the_recipe_is_the_recipe(recipe: Path, capsys, monkeypatch) -> None:
    """The line to copy from the recipe's header sets exactly its keys, as tools.recipe prints them (after
    checking the recipe on top of params.yaml)."""
    line = next(x for x in recipe.read_text().splitlines() if x.startswith("# dvc exp run "))
    monkeypatch.chdir(ROOT)
    main([str(recipe)])
    assert shlex.split(line.removeprefix("# dvc exp run ")) == shlex.split(capsys.readouterr().out)


def test_a_recipe_with_a_bad_key_is_one_line(tmp_path: Path, monkeypatch) -> None:
    (tmp_path / "bad.yaml").write_text("extract:\n  backbone: resnet19\n")
    monkeypatch.chdir(ROOT)
    with pytest.raises(ParamsError, match=r"extract.backbone = 'resnet19' is not allowed; did you mean 'resnet18'"):
        main([str(tmp_path / "bad.yaml")])


@pytest.mark.slow
@pytest.mark.parametrize("recipe", RECIPES, ids=lambda p: p.stem)
def test_each_recipe_runs_end_to_end_on_real_clips(recipe: Path, ucf_split, tmp_path: Path) -> None:
    """The recipe's backbone, sampling and head, shrunk (4 frames, small images, 2 epochs), random init."""
    root, split = ucf_split
    sections = yaml.safe_load(recipe.read_text())
    backbone = sections["extract"]["backbone"]
    sections["extract"].update({**TINY_UCF, "image_size": SMALL.get(backbone, 64)})
    report = run_pipeline(tiny_ucf_project(tmp_path / "run", root, split, **sections))
    assert report["backbone"] == backbone and report["videos"] == 8
    summary = json.loads((tmp_path / "run/reports/train/metrics.json").read_text())
    heads = sections["model"]["head"]
    assert summary["head"] in (heads if isinstance(heads, list) else [heads]), summary
    assert json.loads((tmp_path / "run/reports/metrics.json").read_text())["test_clips"] == 4
    with h5py.File(tmp_path / "run/features/features.h5") as f:
        steps = np.diff(f["frame_indices"][:, 0], axis=1)
    if sections["extract"].get("sampling") == "strided":  # consecutive frames a stride apart (none padded here)
        assert (steps == sections["extract"]["stride"]).all(), steps
    else:
        assert (steps > 0).all() and (steps.max(1) - steps.min(1) <= 1).all(), steps  # spread evenly
