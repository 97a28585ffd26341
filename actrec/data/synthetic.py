"""Deterministic synthetic action-recognition dataset, rendered to real AVI files.

This is the project's offline demo: six classes in three time-reversed pairs.
The second class of each pair is a sample of the first class's generative
process played backwards, so a bag-of-frames model sees identically
distributed frames for both and only the temporal order separates them.
"""

from __future__ import annotations

import colorsys
import logging
import os
from pathlib import Path

import av
import numpy as np
from PIL import Image, ImageDraw

logger = logging.getLogger(__name__)

CLASSES: tuple[str, ...] = (
    "MoveLeft",
    "MoveRight",
    "Grow",
    "Shrink",
    "RotateClockwise",
    "RotateAnticlockwise",
)

# Unit polygons (extent about [-0.5, 0.5]); none is rotation-symmetric, so the
# rotation pair stays identifiable for every shape.
_SHAPES: dict[str, np.ndarray] = {
    name: np.asarray(pts, dtype=np.float64)
    for name, pts in {
        "L": [(-0.5, -0.5), (-0.1, -0.5), (-0.1, 0.2), (0.5, 0.2), (0.5, 0.5), (-0.5, 0.5)],
        "arrow": [(-0.5, -0.2), (0.05, -0.2), (0.05, -0.5), (0.5, 0), (0.05, 0.5), (0.05, 0.2), (-0.5, 0.2)],
        "triangle": [(-0.5, -0.5), (0.5, 0.5), (-0.5, 0.5)],
        "T": [
            (-0.5, -0.5),
            (0.5, -0.5),
            (0.5, -0.2),
            (0.15, -0.2),
            (0.15, 0.5),
            (-0.15, 0.5),
            (-0.15, -0.2),
            (-0.5, -0.2),
        ],
    }.items()
}
_PAIR_SHAPES = ("T", "triangle", "L")
# Smooth backgrounds only: strong textures dominate ImageNet features and drown the motion.
_BG_STYLES = ("gradient", "blobs")
_SUPERSAMPLE = 2  # polygon anti-aliasing factor


def _hsv(h: float, s: float, v: float) -> np.ndarray:
    return np.asarray(colorsys.hsv_to_rgb(h % 1.0, s, v), dtype=np.float32) * 255.0


def _scene(seed: int, pair: int, group: int) -> dict:
    """Scene shared by a group (both classes of a pair): background style and colour family."""
    rng = np.random.default_rng([seed, 0, pair, group, 0])
    hue = rng.uniform()
    scene = {
        "style": _BG_STYLES[rng.integers(len(_BG_STYLES))],
        # Muted background colours so the bright object always stands out.
        "c0": _hsv(hue + rng.uniform(0.2, 0.8), rng.uniform(0.1, 0.3), rng.uniform(0.2, 0.35)),
        "c1": _hsv(hue + rng.uniform(0.2, 0.8), rng.uniform(0.1, 0.3), rng.uniform(0.35, 0.5)),
        "angle": rng.uniform(0, np.pi),
        "blobs": rng.uniform(0, 1, size=(4, 3)),
    }
    if pair == 0:
        # Pooled CNN features barely see where an object is; a stage lit dark on the left and bright
        # on the right (as a side-lit scene) turns position into contrast, which they do see.
        scene.update(
            style="gradient",
            angle=0.0,
            c0=_hsv(hue, rng.uniform(0.1, 0.3), rng.uniform(0.05, 0.15)),
            c1=_hsv(hue + rng.uniform(0.2, 0.8), rng.uniform(0.1, 0.3), rng.uniform(0.6, 0.75)),
        )
    return scene


def _background(scene: dict, rng: np.random.Generator, width: int, height: int) -> np.ndarray:
    """Static background; the per-clip phase/gain jitter keeps clips of a group distinct."""
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32) / height
    proj = np.cos(scene["angle"]) * xx + np.sin(scene["angle"]) * yy
    if scene["style"] == "gradient":
        t = (proj - proj.min()) / (np.ptp(proj) + 1e-6)
    else:  # blobs
        t = np.zeros_like(xx)
        for bx, by, bs in scene["blobs"]:
            d2 = (xx - bx * width / height) ** 2 + (yy - by) ** 2
            t += np.exp(-d2 / (2 * (0.1 + 0.25 * bs) ** 2))
        t /= t.max() + 1e-6
    bg = scene["c0"] * (1 - t[..., None]) + scene["c1"] * t[..., None]
    return bg * rng.uniform(0.92, 1.08)


def _poses(pair: int, rng: np.random.Generator, n: int, width: int, height: int) -> np.ndarray:
    """Per-frame (cx, cy, size, angle) of the forward process of a pair (MoveLeft/Grow/RotateCW)."""
    p = np.linspace(0.0, 1.0, n) ** rng.uniform(0.8, 1.25)  # mildly uneven speed
    cx = np.full(n, width * rng.uniform(0.4, 0.6))
    cy = np.full(n, height * rng.uniform(0.4, 0.6))
    size = np.full(n, height * rng.uniform(0.4, 0.55))
    # Shapes start near upright: from a random start angle the direction of a turn is ambiguous
    # to per-frame features, and the demo is about order, not about decoding arbitrary angles.
    angle = np.full(n, np.deg2rad(rng.uniform(-15, 15)))
    if pair == 0:  # move left from the right edge to the left edge: the visible part of the shape changes
        cx = width * (rng.uniform(0.95, 1.05) - rng.uniform(0.9, 1.0) * p)
        cy = cy + height * rng.uniform(-0.1, 0.1) * p
        size = np.full(n, height * rng.uniform(0.5, 0.65))
    elif pair == 1:  # grow from small to large
        size = height * (rng.uniform(0.12, 0.2) + (rng.uniform(0.7, 0.9) - 0.16) * p)
    else:  # rotate clockwise (image y points down, so +angle is clockwise on screen)
        size = np.full(n, height * rng.uniform(0.55, 0.7))
        angle = angle + np.deg2rad(rng.uniform(150, 210)) * p
    return np.stack([cx, cy, size, angle], axis=1)


