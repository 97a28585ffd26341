"""The decoders that seek to the keyframe before each wanted frame: torchcodec and decord.

actrec.data.decoding hands them the frames of clips whose timestamps say where each frame is shown,
where the wanted frames lie further apart than the keyframes (long or HD videos). torchcodec is an
extra (it needs FFmpeg's shared libraries); decord ships x86-64 wheels only. Their own log lines never
reach the user: decord's C++ messages to stderr are captured and logged at debug level;
`decoder_logs(True)` (`actrec -v`) lets them, and FFmpeg's through PyAV, through.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import re
import sys
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import numpy as np

from actrec.data.clips import VideoError
from actrec.errors import first_line

try:
    import decord
except ImportError:  # pragma: no cover - depends on the platform's wheels
    decord = None

logger = logging.getLogger(__name__)

# decord starts its messages with "[hh:mm:ss] /its/build/path/file.cc:NN: ".
_DECORD_PREFIX = re.compile(r"^\[[0-9:]+\] \S+: ")
_STDERR_LOCK = threading.Lock()
_quiet = True


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


def codec_threads() -> int:
    """1 inside a DataLoader worker, else 0 (FFmpeg's own choice)."""
    data = sys.modules.get("torch.utils.data")
    return 1 if data is not None and data.get_worker_info() is not None else 0


def torchcodec_frames(path: Path, wanted: np.ndarray) -> np.ndarray:
    codec = _torchcodec()
    if codec is None:
        raise VideoError("torchcodec is not usable here (not installed, or FFmpeg's shared libraries are missing)")
    try:
        decoder = codec.decoders.VideoDecoder(
            str(path), seek_mode="exact", num_ffmpeg_threads=codec_threads(), dimension_order="NHWC"
        )
        return decoder.get_frames_at(wanted.tolist()).data.numpy()
    except Exception as err:  # torchcodec raises RuntimeError/ValueError/IndexError naming its C++ source
        raise VideoError(f"torchcodec: {first_line(err, 10_000).rsplit(', ', 1)[-1][:160]}") from err


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


def decord_frames(path: Path, wanted: np.ndarray) -> np.ndarray:
    if decord is None:
        raise VideoError("decord is not installed (it ships wheels for x86-64 only)")
    try:
        with _stderr_to_debug():
            return decord.VideoReader(str(path), num_threads=codec_threads()).get_batch(wanted).asnumpy()
    except Exception as err:  # decord raises bare RuntimeError/DECORDError subclasses
        raise VideoError(_decord_reason(err)) from err


def _decord_reason(err: Exception) -> str:
    text = first_line(err, 10_000)
    if "st_nb >= 0" in text or "video stream" in text.lower():
        return "no video stream (audio-only or not a video)"
    if text.startswith("Error reading"):
        return "cannot open: not a video file or corrupt container"
    return f"decode failed: {_DECORD_PREFIX.sub('', text)[:160]}"
