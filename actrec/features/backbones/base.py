"""What every backbone is: a frozen image network with its classifier dropped, and the preprocessing it was
trained with, applied to batched uint8 frames; plus the weights helpers the families share (local files,
the caches the hubs download to, the one-line message when weights are not on the machine)."""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import logging
import os
import socket
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import nn
from torchvision.transforms.v2 import InterpolationMode
from torchvision.transforms.v2 import functional as TF

from actrec.errors import ActrecError, first_line

logger = logging.getLogger(__name__)

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class BackboneError(ActrecError):
    """The backbone or its weights cannot be loaded."""


@dataclass(frozen=True)
class Preprocessing:
    """How a model's frames are prepared, as its library's eval transform does it: the short side resized to
    `resize_size` (both sides, with `squash`), a centre crop of `crop_size`, then mean/std on [0, 1] values."""

    resize_size: int
    crop_size: int
    interpolation: str  # a torchvision InterpolationMode value: "bilinear", "bicubic"
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    squash: bool = False

    def record(self) -> dict:
        return {**asdict(self), "mean": list(self.mean), "std": list(self.std)}

    def to_json(self) -> str:
        """The record as the feature cache's key, the feature file and a checkpoint keep it."""
        return json.dumps(self.record(), sort_keys=True)


def scaled(native_crop: int, resize_ratio: float, image_size: int | str) -> tuple[int, int]:
    """(resize, crop) for extract.image_size: the model's own crop at `auto`, else the size given, the resize
    kept in proportion (torchvision's ResNet50 at 224: resize 232; at 160: 166)."""
    crop = native_crop if image_size == "auto" else int(image_size)
    return round(crop * resize_ratio), crop


