"""Clip decoding: one loader for video files and for folders of frames, the container opened once per read.

Which decoder reads a video was measured (figures: docs, Benchmarks → Decoding paths), and is a rule rather than
a per-machine trial: per CPU-second, what decides where decoding and the model share the cores, the rule and
measurement agree, while a short trial on a busy CPU would time the share of a core each decoder got. PyAV opens
every video first, for its frame count, rate and size (so every path samples the same frames), then:

- where the sampled frames lie closer together than the keyframes (short or low-resolution clips:
  UCF-101, HMDB-51, phone clips), PyAV reads straight through, in the container it opened: every frame
  decoded once, in order, only the sampled ones converted to RGB (on UCF-101 1.8 times decord's sampled
  frames per CPU-second);
- where they lie further apart (long or HD videos: Kinetics, films, 1080p recordings), a decoder that
  seeks to the keyframe before each: torchcodec where FFmpeg's shared libraries are on the machine
  (`pip install actrec[torchcodec]`, `apt-get install ffmpeg`; it also skips a seek whenever decoding
  on is shorter), else decord (x86-64 wheels only);
- AVI files and MPEG-4 Part 2 streams (XviD, DivX) are always read straight through: their timestamps
  do not say where a frame is shown, and decoders that seek land frames off.

Frame i is the picture a player shows at time i / fps, FFmpeg's own output at a constant rate
(timeline.py): reading straight through places each decoded picture by its time, a seeking decoder is given
the position of the picture shown at each index. A decoder that fails on a file hands it to PyAV straight
through (decord rejects some valid widths), and every path gives FFmpeg's frames: tests/data/test_decoding.py
holds them equal on real clips.
Inside a DataLoader worker each decoder runs one codec thread (a worker is a core: the most frames
per CPU-second); elsewhere FFmpeg picks its thread count, for the latency of one video.

A folder of JPEG or PNG frames is a clip too (MMAction2's rawframes `img_00001.jpg`, Jester's
`00001.jpg`): its frames in name order, its frame rate a parameter (`dataset.frame_rate`).

Which frames to take is actrec.data.sampling's; what a clip is (finding, naming, fingerprinting) is
actrec.data.clips'. The decoders' own log lines never reach the user: FFmpeg's are off, decord's C++
messages to stderr are captured and logged at debug level; `decoder_logs(True)` (`actrec -v`) lets them
through. Any failure surfaces as VideoError with a short reason, which the stages report and skip.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from actrec.data import seeking
from actrec.data.clips import FRAME_EXTENSIONS, VideoError, VideoInfo, frame_files
from actrec.data.sampling import FRAME, Window, sample_indices, spacing
from actrec.data.timeline import clock_of, frame_count, is_avi, positions_in, shown

if TYPE_CHECKING:
    import av

logger = logging.getLogger(__name__)

DECODERS = ("auto", "torchcodec", "pyav", "decord")
# Which frames the loader gives for a clip; part of the feature cache's key, so cached features of frames decoded
# otherwise are not reused. 2: AVI and MPEG-4 Part 2 read straight through (seeking landed some frames off).
# 3: frame i is the picture shown at time i / fps, as FFmpeg outputs it at a constant rate (timeline.py), not the
# i-th picture decoded (which placeholder frames and gaps shifted), and the rate is the one FFmpeg plays at.
FRAMES_VERSION = 3
DEFAULT_FRAME_RATE = 30.0  # a folder of frames does not say its rate: dataset.frame_rate's default
# Packets read from a video's start to measure its keyframe interval (demuxing only: a millisecond or two).
KEYFRAME_PROBE_PACKETS = 300

Chunks = list[np.ndarray]


def video_info(path: str | Path, frame_rate: float = DEFAULT_FRAME_RATE) -> VideoInfo:
    """Frame count, frame rate and size of a clip, or VideoError if it cannot be opened.

    `frame_rate` is a frame folder's rate (a video says its own).
    """
    return _read(Path(path), None, "auto", frame_rate)[0]


def read_clip(
    path: str | Path,
    frames: int,
    views: int = 1,
    seed: int | None = None,
    sampling: str = "uniform",
    stride: int = 1,
    decoder: str = "auto",
    window: Window = FRAME,
) -> tuple[np.ndarray, np.ndarray]:
    """Sample (as sample_indices does) and decode views × frames windows of frames (`window`: the sampled frame
    alone unless given): uint8 (views·frames·window.length, H, W, 3) and the sampled indices (views, frames).

    The frame count comes from the opened clip itself, so no clip table is needed (predict).
    """
    sampled: list[np.ndarray] = []

    def choose(info: VideoInfo) -> Chunks:
        sampled.append(sample_indices(info.frames, frames, views, seed, sampling, stride))
        return [window.positions(sampled[0], info.frames, info.fps)]

    _, decoded, _ = _read(Path(path), choose, decoder)
    return next(decoded), sampled[0]


def read_frames(path: str | Path, indices: np.ndarray, decoder: str = "auto") -> np.ndarray:
    """uint8 frames (n, H, W, 3) at `indices`, for callers that choose their own frames.

    `decoder` names one path (torchcodec, pyav: straight through, decord: seeking) with no fallback,
    for comparing them; `auto` chooses as the module docstring says.
    """
    wanted = np.asarray(indices, dtype=np.int64).ravel()
    return next(_read(Path(path), lambda info: [wanted], decoder)[1])


def frame_chunks(path: str | Path, chunks: Chunks) -> Iterator[np.ndarray]:
    """uint8 frames (n, H, W, 3) of each chunk of ascending indices in turn (a long video's windows, a bounded
    number of frames in memory at once): read straight through, the clip is decoded once for all chunks;
    where `auto` seeks, each chunk is read by itself."""
    return _read(Path(path), lambda info: chunks, "auto")[1]


def decoding_path(path: str | Path, frames: int = 16) -> str:
    """The decoder `auto` tries first for `frames` uniformly sampled frames of this clip (for reports)."""
    path = Path(path)
    if path.is_dir():
        return "frames"
    return _read(path, lambda info: [sample_indices(info.frames, frames)], "auto", plan_only=True)[2][0]


Chooser = Callable[[VideoInfo], Chunks] | None
Read = tuple[VideoInfo, Iterator[np.ndarray] | None, Chunks | list[str] | None]


def _read(
    path: Path, choose: Chooser, decoder: str, frame_rate: float = DEFAULT_FRAME_RATE, plan_only: bool = False
) -> Read:
    """(info, frames of each chunk in turn, the chunks `choose` picks from the info): one opening of the clip.

    The info always comes from PyAV's reading of the container, so every path samples the same frames; the
    frames from the first path chosen that can decode them, each failure logged at debug level. PyAV straight
    through decodes in the container opened for the info. `plan_only`: the paths in place of the chunks.
    """
    if decoder not in DECODERS:
        raise ValueError(f"unknown decoder {decoder!r}; expected one of {', '.join(DECODERS)}")
    if path.is_dir():
        return _read_frame_folder(path, choose, frame_rate)
    _check_file(path)
    import av

    try:
        container = av.open(str(path))
    except av.FFmpegError as err:
        raise VideoError(f"cannot open: {_av_reason(err)}") from err
    try:
        stream, info = _stream_info(container)
        if choose is None:
            container.close()
            return _checked(info), None, None
        chunks = choose(_checked(info))
        timed = _timed(container, stream)
        paths = _paths(container, stream, np.concatenate(chunks), timed) if decoder == "auto" else [decoder]
        if plan_only:
            container.close()
            return info, None, paths
        container.seek(0)  # packets may have been read for the count or the keyframes: from the start again
        if paths[0] != "pyav":
            if not timed:
                raise VideoError(
                    f"{paths[0]} cannot tell where an AVI's or MPEG-4 Part 2 stream's frames are shown; "
                    "PyAV reads it straight through (decoder auto or pyav)"
                )
            where = positions_in(container, stream, info.frames)
            container.close()
            return info, _seeking_chunks(path, chunks, info, paths, where), chunks
    except av.FFmpegError as err:
        container.close()
        raise VideoError(f"cannot open: {_av_reason(err)}") from err
    except BaseException:
        container.close()
        raise
    return info, _taken(_straight_chunks(container, chunks), chunks), chunks


def _taken(found: Iterator[dict[int, np.ndarray]], chunks: Chunks) -> Iterator[np.ndarray]:
    for frames, chunk in zip(found, chunks, strict=True):
        yield np.stack([frames[int(i)] for i in chunk.ravel()])


def _seeking_chunks(
    path: Path, chunks: Chunks, info: VideoInfo, paths: list[str], where: np.ndarray
) -> Iterator[np.ndarray]:
    """Each chunk read by itself by the first of `paths` that can (one decoder named: that one, no fallback);
    a seeking decoder takes the picture at each index by its position among the stream's (`where`)."""
    for chunk in chunks:
        wanted = chunk.ravel()
        for n, name in enumerate(paths):
            if name == "pyav":
                frames = _straight_av(path, wanted)
                break
            try:
                frames = _SEEKERS[name](path, _shown_at(where, wanted))
                break
            except VideoError as err:
                if n == len(paths) - 1:
                    raise
                logger.debug("%s cannot decode %s (%s); PyAV reads it straight through", name, path, err)
        yield frames


