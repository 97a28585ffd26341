"""params.yaml validation: one clear error naming the key, before any work."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from actrec.params import Params, ParamsError, load_params, parse_params
from tests.helpers import ROOT


def test_the_shipped_params_are_valid() -> None:
    params = load_params(ROOT / "params.yaml")
    assert params.extract.frames == 16 and params.dataset.name == "demo"


def test_the_code_defaults_are_the_shipped_params() -> None:
    """params.yaml documents every key with its default: the dataclasses' defaults must be those values, and
    every key of the code must be in the file (parse_params fills a key left out with the code's default)."""
    shipped = yaml.safe_load((ROOT / "params.yaml").read_text())
    assert dataclasses.asdict(Params()) == shipped


@pytest.mark.parametrize(
    "data, key, value, allowed",
    [
        # unknown keys (typos)
        ({"train": {"epochs": 10, "learning_rate": 0.1}}, "'train.learning_rate'", "0.1", "allowed keys in train: "),
        ({"extrct": {"frames": 8}}, "'extrct'", "{'frames': 8}", "did you mean 'extract'?"),
        ({"extract": {"frame": 8}}, "'extract.frame'", "8", "did you mean 'frames'?"),
        # wrong types
        ({"extract": {"frames": "16"}}, "extract.frames", "'16'", "expected an integer"),
        ({"extract": {"frames": 16.5}}, "extract.frames", "16.5", "expected an integer"),
        ({"train": {"epochs": True}}, "train.epochs", "True", "expected an integer"),
        ({"train": {"lr": "fast"}}, "train.lr", "'fast'", "expected a finite number"),
        ({"dataset": {"root": 5}}, "dataset.root", "5", "expected a non-empty string"),
        ({"extract": [16]}, "extract", "[16]", "expected a mapping of keys to values"),
        # out of range
        ({"extract": {"frames": 0}}, "extract.frames", "0", "expected an integer >= 1"),
        ({"extract": {"views": -1}}, "extract.views", "-1", "expected an integer >= 1"),
        ({"extract": {"image_size": 16}}, "extract.image_size", "16", "expected an integer >= 32"),
        ({"extract": {"num_workers": -2}}, "extract.num_workers", "-2", "expected an integer >= 0"),
        ({"extract": {"num_workers": "many"}}, "extract.num_workers", "'many'", "expected an integer"),
        ({"dataset": {"max_clips_per_class": 0}}, "dataset.max_clips_per_class", "0", "expected an integer >= 1"),
        ({"train": {"lr": -1}}, "train.lr", "-1", "expected a finite number > 0"),
        # names the pipeline does not know
        # backbones by family, each checked by its own library, with the closest name it knows
        ({"extract": {"backbone": "resnt18"}}, "extract.backbone", "'resnt18'", "did you mean 'resnet18'?"),
        ({"extract": {"backbone": 50}}, "extract.backbone", "50", "expected a non-empty string"),
        (
            {"extract": {"backbone": "timm:vit_tiny_patch16_224.nosuchtag"}},
            "extract.backbone",
            "'timm:vit_tiny_patch16_224.nosuchtag'",
            "did you mean 'timm:vit_tiny_patch16_224",
        ),
        ({"extract": {"backbone": "timm:no_such_net"}}, "extract.backbone", "'timm:no_such_net'", "timm.list_models"),
        (
            {"extract": {"backbone": "open_clip:ViT-B32"}},
            "extract.backbone",
            "'open_clip:ViT-B32'",
            "did you mean 'open_clip:ViT-B-32'?",
        ),
        ({"extract": {"backbone": "hub:resnet18"}}, "extract.backbone", "'hub:resnet18'", "timm:<model>[.<tag>]"),
        (
            {"extract": {"backbone": "resnet50", "weights": "IMAGENET1K_V3"}},
            "extract.weights",
            "'IMAGENET1K_V3'",
            "did you mean 'IMAGENET1K_V2'?",
        ),
        (
            {"extract": {"backbone": "open_clip:ViT-B-32", "weights": "imagenet"}},
            "extract.weights",
            "'imagenet'",
            "expected openai, laion400m_e31",
        ),
        ({"extract": {"backbone": "timm:resnet18", "weights": "a1_in1k"}}, "extract.weights", "'a1_in1k'", "tag in"),
        ({"extract": {"weights": "models/missing.pth"}}, "extract.weights", "'models/missing.pth'", "no such file"),
        ({"extract": {"sampling": "random"}}, "extract.sampling", "'random'", "'uniform' or 'strided'"),
        ({"extract": {"stride": 0}}, "extract.stride", "0", "expected an integer >= 1"),
        ({"extract": {"image_size": "large"}}, "extract.image_size", "'large'", "<= 4096 or 'auto'"),
        ({"model": {"head": "no_such_head"}}, "model.head", "'no_such_head'", "'lstm'"),
        ({"model": {"head": ["probe", "ensemble"]}}, "model.head", "['probe', 'ensemble']", "a temporal head listed"),
        (
            {"dataset": {"name": "sports1m"}},
            "dataset.name",
            "'sports1m'",
            "'demo' or 'ucf101' or 'hmdb51' or 'kinetics' or 'ntu' or 'sthv2' or 'list' or 'folder'",
        ),
        ({"extract": {"device": "tpu"}}, "extract.device", "'tpu'", "'auto' or 'cpu' or 'cuda'"),
        ({"extract": {"weights": "coco"}}, "extract.weights", "'coco'", "imagenet, null or the path of a weights file"),
        ({"dataset": {"classes": "some"}}, "dataset.classes", "'some'", "'all' or an integer >= 1"),
        ({"dataset": {"group_pattern": "_g[0-9]+_"}}, "dataset.group_pattern", "'_g[0-9]+_'", "one capture group"),
        ({"split": {"official": 4}}, "split.official", "4", "an integer >= 1 and <= 3 or null"),
        ({"extract": {"engine": "tensorrt"}}, "extract.engine", "'tensorrt'", "'auto' or 'eager' or 'compile'"),
        (
            {"extract": {"engine": "onnxruntime", "device": "cuda"}},
            "extract.engine",
            "'onnxruntime'",
            "auto, eager or compile with device cuda",
        ),
        (
            {"extract": {"engine": "onnxruntime", "precision": "bf16"}},
            "extract.engine",
            "'onnxruntime'",
            "(onnxruntime runs the backbone on the CPU in fp32)",
        ),
        (
            {"extract": {"engine": "openvino", "precision": "fp16"}},
            "extract.engine",
            "'openvino'",
            "(openvino runs the backbone on the CPU in fp32 or bf16)",
        ),
        ({"extract": {"compile": True}}, "'extract.compile'", "True", "allowed keys in extract: "),
        # fine-tuning
        ({"finetune": {"layers": 0}}, "finetune.layers", "0", "an integer >= 1"),
        ({"finetune": {"layers": []}}, "finetune.layers", "[]", "or a non-empty list of strings"),
        ({"finetune": {"layers": ["layer4", "layer4"]}}, "finetune.layers", "['layer4', 'layer4']", "different"),
        ({"finetune": {"layers": "layer4"}}, "finetune.layers", "'layer4'", "or a non-empty list of strings"),
        ({"finetune": {"freeze_epochs": -1}}, "finetune.freeze_epochs", "-1", "an integer >= 0"),
        ({"finetune": {"accum_steps": 0}}, "finetune.accum_steps", "0", "an integer >= 1"),
        ({"finetune": {"samplings": 0}}, "finetune.samplings", "0", "an integer >= 1"),
        ({"finetune": {"backbone_lr": 0}}, "finetune.backbone_lr", "0", "a finite number > 0"),
        ({"finetune": {"enabled": "yes"}}, "finetune.enabled", "'yes'", "true or false"),
        ({"finetune": {"lr": 0.1}}, "'finetune.lr'", "0.1", "allowed keys in finetune: "),
        # split fractions that do not fit
        ({"split": {"test_fraction": 0}}, "split.test_fraction", "0", "a finite number > 0 and <= 0.9"),
        ({"split": {"test_fraction": 1.5}}, "split.test_fraction", "1.5", "a finite number > 0 and <= 0.9"),
        ({"split": {"val_fraction": -0.1}}, "split.val_fraction", "-0.1", "a finite number >= 0 and <= 0.9"),
        (
            {"split": {"test_fraction": 0.8, "val_fraction": 0.6}},
            "split.val_fraction",
            "0.6",
            "(1 - test_fraction) * (1 - val_fraction) >= 0.1",
        ),
        # split.official per dataset: the NTU protocols there, the numbered lists elsewhere
        ({"dataset": {"name": "ntu"}}, "split.official", "1", "xsub, xview (NTU-60), xset (NTU-120) or null"),
        ({"dataset": {"name": "ntu"}, "split": {"official": "xsetup"}}, "split.official", "'xsetup'", "'xset'"),
        ({"dataset": {"name": "ucf101"}, "split": {"official": "xsub"}}, "split.official", "'xsub'", "1, 2, 3 or null"),
        ({"extract": {"backbone": "skeleton"}}, "extract.backbone", "'skeleton'", "skeletons: ntu"),
        (
            {
                "dataset": {"name": "ntu"},
                "split": {"official": "xsub"},
                "extract": {"backbone": "skeleton"},
                "finetune": {"enabled": True},
            },
            "finetune.enabled",
            "True",
            "no network to tune",
        ),
        # annotation lists
        ({"dataset": {"name": "list"}}, "dataset.lists", "None", "an annotation list file"),
        ({"dataset": {"name": "list", "lists": {"train": "a.txt"}}}, "dataset.lists", "'a.txt'", "train and test"),
        ({"dataset": {"lists": {"train": "a", "tset": "b"}}}, "dataset.lists", "'tset'", "train and test"),
        (
            {"dataset": {"lists": {"train": 3}}},
            "dataset.lists",
            "3",
            "a non-empty string or a mapping to a non-empty string or null",
        ),
    ],
)
def test_each_kind_of_mistake_is_one_line_naming_key_value_and_allowed(
    data: dict, key: str, value: str, allowed: str
) -> None:
    with pytest.raises(ParamsError) as err:
        parse_params(data)
    message = str(err.value)
    assert message.startswith("params: ") and "\n" not in message
    assert key in message and value in message and allowed in message, message


@pytest.mark.parametrize(
    "data",
    [
        {"split": {"test_fraction": 0.5, "val_fraction": 0.5}},
        {"split": {"test_fraction": 0.9, "val_fraction": 0}},
        {"extract": {"frames": 1, "views": 1, "image_size": 32, "num_workers": 0, "weights": None, "batch_size": 1}},
        {"dataset": {"classes": ["A", "B"], "group_pattern": None, "max_clips_per_class": None}},
        {"dataset": {"name": "ntu"}, "split": {"official": "xview"}, "extract": {"backbone": "skeleton"}},
        {"dataset": {"name": "ntu"}, "split": {"official": None}},
        {"dataset": {"name": "list", "lists": {"train": "a", "val": "b", "test": "c"}}, "split": {"official": 1}},
        {"extract": {"backbone": "inception_v3", "weights": "IMAGENET1K_V1", "image_size": "auto"}},
        {"extract": {"backbone": "timm:vit_small_patch14_dinov2.lvd142m", "weights": "imagenet"}},
        {"extract": {"backbone": "open_clip:ViT-B-16", "weights": "laion2b_s34b_b88k", "image_size": 160}},
        {"extract": {"backbone": "efficientnet_lite2", "sampling": "strided", "stride": 1}},
        {"finetune": {"layers": ["layer3", "layer4"], "epochs": 1, "freeze_epochs": 0, "weight_decay": 0}},
    ],
)
def test_values_at_the_edges_are_accepted(data: dict) -> None:
    parse_params(data)


def test_a_local_weights_file_is_accepted_by_its_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "weights").mkdir()
    (tmp_path / "weights" / "resnet18.pth").write_bytes(b"checked when loaded")
    monkeypatch.chdir(tmp_path)  # relative to the project, as the stages run
    assert parse_params({"extract": {"backbone": "resnet18", "weights": "weights/resnet18.pth"}})


