"""What fine-tuning trains: the backbone cut at its first learning block into a frozen trunk and a tail, the
tail average-pooled and read over T frames by a temporal head. The backbone's family says what its blocks
are (Backbone.blocks); `finetune.layers` says which of them learn."""

from __future__ import annotations

import contextlib

import torch
from torch import nn

from actrec.errors import ActrecError
from actrec.features.backbones import Backbone


class FinetuneError(ActrecError):
    """Fine-tuning that cannot run with these params or clips."""


def blocks(backbone: Backbone) -> list[tuple[str, nn.Module]]:
    """The backbone's named blocks, or one line saying it has none fine-tuning knows."""
    named = backbone.blocks()
    if not named:
        raise FinetuneError(
            f"finetune: no blocks known for backbone {backbone.name}; fine-tune a ResNet, a torchvision "
            f"EfficientNet or EfficientNet-Lite"
        )
    return named


def learning_blocks(named: list[tuple[str, nn.Module]], layers: int | list[str], backbone: str) -> list[str]:
    """The names of the blocks finetune.layers makes learn: the last N, or those named."""
    names = [n for n, _ in named]
    if isinstance(layers, int):
        if layers > len(names):
            raise FinetuneError(f"params: finetune.layers = {layers}, but {backbone} has {len(names)} blocks")
        return names[len(names) - layers :]
    unknown = [n for n in layers if n not in names]
    if unknown:
        raise FinetuneError(
            f"params: finetune.layers names {', '.join(map(repr, unknown))}, not a block of {backbone}; "
            f"its blocks: {', '.join(names)}"
        )
    return [n for n in names if n in layers]


def _autocast(device: torch.device) -> contextlib.AbstractContextManager:
    """bf16 autocast on a GPU; fp32 on a CPU, where bf16 training kernels are slow or emulated."""
    return torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" else contextlib.nullcontext()


class Tuned(nn.Module):
    """Frozen trunk → the blocks from the first learning one on → average pool → the temporal head over T frames.

    Batch norms stay in eval mode whatever the mode (their ImageNet statistics are kept), and so does the
    trunk, whose output may be computed once and held (`trunk_is_held`). While `frozen`, the head alone
    learns, on what the blocks give at inference.
    """

    def __init__(self, backbone: Backbone, learning: list[str], head: nn.Module) -> None:
        super().__init__()
        named = blocks(backbone)
        cut = next(i for i, (n, _) in enumerate(named) if n in learning)
        self.backbone, self.head, self.frozen = backbone, head, False
        self.trunk = nn.Sequential(*(m for _, m in named[:cut])).requires_grad_(False)
        self.tail = nn.Sequential(*(m for _, m in named[cut:]))
        for name, module in named[cut:]:
            module.requires_grad_(name in learning)

    def train(self, mode: bool = True) -> Tuned:
        super().train(mode)
        self.trunk.eval()
        for module in self.tail.modules():
            if self.frozen or isinstance(module, nn.modules.batchnorm._BatchNorm):
                module.eval()
        return self

    def trunk_output(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 images (n, 3, S, S) → the trunk's output (what the tail starts from)."""
        with torch.no_grad():
            return self.trunk(self.backbone.normalize(images))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """fp32 logits of clips from their frames' inputs x (clips, T, ...): uint8 images, or the trunk's output
        held for them (floating point); under bf16 autocast on a GPU."""
        clips, x = len(x), x.flatten(0, 1)
        with _autocast(x.device):
            x = self.trunk_output(x) if x.dtype == torch.uint8 else x.float()
            with torch.no_grad() if self.frozen else contextlib.nullcontext():
                features = self.tail(x).mean(dim=(2, 3))
            return self.head(features.float().view(clips, -1, features.shape[-1])).float()

    def learning_parameters(self) -> list[nn.Parameter]:
        return [p for p in self.tail.parameters() if p.requires_grad]


def trunk_is_held(tuned: Tuned, image_size: int) -> bool:
    """Whether the trunk's output (fp16) takes fewer bytes than the uint8 images it comes from."""
    with torch.no_grad():
        out = tuned.trunk_output(torch.zeros(1, 3, image_size, image_size, dtype=torch.uint8))
    return out.numel() * 2 < 3 * image_size * image_size
