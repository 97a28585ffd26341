"""Hugging Face video encoders as a feature source, on real UCF-101 clips with a tiny VideoMAE written to a local
folder (no network): a feature per sampled frame's window, the folder's weights loaded exactly, random init from
the config, and params naming what they refuse."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from actrec.data.decoding import read_frames, video_info
from actrec.errors import ActrecError
from actrec.features.sources import build_source
from actrec.params import parse_params
from tests.features import RUNTIME
from tests.features.test_motion_video import _decoded_apart, _features

CLIPS = ("UCF-101/UnevenBars/v_UnevenBars_g04_c01.avi", "UCF-101/VolleyballSpiking/v_VolleyballSpiking_g01_c01.avi")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A VideoMAE of one layer on 4-frame windows (tubelets of 2) of 32 px, and its processor config."""
    from transformers import VideoMAEConfig, VideoMAEImageProcessor, VideoMAEModel

    folder = tmp_path_factory.mktemp("hf") / "videomae-tiny"
    config = VideoMAEConfig(
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=64,
        image_size=32,
        patch_size=16,
        num_frames=4,
        tubelet_size=2,
    )
    torch.manual_seed(1)
    model = VideoMAEModel(config).eval()
    model.save_pretrained(folder)
    processor = VideoMAEImageProcessor(size={"shortest_edge": 36}, crop_size={"height": 32, "width": 32})
    processor.save_pretrained(folder)
    return folder, model


def test_a_local_encoder_gives_its_own_pooled_output_per_window_of_real_clips(ucf_mini, tiny) -> None:
    folder, model = tiny
    source = build_source(f"hf:{folder}", "huggingface")
    assert source.feature_dim == 32 and source.window.length == 4, "D and the window read from the config"
    clips = [ucf_mini / c for c in CLIPS]
    done, embedder = _features(source, clips, 3)
    assert len(done) == 2
    for clip, (_, feats, indices, error) in zip(clips, done, strict=True):
        assert not error and feats.shape == (1, 3, 32) and np.isfinite(feats).all()
        # The model's own forward on the same windows, prepared and normalised as its processor config says
        info = video_info(clip)
        contexts = source.context(indices[0], info.frames, info.fps)
        frames = torch.from_numpy(read_frames(clip, contexts.ravel()))
        prepared = source.video.preprocessing.prepare(frames).float() / 255
        x = ((prepared - 0.5) / 0.5).view(3, 4, 3, 32, 32)
        with torch.inference_mode():
            expected = model(pixel_values=x).last_hidden_state.mean(1).numpy()
        np.testing.assert_allclose(feats[0], expected, atol=2e-3)
        np.testing.assert_allclose(_decoded_apart(source, embedder, clip, indices[0]), feats[0], atol=2e-3)
    assert source.identity()["weights_id"].startswith("sha256:") and not source.random_init
    with pytest.raises(ActrecError, match="export the head alone"):
        source.export_network()


def test_random_init_builds_from_the_config_and_a_missing_repo_is_one_line(ucf_mini, tiny) -> None:
    folder, model = tiny
    random = build_source(f"hf:{folder}", None)
    assert random.random_init and random.identity()["weights_id"].startswith("random init of config")
    [(_, feats, _, error)], _ = _features(random, [ucf_mini / CLIPS[0]], 2)
    assert not error and feats.shape == (1, 2, 32)
    weights = random.video.network.model.state_dict()
    assert any(not torch.equal(v, model.state_dict()[k]) for k, v in weights.items()), "not the saved weights"
    with pytest.raises(ActrecError, match="tubelets of 2 frames") as err:
        build_source(f"hf:{folder}", None, clip_len=3)
    with pytest.raises(ActrecError, match=r"hf:actrec-absent/videomae is not on this machine .*hf download") as err:
        build_source("hf:actrec-absent/videomae", "huggingface")
    assert "\n" not in str(err.value)
    windows = np.zeros((1, 2, 40, 40, 3), np.uint8)  # 2 frames: one tubelet, not the 4 frames its positions take
    short = build_source(f"hf:{folder}", None, clip_len=2)
    with pytest.raises(ActrecError, match="cannot take windows of 2 frames"):
        short.embed_frames(short.embedder(RUNTIME, 1), windows)


@pytest.mark.parametrize(
    "extract, key, hint",
    [
        ({"backbone": "hf:/nonexistent/videomae"}, "extract.backbone", "(no such folder)"),
        ({"backbone": "hf:MCG-NJU/videomae-base"}, "extract.weights", "huggingface"),
        ({"backbone": "efficientnet_lite0", "clip_len": 4}, "extract.clip_len", "hf:"),
    ],
)
def test_params_name_the_hf_settings_they_refuse(extract, key, hint) -> None:
    with pytest.raises(ActrecError, match=key) as err:
        parse_params({"extract": extract})
    assert hint in str(err.value) and "\n" not in str(err.value)


def test_params_take_an_hf_folder_or_repo(tiny) -> None:
    folder, _ = tiny
    params = parse_params({"extract": {"backbone": f"hf:{folder}", "weights": "huggingface", "clip_len": 4}})
    assert params.extract.backbone == f"hf:{folder}"
    parse_params({"extract": {"backbone": "hf:MCG-NJU/videomae-base", "weights": None}})
    with pytest.raises(ActrecError, match=r"finetune\.enabled"):
        parse_params({"extract": {"backbone": f"hf:{folder}", "weights": None}, "finetune": {"enabled": True}})


def test_predict_reads_a_real_clip_through_the_encoder_a_head_was_trained_on(ucf_mini, tiny, tmp_path) -> None:
    from actrec.inference.predictor import Predictor
    from actrec.model.checkpoint import Checkpoint
    from actrec.model.heads import build_head
    from actrec.params import ModelParams

    folder, _ = tiny
    source, clip = build_source(f"hf:{folder}", "huggingface"), ucf_mini / CLIPS[0]
    [(_, feats, _, _)], _ = _features(source, [clip], 3)
    params = ModelParams(hidden_size=8)
    torch.manual_seed(0)
    head = build_head("gru", 32, 2, params).eval()
    record = {"backbone": f"hf:{folder}", "weights": "huggingface", "frames": 3, "views": 1, "image_size": "auto"}
    record |= {"precision": "fp32", "seed": 0, "feature_dim": 32, "clip_len": "auto", **source.identity()}
    classes = ["UnevenBars", "VolleyballSpiking"]
    Checkpoint("gru", params.head_options(), 32, classes, record, head.state_dict()).save(tmp_path / "model.pt")
    (got,) = Predictor(tmp_path, device="cpu").predict([clip])
    with torch.inference_mode():
        expected = torch.softmax(head(torch.from_numpy(feats.astype(np.float32))), -1)[0].numpy()
    np.testing.assert_allclose(got.probs, expected, atol=2e-3)
