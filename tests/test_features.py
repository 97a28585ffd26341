"""The feature store: resume after an interruption, incremental growth, the assembled HDF5 file."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest
import torch
from conftest import write_video

import pipeline.extract as extract_stage
from pipeline.extract import fill_cache
from pipeline.features import ExtractionSettings, FeatureCache, assemble, load_features
from pipeline.params import ExtractParams
from pipeline.video import fingerprint, sample_indices

# ImageNet weights (they ship offline): random-init Lite0 features round to zero in float16.
SETTINGS = ExtractionSettings(backbone="efficientnet_lite0", weights="imagenet", frames=4, clips=1, image_size=64,
                              precision="fp32", seed=0)
CFG = ExtractParams(backbone="efficientnet_lite0", weights="imagenet", frames=4, image_size=64, batch_size=8,
                    num_workers=0, shard_size=2)


def _clips(folder: Path, n: int) -> pd.DataFrame:
    paths = [write_video(folder / f"c{i % 2}" / f"v{i}.avi", frames=10 + i, seed=i) for i in range(n)]
    return pd.DataFrame({"clip_id": [p.relative_to(folder).as_posix() for p in paths], "path": [str(p) for p in paths],
                         "label": [f"c{i % 2}" for i in range(n)], "split": ["train", "test"] * (n // 2),
                         "fingerprint": [fingerprint(p) for p in paths]})


class Interrupted(Exception):
    pass


def _interrupt_after(n: int, monkeypatch) -> None:
    real = extract_stage.extract_features

    def stopping(*args, **kwargs):
        for i, item in enumerate(real(*args, **kwargs)):
            if i == n:
                raise Interrupted
            yield item

    monkeypatch.setattr(extract_stage, "extract_features", stopping)


def test_resume_computes_only_missing_clips(tmp_path, monkeypatch) -> None:
    torch.manual_seed(0)
    table = _clips(tmp_path / "videos", 8)
    cache = FeatureCache(tmp_path / "cache", SETTINGS)
    with monkeypatch.context() as m:
        _interrupt_after(5, m)
        with pytest.raises(Interrupted):
            fill_cache(cache, table, CFG, torch.device("cpu"))
    done = cache.index()
    assert len(done) == 4, "two complete shards of 2 survive; the clip in flight is not taken as done"
    assert not list(cache.dir.glob(".*tmp")), "no temporary file is left behind"

    seen = []
    real = extract_stage.extract_features
    monkeypatch.setattr(extract_stage, "extract_features",
                        lambda paths, *a, **k: (seen.extend(paths), real(paths, *a, **k))[1])
    failed = fill_cache(cache, table, CFG, torch.device("cpu")).failed
    assert failed.empty
    assert sorted(seen) == sorted(table.loc[~table["fingerprint"].isin(done), "path"]), "only missing clips run"
    assert set(cache.index()) == set(table["fingerprint"])

    # The resumed cache gives the same features as an uninterrupted run.
    fresh = FeatureCache(tmp_path / "fresh", SETTINGS)
    fill_cache(fresh, table, CFG, torch.device("cpu"))
    a, b = tmp_path / "a.h5", tmp_path / "b.h5"
    assemble(cache, table, ["c0", "c1"], a, attrs={})
    assemble(fresh, table, ["c0", "c1"], b, attrs={})
    fa, fb = load_features(a), load_features(b)
    assert np.abs(fa.features).max() > 0
    np.testing.assert_array_equal(fa.features, fb.features)
    assert list(fa.clip_ids) == list(table["clip_id"])


def test_growing_the_subset_extracts_only_new_clips(tmp_path, monkeypatch) -> None:
    table = _clips(tmp_path / "videos", 6)
    cache = FeatureCache(tmp_path / "cache", SETTINGS)
    fill_cache(cache, table.head(4), CFG, torch.device("cpu"))
    seen = []
    real = extract_stage.extract_features
    monkeypatch.setattr(extract_stage, "extract_features",
                        lambda paths, *a, **k: (seen.extend(paths), real(paths, *a, **k))[1])
    fill_cache(cache, table, CFG, torch.device("cpu"))
    assert sorted(seen) == sorted(table["path"].iloc[4:])
    other = FeatureCache(tmp_path / "cache", ExtractionSettings(**{**SETTINGS.__dict__, "frames": 8}))
    assert other.dir != cache.dir and other.index() == {}, "another T is another cache"


def test_feature_file_layout(tmp_path) -> None:
    table = _clips(tmp_path / "videos", 4)
    cache = FeatureCache(tmp_path / "cache", SETTINGS)
    fill_cache(cache, table, CFG, torch.device("cpu"))
    out = tmp_path / "features.h5"
    assert assemble(cache, table, ["c0", "c1"], out, attrs={"dataset": "test"}) == 4
    with h5py.File(out) as f:
        assert f["features"].shape == (4, 1, 4, 1280) and f["features"].dtype == np.float16
        assert f["labels"][:].tolist() == [0, 1, 0, 1]
        assert f["frame_indices"].shape == (4, 1, 4)
        assert f.attrs["backbone"] == "efficientnet_lite0" and f.attrs["frames"] == 4
        assert f.attrs["image_size"] == 64 and f.attrs["feature_dim"] == 1280
    assert len(load_features(out, parts=("test",)).labels) == 2


def test_same_features_give_a_byte_identical_file(tmp_path) -> None:
    """The file's bytes (its DVC hash) depend on the features, not on how the cache's shards fell:
    otherwise re-extracting into a fresh cache would make DVC retrain on identical features. 30 clips
    of 16 frames: 1.2 MB of features, more than HDF5's 1 MB chunk cache could put back in order."""
    table = _clips(tmp_path / "videos", 30)
    settings, cfg = dataclasses.replace(SETTINGS, frames=16), dataclasses.replace(CFG, frames=16)
    one = FeatureCache(tmp_path / "one", settings)
    fill_cache(one, table, cfg, torch.device("cpu"))
    other = FeatureCache(tmp_path / "other", settings)  # other shards, other (random) shard names
    fill_cache(other, table.iloc[::-1], dataclasses.replace(cfg, shard_size=7), torch.device("cpu"))
    assert len(list(one.dir.glob("shard-*.h5"))) == 15 and len(list(other.dir.glob("shard-*.h5"))) == 5
    for cache in (one, other):
        assemble(cache, table, ["c0", "c1"], tmp_path / f"{cache.dir.parent.name}.h5", attrs={"dataset": "test"})
    assert (tmp_path / "one.h5").read_bytes() == (tmp_path / "other.h5").read_bytes()


