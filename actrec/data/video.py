"""Clip decoding and frame sampling: one loader for video files and for folders of frames.

Which decoder reads a video was measured (figures: docs, Benchmarks → Decoding paths). PyAV opens
every video first, for its frame count, rate and size (so every path samples the same frames), then:

- where the sampled frames lie closer together than the keyframes (short or low-resolution clips:
  UCF-101, HMDB-51, phone clips), PyAV reads straight through: every frame decoded once, in order, only
  the sampled ones converted to RGB (on UCF-101 1.8 times decord's sampled frames per CPU-second);
- where they lie further apart (long or HD videos: Kinetics, films, 1080p recordings), a decoder that
  seeks to the keyframe before each: torchcodec where FFmpeg's shared libraries are on the machine
  (`pip install actrec[torchcodec]`, `apt-get install ffmpeg`; it also skips a seek whenever decoding
  on is shorter), else decord (x86-64 wheels only);
- AVI files and MPEG-4 Part 2 streams (XviD, DivX) are always read straight through: their timestamps
  do not say where a frame is shown, and decoders that seek land frames off.

A decoder that fails on a file hands it to PyAV straight through (decord rejects some valid widths),
and every path gives the same frames: tests/data/test_video.py holds them equal on real clips.
Inside a DataLoader worker each decoder runs one codec thread (a worker is a core: the most frames
per CPU-second); elsewhere FFmpeg picks its thread count, for the latency of one video.

A folder of JPEG or PNG frames is a clip too (MMAction2's rawframes `img_00001.jpg`, Jester's
`00001.jpg`): its frames in name order, its frame rate a parameter (`dataset.frame_rate`).

The decoders' own log lines never reach the user: FFmpeg's are off, decord's C++ messages to stderr
are captured and logged at debug level; `decoder_logs(True)` (`actrec -v`) lets them through.
Any failure surfaces as VideoError with a short reason, which the stages report and skip.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import logging
import math
import os
import re
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

import numpy as np

from actrec.data.listing import walk
from actrec.errors import ActrecError

if TYPE_CHECKING:
    import av

try:
    import decord
except ImportError:  # pragma: no cover - depends on the platform's wheels
    decord = None

logger = logging.getLogger(__name__)

VIDEO_EXTENSIONS = (".avi", ".mp4", ".mkv", ".webm", ".mov", ".mpg", ".mpeg", ".m4v")
FRAME_EXTENSIONS = (".jpg", ".jpeg", ".png")
DECODERS = ("auto", "torchcodec", "pyav", "decord")
# Which frames the loader gives for a clip; part of the feature cache's key, so cached features of frames decoded
# otherwise are not reused. 2: AVI and MPEG-4 Part 2 read straight through (seeking landed some frames off).
FRAMES_VERSION = 2
DEFAULT_FRAME_RATE = 30.0  # a folder of frames does not say its rate: dataset.frame_rate's default
# Packets read from a video's start to measure its keyframe interval (demuxing only: a millisecond or two).
KEYFRAME_PROBE_PACKETS = 300
# Frames an AVI header may count beyond the decodable ones (placeholders of packed B-frames; 2 of 367 seen).
HEADER_MARGIN = 3
# decord starts its messages with "[hh:mm:ss] /its/build/path/file.cc:NN: ".
_DECORD_PREFIX = re.compile(r"^\[[0-9:]+\] \S+: ")
_STDERR_LOCK = threading.Lock()
_quiet = True


class VideoError(ActrecError):
    """A video that cannot be opened or decoded; the message says why."""


@dataclass(frozen=True)
class VideoInfo:
    frames: int
    fps: float
    width: int
    height: int


def decoder_logs(shown: bool) -> None:
    """Let the decoders' own log lines through (FFmpeg's via PyAV's `libav` loggers), or keep them off."""
    global _quiet
    _quiet = not shown
    import av

    av.logging.set_level(av.logging.WARNING if shown else None)
    if decord is not None:
        decord.logging.set_level(decord.logging.WARNING if shown else decord.logging.QUIET)


if decord is not None:
    decord.logging.set_level(decord.logging.QUIET)


