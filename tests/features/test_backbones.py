"""Backbones by name: each family's model without its classifier (D read from the model), its library's own
preprocessing done on batched uint8 frames, local weights files, and one line when weights are missing."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from actrec.data.decoding import read_clip
from actrec.features.backbones import BackboneError, load_backbone
from actrec.features.backbones.base import file_identity
from tests.helpers import class_folders, one_error_line, run_stage, tiny_project


@pytest.mark.parametrize(
    "name, size", [("efficientnet_lite0", 224), ("efficientnet_lite1", 240), ("efficientnet_lite2", 260)]
)
def test_offline_lite_backbones_load_imagenet_weights_at_their_own_size(name: str, size: int) -> None:
    backbone = load_backbone(name, "imagenet")  # image_size auto: the size each variant was trained at
    frames = torch.randint(0, 256, (2, 180, 320, 3), dtype=torch.uint8)
    images = backbone.preprocess(frames)
    assert images.shape == (2, 3, size, size) and backbone.resize_size == round(size * 256 / 224)
    with torch.inference_mode():
        features = backbone.model(backbone.normalize(images))
    assert features.shape == (2, 1280) and features.abs().sum() > 0
    random = load_backbone(name, None, size)  # the trained weights are really loaded, not left at init
    assert not torch.equal(
        next(iter(random.model.state_dict().values())), next(iter(backbone.model.state_dict().values()))
    )


def _frames(ucf_mini) -> np.ndarray:
    """Four real UCF-101 frames, 320x240."""
    return read_clip(ucf_mini / "UCF-101/UnevenBars/v_UnevenBars_g01_c01.avi", 4)[0]


def _library_transform(name: str):
    """The family's own eval transform, as its library gives it (PIL image → normalised tensor)."""
    if name.startswith("timm:"):
        import timm
        from timm.data import create_transform, resolve_data_config

        return create_transform(
            **resolve_data_config(pretrained_cfg=timm.models.get_pretrained_cfg(name[5:]).to_dict())
        )
    if name.startswith("open_clip:"):
        import open_clip

        return open_clip.create_model_and_transforms(name[10:])[2]  # the eval preprocess
    import torchvision.models

    return torchvision.models.get_model_weights(name).DEFAULT.transforms()


@pytest.mark.parametrize(
    "name, dim, size",
    [
        ("resnet18", 512, 224),  # bilinear, resize 256
        ("inception_v3", 2048, 299),  # resize 342
        ("efficientnet_b0", 1280, 224),  # bicubic
        ("timm:vit_tiny_patch16_224", 192, 224),  # bicubic, crop_pct 0.9, mean = std = 0.5
        ("open_clip:ViT-B-32", 512, 224),  # bicubic, no crop margin, CLIP's mean/std
    ],
)
def test_preprocessing_on_batched_uint8_frames_is_the_librarys_on_pil_images(ucf_mini, name, dim, size) -> None:
    """Each family's own transform, frame by frame on PIL images, against ours on the whole uint8 batch: the
    same images up to interpolation rounding (PIL and torch resample a little differently)."""
    frames = _frames(ucf_mini)
    backbone = load_backbone(name, None)
    assert backbone.feature_dim == dim and backbone.image_size == size
    theirs = torch.stack([_library_transform(name)(Image.fromarray(f)) for f in frames])
    ours = backbone.normalize(backbone.preprocess(torch.from_numpy(frames)))
    assert ours.shape == theirs.shape == (4, 3, size, size)
    step = 1 / 255 / min(backbone.std)  # one uint8 level, normalised
    error = (ours - theirs).abs()
    differ = (error > step / 2).float().mean()
    print(f"\n{name}: at most {error.max() / step:.1f} uint8 levels apart, {differ:.2%} of the values differ")
    assert error.max() <= 2 * step + 1e-5 and differ < 0.01


def _library_model(name: str) -> tuple[torch.nn.Module, torch.nn.Module]:
    """A freshly initialised model as the family's library builds it (another seed than actrec's random init),
    and the part of it that gives the features."""
    torch.manual_seed(1)
    if name.startswith("timm:"):
        import timm

        model = timm.create_model(name[5:])
        features = timm.create_model(name[5:], num_classes=0)
        features.load_state_dict({k: v for k, v in model.state_dict().items() if not k.startswith("head.")})
        return model, features
    if name.startswith("open_clip:"):
        import open_clip

        model = open_clip.create_model(name[10:])
        return model, model.visual
    import torchvision.models

    model = torchvision.models.get_model(name)
    features = torchvision.models.get_model(name)
    features.load_state_dict(model.state_dict())
    features.fc = torch.nn.Identity()
    return model, features


