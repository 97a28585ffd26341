"""Video decoding and frame sampling.

decord seeks straight to the sampled frames and is the fast path; it ships wheels for x86-64
only, so elsewhere PyAV decodes the same frames by reading the stream once. Any failure to open
or decode surfaces as VideoError, which the stages report and skip instead of crashing on.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pipeline.errors import ActrecError

try:
    import decord
except ImportError:  # pragma: no cover - depends on the platform's wheels
    decord = None

logger = logging.getLogger(__name__)

VIDEO_EXTENSIONS = (".avi", ".mp4", ".mkv", ".webm", ".mov", ".mpg", ".mpeg", ".m4v")


class VideoError(ActrecError):
    """A video that cannot be opened or decoded; the message says why."""


@dataclass(frozen=True)
class VideoInfo:
    frames: int
    fps: float
    width: int
    height: int


def fingerprint(path: str | Path, block: int = 1 << 16) -> str:
    """Content identity of a video: its size and a hash of its head and tail (cheap on large files).

    The clip table records it, so a changed video changes the table, and the feature cache is
    keyed on it rather than on names, so moving or re-listing a dataset reuses features.
    """
    path = Path(path)
    size = path.stat().st_size
    digest = hashlib.sha1(str(size).encode())
    with path.open("rb") as handle:
        digest.update(handle.read(block))
        if size > block:
            handle.seek(max(block, size - block))
            digest.update(handle.read(block))
    return digest.hexdigest()[:20]


def sample_indices(num_frames: int, frames: int, clips: int = 1, seed: int | None = None) -> np.ndarray:
    """Frame indices of shape (clips, frames), spread uniformly over the video.

    The video is cut into `frames` equal segments. Clip 0 takes the centre of each segment (the
    deterministic view evaluation and the K=1 cache use); further clips take a random position in
    each segment (TSN-style jitter) from `seed`. A video shorter than `frames` repeats frames.
    """
    if num_frames < 1:
        raise VideoError("video has no frames")
    edges = np.arange(frames + 1) * num_frames / frames
    out = np.empty((clips, frames), dtype=np.int64)
    out[0] = np.floor((edges[:-1] + edges[1:]) / 2)
    if clips > 1:
        rng = np.random.default_rng(seed)
        out[1:] = np.floor(edges[:-1] + rng.random((clips - 1, frames)) * (edges[1:] - edges[:-1]))
    return np.clip(out, 0, num_frames - 1)


def _check_file(path: Path) -> None:
    if not path.is_file():
        raise VideoError(f"no such file: {path}")
    if path.stat().st_size == 0:
        raise VideoError("empty file (0 bytes)")


def _open_decord(path: Path) -> tuple[decord.VideoReader, VideoInfo]:
    try:
        reader = decord.VideoReader(str(path), num_threads=1)
        height, width = reader[0].shape[:2]
        reader.seek(0)
        return reader, VideoInfo(len(reader), float(reader.get_avg_fps()), int(width), int(height))
    except Exception as err:  # decord raises bare RuntimeError/DECORDError subclasses
        raise VideoError(_decord_reason(err)) from err


def probe(path: str | Path) -> VideoInfo:
    """Frame count, frame rate and size of a video, or VideoError if it cannot be opened."""
    path = Path(path)
    _check_file(path)
    info = _open_decord(path)[1] if decord is not None else _probe_av(path)
    if info.frames < 1 or info.width < 1 or info.height < 1:
        raise VideoError(f"no decodable video frames ({info})")
    return info


def read_clip(path: str | Path, frames: int, clips: int = 1, seed: int | None = None
              ) -> tuple[np.ndarray, np.ndarray]:
    """Sample and decode clips × frames frames: uint8 (clips·frames, H, W, 3) and indices (clips, frames).

    The frame count comes from the opened video itself, so no clip table is needed (predict).
    """
    path = Path(path)
    _check_file(path)
    if decord is None:
        info = _probe_av(path)
        indices = sample_indices(info.frames, frames, clips, seed)
        return _read_av(path, indices.ravel()), indices
    reader, info = _open_decord(path)
    indices = sample_indices(info.frames, frames, clips, seed)
    try:
        return reader.get_batch(indices.ravel()).asnumpy(), indices
    except Exception as err:
        raise VideoError(_decord_reason(err)) from err


def _decord_reason(err: Exception) -> str:
    text = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    if "st_nb >= 0" in text or "video stream" in text.lower():
        return "no video stream (audio-only or not a video)"
    if text.startswith("Error reading"):
        return "cannot open: not a video file or corrupt container"
    return f"decode failed: {text[:160]}"


def _probe_av(path: Path) -> VideoInfo:
    import av

    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise VideoError("no video stream (audio-only or not a video)")
            stream = container.streams.video[0]
            frames = stream.frames or sum(1 for _ in container.decode(stream))
            fps = float(stream.average_rate or stream.guessed_rate or 0)
            return VideoInfo(int(frames), fps, stream.codec_context.width, stream.codec_context.height)
    except av.FFmpegError as err:
        raise VideoError(f"cannot open: {err}") from err


def _read_av(path: Path, indices: np.ndarray) -> np.ndarray:
    import av

    wanted = {int(i) for i in indices}
    found: dict[int, np.ndarray] = {}
    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            for i, frame in enumerate(container.decode(stream)):
                if i in wanted:
                    found[i] = frame.to_ndarray(format="rgb24")
                if i >= max(wanted):
                    break
    except (av.FFmpegError, IndexError) as err:
        raise VideoError(f"decode failed: {err}") from err
    missing = wanted - found.keys()
    if missing:
        raise VideoError(f"frame {min(missing)} requested, video has {len(found)} decodable frames")
    return np.stack([found[int(i)] for i in indices])
