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


def _fail(key: str, value: Any, allowed: str) -> typing.NoReturn:
    raise ParamsError(f"params: {key} = {value!r} is not allowed; expected {allowed}")


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
    name: Literal["demo", "ucf101", "hmdb51", "kinetics", "folder"] = "demo"
    root: str = "data/demo"
    classes: Union[str, int, list[str]] = "all"  # noqa: UP007 - the validator reads typing.Union
    max_clips_per_class: int | None = None
    group_pattern: str | None = r"_g(\d+)_"
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
    official: int | None = 1
    test_fraction: float = 0.25
    val_fraction: float = 0.2
    crossval_folds: int | None = None

    def check(self, key: str) -> None:
        _check_range(f"{key}.crossval_folds", self.crossval_folds, 2)
        if self.official is not None and self.official not in (1, 2, 3):
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


@dataclass(frozen=True)
class ExtractParams:
    backbone: Literal["resnet50", "efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2"] = (
        "efficientnet_lite0"
    )
    weights: Literal["imagenet"] | None = "imagenet"
    frames: int = 16
    views: int = 1
    image_size: int = 224
    batch_size: int | Literal["auto"] = "auto"
    num_workers: int | Literal["auto"] = "auto"
    threads: int | Literal["auto"] = "auto"
    engine: Literal["auto", "eager", "compile", "onnxruntime", "openvino"] = "auto"
    device: Literal["auto", "cpu", "cuda"] = "auto"
    precision: Literal["auto", "fp32", "bf16", "fp16"] = "auto"
    cache_dir: str = "features/cache"
    shard_size: int = 32

    def check(self, key: str) -> None:
        for name in ("frames", "views", "shard_size"):
            _check_range(f"{key}.{name}", getattr(self, name), 1)
        if self.batch_size != "auto":
            _check_range(f"{key}.batch_size", self.batch_size, 1)
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
    model: ModelParams = field(default_factory=ModelParams)
    train: TrainParams = field(default_factory=TrainParams)


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
