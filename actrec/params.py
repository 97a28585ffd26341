"""Every knob of the pipeline, read from params.yaml and checked before any stage starts work.

Each section is a frozen pydantic dataclass, so the schema is stated, not coded: a key's type, range and
choices are its annotation (strict: no "16" for 16; finite numbers only), an unknown key is refused, and
what depends on two keys is a section's `_rules`. A mistake is one line naming the key, the value and what
is allowed, worded from the same annotations. Sections stay dataclasses (`dataclasses.replace` revalidates).
What each key means is written once, in params.yaml; the defaults here equal the values there (a test checks).
"""

from __future__ import annotations

import dataclasses
import functools
import re
import reprlib
import types
import typing
from dataclasses import field
from pathlib import Path
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import yaml
from annotated_types import Ge, Gt, Le, MinLen
from pydantic import AfterValidator, ConfigDict, GetCoreSchemaHandler, ValidationError, model_validator
from pydantic.dataclasses import dataclass
from pydantic_core import core_schema

from actrec.errors import ActrecError
from actrec.names import SKELETON, HeadName, MotionStream, Refused, TrainedHead, check_backbone, close_name, tunable


class ParamsError(ActrecError):
    """A params.yaml value that the pipeline cannot run with."""


# strict: a value of the wrong type is refused, never converted; allow_inf_nan: no NaN or infinity slips through
# a range check (NaN compares false to every bound).
SCHEMA = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False)
BIG = 2**31 - 1  # the largest count: what torch and numpy size and index with
Count = Annotated[int, Ge(1), Le(BIG)]
Whole = Annotated[int, Ge(0), Le(BIG)]
Share = Annotated[float, Ge(0), Le(0.9)]  # of something, leaving at least a tenth of it
Rate = Annotated[float, Gt(0), Le(10)]  # a learning rate
Decay = Annotated[float, Ge(0), Le(10)]
Auto = Literal["auto"]


def _path(text: str) -> str:
    if "\0" in text:  # the one character no file name holds: os and pathlib raise ValueError on it
        raise Refused("", text, "a path (no NUL character)")
    return text


Path_ = Annotated[str, MinLen(1), AfterValidator(_path)]  # a file or folder the stages open


@dataclass(frozen=True, config=SCHEMA)
class DatasetParams:
    name: Literal["demo", "ucf101", "hmdb51", "kinetics", "ntu", "sthv2", "list", "folder"] = "demo"
    root: Path_ = "data/demo"
    classes: Union[Literal["all"], Count, Annotated[list[str], MinLen(1)]] = "all"  # noqa: UP007 - pydantic's unions
    max_clips_per_class: Count | None = None
    group_pattern: str | None = r"_g(\d+)_"
    splits_dir: Path_ | None = None
    frame_rate: Annotated[float, Gt(0), Le(1000)] = 30.0
    lists: Union[Path_, dict[str, Path_], None] = None  # noqa: UP007
    class_names: Path_ | None = None

    @model_validator(mode="after")
    def _rules(self) -> DatasetParams:
        if self.name == "list" and not self.lists:
            raise Refused("lists", self.lists, "an annotation list file, or {train: file, test: file[, val: file]}")
        if isinstance(self.lists, dict) and (
            not {"train", "test"} <= set(self.lists) or not set(self.lists) <= {"train", "val", "test"}
        ):
            raise Refused("lists", self.lists, "a list file per part: train and test, and val if you keep one")
        if self.group_pattern is not None:
            try:
                groups = re.compile(self.group_pattern).groups
            except re.error as err:
                raise Refused("group_pattern", self.group_pattern, f"a valid regex ({err})") from None
            if groups < 1:
                raise Refused("group_pattern", self.group_pattern, "a regex with one capture group")
        return self


