"""The feature store: the assembled HDF5 file's layout, its bytes independent of how the cache's shards fell,
identical videos sharing one cached row."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import h5py
import numpy as np

from actrec.data.clips import fingerprint
from actrec.features.extractor import fill_cache
from actrec.features.store import FeatureCache, assemble, load_features
from tests.features import RUNTIME, SETTINGS, SOURCE
from tests.helpers import clip_table


def test_feature_file_layout(tmp_path) -> None:
    table = clip_table(tmp_path / "videos", 4)
    cache = FeatureCache(tmp_path / "cache", SETTINGS)
    fill_cache(cache, table, SOURCE, RUNTIME, shard_size=2)
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
    table = clip_table(tmp_path / "videos", 30)
    settings = dataclasses.replace(SETTINGS, frames=16)
    one = FeatureCache(tmp_path / "one", settings)
    fill_cache(one, table, SOURCE, RUNTIME, shard_size=2)
    other = FeatureCache(tmp_path / "other", settings)  # other shards, other (random) shard names
    fill_cache(other, table.iloc[::-1], SOURCE, RUNTIME, shard_size=7)
    assert len(list(one.dir.glob("shard-*.h5"))) == 15 and len(list(other.dir.glob("shard-*.h5"))) == 5
    for cache in (one, other):
        assemble(cache, table, ["c0", "c1"], tmp_path / f"{cache.dir.parent.name}.h5", attrs={"dataset": "test"})
    assert (tmp_path / "one.h5").read_bytes() == (tmp_path / "other.h5").read_bytes()


def test_identical_videos_share_one_cached_row(tmp_path) -> None:
    table = clip_table(tmp_path / "videos", 4)
    copy = tmp_path / "videos" / "c1" / "copy_of_v0.avi"
    copy.write_bytes(Path(table.at[0, "path"]).read_bytes())
    table.loc[len(table)] = {
        "clip_id": "c1/copy_of_v0.avi",
        "path": str(copy),
        "label": "c1",
        "split": "train",
        "group": "g9",
        "fingerprint": fingerprint(copy),
    }
    cache = FeatureCache(tmp_path / "cache", SETTINGS)
    fill_cache(cache, table, SOURCE, RUNTIME, shard_size=2)
    assert len(cache.index()) == 4, "the copy is extracted once"
    out = tmp_path / "features.h5"
    assert assemble(cache, table, ["c0", "c1"], out, attrs={}) == 5
    data = load_features(out)
    np.testing.assert_array_equal(data.features[4], data.features[0])
    assert data.labels[4] == 1 and data.labels[0] == 0
    assert data.groups.tolist() == ["g0", "g0", "g1", "g1", "g9"], "each clip's group, for cross-validation"
