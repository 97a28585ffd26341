"""The extractor: fill_cache resumes after an interruption, extracts only new clips, reports clips that fail,
stores K jittered views, writes to the cache of the engine that ran (each part of a joined source by its own);
decoded batches are pinned for the GPU, and resizing them there gives the workers' features."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

from actrec.data.clips import fingerprint
from actrec.data.sampling import sample_indices
from actrec.features import extractor
from actrec.features.backbones import load_backbone
from actrec.features.engine_trial import EngineChoice
from actrec.features.engines import BackboneRunner
from actrec.features.extractor import extract_features, fill_cache
from actrec.features.sources.image import BackboneEmbedder, DecodedBatch, ImageSource
from actrec.features.sources.joined import JoinedSource
from actrec.features.sources.motion import MotionSource
from actrec.features.store import ExtractionSettings, FeatureCache, assemble, load_features
from tests.features import CFG, RUNTIME, SETTINGS, SOURCE
from tests.helpers import clip_table, write_video


class Interrupted(Exception):
    pass


def _interrupt_after(n: int, monkeypatch) -> None:
    real = extractor.extract_features

    def stopping(*args, **kwargs):
        for i, item in enumerate(real(*args, **kwargs)):
            if i == n:
                raise Interrupted
            yield item

    monkeypatch.setattr(extractor, "extract_features", stopping)


def test_resume_computes_only_missingclip_table(tmp_path, monkeypatch) -> None:
    torch.manual_seed(0)
    table = clip_table(tmp_path / "videos", 8)
    cache = FeatureCache(tmp_path / "cache", SETTINGS)
    with monkeypatch.context() as m:
        _interrupt_after(5, m)
        with pytest.raises(Interrupted):
            fill_cache(cache, table, SOURCE, RUNTIME, shard_size=2)
    done = cache.index()
    assert len(done) == 4, "two complete shards of 2 survive; the clip in flight is not taken as done"
    assert not list(cache.dir.glob(".*tmp")), "no temporary file is left behind"

    seen = []
    real = extractor.extract_features
    monkeypatch.setattr(
        extractor, "extract_features", lambda paths, *a, **k: (seen.extend(paths), real(paths, *a, **k))[1]
    )
    failed = fill_cache(cache, table, SOURCE, RUNTIME, shard_size=2).failed
    assert failed.empty
    assert sorted(seen) == sorted(table.loc[~table["fingerprint"].isin(done), "path"]), "only missing clips run"
    assert set(cache.index()) == set(table["fingerprint"])

    # The resumed cache gives the same features as an uninterrupted run.
    fresh = FeatureCache(tmp_path / "fresh", SETTINGS)
    fill_cache(fresh, table, SOURCE, RUNTIME, shard_size=2)
    a, b = tmp_path / "a.h5", tmp_path / "b.h5"
    assemble(cache, table, ["c0", "c1"], a, attrs={})
    assemble(fresh, table, ["c0", "c1"], b, attrs={})
    fa, fb = load_features(a), load_features(b)
    assert np.abs(fa.features).max() > 0
    np.testing.assert_array_equal(fa.features, fb.features)
    assert list(fa.clip_ids) == list(table["clip_id"])


def test_growing_the_subset_extracts_only_newclip_table(tmp_path, monkeypatch) -> None:
    table = clip_table(tmp_path / "videos", 6)
    cache = FeatureCache(tmp_path / "cache", SETTINGS)
    fill_cache(cache, table.head(4), SOURCE, RUNTIME, shard_size=2)
    seen = []
    real = extractor.extract_features
    monkeypatch.setattr(
        extractor, "extract_features", lambda paths, *a, **k: (seen.extend(paths), real(paths, *a, **k))[1]
    )
    fill_cache(cache, table, SOURCE, RUNTIME, shard_size=2)
    assert sorted(seen) == sorted(table["path"].iloc[4:])
    other = FeatureCache(tmp_path / "cache", ExtractionSettings(**{**SETTINGS.__dict__, "frames": 8}))
    assert other.dir != cache.dir and other.index() == {}, "another T is another cache"


def test_a_clip_that_fails_to_decode_is_reported_not_fatal(tmp_path) -> None:
    table = clip_table(tmp_path / "videos", 4)
    broken = Path(table.at[1, "path"])
    broken.write_bytes(b"garbage" * 100)
    table.at[1, "fingerprint"] = fingerprint(broken)
    cache = FeatureCache(tmp_path / "cache", SETTINGS)
    failed = fill_cache(cache, table, SOURCE, RUNTIME, shard_size=2).failed
    assert failed["clip_id"].tolist() == [table.at[1, "clip_id"]]
    assert "cannot open" in failed.at[0, "reason"]
    assert assemble(cache, table, ["c0", "c1"], tmp_path / "f.h5", attrs={}) == 3


def test_k_clips_store_jittered_views_of_each_video(tmp_path) -> None:
    """extract.views = 3: view 0 is the K=1 view (segment centres), views 1-2 jitter within each segment."""
    table = clip_table(tmp_path / "videos", 4)
    files = {}
    for settings in (SETTINGS, dataclasses.replace(SETTINGS, views=3)):
        cache = FeatureCache(tmp_path / "cache", settings)
        fill_cache(cache, table, SOURCE, RUNTIME, shard_size=2)
        files[settings.views] = tmp_path / f"k{settings.views}.h5"
        assemble(cache, table, ["c0", "c1"], files[settings.views], attrs={})
    with h5py.File(files[3]) as f:
        assert f.attrs["views"] == 3 and f["features"].shape == (4, 3, 4, 1280)
        idx = f["frame_indices"][:]
    k1, k3 = load_features(files[1]), load_features(files[3])
    np.testing.assert_allclose(k3.features[:, 0].astype(np.float32), k1.features[:, 0].astype(np.float32), atol=2e-3)
    for row, frames in enumerate(10 + np.arange(4)):  # _clips: video i has 10 + i frames
        edges = np.linspace(0, frames, 5)
        assert np.array_equal(idx[row, 0], sample_indices(frames, 4)[0])
        assert ((idx[row, 1:] >= np.floor(edges[:-1])) & (idx[row, 1:] < np.ceil(edges[1:]))).all()
    assert not np.array_equal(idx[:, 1], idx[:, 2]), "the jittered views differ"
    assert np.abs(k3.features[:, 1].astype(np.float32) - k3.features[:, 0]).max() > 0.01


@pytest.mark.skipif(not torch.cuda.is_available(), reason="pinned memory needs a CUDA GPU")
def test_decoded_batches_are_pinned_for_the_gpu() -> None:
    batch = DecodedBatch(
        [0], torch.zeros(4 * 8 * 8 * 3, dtype=torch.uint8), [(4, 8, 8)], [np.zeros((1, 4))], [""], True, True
    )
    assert batch.pin_memory().frames.is_pinned() and not batch.frames.is_pinned()


@pytest.mark.parametrize("engine", ["eager", "onnxruntime"])
def test_resizing_on_the_device_gives_the_workers_features(tmp_path: Path, engine: str) -> None:
    """GPU runs resize where the model runs (extract.resize_on: device); on the CPU that path must give the features
    the workers' resizing gives, bit for bit, with clips of different sizes in one batch and a clip that fails."""
    paths = [
        str(write_video(tmp_path / "a.avi", frames=12, width=64, height=48)),
        str(write_video(tmp_path / "b.mp4", frames=9, width=40, height=72, codec="libx264", seed=1)),
        str(tmp_path / "missing.avi"),
        str(write_video(tmp_path / "c.avi", frames=20, width=64, height=48, seed=2)),
    ]  # 16 images a batch, 8 a clip: a and b share the first batch
    net = load_backbone("efficientnet_lite0", "imagenet", image_size=32)
    run = BackboneEmbedder(BackboneRunner(net, torch.device("cpu"), "fp32", 16, engine))
    out = {}
    for where in ("workers", "device"):
        runtime = dataclasses.replace(RUNTIME, batch_size=16, num_workers=1, resize_on=where)
        out[where] = list(extract_features(paths, paths, ImageSource(net), run, runtime, frames=4, views=2, seed=0))
    for (i, feats, indices, error), (j, same, same_indices, same_error) in zip(*out.values(), strict=True):
        assert i == j and error == same_error and (error != "") == (i == 2)
        if not error:
            assert feats.shape == (2, 4, 1280) and np.array_equal(indices, same_indices)
            np.testing.assert_array_equal(feats, same)


