"""NTU RGB+D's .skeleton files: the Kinect v2 joints of each body in each frame, in the dataset's text format.

Apart from the layout (data/ntu.py) and light to import: `actrec predict` probes a lone .skeleton file with
`skeleton_info` before it loads a model, as it probes a video with `video_info`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from actrec.data.clips import VideoError, VideoInfo
from actrec.names import SKELETON as SKELETON  # the extract.backbone reading .skeleton files, not videos

SKELETON_SUFFIX = ".skeleton"
FPS = 30.0  # Kinect v2 records colour and skeletons at 30 frames/s
BODIES, JOINTS = 2, 25
SPINE = 1  # 0-based: the Kinect v2 joint order is base of spine, middle of spine, neck, head, left shoulder, ...


def read_skeleton(path: str | Path) -> np.ndarray:
    """The joints of a .skeleton file: float32 (frames, 2 bodies, 25 joints, xyz), zero where a body is absent.

    The official text format: the frame count; per frame the body count, then per body a line of
    10 values (body id first), the joint count and one line per joint (x, y, z, then 9 more values).
    The two bodies tracked in the most frames are kept, the most tracked first, each in its own slot
    throughout the clip. A file that is cut off or not in this format raises VideoError naming the line.
    """
    lines = Path(path).read_text(encoding="utf-8", errors="replace").rstrip().split("\n")
    at = 0

    def numbers(count: int, what: str) -> list[str]:
        nonlocal at
        if at >= len(lines):
            raise VideoError(f"cut off at line {at + 1}: expected {what}")
        values = lines[at].split()
        at += 1
        if len(values) < count:
            raise VideoError(f"line {at}: expected {what}, found {lines[at - 1].strip()[:60]!r}")
        return values

    def count(what: str) -> int:
        value = numbers(1, what)[0]
        if not value.isdigit():
            raise VideoError(f"line {at}: expected {what}, found {value[:30]!r}")
        return int(value)

    frames: list[dict[str, np.ndarray]] = []
    for _ in range(count("the frame count")):
        bodies = {}
        for _ in range(count("a body count")):
            body_id = numbers(10, "a body line of 10 values")[0]
            joints = count("the joint count")
            if joints != JOINTS:
                raise VideoError(f"line {at}: {joints} joints; NTU skeletons have {JOINTS}")
            try:
                xyz = [[float(v) for v in numbers(3, "a joint line (x y z ...)")[:3]] for _ in range(JOINTS)]
            except ValueError as err:
                raise VideoError(f"line {at}: a joint's x y z are not numbers ({err})") from err
            bodies[body_id] = np.asarray(xyz, dtype=np.float32)
        frames.append(bodies)
    tracked: dict[str, int] = {}
    for bodies in frames:
        for body_id in bodies:
            tracked[body_id] = tracked.get(body_id, 0) + 1
    kept = sorted(tracked, key=lambda b: -tracked[b])[:BODIES]  # stable: ties keep the first seen first
    joints = np.zeros((len(frames), BODIES, JOINTS, 3), dtype=np.float32)
    for t, bodies in enumerate(frames):
        for slot, body_id in enumerate(kept):
            if body_id in bodies:
                joints[t, slot] = bodies[body_id]
    return joints


def skeleton_info(path: str | Path) -> VideoInfo:
    """A skeleton file's frame count, as video_info gives a video's; VideoError when no body is in any frame."""
    joints = read_skeleton(path)
    if not joints.any():
        raise VideoError(f"no body in any of its {len(joints)} frames (a sample with missing skeletons)")
    return VideoInfo(len(joints), FPS, 0, 0)
