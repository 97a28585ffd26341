"""params.yaml validation: one clear error naming the key, before any work."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from pipeline.params import ParamsError, load_params, parse_params

ROOT = Path(__file__).resolve().parents[1]


def test_the_shipped_params_are_valid() -> None:
    params = load_params(ROOT / "params.yaml")
    assert params.extract.frames == 16 and params.dataset.name == "demo"


@pytest.mark.parametrize("data, key", [
    ({"extract": {"frames": 0}}, "extract.frames"),
    ({"extract": {"frames": "16"}}, "extract.frames"),
    ({"extract": {"backbone": "vgg16"}}, "extract.backbone"),
    ({"model": {"head": "tcn"}}, "model.head"),
    ({"dataset": {"name": "kinetics"}}, "dataset.name"),
    ({"dataset": {"classes": "some"}}, "dataset.classes"),
    ({"split": {"official": 4}}, "split.official"),
    ({"split": {"test_fraction": 1.5}}, "split.test_fraction"),
    ({"train": {"lr": -1}}, "train.lr"),
    ({"train": {"epochs": True}}, "train.epochs"),
    ({"train": {"epochs": 10, "learning_rate": 0.1}}, "train.learning_rate"),
    ({"extrct": {}}, "extrct"),
])
def test_invalid_values_name_the_key(data: dict, key: str) -> None:
    with pytest.raises(ParamsError) as err:
        parse_params(data)
    assert key in str(err.value)


def test_stage_fails_before_work_with_one_line(tmp_path: Path) -> None:
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["extract"]["frames"] = -3
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    run = subprocess.run([sys.executable, "-m", "pipeline.subset"], cwd=tmp_path, capture_output=True, text=True)
    assert run.returncode == 2
    expected = "error: params: extract.frames = -3 is not allowed; expected a number >= 1"
    assert run.stderr.strip().splitlines() == [expected]
    assert not (tmp_path / "data").exists(), "nothing was written"