@pytest.mark.parametrize(
    "name, suffix",
    [("resnet18", ".pth"), ("timm:vit_tiny_patch16_224", ".safetensors"), ("open_clip:ViT-S-32", ".pt")],
)
def test_a_local_weights_file_gives_the_features_of_the_model_saved_in_it(ucf_mini, tmp_path, name, suffix) -> None:
    """Clusters without internet keep weights files: the whole model's state dict as its library saves it
    (classifier included; for CLIP the text tower too), read by path, gives that model's features."""
    model, features = _library_model(name)
    path = tmp_path / f"weights{suffix}"
    if suffix == ".safetensors":
        from safetensors.torch import save_file

        save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(path))
    else:
        torch.save({"state_dict": model.state_dict(), "epoch": 3}, path)  # a training checkpoint
    backbone = load_backbone(name, str(path))
    images = backbone.preprocess(torch.from_numpy(_frames(ucf_mini)))
    with torch.inference_mode():
        ours = backbone.model(backbone.normalize(images))
        theirs = features.eval()(backbone.normalize(images))
        random = load_backbone(name, None).model(backbone.normalize(images))
    torch.testing.assert_close(ours, theirs)
    assert not torch.allclose(ours, random), "the file's weights were loaded, not actrec's random init"
    assert backbone.weights_id == file_identity(path) and backbone.weights_file == str(path.resolve())


def test_a_weights_file_of_another_model_is_one_line_naming_it(tmp_path) -> None:
    path = tmp_path / "resnet34.pth"
    torch.save(__import__("torchvision").models.resnet34().state_dict(), path)
    with pytest.raises(BackboneError, match=r"resnet34.pth does not fit resnet18") as err:
        load_backbone("resnet18", str(path))
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("name", ["vit_b_16", "timm:vit_tiny_patch16_224", "open_clip:ViT-S-32"])
def test_a_vit_takes_the_image_size_given(name: str) -> None:
    """A ViT's position embedding is resampled to the size given (the families' own way), so the size is obeyed."""
    backbone = load_backbone(name, None, 96)
    assert backbone.image_size == 96
    images = torch.randint(0, 256, (2, 3, 96, 96), dtype=torch.uint8)
    with torch.inference_mode():
        assert backbone.model(backbone.normalize(images)).shape == (2, backbone.feature_dim)


