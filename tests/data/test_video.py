"""Frame sampling and decoding on real encoded videos."""

from __future__ import annotations

import numpy as np
import pytest

from actrec.data.video import VideoError, read_clip, sample_indices, video_info
from tests.helpers import write_video


@pytest.mark.parametrize("num_frames", [1, 5, 15, 16, 17, 100, 1001])
def test_sample_indices_count_and_range(num_frames: int) -> None:
    idx = sample_indices(num_frames, 16)
    assert idx.shape == (1, 16)
    assert idx.min() >= 0 and idx.max() <= num_frames - 1
    assert np.all(np.diff(idx[0]) >= 0), "uniform sampling keeps temporal order"


def test_sample_indices_uniform_centres() -> None:
    assert sample_indices(160, 16)[0].tolist() == list(range(5, 160, 10))


def test_short_clip_repeats_frames() -> None:
    idx = sample_indices(5, 16)[0]
    assert sorted(set(idx.tolist())) == [0, 1, 2, 3, 4], "every frame of a short clip is used"
    assert len(idx) == 16


def test_jittered_clips_stay_in_their_segments_and_are_seeded() -> None:
    idx = sample_indices(160, 16, views=4, seed=7)
    assert idx.shape == (4, 16)
    segments = idx // 10
    assert np.all(segments == np.arange(16)), "each jittered frame stays in its own segment"
    assert not np.array_equal(idx[1], idx[2])
    assert np.array_equal(idx, sample_indices(160, 16, views=4, seed=7))


def test_zero_frames_is_an_error() -> None:
    with pytest.raises(VideoError):
        sample_indices(0, 16)


def test_read_clip_decodes_the_sampled_frames_in_order(tmp_path) -> None:
    path = write_video(tmp_path / "v.avi", frames=40, width=64, height=48)
    info = video_info(path)
    assert (info.frames, info.width, info.height) == (40, 64, 48)
    frames, idx = read_clip(path, 8)
    assert frames.shape == (8, 48, 64, 3) and frames.dtype == np.uint8
    brightness = frames.reshape(8, -1).mean(1)
    assert np.all(np.diff(brightness) > 0), "frames come back in temporal order"
    assert idx.tolist() == [sample_indices(40, 8)[0].tolist()]


def test_read_clip_of_short_video_repeats(tmp_path) -> None:
    frames, idx = read_clip(write_video(tmp_path / "short.mp4", frames=3), 16)
    assert frames.shape[0] == 16 and set(idx[0].tolist()) == {0, 1, 2}


@pytest.mark.parametrize(
    "content, reason",
    [(b"", "empty"), (b"not a video at all\n", "cannot open"), (np.random.default_rng(0).bytes(20000), "cannot open")],
)
def test_unreadable_files_raise_video_error(tmp_path, content: bytes, reason: str) -> None:
    path = tmp_path / "bad.avi"
    path.write_bytes(content)
    with pytest.raises(VideoError, match=reason):
        video_info(path)
    with pytest.raises(VideoError):
        read_clip(path, 16)
