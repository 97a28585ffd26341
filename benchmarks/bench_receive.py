"""What the main process pays to receive decoded frames from DataLoader workers, per batch layout.

python -m benchmarks.bench_receive [--workers 2] [--batches 24] [--size 224]

Workers hand over batches of 32 clips of 16 frames (uint8, size × size × 3) with no decoding, either as
32 tensors (one shared-memory segment each, as the extractor did) or as one flat buffer (as it does now);
the main process's CPU time (user + system, all threads) per 1,000 frames received is printed for each.
"""

from __future__ import annotations

import argparse
import resource

import torch
from torch.utils.data import DataLoader, Dataset

from benchmarks.machine import describe_machine
from benchmarks.results import parse_args

CLIPS_PER_BATCH, FRAMES_PER_CLIP = 32, 16


class _Clips(Dataset):
    def __init__(self, n: int, size: int) -> None:
        self.n, self.clip = n, torch.randint(0, 256, (FRAMES_PER_CLIP, size, size, 3), dtype=torch.uint8)

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> torch.Tensor:
        return self.clip.clone()


def _per_clip(items: list[torch.Tensor]) -> list[torch.Tensor]:
    return items


def _one_buffer(items: list[torch.Tensor]) -> torch.Tensor:
    return torch.cat([x.reshape(-1) for x in items])


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--batches", type=int, default=24)
    parser.add_argument("--size", type=int, default=224, help="frame side in pixels (224: resized; 320 ~ UCF-101's)")
    args = parse_args(parser)
    print(describe_machine())
    for name, collate in (("32 tensors a batch", _per_clip), ("one buffer a batch", _one_buffer)):
        loader = DataLoader(
            _Clips(CLIPS_PER_BATCH * args.batches, args.size),
            batch_size=CLIPS_PER_BATCH,
            num_workers=args.workers,
            collate_fn=collate,
            persistent_workers=True,
        )
        batches = iter(loader)
        next(batches)  # the workers have started
        start, frames = _cpu_seconds(), 0
        for _ in batches:
            frames += CLIPS_PER_BATCH * FRAMES_PER_CLIP
        ms = 1e6 * (_cpu_seconds() - start) / frames
        print(f"{name:20s}: main process {ms:6.1f} ms CPU per 1,000 frames ({frames} frames of {args.size} px)")


if __name__ == "__main__":
    main()