@dataclass(frozen=True, config=SCHEMA)
class DemoParams:
    clips_per_class: Annotated[int, Ge(1), Le(10_000)] = 30
    groups: Annotated[int, Ge(1), Le(10_000)] = 10
    fps: Annotated[int, Ge(1), Le(240)] = 25
    width: Annotated[int, Ge(1), Le(4096)] = 160
    height: Annotated[int, Ge(1), Le(4096)] = 120
    min_seconds: Annotated[float, Gt(0), Le(600)] = 2.0
    max_seconds: Annotated[float, Gt(0), Le(600)] = 4.0

    @model_validator(mode="after")
    def _rules(self) -> DemoParams:
        if self.max_seconds < self.min_seconds:
            raise Refused("max_seconds", self.max_seconds, f"a number >= min_seconds ({self.min_seconds})")
        return self


@dataclass(frozen=True, config=SCHEMA)
class SplitParams:
    # the NTU protocols by name, the numbered official lists (1, 2, 3) of the other datasets, or group-aware (null)
    official: Union[Literal["xsub", "xview", "xset"], Annotated[int, Ge(1), Le(3)], None] = 1  # noqa: UP007
    test_fraction: Annotated[float, Gt(0), Le(0.9)] = 0.25
    val_fraction: Share = 0.2
    crossval_folds: Annotated[int, Ge(2), Le(BIG)] | None = None

    @model_validator(mode="after")
    def _rules(self) -> SplitParams:
        if round((1 - self.test_fraction) * (1 - self.val_fraction), 9) < 0.1:
            raise Refused(
                "val_fraction",
                self.val_fraction,
                f"a share that leaves at least 10% of the clips to train on after test_fraction "
                f"{self.test_fraction}: (1 - test_fraction) * (1 - val_fraction) >= 0.1",
            )
        return self


@dataclass(frozen=True, config=SCHEMA)
class ExtractParams:
    backbone: Annotated[str, MinLen(1)] = "efficientnet_lite0"
    weights: Path_ | None = "imagenet"
    frames: Annotated[int, Ge(1), Le(512)] = 16  # 512: the longest positional code of the attention heads
    views: Annotated[int, Ge(1), Le(64)] = 1
    sampling: Literal["uniform", "strided"] = "uniform"
    stride: Annotated[int, Ge(1), Le(10_000)] = 2
    image_size: Annotated[int, Ge(32), Le(4096)] | Auto = "auto"
    batch_size: Annotated[int, Ge(1), Le(65_536)] | Auto = "auto"
    num_workers: Annotated[int, Ge(0), Le(1024)] | Auto = "auto"
    threads: Annotated[int, Ge(1), Le(1024)] | Auto = "auto"
    engine: Literal["auto", "eager", "compile", "onnxruntime", "openvino"] = "auto"
    device: Literal["auto", "cpu", "cuda"] = "auto"
    precision: Literal["auto", "fp32", "bf16", "fp16"] = "auto"
    cache_dir: Path_ = "features/cache"
    shard_size: Count = 32
    resize_on: Literal["auto", "workers", "device"] = "auto"
    motion: MotionStream | None = None
    clip_len: Annotated[int, Ge(1), Le(512)] | Auto = "auto"

    @model_validator(mode="after")
    def _rules(self) -> ExtractParams:
        runtimes = {"onnxruntime": ("fp32",), "openvino": ("fp32", "bf16")}  # CPU runtimes and their precisions
        allowed = ("auto", *runtimes.get(self.engine, ()))
        if self.engine in runtimes and (self.device == "cuda" or self.precision not in allowed):
            raise Refused(
                "engine",
                self.engine,
                f"auto, eager or compile with device {self.device} and precision {self.precision} ({self.engine} "
                f"runs the backbone on the CPU in {' or '.join(runtimes[self.engine])})",
            )
        check_backbone(self.backbone, self.weights, self.motion, self.clip_len)  # Refused: names what it refuses
        return self


