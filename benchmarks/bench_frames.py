"""Benchmark that the frames decoded are FFmpeg's own: every clip of a folder against `ffmpeg -fps_mode cfr`.

python -m benchmarks.bench_frames [--shared ../shared/data] [--limit N] [--frames 16] [--views 3] [--workers 2]
    [--every]

For each video under `--shared` (ucf101-mini and ucf101-six: 300 real UCF-101 clips, placeholder frames and
packed B-frames among them), FFmpeg's command line decodes it once at a constant frame rate
(`ffmpeg -i CLIP -an -fps_mode cfr -f rawvideo -pix_fmt rgb24 -`: what a player shows at each frame
period), and actrec samples it as extraction does (`read_clip`: view 0 the segment centres, further views
jittered) by the path `auto` takes. A sampled frame differs where its mean absolute difference to FFmpeg's
frame at the same index is 2 levels or more (a wrong frame differs by tens; colour conversion rounding by
under one). With --every, every frame of each clip is compared, not only the sampled ones. Prints the
machine, the clips whose frame count or frames differ, and the count of each.
"""

from __future__ import annotations

import argparse
import shutil
from concurrent.futures import ProcessPoolExecutor
from functools import partial
from pathlib import Path

import numpy as np

from actrec.data.clips import VIDEO_EXTENSIONS, find_clips
from actrec.data.decoding import read_clip, read_frames, video_info
from actrec.errors import ActrecError, run_main
from benchmarks.machine import describe_machine
from tests.helpers import ffmpeg_frames

SETS = ("ucf101-mini", "ucf101-six")
TOLERANCE = 2.0  # mean absolute difference, in levels of 255, below which two frames are the same picture


def differing(frames: np.ndarray, reference: np.ndarray, indices: np.ndarray) -> list[int]:
    """The indices whose frame is not FFmpeg's at that index (or past FFmpeg's last)."""
    inside = indices < len(reference)
    diff = np.zeros(len(indices))
    diff[~inside] = np.inf
    got, want = frames[inside].astype(np.int16), reference[indices[inside]]
    diff[inside] = np.abs(got - want).reshape(int(inside.sum()), -1).mean(1)
    return sorted({int(i) for i in indices[diff >= TOLERANCE]})


def check(path: Path, frames: int, views: int, every: bool) -> tuple[str, int, int, list[int]]:
    """(clip, actrec's frame count, FFmpeg's, the indices whose frames differ)."""
    reference = ffmpeg_frames(path)
    count = video_info(path).frames
    images, indices = read_clip(path, frames, views, seed=0)
    wrong = differing(images, reference, indices.ravel())
    if every:
        whole = np.arange(count)
        wrong = sorted(set(wrong) | set(differing(read_frames(path, whole), reference, whole)))
    return path.name, count, len(reference), wrong


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", type=Path, default=Path("../shared/data"), help="folder holding the sets")
    parser.add_argument("--limit", type=int, default=0, help="at most this many clips (0: all)")
    parser.add_argument("--frames", type=int, default=16, help="frames sampled per view")
    parser.add_argument("--views", type=int, default=3, help="views: the centres, then jittered ones")
    parser.add_argument("--workers", type=int, default=2, help="clips checked at once")
    parser.add_argument("--every", action="store_true", help="compare every frame, not only the sampled ones")
    args = parser.parse_args(argv)
    if shutil.which("ffmpeg") is None:
        raise ActrecError("ffmpeg is not on PATH (apt-get install -y ffmpeg): it makes the reference frames")
    clips = [c for s in SETS for c in find_clips(args.shared / s) if c.suffix.lower() in VIDEO_EXTENSIONS]
    clips = clips[: args.limit] if args.limit else clips
    if not clips:
        raise ActrecError(f"no clips under {args.shared} ({', '.join(SETS)})")
    print(describe_machine())
    with ProcessPoolExecutor(args.workers) as pool:
        results = list(pool.map(partial(check, frames=args.frames, views=args.views, every=args.every), clips))
    wrong = [r for r in results if r[3]]
    longer = sum(count > reference for _, count, reference, _ in results)
    for name, count, reference, indices in wrong:
        more = " …" if len(indices) > 8 else ""
        print(f"{name}: frames {indices[:8]}{more} differ ({count} frames, FFmpeg {reference})")
    what = "every frame" if args.every else f"{args.frames} frames × {args.views} views"
    print(f"clips checked: {len(results)} ({what} each, against ffmpeg -fps_mode cfr)")
    print(f"clips whose frame count exceeds FFmpeg's: {longer}")
    print(f"clips whose sampled frames differ from FFmpeg's: {len(wrong)}")


if __name__ == "__main__":
    run_main(main)