def _shown_at(where: np.ndarray, wanted: np.ndarray) -> np.ndarray:
    """The positions of the pictures shown at `wanted` indices; VideoError for one past the stream's end."""
    beyond = wanted[(wanted >= len(where)) | (where[np.minimum(wanted, len(where) - 1)] < 0)]
    if len(beyond):
        shown = int(np.argmax(where < 0)) if (where < 0).any() else len(where)
        raise VideoError(f"frame {beyond.min()} requested, but the video ends after {shown} frames (cut off?)")
    return where[wanted]


def _stream_info(container: av.container.InputContainer) -> tuple[av.VideoStream, VideoInfo]:
    """The first video stream, and its frame count (timeline.frame_count), rate and size."""
    if not container.streams.video:
        raise VideoError("no video stream (audio-only or not a video)")
    stream = container.streams.video[0]
    clock = clock_of(container, stream)
    return stream, VideoInfo(frame_count(container, stream), float(clock.rate) if clock else 0.0, *_size(stream))


def _size(stream: av.VideoStream) -> tuple[int, int]:
    return stream.codec_context.width, stream.codec_context.height


def _timed(container: av.container.InputContainer, stream: av.VideoStream) -> bool:
    """Whether the stream's timestamps say where its frames are shown (not AVI, not MPEG-4 Part 2: see _paths)."""
    return stream.codec_context.name != "mpeg4" and not is_avi(container)