@dataclass(frozen=True, config=SCHEMA)
class FinetuneParams:
    enabled: bool = False
    layers: Union[Count, Annotated[list[str], MinLen(1)]] = 2  # noqa: UP007
    head: TrainedHead = "lstm"
    epochs: Annotated[int, Ge(1), Le(100_000)] = 12
    freeze_epochs: Whole = 2
    batch_size: Annotated[int, Ge(1), Le(65_536)] = 8
    accum_steps: Count = 1
    backbone_lr: Rate = 1e-4
    head_lr: Rate = 1e-3
    weight_decay: Decay = 1e-2
    label_smoothing: Share = 0.1
    patience: Count = 4
    samplings: Annotated[int, Ge(1), Le(64)] = 3

    @model_validator(mode="after")
    def _rules(self) -> FinetuneParams:
        if isinstance(self.layers, list) and len(set(self.layers)) < len(self.layers):
            raise Refused("layers", self.layers, "a number of last blocks, or a list of different block names")
        return self


@dataclass(frozen=True, config=SCHEMA)
class ModelParams:
    head: Union[HeadName, Annotated[list[HeadName], MinLen(1)]] = field(  # noqa: UP007
        default_factory=lambda: ["lstm", "probe"]
    )
    hidden_size: Annotated[int, Ge(1), Le(65_536)] = 256
    num_layers: Annotated[int, Ge(1), Le(64)] = 1
    bidirectional: bool = True
    dropout: Annotated[float, Ge(0), Le(0.95)] = 0.3
    encoder: Literal["lstm", "gru", "linear"] = "linear"
    num_heads: Annotated[int, Ge(1), Le(1024)] = 4

    def candidates(self) -> list[str]:
        """The heads to choose from, in the order listed (of two with as many weights, the first wins a tie)."""
        return [self.head] if isinstance(self.head, str) else list(self.head)

    @model_validator(mode="after")
    def _rules(self) -> ModelParams:
        heads = self.candidates()
        if len(set(heads)) < len(heads):
            raise Refused("head", self.head, "a head, or a list of different heads to choose from")
        if "ensemble" in heads and not set(heads) - {"probe", "ensemble"}:
            raise Refused("head", self.head, "a temporal head listed beside ensemble (e.g. [lstm, probe, ensemble])")
        if "transformer" in heads and self.hidden_size % self.num_heads:
            raise Refused("num_heads", self.num_heads, f"a divisor of hidden_size ({self.hidden_size})")
        return self

    def head_options(self) -> dict[str, Any]:
        """Every key but the head's name: what heads.build_head takes and a checkpoint records."""
        return {k: v for k, v in dataclasses.asdict(self).items() if k != "head"}


@dataclass(frozen=True, config=SCHEMA)
class TrainParams:
    epochs: Annotated[int, Ge(1), Le(100_000)] = 60
    batch_size: Annotated[int, Ge(1), Le(65_536)] = 32
    lr: Rate = 1e-3
    weight_decay: Decay = 1e-2
    label_smoothing: Share = 0.1
    warmup_epochs: Annotated[float, Ge(0), Le(100_000)] = 3.0
    grad_clip: Annotated[float, Ge(0), Le(1e6)] = 1.0
    patience: Count = 15
    balanced: bool = False
    feature_dropout: Share = 0.1
    refit: bool = False
    choice_folds: Whole | Auto = "auto"
    choice_margin: Annotated[float, Ge(0), Le(100)] = 2.0

    @model_validator(mode="after")
    def _rules(self) -> TrainParams:
        if self.choice_folds == 1:
            raise Refused("choice_folds", 1, "auto, 0 (the validation split decides) or 2 or more folds")
        return self


class _Section:
    """A section as written in YAML, a mapping: built by its own dataclass, whose errors keep their key."""

    @classmethod
    def __get_pydantic_core_schema__(cls, source: type, handler: GetCoreSchemaHandler) -> core_schema.CoreSchema:
        def build(value: Any) -> Any:
            return source(**value) if isinstance(value, dict) and all(isinstance(k, str) for k in value) else value

        return core_schema.no_info_before_validator_function(build, handler(source))


