"""Every knob of the pipeline, read from params.yaml and checked before any stage starts work.

Each section of params.yaml is a frozen dataclass below. Loading walks the YAML against the
dataclass fields, so an unknown key, a wrong type or a value out of range fails at once with
one message that names the key, the value and what is allowed.
"""

from __future__ import annotations

import dataclasses
import re
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin

import yaml

from pipeline.errors import ActrecError

DATASETS = ("demo", "ucf101", "hmdb51", "folder")
BACKBONES = ("resnet50", "efficientnet_lite0")
HEADS = ("lstm", "gru")
DEVICES = ("auto", "cpu", "cuda")
PRECISIONS = ("auto", "fp32", "bf16", "fp16")


class ParamsError(ActrecError):
    """A params.yaml value that the pipeline cannot run with."""


def _fail(key: str, value: Any, allowed: str) -> typing.NoReturn:
    raise ParamsError(f"params: {key} = {value!r} is not allowed; expected {allowed}")


def _check_range(key: str, value: float | None, lo: float | None = None, hi: float | None = None,
                 lo_open: bool = False) -> None:
    if value is None:
        return
    if lo is not None and (value <= lo if lo_open else value < lo):
        _fail(key, value, f"a number {'>' if lo_open else '>='} {lo}" + (f" and <= {hi}" if hi else ""))
    if hi is not None and value > hi:
        _fail(key, value, f"a number <= {hi}")


@dataclass(frozen=True)
class DatasetParams:
    name: Literal["demo", "ucf101", "hmdb51", "folder"] = "demo"
    root: str = "data/demo"
    # "all", the first N classes in sorted order, or a list of class names.
    classes: Union[str, int, list[str]] = "all"  # noqa: UP007 - read by the validator
    max_clips_per_class: int | None = None
    # folder/demo: a regex whose first group names a clip's group (clips of one group never straddle parts).
    group_pattern: str | None = r"_g(\d+)_"
    # ucf101/hmdb51: where the official split lists are; null looks in the usual place under root.
    splits_dir: str | None = None

    def check(self, key: str) -> None:
        if isinstance(self.classes, str) and self.classes != "all":
            _fail(f"{key}.classes", self.classes, '"all", a number of classes, or a list of class names')
        if isinstance(self.classes, int):
            _check_range(f"{key}.classes", self.classes, 1)
        if isinstance(self.classes, list) and not self.classes:
            _fail(f"{key}.classes", self.classes, "a non-empty list of class names")
        _check_range(f"{key}.max_clips_per_class", self.max_clips_per_class, 1)
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
    # ucf101/hmdb51: official split 1, 2 or 3 when the lists are present; null: group-aware split.
    official: int | None = 1
    test_fraction: float = 0.25  # group-aware split: share of all clips held out for test
    val_fraction: float = 0.2  # share of the training clips held out for validation (early stopping)

    def check(self, key: str) -> None:
        if self.official is not None and self.official not in (1, 2, 3):
            _fail(f"{key}.official", self.official, "1, 2, 3 or null")
        _check_range(f"{key}.test_fraction", self.test_fraction, 0, 0.9, lo_open=True)
        _check_range(f"{key}.val_fraction", self.val_fraction, 0, 0.9)


@dataclass(frozen=True)
class ExtractParams:
    backbone: Literal["resnet50", "efficientnet_lite0"] = "efficientnet_lite0"
    # "imagenet" for the backbone's ImageNet weights; null for random init (fast tests only).
    weights: Literal["imagenet"] | None = "imagenet"
    frames: int = 16  # T frames sampled uniformly over each video
    clips: int = 1  # K temporal clips per video: clip 0 centred, the rest jittered (training draws one)
    image_size: int = 224
    batch_size: int | Literal["auto"] = "auto"  # images per forward pass; auto: 16 on CPU, 512 on GPU
    num_workers: int = 1
    device: Literal["auto", "cpu", "cuda"] = "auto"
    precision: Literal["auto", "fp32", "bf16", "fp16"] = "auto"
    cache_dir: str = "features/cache"
    shard_size: int = 32  # clips per cache shard: at most this much work is lost to an interruption

    def check(self, key: str) -> None:
        for name in ("frames", "clips", "shard_size"):
            _check_range(f"{key}.{name}", getattr(self, name), 1)
        if self.batch_size != "auto":
            _check_range(f"{key}.batch_size", self.batch_size, 1)
        _check_range(f"{key}.image_size", self.image_size, 32)
        _check_range(f"{key}.num_workers", self.num_workers, 0)


@dataclass(frozen=True)
class ModelParams:
    head: Literal["lstm", "gru"] = "lstm"
    hidden_size: int = 256
    num_layers: int = 1
    bidirectional: bool = False
    dropout: float = 0.3

    def check(self, key: str) -> None:
        _check_range(f"{key}.hidden_size", self.hidden_size, 1)
        _check_range(f"{key}.num_layers", self.num_layers, 1)
        _check_range(f"{key}.dropout", self.dropout, 0, 0.95)


@dataclass(frozen=True)
class TrainParams:
    epochs: int = 60
    batch_size: int = 32
    lr: float = 1e-3
    weight_decay: float = 1e-4
    patience: int = 15  # epochs without a better validation loss before stopping

    def check(self, key: str) -> None:
        for name in ("epochs", "batch_size", "patience"):
            _check_range(f"{key}.{name}", getattr(self, name), 1)
        _check_range(f"{key}.lr", self.lr, 0, lo_open=True)
        _check_range(f"{key}.weight_decay", self.weight_decay, 0)


@dataclass(frozen=True)
class Params:
    seed: int = 42
    dataset: DatasetParams = field(default_factory=DatasetParams)
    demo: DemoParams = field(default_factory=DemoParams)
    split: SplitParams = field(default_factory=SplitParams)
    extract: ExtractParams = field(default_factory=ExtractParams)
    model: ModelParams = field(default_factory=ModelParams)
    train: TrainParams = field(default_factory=TrainParams)


def _describe(tp: Any) -> str:
    origin = get_origin(tp)
    if origin is Literal:
        return " or ".join(repr(a) for a in get_args(tp))
    if origin in (Union, types.UnionType):
        return " or ".join(_describe(a) for a in get_args(tp))
    if origin is list:
        return f"a list of {_describe(get_args(tp)[0])}"
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
    if unknown:
        name = f"{key}.{unknown[0]}" if key else unknown[0]
        raise ParamsError(f"params: unknown key {name!r}; allowed keys{' in ' + key if key else ''}: "
                          f"{', '.join(sorted(fields))}")
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
        raise ParamsError(f"params: {path} is not valid YAML: {err}") from err
    return parse_params(data)