def _paths(
    container: av.container.InputContainer, stream: av.VideoStream, wanted: np.ndarray, timed: bool
) -> list[str]:
    """The decoders to try, in order, for these frames of this stream; PyAV straight through last, always.

    Seeking pays only where the wanted frames lie further apart than the keyframes; closer together,
    reading straight through decodes no more frames and, in one thread, waits on none. Seeking decoders
    number pictures by their timestamps: AVI records no display times, and MPEG-4 Part 2 streams made for it
    (XviD, DivX: UCF-101, HMDB-51) keep packed B-frames and placeholder packets even when copied into
    MP4 or Matroska; there torchcodec and decord land one to six frames off (on 15 to 42 of the 305
    real clips here; decord's sparse reads even disagree with its own dense ones), so only reading
    straight through is right.
    """
    if not timed or spacing(wanted) <= _keyframe_interval(container, stream):
        return ["pyav"]
    seekers = (["torchcodec"] if seeking.torchcodec_usable() else []) + (
        ["decord"] if seeking.decord is not None else []
    )
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


def _straight_av(path: Path, wanted: np.ndarray) -> np.ndarray:
    """Every frame decoded once, in order, up to the last wanted one; only the wanted ones converted to RGB
    (the fallback of a seeking decoder, in a container of its own)."""
    import av

    try:
        container = av.open(str(path))
    except av.FFmpegError as err:
        raise VideoError(f"cannot open: {_av_reason(err)}") from err
    return next(_taken(_straight_chunks(container, [wanted]), [wanted]))


def _straight_chunks(container: av.container.InputContainer, chunks: Chunks) -> Iterator[dict[int, np.ndarray]]:
    """{index: RGB frame} for each chunk of ascending indices in turn, from one pass through the stream of
    this open container (closed at the end); a picture shown at several wanted indices is converted once."""
    import av

    reached, rgb = 0, (None, None)
    try:
        with container:
            stream = container.streams.video[0]
            stream.thread_type, stream.thread_count = "AUTO", seeking.codec_threads()
            frames = shown(container, stream)
            for chunk in chunks:
                targets, found = {int(i) for i in np.unique(chunk)}, {}
                last = max(targets)
                while len(found) < len(targets) and reached <= last:
                    step = next(frames, None)
                    if step is None:
                        break
                    i, frame = step
                    reached = i + 1
                    if i in targets:
                        if rgb[0] is not frame:
                            rgb = (frame, frame.to_ndarray(format="rgb24"))
                        found[i] = rgb[1]
                missing = targets - found.keys()
                if missing:
                    raise VideoError(
                        f"frame {min(missing)} requested, but the video ends after {reached} frames (cut off?)"
                    )
                yield found
    except av.FFmpegError as err:
        raise VideoError(f"decode failed after {reached} frames: {_av_reason(err)}") from err


_SEEKERS = {"torchcodec": seeking.torchcodec_frames, "decord": seeking.decord_frames}


def _read_frame_folder(path: Path, choose: Chooser, frame_rate: float) -> Read:
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
    chunks = choose(info)

    def frames() -> Iterator[np.ndarray]:
        for chunk in chunks:
            decoded = {}
            for i in dict.fromkeys(int(i) for i in chunk.ravel()):
                if not 0 <= i < len(files):
                    raise VideoError(f"frame {i} requested, but the folder holds {len(files)} frames")
                image = load(files[i])
                if image.size != (width, height):
                    raise VideoError(
                        f"frame {files[i].name} is {image.size[0]}x{image.size[1]}, the first frame {width}x{height}"
                    )
                decoded[i] = np.asarray(image.convert("RGB"))
            yield np.stack([decoded[int(i)] for i in chunk.ravel()])

    return info, frames(), chunks