@dataclass(frozen=True, config=SCHEMA)
class Params:
    seed: Annotated[int, Ge(0), Le(2**32 - 1)] = 42  # scikit-learn's and NumPy's legacy seeds stop at 2**32
    dataset: Annotated[DatasetParams, _Section] = field(default_factory=DatasetParams)
    demo: Annotated[DemoParams, _Section] = field(default_factory=DemoParams)
    split: Annotated[SplitParams, _Section] = field(default_factory=SplitParams)
    extract: Annotated[ExtractParams, _Section] = field(default_factory=ExtractParams)
    finetune: Annotated[FinetuneParams, _Section] = field(default_factory=FinetuneParams)
    model: Annotated[ModelParams, _Section] = field(default_factory=ModelParams)
    train: Annotated[TrainParams, _Section] = field(default_factory=TrainParams)

    @model_validator(mode="after")
    def _rules(self) -> Params:
        """What one section allows that depends on another: the splits and features a dataset has."""
        name, official, backbone = self.dataset.name, self.split.official, self.extract.backbone
        ntu = "xsub, xview (NTU-60), xset (NTU-120) or null with dataset.name ntu"
        if official is not None and (name == "ntu") != isinstance(official, str):
            other = f"1, 2, 3 or null with dataset.name {name}"
            raise Refused("split.official", official, ntu if name == "ntu" else other)
        if backbone == SKELETON and name != "ntu":
            raise Refused("extract.backbone", SKELETON, f"a CNN backbone with dataset.name {name} (skeletons: ntu)")
        if self.finetune.enabled and not tunable(backbone):
            raise Refused("finetune.enabled", True, f"false with extract.backbone {backbone} (no network to tune)")
        return self


# Keys renamed so that one word names one idea: an old params.yaml gets one line naming the new key.
RENAMED = {
    "extract.clips": "extract.views",
    "split.folds": "split.crossval_folds",
    "train.cv_folds": "train.choice_folds",
}

_SHOW = reprlib.Repr()  # a value as the error shows it: one line, cut short
_SHOW.maxstring, _SHOW.maxother, _SHOW.maxlist, _SHOW.maxdict = 80, 80, 8, 6


def _describe(tp: Any) -> str:
    """What a key's annotation allows, in words: the `expected ...` of every error."""
    origin = get_origin(tp)
    if origin is Annotated:
        base, *meta = get_args(tp)
        words = {Ge: ">=", Gt: ">", Le: "<="}
        bounds = [f"{words[type(m)]} {dataclasses.astuple(m)[0]}" for m in meta if type(m) in words]
        text = _describe(base)
        if any(isinstance(m, MinLen) for m in meta):
            text = re.sub(r"^an? ", "a non-empty ", text)
        return " ".join([text, " and ".join(bounds)]) if bounds else text
    if origin is Literal:
        return " or ".join(repr(a) for a in get_args(tp))
    if origin in (Union, types.UnionType):  # a name, or a list of those names: "…, or a list of them"
        words = [_describe(a) for a in get_args(tp)]
        shared = tuple(f" of {w}" for w in words)
        return " or ".join(re.sub(r" of (.+)$", " of them", w) if w.endswith(shared) else w for w in words)
    if origin is list:
        return f"a list of {'strings' if get_args(tp)[0] is str else _describe(get_args(tp)[0])}"
    if origin is dict:
        return f"a mapping to {_describe(get_args(tp)[1])}"
    if tp is type(None):
        return "null"
    if dataclasses.is_dataclass(tp):
        return "a mapping of keys to values"
    return {int: "an integer", float: "a finite number", str: "a string", bool: "true or false"}.get(tp, str(tp))


def _choices(tp: Any) -> list[str]:  # the names an annotation's Literals allow, to suggest the closest of
    if get_origin(tp) is Literal:
        return [a for a in get_args(tp) if isinstance(a, str)]
    return [c for a in get_args(tp) for c in _choices(a)]


def _hints(cls: Any) -> dict[str, Any]:
    """The annotation of each key of a section or of Params (of a section: its dataclass, unwrapped)."""
    hints = typing.get_type_hints(cls, include_extras=True) if dataclasses.is_dataclass(cls) else {}
    return {k: get_args(v)[0] if _Section in getattr(v, "__metadata__", ()) else v for k, v in hints.items()}