@pytest.fixture(scope="module")
def split_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny folder dataset through subset and split, ready for the extract stage."""
    run = tmp_path_factory.mktemp("weights")
    class_folders(run / "videos", classes=("a", "b"), groups=2, frames=12)
    tiny_project(run, "videos", split={"official": None, "test_fraction": 0.5, "val_fraction": 0.0})
    for stage in ("subset", "split"):
        run_stage(stage, run)
    return run


@pytest.mark.parametrize(
    "backbone, weights, named, looked",
    [
        ("resnet18", "imagenet", "resnet18 (ResNet18_Weights.IMAGENET1K_V1)", "torch/hub/checkpoints/resnet18-"),
        (
            "timm:vit_tiny_patch16_224.augreg_in21k_ft_in1k",
            "imagenet",
            "timm:vit_tiny_patch16_224.augreg_in21k_ft_in1k",
            "model.safetensors or pytorch_model.bin of timm/vit_tiny_patch16_224.augreg_in21k_ft_in1k in ",
        ),
        (
            "open_clip:ViT-B-32",
            "laion2b_s34b_b79k",
            "open_clip:ViT-B-32 (laion2b_s34b_b79k)",
            "of laion/CLIP-ViT-B-32-laion2B-s34B-b79K in ",
        ),
    ],
)
def test_weights_not_on_the_machine_are_one_line_saying_where_they_were_looked_for(
    split_project: Path, tmp_path: Path, backbone: str, weights: str, named: str, looked: str
) -> None:
    """Offline, with empty caches: the extract stage stops with one line naming the weights, the caches looked
    in (TORCH_HOME, HF_HOME) and how to put them there; no traceback, nothing downloaded."""
    tiny_project(split_project, "videos", extract={"backbone": backbone, "weights": weights, "image_size": "auto"})
    caches = {"TORCH_HOME": str(tmp_path / "torch"), "HF_HOME": str(tmp_path / "hf"), "HF_HUB_OFFLINE": "1"}
    line = one_error_line(run_stage("extract", split_project, check=False, env=caches))
    assert f"the weights of {named} are not on this machine" in line, line
    assert looked in line and str(tmp_path) in line, line
    assert "HF_HUB_OFFLINE is set, so nothing was downloaded" in line, line
    assert "On a machine with network access" in line or "Download https://" in line, line
    assert not any((tmp_path / "torch").rglob("*.pth")) and not any((tmp_path / "hf").rglob("*.safetensors"))


def test_an_unreachable_hub_is_the_same_one_line_at_once(split_project: Path, tmp_path: Path) -> None:
    """Without HF_HUB_OFFLINE, a hub that cannot be reached (here: a mirror on a closed local port) is tried
    once, not retried for a minute by the hub client, and the line says why the download failed."""
    tiny_project(split_project, "videos", extract={"backbone": "timm:vit_tiny_patch16_224", "image_size": "auto"})
    caches = {
        "TORCH_HOME": str(tmp_path / "torch"),
        "HF_HOME": str(tmp_path / "hf"),
        "HF_ENDPOINT": "http://127.0.0.1:9",
    }
    done = run_stage("extract", split_project, check=False, env={**caches, "HF_HUB_OFFLINE": ""})
    line = one_error_line(done)
    assert "the weights of timm:vit_tiny_patch16_224.augreg_in21k_ft_in1k are not on this machine" in line, line
    assert "downloading failed (ConnectionRefusedError" in line, line
    assert "Retrying" not in done.stderr, done.stderr


def _place_in_cache(home: Path, name: str, state: dict[str, torch.Tensor]) -> None:
    """Put `state` where the family's library would have downloaded the weights to (a cache filled on another
    machine and copied here): the torch hub's checkpoints folder, or a Hugging Face cache snapshot."""
    from safetensors.torch import save_file

    if name.startswith(("timm:", "open_clip:")):
        repo, filename = {
            "timm:vit_tiny_patch16_224": ("timm/vit_tiny_patch16_224.augreg_in21k_ft_in1k", "model.safetensors"),
            "open_clip:ViT-B-32": ("timm/vit_base_patch32_clip_224.openai", "open_clip_model.safetensors"),
        }[name]
        folder = home / "hf" / "hub" / f"models--{repo.replace('/', '--')}"
        (folder / "refs").mkdir(parents=True)
        (folder / "refs" / "main").write_text("0" * 40)
        (folder / "snapshots" / ("0" * 40)).mkdir(parents=True)
        save_file({k: v.contiguous() for k, v in state.items()}, folder / "snapshots" / ("0" * 40) / filename)
    else:
        (home / "torch" / "hub" / "checkpoints").mkdir(parents=True)
        torch.save(state, home / "torch" / "hub" / "checkpoints" / "resnet18-f37072fd.pth")


@pytest.mark.parametrize(
    "name, weights, weights_id",
    [
        ("resnet18", "imagenet", "ResNet18_Weights.IMAGENET1K_V1"),
        ("timm:vit_tiny_patch16_224", "imagenet", "timm:vit_tiny_patch16_224.augreg_in21k_ft_in1k"),
        # the tag's QuickGELU is applied; 600 MB of weights to write and read
        pytest.param("open_clip:ViT-B-32", "openai", "open_clip:ViT-B-32:openai", marks=pytest.mark.slow),
    ],
)
def test_weights_already_cached_load_offline(tmp_path: Path, name: str, weights: str, weights_id: str) -> None:
    if name.startswith("open_clip:"):
        import open_clip

        torch.manual_seed(1)
        model = open_clip.create_model("ViT-B-32-quickgelu")  # what the openai tag was trained as
        state, features = model.state_dict(), model.visual
    else:
        model, features = _library_model(name)
        state = model.state_dict()
    _place_in_cache(tmp_path, name, state)
    images = torch.randint(0, 256, (2, 3, 224, 224), dtype=torch.uint8)
    torch.save(images, tmp_path / "images.pt")
    script = (
        "import sys, torch; from actrec.features.backbones import load_backbone; "
        f"b = load_backbone({name!r}, {weights!r}); x = torch.load({str(tmp_path / 'images.pt')!r}); "
        f"torch.save(b.model(b.normalize(x)), {str(tmp_path / 'features.pt')!r}); print(b.weights_id)"
    )
    env = {**os.environ, "TORCH_HOME": str(tmp_path / "torch"), "HF_HOME": str(tmp_path / "hf"), "HF_HUB_OFFLINE": "1"}
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == weights_id
    with torch.inference_mode():
        expected = features.eval()(load_backbone(name, None).normalize(images))
    torch.testing.assert_close(torch.load(tmp_path / "features.pt"), expected, rtol=1e-4, atol=1e-4)