def test_features_go_to_the_cache_of_the_engine_that_ran_and_its_rate_is_held_to_the_trial(
    tmp_path: Path, monkeypatch
) -> None:
    """onnxruntime chosen but failing on its first batch: eager runs, and its features go to eager's cache, never
    to onnxruntime's; the network's frames and seconds, its first batch left out, go to engine_trial.confirm."""
    table = clip_table(tmp_path / "videos", 4)  # 4 frames a clip, 2 clips a batch of 8: 2 batches
    runner = BackboneRunner(SOURCE.backbone, torch.device("cpu"), "fp32", 8, "eager")
    runner.engine, runner.fast = "onnxruntime", lambda images: 1 / 0  # the runtime fails on its first batch
    chosen = FeatureCache(tmp_path / "cache", dataclasses.replace(SETTINGS, engine="onnxruntime"))
    held = []
    monkeypatch.setattr(extractor, "confirm", lambda *args: held.append(args))
    choice = EngineChoice("onnxruntime", "fp32", "cached", runner=runner, key="entry")
    done = fill_cache(chosen, table, SOURCE, RUNTIME, shard_size=2, choice=choice)
    assert chosen.index() == {} and done.engine == "eager"
    assert done.cache.settings == SETTINGS and set(done.cache.index()) == set(table["fingerprint"])
    [(given, ran, frames, seconds)] = held
    assert given is choice and ran == "eager" and frames == 8 and seconds > 0


