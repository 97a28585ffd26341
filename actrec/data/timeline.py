"""Frames as a player shows them: frame index i of a video is the picture on screen at time i / fps.

A decoder gives pictures with timestamps, not one per frame period: "not coded" placeholder packets and
dropped frames give none (FFmpeg's decoder skips them), a joined or variable-frame-rate video has gaps,
and an AVI's packed B-frames come out with their timestamps out of order. Numbering pictures as they come
would shift every later index. The frame at index i is instead the picture FFmpeg itself outputs there
at a constant rate (`ffmpeg -i CLIP -an -fps_mode cfr`): ConstantRate applies its rule (fftools'
video sync, "cfr") one picture at a time, so every decoding path, seeking or not, numbers frames alike,
and tests hold the frames equal to FFmpeg's own output on real clips.

The rule, as FFmpeg has it: each picture's time, counted in frame periods from the file's start, is
compared with the next index to fill. A picture on time fills it (and more, for a picture lasting
several periods); a picture later by more than 1.1 periods first repeats the previous picture and then
fills the gap itself (one period early); one earlier by more than 1.1 periods is dropped. A clip's frame
count is its stream's duration in frame periods (the header's count where every packet is a period, as
in AVI).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import av

# FFmpeg's thresholds (fftools: video sync, "cfr"): how far off, in frame periods, a picture may be before
# another is repeated in front of it or it is dropped, and where the previous picture stops being repeated.
LATE, EARLY, REPEAT_FROM = 1.1, -1.1, 0.6


def _rescale(value: int, source: Fraction, target: Fraction) -> int:
    """av_rescale_q: `value` in units of `source` as units of `target`, rounded to nearest, halves away from 0."""
    return _divide(value * source.numerator * target.denominator, source.denominator * target.numerator)


def _divide(numerator: int, denominator: int) -> int:
    """numerator / denominator (> 0) rounded to nearest, halves away from 0, in integers (once per picture)."""
    rounded = (2 * abs(numerator) + denominator) // (2 * denominator)
    return rounded if numerator >= 0 else -rounded


def _lrintf(value: float) -> int:
    """C's lrintf: rounded as a 32-bit float, halves to even."""
    return round(float(np.float32(value)))


@dataclass
class ConstantRate:
    """Which frame indices each decoded picture fills, at `rate` frames a second, pictures given in decoding
    output order with their timestamps in `time_base` units. `start` is the file's start in seconds (what
    FFmpeg counts times from); None takes the first picture's time (a live stream's)."""

    time_base: Fraction
    rate: Fraction
    start: Fraction | None = Fraction(0)
    next_index: int = 0
    _offset: int | None = None
    _recent: list[int] = field(default_factory=lambda: [0, 0, 0])

    def __post_init__(self) -> None:
        period = 1 / self.rate
        extra = min(max(29 - (period.denominator.bit_length() - 1), 0), 16)
        fine = Fraction(period.numerator, period.denominator << extra)
        self._scale = 1 << extra
        self._ratio = (self.time_base.numerator * fine.denominator, self.time_base.denominator * fine.numerator)
        if self.start is not None:
            self._offset = _rescale(int(self.start * 1_000_000), Fraction(1, 1_000_000), self.time_base)

    def place(self, timestamp: int | None) -> tuple[int, int]:
        """(indices the previous picture fills, indices this one fills) from `next_index` on, for a picture shown
        from `timestamp` (time_base units; None: unknown, the next index). A picture is taken to last one period:
        the durations decoders attach to pictures differ between FFmpeg's versions, and its output follows the
        times."""
        repeats, count = 0, 1
        if timestamp is not None:
            if self._offset is None:
                self._offset = timestamp
            at = _divide((timestamp - self._offset) * self._ratio[0], self._ratio[1]) / self._scale
            at += 1 / (1 << 17) if at > 0 else -1 / (1 << 17)  # FFmpeg's nudge off exact halves
            early = at - self.next_index
            delta = early + 1
            if early < 0 < delta:
                early = 0
            if delta < EARLY:
                count = 0
            elif delta > LATE:
                count = _lrintf(delta)
                if early > LATE:
                    repeats = round(early - REPEAT_FROM)
        repeats = min(repeats, count)
        self._recent = [repeats, *self._recent[:2]]
        self.next_index += count
        return repeats, count - repeats

    def last(self) -> int:
        """Indices the last picture fills once the stream has ended (FFmpeg: the median of the last repeats)."""
        return sorted(self._recent)[1]