def _render_forward(pair: int, scene: dict, rng: np.random.Generator, n: int, width: int, height: int) -> np.ndarray:
    """Render n uint8 RGB frames of one sample of the pair's forward process."""
    bg = _background(scene, rng, width, height)
    # Colour varies per clip (not per group), so training sees every colour with every motion.
    color = _hsv(rng.uniform(), rng.uniform(0.6, 1.0), rng.uniform(0.85, 1.0))
    # One shape per pair: shape tells the pair, as a bag of frames can; only order tells the direction.
    shape = _SHAPES[_PAIR_SHAPES[pair]] * [rng.uniform(0.85, 1.15), 1.0]
    poses = _poses(pair, rng, n, width, height)
    # One noise field per clip, read at a random offset each frame: per-pixel noise that
    # changes every frame, at a fraction of the cost of fresh Gaussian draws.
    pad = 32
    noise = rng.standard_normal((height + pad, width + pad, 3), dtype=np.float32)
    noise *= rng.uniform(2.0, 6.0)
    offsets = rng.integers(0, pad + 1, size=(n, 2))
    diff = color - bg
    s = _SUPERSAMPLE
    frames = np.empty((n, height, width, 3), dtype=np.uint8)
    for i, (cx, cy, size, ang) in enumerate(poses):
        rot = np.array([[np.cos(ang), np.sin(ang)], [-np.sin(ang), np.cos(ang)]])
        pts = (shape @ rot * size + [cx, cy]) * s
        canvas = Image.new("L", (width * s, height * s), 0)
        ImageDraw.Draw(canvas).polygon([tuple(q) for q in pts], fill=255)
        mask = np.asarray(canvas.reduce(s), dtype=np.float32)[..., None] / 255.0
        dy, dx = offsets[i]
        img = bg + mask * diff
        img += noise[dy : dy + height, dx : dx + width]
        frames[i] = np.clip(img, 0, 255, out=img)
    return frames


def _write_avi(path: Path, frames: np.ndarray, fps: int) -> None:
    """Encode to a temp name, then rename, so a crash never leaves a partial final file."""
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        with av.open(str(tmp), mode="w", format="avi") as container:
            stream = container.add_stream("mpeg4", rate=fps)
            stream.width, stream.height = frames.shape[2], frames.shape[1]
            stream.pix_fmt = "yuv420p"
            stream.bit_rate = 1_500_000
            stream.options = {"qmin": "2", "qmax": "5"}  # keep quality high despite the noise
            for arr in frames:
                container.mux(stream.encode(av.VideoFrame.from_ndarray(arr, format="rgb24")))
            container.mux(stream.encode())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def generate_demo(
    out_dir: Path,
    *,
    clips_per_class: int,
    groups: int,
    seed: int,
    fps: int = 25,
    width: int = 160,
    height: int = 120,
    min_seconds: float = 2.0,
    max_seconds: float = 4.0,
) -> list[Path]:
    """Render the demo dataset into out_dir/<class>/<class>_gNN_cNN.avi; return the paths written."""
    if clips_per_class < 1 or groups < 1 or seed < 0:
        raise ValueError("clips_per_class and groups must be >= 1 and seed >= 0")
    if not 0 < min_seconds <= max_seconds or width % 2 or height % 2:
        raise ValueError("need 0 < min_seconds <= max_seconds and even width/height")
    out_dir = Path(out_dir)
    lo, hi = int(np.ceil(min_seconds * fps)), int(np.floor(max_seconds * fps))
    if lo > hi:
        raise ValueError("no whole frame count fits in [min_seconds, max_seconds]")
    logger.info("Rendering %d clips per class for %d classes into %s", clips_per_class, len(CLASSES), out_dir)
    written: list[Path] = []
    for cls_idx, cls in enumerate(CLASSES):
        pair, reverse = divmod(cls_idx, 2)
        (out_dir / cls).mkdir(parents=True, exist_ok=True)
        for c in range(clips_per_class):
            group, clip_in_group = c % groups + 1, c // groups + 1
            rng = np.random.default_rng([seed, 1, pair, reverse, c])
            n = int(rng.integers(lo, hi + 1))
            frames = _render_forward(pair, _scene(seed, pair, group), rng, n, width, height)
            if reverse:  # second class of the pair: the same process played backwards
                frames = frames[::-1]
            path = out_dir / cls / f"{cls}_g{group:02d}_c{clip_in_group:02d}.avi"
            _write_avi(path, np.ascontiguousarray(frames), fps)
            logger.debug("Wrote %s (%d frames)", path, n)
            written.append(path)
    logger.info("Wrote %d clips", len(written))
    return written
