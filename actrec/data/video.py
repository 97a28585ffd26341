"""Video decoding and frame sampling.

decord seeks straight to the sampled frames and is the fast path; it ships wheels for x86-64
only, so elsewhere PyAV decodes the same frames by reading the stream once. PyAV also takes over
from decord on any file decord fails on, since decord rejects some valid videos (frame widths
such as 48 or 72 pixels fail its buffer copy). Any failure to open or decode surfaces as
VideoError with a short reason, which the stages report and skip instead of crashing on.
"""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from actrec.errors import ActrecError

try:
    import decord
except ImportError:  # pragma: no cover - depends on the platform's wheels
    decord = None

logger = logging.getLogger(__name__)

# decord starts its messages with "[hh:mm:ss] /its/build/path/file.cc:NN: ".
_DECORD_PREFIX = re.compile(r"^\[[0-9:]+\] \S+: ")

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


def sample_indices(
    num_frames: int, frames: int, views: int = 1, seed: int | None = None, sampling: str = "uniform", stride: int = 1
) -> np.ndarray:
    """Frame indices of shape (views, frames): spread uniformly over the video, or `strided`.

    Uniform: the video is cut into `frames` equal segments. View 0 takes the centre of each segment (the
    deterministic view evaluation and the K=1 cache use); further views take a random position in
    each segment (TSN-style jitter) from `seed`. A video shorter than `frames` repeats frames.
    Strided: `frames` frames `stride` apart, as a clip of consecutive frames is taken: view 0 centred in the
    video, further views starting anywhere it fits (from `seed`); a video shorter than the span is padded
    with its first and last frames.
    """
    if num_frames < 1:
        raise VideoError("video has no frames")
    out = np.empty((views, frames), dtype=np.int64)
    if sampling == "strided":
        span = (frames - 1) * stride + 1
        starts = np.full(views, (num_frames - span) // 2)
        if views > 1 and num_frames > span:
            starts[1:] = np.random.default_rng(seed).integers(0, num_frames - span + 1, views - 1)
        out[:] = starts[:, None] + np.arange(frames) * stride
        return np.clip(out, 0, num_frames - 1)
    edges = np.arange(frames + 1) * num_frames / frames
    out[0] = np.floor((edges[:-1] + edges[1:]) / 2)
    if views > 1:
        rng = np.random.default_rng(seed)
        out[1:] = np.floor(edges[:-1] + rng.random((views - 1, frames)) * (edges[1:] - edges[:-1]))
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


def _checked(info: VideoInfo) -> VideoInfo:
    if info.frames < 1 or info.width < 1 or info.height < 1:
        raise VideoError(
            f"no decodable video frames (cut off or corrupt: {info.frames} frames, {info.width}x{info.height})"
        )
    return info


def video_info(path: str | Path) -> VideoInfo:
    """Frame count, frame rate and size of a video, or VideoError if it cannot be opened."""
    path = Path(path)
    _check_file(path)
    if decord is not None:
        try:
            return _checked(_open_decord(path)[1])
        except VideoError as err:
            logger.debug("decord cannot open %s (%s); trying PyAV", path, err)
    return _checked(_video_info_av(path))


def read_clip(
    path: str | Path,
    frames: int,
    views: int = 1,
    seed: int | None = None,
    sampling: str = "uniform",
    stride: int = 1,
) -> tuple[np.ndarray, np.ndarray]:
    """Sample (as sample_indices does) and decode views × frames frames: uint8 (views·frames, H, W, 3) and
    indices (views, frames).

    The frame count comes from the opened video itself, so no clip table is needed (predict).
    """
    path = Path(path)
    _check_file(path)
    if decord is not None:
        try:
            reader, info = _open_decord(path)
            indices = sample_indices(_checked(info).frames, frames, views, seed, sampling, stride)
            return _decord_batch(reader, indices.ravel()), indices
        except VideoError as err:
            logger.debug("decord cannot decode %s (%s); trying PyAV", path, err)
    indices = sample_indices(_checked(_video_info_av(path)).frames, frames, views, seed, sampling, stride)
    return _read_av(path, indices.ravel()), indices


def read_frames(path: str | Path, indices: np.ndarray) -> np.ndarray:
    """uint8 frames (n, H, W, 3) at `indices` (decord, else PyAV), for callers that choose their own frames."""
    path = Path(path)
    _check_file(path)
    indices = np.asarray(indices, dtype=np.int64).ravel()
    if decord is not None:
        try:
            return _decord_batch(_open_decord(path)[0], indices)
        except VideoError as err:
            logger.debug("decord cannot decode %s (%s); trying PyAV", path, err)
    return _read_av(path, indices)


def _decord_batch(reader: decord.VideoReader, indices: np.ndarray) -> np.ndarray:
    try:
        return reader.get_batch(indices).asnumpy()
    except Exception as err:  # decord raises bare RuntimeError/DECORDError subclasses
        raise VideoError(_decord_reason(err)) from err


def _decord_reason(err: Exception) -> str:
    text = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    if "st_nb >= 0" in text or "video stream" in text.lower():
        return "no video stream (audio-only or not a video)"
    if text.startswith("Error reading"):
        return "cannot open: not a video file or corrupt container"
    return f"decode failed: {_DECORD_PREFIX.sub('', text)[:160]}"


def _av_reason(err: Exception) -> str:
    """An FFmpeg error without the file name PyAV appends (the reports list the clip already)."""
    return getattr(err, "strerror", None) or str(err)


def _video_info_av(path: Path) -> VideoInfo:
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
        raise VideoError(f"cannot open: {_av_reason(err)}") from err


def _read_av(path: Path, indices: np.ndarray) -> np.ndarray:
    import av

    wanted = {int(i) for i in indices}
    found: dict[int, np.ndarray] = {}
    decoded = 0
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise VideoError("no video stream (audio-only or not a video)")
            for i, frame in enumerate(container.decode(container.streams.video[0])):
                decoded = i + 1
                if i in wanted:
                    found[i] = frame.to_ndarray(format="rgb24")
                if i >= max(wanted):
                    break
    except av.FFmpegError as err:
        raise VideoError(f"decode failed after {decoded} frames: {_av_reason(err)}") from err
    missing = wanted - found.keys()
    if missing:
        raise VideoError(
            f"frame {min(missing)} requested, but the video ends after {decoded} decodable frames (cut off?)"
        )
    return np.stack([found[int(i)] for i in indices])