def _message(error: dict[str, Any], data: dict[str, Any]) -> str:
    """One line for pydantic's first error: the key by its dotted path, the value as written, what is allowed."""
    tp: Any = Params
    path: list[str] = []
    loc = list(error["loc"])
    value: Any = data
    while loc and isinstance(loc[0], str) and loc[0] in _hints(tp):  # the keys; the rest is inside a value
        path.append(name := loc.pop(0))
        tp = _hints(tp)[name]
        value = value.get(name, error["input"]) if isinstance(value, dict) else error["input"]
    where = ".".join(path)
    if error["type"] == "unexpected_keyword_argument":
        key = f"{where}.{loc[0]}" if where else str(loc[0])
        if key in RENAMED:
            return f"params: {key} is now {RENAMED[key]} (same meaning); rename the key in params.yaml"
        allowed = sorted(_hints(tp))
        close = close_name(loc[0], allowed)
        return (
            f"params: unknown key {key!r} (= {_SHOW.repr(error['input'])}); "
            + (f"did you mean {close!r}? " if close else "")
            + f"allowed keys{' in ' + where if where else ''}: {', '.join(allowed)}"
        )
    rule = (error.get("ctx") or {}).get("error")
    if isinstance(rule, Refused):  # a section's rule names its own key; Params' rules name section.key
        key = rule.key if "." in rule.key else ".".join([*path, rule.key]) if rule.key else where
        value, allowed, suggestion = rule.value, rule.allowed, rule.suggestion
    else:
        key, allowed, suggestion = where or "params.yaml", _describe(tp), close_name(value, _choices(tp))
    hint = f"did you mean {suggestion!r}? " if suggestion else ""
    return f"params: {key} = {_SHOW.repr(value)} is not allowed; {hint}expected {allowed}".replace("\n", " ")


def parse_params(data: Any) -> Params:
    """Validate a params mapping (from YAML) into Params, or raise ParamsError; a key left out takes its default."""
    data = {} if data is None else data
    if not isinstance(data, dict) or not all(isinstance(k, str) for k in data):
        raise ParamsError(f"params: params.yaml = {_SHOW.repr(data)} is not allowed; expected a mapping of keys")
    try:
        return Params(**data)
    except ValidationError as err:
        errors = sorted(err.errors(), key=lambda e: e["type"] != "unexpected_keyword_argument")
        raise ParamsError(_message(errors[0], data)) from None


def missing_keys(data: dict[str, Any]) -> list[str]:
    """The keys of the schema that a params mapping leaves out, dotted, in the schema's order."""
    missing = []
    for name, tp in _hints(Params).items():
        if name not in data:
            missing.append(name)
        elif dataclasses.is_dataclass(tp) and isinstance(data[name], dict):
            missing += [f"{name}.{key}" for key in _hints(tp) if key not in data[name]]
    return missing


def load_params(path: str | Path = "params.yaml", complete: bool = False) -> Params:
    """Read and validate params.yaml; every stage calls this first, before touching data. `complete`: every key
    must be written in the file (the `params` stage: a key left out would take its default unseen)."""
    path = Path(path)
    if not path.is_file():
        raise ParamsError(f"params: {path} not found (run from the project root)")
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, UnicodeDecodeError) as err:
        raise ParamsError(f"params: {path} cannot be read ({err})") from err
    except yaml.YAMLError as err:
        raise ParamsError(f"params: {path} is not valid YAML: {' '.join(str(err).split())}") from err
    params = parse_params(data)
    if complete and (missing := missing_keys(data or {})):
        default = functools.reduce(getattr, missing[0].split("."), params)
        shown = "a section" if dataclasses.is_dataclass(default) else _SHOW.repr(default)
        raise ParamsError(
            f"params: {path} has no {missing[0]} (default {shown}); every key the stages read is written in the file"
        )
    return params