@dataclass
class Backbone:
    """A model mapping (n, 3, S, S) normalised images to (n, D) features, with its preprocessing and the
    identity of its weights (what the feature cache's key and a checkpoint's record name)."""

    name: str
    model: nn.Module
    feature_dim: int
    preprocessing: Preprocessing
    weights_id: str  # "random init", a weights enum or tag, or "sha256:…" of a local file
    weights_file: str | None = None  # the local file's absolute path, when the weights came from one

    @property
    def image_size(self) -> int:
        return self.preprocessing.crop_size

    @property
    def resize_size(self) -> int:
        return self.preprocessing.resize_size

    @property
    def mean(self) -> tuple[float, float, float]:
        return self.preprocessing.mean

    @property
    def std(self) -> tuple[float, float, float]:
        return self.preprocessing.std

    def preprocess(self, frames: torch.Tensor) -> torch.Tensor:
        """uint8 (n, H, W, 3) frames → uint8 (n, 3, S, S): resized as the model's library does it, centre cropped.

        Stays uint8 so DataLoader workers pass a quarter of the bytes of float images.
        """
        p = self.preprocessing
        images = frames.permute(0, 3, 1, 2)
        size = [p.resize_size, p.resize_size] if p.squash else [p.resize_size]
        images = TF.resize(images, size, interpolation=InterpolationMode(p.interpolation), antialias=True)
        return TF.center_crop(images, [p.crop_size, p.crop_size])

    def normalize(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 (n, 3, S, S) → float (n, 3, S, S) with the model's mean/std."""
        images = images.float().div_(255)
        mean = torch.tensor(self.mean, device=images.device).view(1, 3, 1, 1)
        std = torch.tensor(self.std, device=images.device).view(1, 3, 1, 1)
        return images.sub_(mean).div_(std)

    def blocks(self) -> list[tuple[str, nn.Module]]:
        """The network as named blocks in order, sharing its modules: run one after the other on normalised
        images and average-pooled over space, they give its features (what fine-tuning cuts into a frozen trunk
        and blocks that learn). Empty for a family that knows no such cut."""
        return []

    def network(self) -> nn.Module:
        """The module whose state dict a weights file for this backbone holds, named as its builder names it
        (what extract.weights loads)."""
        return self.model


def finish(
    name: str,
    model: nn.Module,
    preprocessing: Preprocessing,
    weights_id: str,
    weights_file: str | None = None,
    kind: type[Backbone] = Backbone,
) -> Backbone:
    """The model frozen in eval mode, as a `kind` (the family's Backbone), its feature size D read from one
    forward pass at the crop size (which also fails here, naming the size, for a model that cannot take it)."""
    model.eval().requires_grad_(False)
    size = preprocessing.crop_size
    try:
        with torch.inference_mode():
            out = model(torch.zeros(1, 3, size, size))
    except Exception as err:
        reason = first_line(err, 200)
        raise BackboneError(
            f"backbone {name} cannot take {size} px images ({reason}); set extract.image_size to auto (the model's "
            f"own size) or another size"
        ) from err
    if out.ndim != 2:
        raise BackboneError(f"backbone {name} gives features of shape {tuple(out.shape[1:])}, not one vector per image")
    return kind(name, model, int(out.shape[1]), preprocessing, weights_id, weights_file)


def drop_classifier(model: nn.Module, name: str) -> str:
    """Replace the model's last linear layer (its classifier) with the identity, so it gives the pooled
    embedding before the classifier; returns that layer's name."""
    linear = [n for n, m in model.named_modules() if isinstance(m, nn.Linear)]
    if not linear:
        raise BackboneError(f"backbone {name} has no linear classifier to drop; choose another model")
    parent, _, child = linear[-1].rpartition(".")
    setattr(model.get_submodule(parent), child, nn.Identity())
    return linear[-1]


def is_file(weights: str | None) -> bool:
    """Whether extract.weights names a local file (params validation has checked that it exists)."""
    return weights is not None and Path(weights).is_file()


def local_file(weights: str | None) -> str | None:
    """The absolute path of a local weights file (what `actrec predict` finds it by from any folder), else None."""
    return str(Path(weights).resolve()) if is_file(weights) else None


@functools.cache
def _sha256(path: str, size: int, mtime_ns: int) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def file_identity(path: str | Path) -> str:
    """A weights file's identity for the feature cache's key: its content hash (computed once per process)."""
    stat = Path(path).stat()
    return f"sha256:{_sha256(str(Path(path).resolve()), stat.st_size, stat.st_mtime_ns)[:16]}"


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """The state dict in a weights file: a bare state dict, or a checkpoint holding one under "state_dict",
    "model" or "module" (PyTorch Lightning, DDP and training scripts' layouts), safetensors or torch.save."""
    try:
        if str(path).endswith(".safetensors"):
            from safetensors.torch import load_file

            state = load_file(str(path))
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        raise BackboneError(f"extract.weights: cannot read {path} as a state dict or checkpoint ({err})") from err
    while isinstance(state, dict):
        inner = next((state[k] for k in ("state_dict", "model", "module") if isinstance(state.get(k), dict)), None)
        if inner is None:
            break
        state = inner
    if not isinstance(state, dict):
        raise BackboneError(f"extract.weights: {path} holds a {type(state).__name__}, not a state dict")
    return {k.removeprefix("module."): v for k, v in state.items()}


def offline() -> bool:
    """Whether the user said never to reach for the network (HF_HUB_OFFLINE, honoured for every family)."""
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


def unreachable(url: str, timeout: float = 3.0) -> OSError | None:
    """Why `url`'s host (or the proxy that reaches it) cannot be connected to now, None when it can: one quick
    try, instead of a hub client's minute of retries before the same answer."""
    parts = urllib.parse.urlsplit(url)
    host, port = parts.hostname or "", parts.port or (443 if parts.scheme == "https" else 80)
    proxy = urllib.request.getproxies().get(parts.scheme)
    if proxy and not urllib.request.proxy_bypass(host):
        proxied = urllib.parse.urlsplit(proxy if "://" in proxy else f"http://{proxy}")
        host, port = proxied.hostname or "", proxied.port or 80
    try:
        socket.create_connection((host, port), timeout=timeout).close()
    except OSError as err:
        return err
    return None


def hf_endpoint() -> str:
    """The Hugging Face hub the caches are filled from (HF_ENDPOINT, for mirrors)."""
    from huggingface_hub import constants

    return constants.ENDPOINT


def missing_weights(what: str, looked: list[Path | str], place: str, err: Exception | None) -> BackboneError:
    """The one line a user gets for weights that are neither cached nor downloadable here."""
    tried = (
        "HF_HUB_OFFLINE is set, so nothing was downloaded"
        if err is None
        else f"downloading failed ({type(err).__name__}: {first_line(err)})"
    )
    env = ", ".join(f"{k}={os.environ[k]}" for k in ("TORCH_HOME", "HF_HOME", "HF_HUB_CACHE") if k in os.environ)
    return BackboneError(
        f"the weights of {what} are not on this machine: looked for {' and '.join(map(str, looked))}"
        f"{' (' + env + ')' if env else ''}; {tried}. {place}, or give extract.weights the path of a weights file"
    )


def hf_cached(repo: str, filenames: list[str]) -> str | None:
    """The first of `filenames` in the Hugging Face cache (HF_HOME/hub) for `repo`, without the network."""
    from huggingface_hub import try_to_load_from_cache

    for filename in filenames:
        found = try_to_load_from_cache(repo, filename)
        if isinstance(found, str):
            return found
    return None


def hf_cache_dir() -> Path:
    from huggingface_hub import constants

    return Path(constants.HF_HUB_CACHE)


@contextlib.contextmanager
def quiet_root_logger() -> Iterator[None]:
    """Silence what a library logs straight to the root logger while it builds a model (OpenCLIP announces
    random init and every config step there); actrec's own loggers are not touched."""
    root = logging.getLogger()

    def below_error(record: logging.LogRecord) -> bool:
        return record.levelno >= logging.ERROR

    root.addFilter(below_error)
    try:
        yield
    finally:
        root.removeFilter(below_error)
