"""Which frames of a clip are taken: uniform segment centres, seeded jitter, repeats for short clips."""

from __future__ import annotations

import numpy as np
import pytest

from actrec.data.clips import VideoError
from actrec.data.sampling import sample_indices


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
