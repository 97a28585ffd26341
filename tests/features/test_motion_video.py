"""The motion stream and video models as feature sources, on real UCF-101 clips at tiny sizes (random init):
flow histograms point where real content moves, a window around each sampled frame holds FFmpeg's own frames
at the model's rate, each source gives a feature per sampled frame, a joined source its parts' side by side,
and the features of frames decoded apart (windows along a video, live streams) are the extracted ones."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torchvision.models

from actrec.data.decoding import read_clip, read_frames, video_info
from actrec.data.sampling import Window
from actrec.errors import ActrecError
from actrec.features.extractor import extract_features
from actrec.features.motion import FlowDescriptor, MotionSettings
from actrec.features.sources import build_source
from actrec.names import VIDEO_MODELS
from actrec.params import parse_params
from tests.features import RUNTIME
from tests.helpers import ffmpeg_frames

PAN = 6  # px per frame the window slides over a real frame (4 px at the descriptor's 160 px)
CLIP = "UCF-101/UnevenBars/v_UnevenBars_g04_c01.avi"  # packed B-frames: pictures come out stamped out of order


def _pan(frame: np.ndarray, steps: int, step: int = PAN) -> np.ndarray:
    """A camera panning right over a real frame: its content moves left by `step` px a frame."""
    return np.stack([frame[20:220, 10 + step * k : 250 + step * k] for k in range(steps)])


def test_flow_histograms_point_where_real_content_moves(ucf_mini) -> None:
    frame = read_frames(ucf_mini / CLIP, np.array([0]))[0]
    settings = MotionSettings(grids=(1, 2))
    describe = FlowDescriptor(settings)
    hof = slice(0, settings.bins + 1)  # the whole frame's HOF: 8 orientations and the still bin
    left = describe(_pan(frame, 2)[None])[0]
    right = describe(_pan(frame, 2)[None, ::-1].copy())[0]
    assert np.argmax(left[hof]) == 4, "content moving left: the orientation at 180°"
    assert np.argmax(right[hof]) == 0, "the same frames backwards: 0°"
    faster = describe(_pan(frame, 2, 2 * PAN)[None])[0]
    assert faster[-3] > left[-3] + 0.3, "twice the speed: a larger log mean magnitude"
    assert left[-2:].max() < 0.2 * left[-3], "a pan moves every pixel alike: motion boundaries far weaker than it"
    still = describe(np.stack([frame, frame])[None])[0]
    assert np.argmax(still[hof]) == settings.bins, "frames that do not move fill the still bin"
    assert left.shape == (settings.feature_dim,) and np.isfinite(left).all()


def test_windows_hold_ffmpegs_frames_at_the_model_rate_around_each_sampled_frame(ucf_mini) -> None:
    clip = ucf_mini / CLIP
    info = video_info(clip)
    window = Window(4, rate=12.5)  # a 25 frames/s clip: every other frame
    frames, indices = read_clip(clip, 3, window=window)
    positions = window.positions(indices, info.frames, info.fps)
    assert frames.shape[0] == 12 and (np.diff(positions, axis=-1) == 2).all()
    assert (positions[..., 1] <= indices).all() and (indices <= positions[..., 2]).all(), "centred on each"
    reference = ffmpeg_frames(clip)[positions.ravel()]  # as `ffmpeg -fps_mode cfr` outputs them
    assert np.abs(frames.astype(np.int16) - reference).reshape(12, -1).mean(1).max() < 2
    assert window.positions(np.array([info.frames - 1]), info.frames, info.fps).max() == info.frames - 1
    assert window.positions(np.array([1]), 200, 25).tolist() == [[0, 2, 4, 6]], "moved inside at the start"
    assert Window(4).positions(np.array([1]), 3, 25).tolist() == [[0, 1, 2, 2]], "a short clip repeats its last"
    assert Window(4).positions(np.array([100]), None, 25).tolist() == [[99, 100, 101, 102]], "a live stream's"


def _features(source, clips: list, frames: int) -> tuple[list, object]:
    choice = source.choose(RUNTIME, "auto", "fp32", lambda *_: 0)
    runtime = RUNTIME.running(choice.engine, choice.precision)
    embedder = source.embedder(runtime, frames, choice)
    keys = [str(c) for c in clips]
    return list(extract_features(clips, keys, source, embedder, runtime, frames=frames, views=1, seed=0)), embedder


def _decoded_apart(source, embedder, clip, indices: np.ndarray) -> np.ndarray:
    """The features of the sampled frames from frames decoded apart, as windows along a video and live streams
    get them (FeatureSource.context, then embed_frames)."""
    info = video_info(clip)
    contexts = source.context(indices, info.frames, info.fps)
    frames = read_frames(clip, contexts.ravel())
    return source.embed_frames(embedder, frames.reshape(*contexts.shape, *frames.shape[1:]))


@pytest.mark.parametrize(
    "name, options, frames, dim",
    [
        ("hofmbh", {}, 3, 353),
        ("r2plus1d_18", {"image_size": 64, "clip_len": 4}, 2, 512),
    ],
)
def test_each_source_gives_a_feature_per_sampled_frame_of_real_clips(ucf_mini, name, options, frames, dim) -> None:
    source = build_source(name, None, **options)
    clip = ucf_mini / CLIP
    done, embedder = _features(source, [clip, clip.with_name("absent.avi")], frames)
    (_, feats, indices, error), (_, none, _, missing) = done
    assert source.feature_dim == dim and not error
    assert feats.shape == (1, frames, dim) and np.isfinite(feats).all() and indices.shape == (1, frames)
    assert none is None and "absent.avi" in missing, "a clip that cannot be read is its reason, not an exception"
    np.testing.assert_allclose(_decoded_apart(source, embedder, clip, indices[0]), feats[0], atol=2e-3)


def test_a_joined_source_gives_its_parts_features_side_by_side(ucf_mini) -> None:
    clip = ucf_mini / CLIP
    joined = build_source("efficientnet_lite0", "imagenet", 64, motion="hofmbh")
    appearance, motion = joined.parts()
    [(_, got, indices, _)], embedder = _features(joined, [clip], 3)
    assert joined.feature_dim == appearance.feature_dim + motion.feature_dim == got.shape[-1]
    np.testing.assert_array_equal(got[..., appearance.feature_dim :], _features(motion, [clip], 3)[0][0][1])
    np.testing.assert_allclose(got[..., : appearance.feature_dim], _features(appearance, [clip], 3)[0][0][1], atol=2e-3)
    np.testing.assert_allclose(_decoded_apart(joined, embedder, clip, indices[0]), got[0], atol=2e-3)
    with pytest.raises(ActrecError, match="optical flow, which no ONNX or TorchScript graph holds"):
        joined.export_network()


def test_the_video_models_named_are_torchvisions_without_their_classifier() -> None:
    assert set(VIDEO_MODELS) == set(torchvision.models.list_models(module=torchvision.models.video))
    s3d = build_source("s3d", None)  # its classifier is a 1×1×1 convolution, not a linear layer
    assert s3d.feature_dim == 1024 and isinstance(s3d.video.network.model.classifier[1], torch.nn.Identity)
    assert s3d.window == Window(32, 15.0), "auto: its weights' frame rate, their clip length (128) cut to 32"
    with pytest.raises(ActrecError, match="s3d cannot take windows of 4 frames of 224 px"):
        s3d.embed_frames(s3d.embedder(RUNTIME, 1), np.zeros((1, 4, 48, 64, 3), np.uint8))


@pytest.mark.parametrize(
    "extract, key, hint",
    [
        ({"backbone": "r2plus1d_18", "weights": "imagenet"}, "extract.weights", "kinetics400"),
        ({"backbone": "r2plus1d18"}, "extract.backbone", "did you mean 'r2plus1d_18'"),
        ({"motion": "flow"}, "extract.motion", "'hofmbh' or null"),
        ({"backbone": "hofmbh", "motion": "hofmbh"}, "extract.motion", "no video frames' features to join it to"),
        ({"clip_len": 0}, "extract.clip_len", ">= 1"),
        ({"clip_len": 8}, "extract.clip_len", "auto with extract.backbone efficientnet_lite0"),
    ],
)
def test_params_name_the_motion_and_video_settings_they_refuse(extract, key, hint) -> None:
    with pytest.raises(ActrecError, match=key) as err:
        parse_params({"extract": extract})
    assert hint in str(err.value) and "\n" not in str(err.value)


def test_finetuning_is_refused_without_an_image_network() -> None:
    refused = {"extract": {"backbone": "r3d_18", "weights": None}, "finetune": {"enabled": True}}
    with pytest.raises(ActrecError, match=r"finetune\.enabled = True .* false with extract\.backbone r3d_18"):
        parse_params(refused)