@pytest.mark.parametrize(
    "backbone, imported",
    # (timm imports torchvision itself)
    [("efficientnet_lite0", set()), ("resnet18", {"torchvision"}), ("timm:resnet18", {"timm", "torchvision"})],
)
def test_checking_a_backbone_imports_only_the_library_it_names(backbone: str, imported: set[str]) -> None:
    """Every stage checks every param before work: the demo or train stage must not pay seconds for timm."""
    check = (
        "import sys; from actrec.params import parse_params; "
        f"parse_params({{'extract': {{'backbone': {backbone!r}}}}}); "
        "print(sorted(m for m in ('timm', 'open_clip', 'torchvision') if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == str(sorted(imported))


def test_broken_yaml_and_a_missing_file_are_one_line(tmp_path: Path) -> None:
    (tmp_path / "params.yaml").write_text("extract:\n  frames: 16\n  views: [1\n")
    with pytest.raises(ParamsError, match="is not valid YAML") as err:
        load_params(tmp_path / "params.yaml")
    assert "\n" not in str(err.value)
    with pytest.raises(ParamsError, match="not found"):
        load_params(tmp_path / "missing.yaml")


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ({"extract": {"clips": 3}}, "extract.views"),
        ({"split": {"folds": 3}}, "split.crossval_folds"),
        ({"train": {"cv_folds": 3}}, "train.choice_folds"),
    ],
)
def test_a_renamed_key_gets_one_line_naming_its_new_name(old: dict, new: str) -> None:
    with pytest.raises(ParamsError) as err:
        parse_params(old)
    section, key = next(iter(old.items()))
    assert (
        str(err.value)
        == f"params: {section}.{next(iter(key))} is now {new} (same meaning); rename the key in params.yaml"
    )