@functools.cache
def _torchcodec() -> ModuleType | None:
    """torchcodec, if installed and it finds FFmpeg's shared libraries (it imports torch: loaded when first asked)."""
    try:
        import torchcodec
        import torchcodec.decoders

        ffmpeg = torchcodec.ffmpeg_major_version
    except Exception as err:  # ImportError, a wheel built for another torch, or a version without the attribute
        logger.debug("torchcodec is not usable (%s); PyAV and decord decode", err)
        return None
    if ffmpeg is None:
        logger.debug("torchcodec finds no FFmpeg libraries (apt-get install ffmpeg); PyAV and decord decode")
        return None
    return torchcodec


def torchcodec_usable() -> bool:
    return _torchcodec() is not None


def _codec_threads() -> int:
    """1 inside a DataLoader worker, else 0 (FFmpeg's own choice)."""
    data = sys.modules.get("torch.utils.data")
    return 1 if data is not None and data.get_worker_info() is not None else 0


def natural_key(name: str) -> list:
    """Sort key reading digit runs as numbers: frame 2 before frame 10, whether or not names are zero-padded."""
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", name)]


def _frame_names(names: list[str]) -> list[str]:
    """The frame images among a folder's file names, in name order; MMAction2 writes optical flow
    (flow_x_/flow_y_) beside its RGB frames (img_), so where img_ frames exist only they count."""
    images = [n for n in names if Path(n).suffix.lower() in FRAME_EXTENSIONS and not n.startswith(".")]
    rgb = [n for n in images if n.lower().startswith("img_")]
    return sorted(rgb or images, key=natural_key)


def frame_files(folder: Path) -> list[Path]:
    with os.scandir(folder) as entries:
        return [folder / n for n in _frame_names([e.name for e in entries if e.is_file()])]


def is_frame_folder(path: str | Path) -> bool:
    """A folder holding JPEG/PNG frames directly: one clip."""
    path = Path(path)
    return path.is_dir() and bool(frame_files(path))


def find_clips(folder: Path) -> list[Path]:
    """Every clip under `folder`, sorted: video files, and folders of frames below it (each one clip,
    not searched further). Symbolic links to folders are followed, as datasets are often assembled from links,
    except one back to a folder the walk is inside (a loop)."""
    found: list[Path] = []
    for dirpath, dirnames, filenames in walk(folder):
        here = Path(dirpath)
        if here != folder and _frame_names(filenames):
            found.append(here)
            dirnames.clear()
            continue
        videos = [here / f for f in filenames if Path(f).suffix.lower() in VIDEO_EXTENSIONS]
        found += [v for v in videos if v.is_file() or v.is_symlink()]  # a looping link: a clip probing reports
    return sorted(found)


def clip_stem(clip_id: str) -> str:
    """A clip's name without a video extension (a frame folder's name has none; other dots stay)."""
    name = Path(clip_id).name
    return name[: -len(Path(name).suffix)] if Path(name).suffix.lower() in VIDEO_EXTENSIONS else name


