"""The Predictor on a model trained by the pipeline's own stages: a folder's batches, by whatever engine repays them
on this machine, agree with one clip at a time, and windows along a video are sampled as whole clips were."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from actrec.data import decoding
from actrec.inference.inputs import Span
from actrec.inference.predictor import Predictor, context_frames
from tests.helpers import write_video


@pytest.fixture(scope="module")
def predictor(trained_run: Path) -> Predictor:
    return Predictor(trained_run / "models", device="cpu")


def test_many_videos_in_batches_agree_with_one_at_a_time(trained_run: Path) -> None:
    """A folder (32 clips x 4 frames) runs in batches, by the engine its length repays here (a CPU runtime where
    one is installed); a single clip never pays an engine's set-up and runs eager; the engine is set up once
    per Predictor; the probabilities agree whichever engine ran (features stored as float16 either way)."""
    paths = sorted((trained_run / "videos").rglob("*.avi"))
    many, single = Predictor(trained_run / "models", device="cpu"), Predictor(trained_run / "models", device="cpu")
    together = [p.probs for p in many.predict(paths * 2)]
    one_by_one = [next(single.predict([path])).probs for path in paths]
    assert single.runner(0).engine == "eager"
    assert many.runner(10**6) is many.runner(0), "set up once, for the first job"
    np.testing.assert_allclose(together, one_by_one * 2, atol=2e-3)


def test_windows_in_seconds_and_short_videos(predictor: Predictor, tmp_path: Path) -> None:
    video = write_video(tmp_path / "long.avi", frames=100, fps=25, seed=3)
    table = predictor.windows(video, Span.parse("1s"), Span.parse("0.6s"))  # 25-frame windows, 15-frame steps
    assert table["start_s"].tolist() == pytest.approx([s / 25 for s in (0, 15, 30, 45, 60, 75)])
    assert (table["end_s"] - table["start_s"]).tolist() == pytest.approx([1.0] * 6)
    short = predictor.windows(write_video(tmp_path / "short.avi", frames=10, fps=25), Span(16), Span(8))
    assert short[["start_s", "end_s"]].values.tolist() == [[0.0, 0.4]], "a short video is one window"
    # The first window of a video sampled as a whole clip is the clip's own prediction.
    whole = predictor.windows(video, Span(100), Span(100))
    (clip,) = predictor.predict([video])
    assert whole[predictor.classes].to_numpy()[0] == pytest.approx(clip.probs, abs=1e-4)


def test_windows_of_interleaved_frames_get_every_frame_they_name(ucf_mini: Path) -> None:
    """A video model's windows take every 4th frame around each sampled one, so neighbouring windows interleave
    (0, 4, 8 … and 1, 5, 9 …): the one pass through the clip still hands each window exactly its frames."""
    clip = sorted((ucf_mini / "UCF-101").rglob("*_g01_c01.avi"))[0]
    contexts = np.array([[0, 4, 8, 12], [1, 5, 9, 13], [2, 6, 10, 14], [20, 24, 28, 32]])
    every = next(decoding.frame_chunks(clip, [np.arange(33)]))
    read = list(context_frames(clip, contexts, chunk=4))  # one row a step
    assert [done for done, _ in read] == [1, 2, 3, 4]
    np.testing.assert_array_equal(np.concatenate([frames for _, frames in read]), every[contexts])
