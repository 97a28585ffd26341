"""Feeding features: streamed from the file, they give training and evaluation exactly what memory gives;
the in-memory/streamed choice follows the memory available; torchrun ranks share every batch out."""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

from actrec.distributed import World
from actrec.errors import ActrecError
from actrec.features import stream
from actrec.features.store import load_features
from actrec.features.stream import (
    DiskFeatures,
    batches,
    choose_in_memory,
    load_for_training,
    open_features,
    per_rank_batch,
    share,
)
from actrec.model.proba import predict_proba
from actrec.model.probe import pool
from actrec.model.training import train_head
from actrec.params import ModelParams, TrainParams
from benchmarks.bench_train import write_feature_file


@pytest.fixture(scope="module")
def feature_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """70 clips of 3 classes, K = 2 views of 4 frames × 8, split train/val/test, through the cache and assemble."""
    folder = tmp_path_factory.mktemp("stream")
    return write_feature_file(folder / "features.h5", clips=70, frames=4, dim=8, classes=3, views=2, chunk=16)


def test_streamed_batches_are_the_in_memory_batches_every_clip_once(feature_file: Path) -> None:
    memory, disk = load_features(feature_file, ("train",)), open_features(feature_file, ("train",))
    assert isinstance(disk.features, DiskFeatures) and disk.features.shape == memory.features.shape
    np.testing.assert_array_equal(disk.labels, memory.labels)
    order = torch.randperm(len(memory.labels), generator=torch.Generator().manual_seed(0))
    seen = []
    pairs = zip(batches(memory.features, order, 8), batches(disk.features, order, 8), strict=True)
    for (idx, from_memory), (same_idx, from_disk) in pairs:
        assert torch.equal(idx, same_idx) and torch.equal(from_memory, from_disk)
        assert from_disk.dtype == torch.float16 and len(idx) <= 8
        seen.extend(idx.tolist())
    assert sorted(seen) == list(range(len(memory.labels))), "every clip exactly once per epoch"


def test_in_memory_load_reads_in_chunks_what_one_read_gives(feature_file: Path) -> None:
    with h5py.File(feature_file) as f:
        everything, split = f["features"][:], f["split"].asstr()[:]
    for parts in (("train",), ("val", "test"), None):
        wanted = np.isin(split, parts) if parts else np.ones(len(split), dtype=bool)
        np.testing.assert_array_equal(load_features(feature_file, parts, chunk=7).features, everything[wanted])
        streamed = open_features(feature_file, parts or ("train", "val", "test")).features
        np.testing.assert_array_equal(np.asarray(streamed), everything[wanted])
        np.testing.assert_array_equal(streamed.read(np.array([2, 0, 2])), everything[wanted][[2, 0, 2]])


def test_streamed_and_in_memory_training_give_the_same_model(feature_file: Path) -> None:
    """Same batches, same random draws: the same weights, bit for bit, also for a refit on train + val."""
    cfg = TrainParams(epochs=4, batch_size=8, patience=4, refit=True)
    results = []
    for in_memory in (True, False):
        train, val = load_for_training(feature_file, ("train", "val"), in_memory=in_memory)
        assert isinstance(train.features, np.ndarray if in_memory else DiskFeatures)
        model, result = train_head(ModelParams(head="lstm", hidden_size=8), cfg, 0, train, val)
        test = (load_features if in_memory else open_features)(feature_file, ("test",))
        probs = predict_proba(model, test.features)
        results.append((model.state_dict(), dataclasses.replace(result, state_dict={}), probs))
    (weights, result, probs), (weights_again, result_again, probs_again) = results
    assert result == result_again and result.refit_epochs >= 1
    assert all(torch.equal(weights[k], weights_again[k]) for k in weights)
    np.testing.assert_array_equal(probs, probs_again)


def test_probe_pools_streamed_features_chunk_by_chunk(feature_file: Path) -> None:
    memory, disk = load_features(feature_file, ("train", "val")), open_features(feature_file, ("train", "val"))
    np.testing.assert_allclose(pool(disk.features, chunk=5), pool(memory.features), rtol=1e-6)


def test_the_choice_follows_the_memory_available(feature_file: Path, monkeypatch, caplog) -> None:
    assert choose_in_memory(10, 20) and not choose_in_memory(11, 20)
    assert not choose_in_memory(6, 20, local_ranks=2), "each rank on the machine holds its own copy"
    caplog.set_level(logging.INFO, logger="actrec.features.stream")
    monkeypatch.setattr(stream, "available_memory", lambda: 10**9)
    train, val = load_for_training(feature_file, ("train", "val"))
    assert isinstance(train.features, np.ndarray) and isinstance(val.features, np.ndarray)
    assert "features: in memory (0.00 GB of 1.0 GB available)" in caplog.text
    size = train.features.nbytes + val.features.nbytes
    monkeypatch.setattr(stream, "available_memory", lambda: 2 * size - 1)
    train, val = load_for_training(feature_file, ("train", "val"))
    assert isinstance(train.features, DiskFeatures) and isinstance(val.features, DiskFeatures)
    assert "features: streamed from disk" in caplog.text
    monkeypatch.undo()
    assert 0 < stream.available_memory() < 2**50


@pytest.mark.parametrize("n", [32, 37])
def test_ranks_share_out_each_batch_as_one_process_takes_it(n: int) -> None:
    """With batch B/W per rank, the W ranks' step-s batches together are the single process's batch s; every clip
    is dealt, and the ranks take equally many steps (the order padded with its first clips, as DistributedSampler)."""
    order = torch.randperm(n, generator=torch.Generator().manual_seed(1))
    single = [idx for idx, _ in batches(np.zeros((n, 1)), order, 8)]
    ranks = [[idx for idx, _ in batches(np.zeros((n, 1)), share(order, World(r, 2, r)), 4)] for r in range(2)]
    assert len(ranks[0]) == len(ranks[1]) == len(single)
    for step, expected in enumerate(single):
        together = torch.cat([ranks[0][step], ranks[1][step]]).tolist()
        if step < len(single) - 1 or n % 2 == 0:
            assert sorted(together) == sorted(expected.tolist())
        else:  # the last batch: the one padding clip on top
            assert set(expected.tolist()) <= set(together) and len(together) == len(expected) + 1
    dealt = torch.cat([torch.cat(r) for r in ranks])
    assert set(dealt.tolist()) == set(range(n)) and len(dealt) == n + n % 2


def test_a_batch_that_cannot_be_shared_out_is_refused() -> None:
    assert per_rank_batch(32, World(0, 4, 0)) == 8 and per_rank_batch(32, World(0, 1, 0)) == 32
    with pytest.raises(ActrecError, match=r"train.batch_size 32 must be a multiple of the 3 torchrun ranks"):
        per_rank_batch(32, World(1, 3, 1))