def fingerprint(path: str | Path, block: int = 1 << 16) -> str:
    """Content identity of a clip: a video's size and a hash of its head and tail (cheap on large files);
    a frame folder's frame names and sizes and the heads of its first, middle and last frames.

    The clip table records it, so a changed clip changes the table, and the feature cache is
    keyed on it rather than on names, so moving or re-listing a dataset reuses features.
    """
    path = Path(path)
    if path.is_dir():
        files = frame_files(path)
        digest = hashlib.sha1(b"frames")
        for f in files:
            digest.update(f"{f.name}:{f.stat().st_size};".encode())
        for f in dict.fromkeys(files[i] for i in (0, len(files) // 2, -1)) if files else ():
            with f.open("rb") as handle:
                digest.update(handle.read(block))
        return digest.hexdigest()[:20]
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


def _spacing(indices: np.ndarray) -> float:
    """Mean distance between the distinct wanted frames: what reading straight through decodes per frame."""
    unique = np.unique(indices)
    return float(unique[-1] - unique[0] + 1) / len(unique)


def video_info(path: str | Path, frame_rate: float = DEFAULT_FRAME_RATE) -> VideoInfo:
    """Frame count, frame rate and size of a clip, or VideoError if it cannot be opened.

    `frame_rate` is a frame folder's rate (a video says its own).
    """
    return _decode(Path(path), None, "auto", frame_rate)[0]


def read_clip(
    path: str | Path,
    frames: int,
    views: int = 1,
    seed: int | None = None,
    sampling: str = "uniform",
    stride: int = 1,
    decoder: str = "auto",
) -> tuple[np.ndarray, np.ndarray]:
    """Sample (as sample_indices does) and decode views × frames frames: uint8 (views·frames, H, W, 3) and
    indices (views, frames).

    The frame count comes from the opened clip itself, so no clip table is needed (predict).
    """

    def choose(info: VideoInfo) -> np.ndarray:
        return sample_indices(info.frames, frames, views, seed, sampling, stride)

    _, images, indices = _decode(Path(path), choose, decoder)
    return images, indices


def read_frames(path: str | Path, indices: np.ndarray, decoder: str = "auto") -> np.ndarray:
    """uint8 frames (n, H, W, 3) at `indices`, for callers that choose their own frames.

    `decoder` names one path (torchcodec, pyav: straight through, decord: seeking) with no fallback,
    for comparing them; `auto` chooses as the module docstring says.
    """
    wanted = np.asarray(indices, dtype=np.int64).ravel()
    return _decode(Path(path), lambda info: wanted, decoder)[1]


def decoding_path(path: str | Path, frames: int = 16) -> str:
    """The decoder `auto` tries first for `frames` uniformly sampled frames of this clip (for reports)."""
    path = Path(path)
    return "frames" if path.is_dir() else _first_path(path, sample_indices(video_info(path).frames, frames).ravel())


def _first_path(path: Path, wanted: np.ndarray) -> str:
    import av

    with av.open(str(path)) as container:
        stream, _ = _stream_info(container)
        return _paths(container, stream, wanted)[0]


Chooser = Callable[[VideoInfo], np.ndarray] | None
Decoded = tuple[VideoInfo, np.ndarray | None, np.ndarray | None]


def _decode(path: Path, choose: Chooser, decoder: str, frame_rate: float = DEFAULT_FRAME_RATE) -> Decoded:
    """(info, frames, indices): the frames at the indices `choose` picks from the info (both None without
    `choose`). The info always comes from PyAV's reading of the container, so every path samples the same
    frames; the frames from the first path chosen that can decode them, each failure logged at debug level."""
    if decoder not in DECODERS:
        raise ValueError(f"unknown decoder {decoder!r}; expected one of {', '.join(DECODERS)}")
    if path.is_dir():
        return _read_frame_folder(path, choose, frame_rate)
    _check_file(path)
    import av

    try:
        with av.open(str(path)) as container:
            stream, info = _stream_info(container)
            if choose is None:
                return _checked(info), None, None
            indices = choose(_checked(info))
            wanted = indices.ravel()
            paths = _paths(container, stream, wanted) if decoder == "auto" else [decoder]
    except av.FFmpegError as err:
        raise VideoError(f"cannot open: {_av_reason(err)}") from err
    for name in paths[:-1]:
        try:
            return info, _READERS[name](path, wanted, info), indices
        except VideoError as err:
            logger.debug("%s cannot decode %s (%s); PyAV reads it straight through", name, path, err)
    return info, _READERS[paths[-1]](path, wanted, info), indices


def _stream_info(container: av.container.InputContainer) -> tuple[av.VideoStream, VideoInfo]:
    """The first video stream and its frame count, rate and size, as the container's header says.

    Without a count in the header (Matroska, WebM), the packets are counted: demuxing, not decoding.
    """
    if not container.streams.video:
        raise VideoError("no video stream (audio-only or not a video)")
    stream = container.streams.video[0]
    frames = stream.frames or sum(1 for packet in container.demux(stream) if packet.size)
    fps = float(stream.average_rate or stream.guessed_rate or 0)
    return stream, VideoInfo(int(frames), fps, stream.codec_context.width, stream.codec_context.height)


def _paths(container: av.container.InputContainer, stream: av.VideoStream, wanted: np.ndarray) -> list[str]:
    """The decoders to try, in order, for these frames of this stream; PyAV straight through last, always.

    Seeking pays only where the wanted frames lie further apart than the keyframes; closer together,
    reading straight through decodes no more frames and, in one thread, waits on none. Seeking decoders
    find a frame by its timestamp: AVI records no display times, and MPEG-4 Part 2 streams made for it
    (XviD, DivX: UCF-101, HMDB-51) keep packed B-frames and placeholder packets even when copied into
    MP4 or Matroska; there torchcodec and decord land one to six frames off (on 15 to 42 of the 305
    real clips here), so only reading straight through is right.
    """
    timed = stream.codec_context.name != "mpeg4" and "avi" not in container.format.name.split(",")
    if not timed or _spacing(wanted) <= _keyframe_interval(container, stream):
        return ["pyav"]
    seekers = (["torchcodec"] if torchcodec_usable() else []) + (["decord"] if decord is not None else [])
    return [*seekers[:1], "pyav"]


def _check_file(path: Path) -> None:
    if not path.is_file():
        raise VideoError(f"no such file: {path}")
    if path.stat().st_size == 0:
        raise VideoError("empty file (0 bytes)")


def _checked(info: VideoInfo) -> VideoInfo:
    if info.frames < 1 or info.width < 1 or info.height < 1:
        raise VideoError(
            f"no decodable video frames (cut off or corrupt: {info.frames} frames, {info.width}x{info.height})"
        )
    return info


def _av_reason(err: Exception) -> str:
    """An FFmpeg error without the file name PyAV appends (the reports list the clip already)."""
    return getattr(err, "strerror", None) or str(err)


def _keyframe_interval(container: av.container.InputContainer, stream: av.VideoStream) -> float:
    """Frames per keyframe over the first packets (demuxed, not decoded): the probe's length if it saw one.

    Infinite where the container cannot go back to its start (the frame count may have read it through).
    """
    import av

    try:
        container.seek(0)
    except av.FFmpegError:
        return math.inf
    packets = keyframes = 0
    for packet in container.demux(stream):
        if packet.size:
            packets += 1
            keyframes += bool(packet.is_keyframe)
            if packets >= KEYFRAME_PROBE_PACKETS:
                break
    return packets / max(keyframes, 1)


def _torchcodec_frames(path: Path, wanted: np.ndarray, info: VideoInfo) -> np.ndarray:
    codec = _torchcodec()
    if codec is None:
        raise VideoError("torchcodec is not usable here (not installed, or FFmpeg's shared libraries are missing)")
    try:
        decoder = codec.decoders.VideoDecoder(
            str(path), seek_mode="exact", num_ffmpeg_threads=_codec_threads(), dimension_order="NHWC"
        )
        return decoder.get_frames_at(wanted.tolist()).data.numpy()
    except Exception as err:  # torchcodec raises RuntimeError/ValueError/IndexError naming its C++ source
        text = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise VideoError(f"torchcodec: {text.rsplit(', ', 1)[-1][:160]}") from err


def _straight_av(path: Path, wanted: np.ndarray, info: VideoInfo) -> np.ndarray:
    """Every frame decoded once, in order, up to the last wanted one; only the wanted ones converted to RGB."""
    found = next(_straight_chunks(path, [np.unique(wanted)], info))
    return np.stack([found[int(i)] for i in wanted])


def _straight_chunks(path: Path, chunks: list[np.ndarray], info: VideoInfo) -> Iterator[dict[int, np.ndarray]]:
    """{index: RGB frame} for each chunk of ascending indices in turn, from one pass through the stream.

    An AVI header counts the placeholder packets of packed B-frames too, so a stream may end a frame
    or two short of it: wanted frames past the end within that margin take the last frame.
    """
    import av

    decoded, frame = 0, None
    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            stream.thread_type, stream.thread_count = "AUTO", _codec_threads()
            frames = enumerate(container.decode(stream))
            for chunk in chunks:
                targets, found = {int(i) for i in chunk}, {}
                while len(found) < len(targets) and (decoded == 0 or decoded - 1 < int(chunk[-1])):
                    step = next(frames, None)
                    if step is None:
                        break
                    i, frame = step
                    decoded = i + 1
                    if i in targets:
                        found[i] = frame.to_ndarray(format="rgb24")
                missing = targets - found.keys()
                counted = max(missing, default=0) < info.frames  # past the end of the stream, not of the header
                if missing and frame is not None and counted and info.frames - decoded <= HEADER_MARGIN:
                    found.update(dict.fromkeys(missing, frame.to_ndarray(format="rgb24")))
                elif missing:
                    raise VideoError(
                        f"frame {min(missing)} requested, but the video ends after {decoded} decodable frames "
                        "(cut off?)"
                    )
                yield found
    except av.FFmpegError as err:
        raise VideoError(f"decode failed after {decoded} frames: {_av_reason(err)}") from err


def frame_chunks(path: str | Path, chunks: list[np.ndarray]) -> Iterator[np.ndarray]:
    """uint8 frames (n, H, W, 3) of each chunk of ascending indices in turn (a long video's windows, a bounded
    number of frames in memory at once): read straight through, the clip is decoded once for all chunks;
    where `auto` seeks, each chunk is read by itself."""
    path = Path(path)
    if path.is_dir() or _first_path(path, np.concatenate(chunks)) != "pyav":
        for chunk in chunks:
            yield read_frames(path, chunk)
        return
    for found, chunk in zip(_straight_chunks(path, chunks, video_info(path)), chunks, strict=True):
        yield np.stack([found[int(i)] for i in chunk])


@contextlib.contextmanager
def _stderr_to_debug() -> Iterator[None]:
    """What C++ code writes to stderr (file descriptor 2) while inside, logged at debug level instead.

    decord prints its errors there itself, past any log level; the lock keeps two threads from
    swapping descriptor 2 at once. With `decoder_logs(True)` its words go to stderr as they come.
    """
    if not _quiet:
        yield
        return
    with _STDERR_LOCK, tempfile.TemporaryFile() as sink:
        sys.stderr.flush()
        saved = os.dup(2)
        os.dup2(sink.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            sink.seek(0)
            words = sink.read().decode(errors="replace").strip()
            if words:
                logger.debug("decord said: %s", words)


def _decord_frames(path: Path, wanted: np.ndarray, info: VideoInfo) -> np.ndarray:
    if decord is None:
        raise VideoError("decord is not installed (it ships wheels for x86-64 only)")
    try:
        with _stderr_to_debug():
            return decord.VideoReader(str(path), num_threads=_codec_threads()).get_batch(wanted).asnumpy()
    except Exception as err:  # decord raises bare RuntimeError/DECORDError subclasses
        raise VideoError(_decord_reason(err)) from err


_READERS = {"torchcodec": _torchcodec_frames, "decord": _decord_frames, "pyav": _straight_av}


def _decord_reason(err: Exception) -> str:
    text = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    if "st_nb >= 0" in text or "video stream" in text.lower():
        return "no video stream (audio-only or not a video)"
    if text.startswith("Error reading"):
        return "cannot open: not a video file or corrupt container"
    return f"decode failed: {_DECORD_PREFIX.sub('', text)[:160]}"


def _read_frame_folder(path: Path, choose: Chooser, frame_rate: float) -> Decoded:
    """A folder of frames: as many frames as images, the first image's size, `frame_rate`."""
    from PIL import Image, UnidentifiedImageError

    files = frame_files(path)
    if not files:
        raise VideoError(f"no frames ({', '.join(FRAME_EXTENSIONS)}) in the folder")

    def load(f: Path) -> Image.Image:
        try:
            image = Image.open(f)
            image.load()
        except (OSError, UnidentifiedImageError) as err:
            raise VideoError(f"frame {f.name} cannot be read: {err}") from err
        return image

    width, height = load(files[0]).size
    info = VideoInfo(len(files), float(frame_rate), width, height)
    if choose is None:
        return info, None, None
    indices = choose(info)
    decoded = {}
    for i in dict.fromkeys(int(i) for i in indices.ravel()):
        if not 0 <= i < len(files):
            raise VideoError(f"frame {i} requested, but the folder holds {len(files)} frames")
        image = load(files[i])
        if image.size != (width, height):
            raise VideoError(
                f"frame {files[i].name} is {image.size[0]}x{image.size[1]}, the first frame {width}x{height}"
            )
        decoded[i] = np.asarray(image.convert("RGB"))
    return info, np.stack([decoded[int(i)] for i in indices.ravel()]), indices