def best_effort(reorder: bool = True):
    """A picture's time from its presentation and decoding stamps, as libavcodec guesses it (its
    best_effort_timestamp): the presentation stamps while they rise at least as steadily as the decoding
    ones. `reorder=False` takes the decoding stamps only: an AVI stores none but a packet's position, and its
    packed B-frames come out stamped out of order."""
    faulty_pts = faulty_dts = 0
    last_pts = last_dts = -math.inf

    def guess(pts: int | None, dts: int | None) -> int | None:
        nonlocal faulty_pts, faulty_dts, last_pts, last_dts
        if not reorder:
            return dts if dts is not None else pts
        if dts is not None:
            faulty_dts += dts <= last_dts
            last_dts = dts
        elif pts is not None:
            last_dts = pts
        if pts is not None:
            faulty_pts += pts <= last_pts
            last_pts = pts
        elif dts is not None:
            last_pts = dts
        return pts if pts is not None and (faulty_pts <= faulty_dts or dts is None) else dts

    return guess


def positions(clock: ConstantRate, times: list[int], frames: int) -> np.ndarray:
    """For each of `frames` indices, the position (in `times`' order) of the picture shown there, -1 past the
    last picture's: `times` are the pictures' in the order a seeking decoder numbers them (time order)."""
    out = np.full(frames, -1, dtype=np.int64)
    for k, time in enumerate(times):
        if clock.next_index >= frames:
            break
        at = clock.next_index
        repeats, count = clock.place(time)
        out[at : at + repeats] = max(k - 1, 0)
        out[at + repeats : at + repeats + count] = k
    else:
        at = clock.next_index
        out[at : at + clock.last()] = len(times) - 1
    return out


def is_avi(container: av.container.InputContainer) -> bool:
    return "avi" in container.format.name.split(",")


def clock_of(container: av.container.InputContainer, stream: av.VideoStream) -> ConstantRate | None:
    """The stream's constant-rate timeline at the rate FFmpeg guesses for it (its r_frame_rate, unless that is
    implausible: av_guess_frame_rate), counted from the file's start (a live stream's: its first picture);
    None where it says no rate."""
    rate = stream.guessed_rate or stream.average_rate
    if not rate or not stream.time_base:
        return None
    start = Fraction(container.start_time, 1_000_000) if container.start_time is not None else None
    return ConstantRate(Fraction(stream.time_base), Fraction(rate), start)


def _packet_time(packet: av.Packet) -> tuple[int | None, int]:
    return (packet.pts if packet.pts is not None else packet.dts), packet.duration or 0


def positions_in(container: av.container.InputContainer, stream: av.VideoStream, frames: int) -> np.ndarray:
    """For each frame index, the position of the picture shown there among the stream's pictures in time order
    (as seeking decoders number them), from the packets' times: demuxing, not decoding."""
    clock = clock_of(container, stream)
    times = sorted(t for t, _ in (_packet_time(p) for p in container.demux(stream) if p.size) if t is not None)
    if clock is None:
        return np.arange(min(frames, len(times)))
    return positions(clock, times, frames)


def frame_count(container: av.container.InputContainer, stream: av.VideoStream) -> int:
    """The stream's duration in frames at its rate (clock_of), counted from the file's start: from the header
    where it counts frames (AVI, MP4), else from the packets' times (Matroska, WebM: demuxing, not decoding);
    without a rate, the header's count or the packets counted."""
    clock = clock_of(container, stream)
    if clock is None:
        return stream.frames or sum(1 for packet in container.demux(stream) if packet.size)
    if stream.frames and stream.duration:
        end = (stream.start_time or 0) + stream.duration
    else:
        period = round(1 / (clock.rate * clock.time_base))
        times = [_packet_time(p) for p in container.demux(stream) if p.size]
        end = max((t + (d or period) for t, d in times if t is not None), default=None)
        if end is None:
            return 0
    return math.floor((end * clock.time_base - (clock.start or 0)) * clock.rate + Fraction(1, 2))


def shown(container: av.container.InputContainer, stream: av.VideoStream) -> Iterator[tuple[int, av.VideoFrame]]:
    """(index, picture shown there) for every frame index in turn, as FFmpeg outputs them at a constant rate,
    decoding the stream once: a picture fills as many indices as it is on screen, a placeholder or dropped
    frame none."""
    clock = clock_of(container, stream)
    stamp = best_effort(reorder=not is_avi(container))
    index, previous = 0, None
    for frame in container.decode(stream):
        repeats, count = (0, 1) if clock is None else clock.place(stamp(frame.pts, frame.dts))
        for _ in range(repeats):
            yield index, previous if previous is not None else frame
            index += 1
        for _ in range(count):
            yield index, frame
            index += 1
        previous = frame
    for _ in range(clock.last() if clock is not None and previous is not None else 0):
        yield index, previous
        index += 1