def test_a_clip_that_fails_to_decode_is_reported_not_fatal(tmp_path) -> None:
    table = _clips(tmp_path / "videos", 4)
    broken = Path(table.at[1, "path"])
    broken.write_bytes(b"garbage" * 100)
    table.at[1, "fingerprint"] = fingerprint(broken)
    cache = FeatureCache(tmp_path / "cache", SETTINGS)
    failed = fill_cache(cache, table, CFG, torch.device("cpu")).failed
    assert failed["clip_id"].tolist() == [table.at[1, "clip_id"]]
    assert "cannot open" in failed.at[0, "reason"]
    assert assemble(cache, table, ["c0", "c1"], tmp_path / "f.h5", attrs={}) == 3


def test_identical_videos_share_one_cached_row(tmp_path) -> None:
    table = _clips(tmp_path / "videos", 4)
    copy = tmp_path / "videos" / "c1" / "copy_of_v0.avi"
    copy.write_bytes(Path(table.at[0, "path"]).read_bytes())
    table.loc[len(table)] = {"clip_id": "c1/copy_of_v0.avi", "path": str(copy), "label": "c1", "split": "train",
                             "fingerprint": fingerprint(copy)}
    cache = FeatureCache(tmp_path / "cache", SETTINGS)
    fill_cache(cache, table, CFG, torch.device("cpu"))
    assert len(cache.index()) == 4, "the copy is extracted once"
    out = tmp_path / "features.h5"
    assert assemble(cache, table, ["c0", "c1"], out, attrs={}) == 5
    data = load_features(out)
    np.testing.assert_array_equal(data.features[4], data.features[0])
    assert data.labels[4] == 1 and data.labels[0] == 0


def test_k_clips_store_jittered_views_of_each_video(tmp_path) -> None:
    """extract.clips = 3: clip 0 is the K=1 view (segment centres), clips 1-2 jitter within each segment."""
    table = _clips(tmp_path / "videos", 4)
    files = {}
    for settings in (SETTINGS, dataclasses.replace(SETTINGS, clips=3)):
        cache = FeatureCache(tmp_path / "cache", settings)
        fill_cache(cache, table, dataclasses.replace(CFG, clips=settings.clips), torch.device("cpu"))
        files[settings.clips] = tmp_path / f"k{settings.clips}.h5"
        assemble(cache, table, ["c0", "c1"], files[settings.clips], attrs={})
    with h5py.File(files[3]) as f:
        assert f.attrs["clips"] == 3 and f["features"].shape == (4, 3, 4, 1280)
        idx = f["frame_indices"][:]
    k1, k3 = load_features(files[1]), load_features(files[3])
    np.testing.assert_allclose(k3.features[:, 0].astype(np.float32), k1.features[:, 0].astype(np.float32), atol=2e-3)
    for row, frames in enumerate(10 + np.arange(4)):  # _clips: video i has 10 + i frames
        edges = np.linspace(0, frames, 5)
        assert np.array_equal(idx[row, 0], sample_indices(frames, 4)[0])
        assert ((idx[row, 1:] >= np.floor(edges[:-1])) & (idx[row, 1:] < np.ceil(edges[1:]))).all()
    assert not np.array_equal(idx[:, 1], idx[:, 2]), "the jittered views differ"
    assert np.abs(k3.features[:, 1].astype(np.float32) - k3.features[:, 0]).max() > 0.01