def test_each_part_of_a_joined_source_is_cached_by_its_own_engine_and_falls_back_alone(
    tmp_path: Path, monkeypatch
) -> None:
    """The backbone's engine chosen by a trial fails: its features go to eager's cache and its figures are held to
    the run; the motion stream beside it runs no network (engine none, fp32), in a cache of its own; the report
    records each part's engine, the backbone's at the top."""
    table = clip_table(tmp_path / "videos", 4)
    runner = BackboneRunner(SOURCE.backbone, torch.device("cpu"), "fp32", 8, "eager")
    runner.engine, runner.fast = "onnxruntime", lambda images: 1 / 0
    choice = EngineChoice("onnxruntime", "fp32", "cached", runner=runner, key="entry")
    monkeypatch.setattr(ImageSource, "choose", lambda *args: choice)
    held = []
    monkeypatch.setattr(extractor, "confirm", lambda *args: held.append(args))
    cfg = dataclasses.replace(CFG, cache_dir=str(tmp_path / "cache"), motion="hofmbh")
    joined = JoinedSource([SOURCE, MotionSource("hofmbh")])
    parts = extractor.prepare_parts(joined, table, cfg, RUNTIME, 0)
    assert [(p.cache.settings.engine, p.cache.settings.precision) for p in parts] == [
        ("onnxruntime", "fp32"),
        ("none", "fp32"),
    ]
    done, failed, reused = extractor.fill_parts(parts, table, shard_size=2)
    assert failed.empty and reused == 0 and [d.engine for d in done] == ["eager", "none"]
    assert parts[0].cache.settings == SETTINGS, "eager's cache, never onnxruntime's"
    assert parts[1].cache.dir.name.startswith("hofmbh-") and set(parts[1].cache.index()) == set(table["fingerprint"])
    assert [(given, ran) for given, ran, _, _ in held] == [(choice, "eager"), (parts[1].choice, "none")]
    report = extractor.report(parts, done, trial_seconds=0.0)
    assert (report["engine"], report["precision"]) == ("eager", "fp32"), "what computed them, not what was chosen"
    assert report["hofmbh"]["engine"] == "none" and report["hofmbh"]["feature_dim"] == 353
    settings = extractor.assembled_settings(parts, joined, cfg, 0)
    assert (settings.engine, settings.backbone) == ("eager", "efficientnet_lite0")
    out = tmp_path / "features.h5"
    assert assemble([p.cache for p in parts], table, ["c0", "c1"], out, attrs={}, settings=settings) == 4
    with h5py.File(out) as f:
        assert f.attrs["engine"] == "eager" and f["features"].shape[-1] == 1280 + 353
    monkeypatch.undo()
    again = extractor.prepare_parts(
        joined, table, dataclasses.replace(cfg, engine="eager", precision="fp32"), RUNTIME, 0
    )
    assert extractor.fill_parts(again, table, shard_size=2)[2] == 4, "both parts found in their caches"


@pytest.mark.parametrize("clips", [1, 3])
def test_a_run_reports_a_rate_however_few_clips_it_extracts(tmp_path: Path, clips: int) -> None:
    """The steady rate leaves the first clip (and the network's first batch) out; a run of one clip, or of one
    batch, has nothing after it: its rate is the only one measured, not zero."""
    table = clip_table(tmp_path / "videos", 4).head(clips)
    done = fill_cache(FeatureCache(tmp_path / "cache", SETTINGS), table, SOURCE, RUNTIME, shard_size=2)
    assert done.extracted == clips and done.frames == clips * SETTINGS.frames * SETTINGS.views
    assert 0 < done.steady_fps < float("inf") and 0 < done.forward.fps < float("inf")
    if clips == 1:
        assert done.steady_fps == pytest.approx(done.frames / done.seconds)
