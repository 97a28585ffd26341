"""torchrun: two extraction processes (gloo, CPU) give the same feature file as one process."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np

from tests.helpers import class_folders, run_stage, tiny_project


def _read(path: Path) -> dict:
    with h5py.File(path) as f:
        return {k: f[k][:] for k in ("features", "frame_indices", "labels", "clip_ids")}


def test_torchrun_two_processes_match_one(tmp_path: Path) -> None:
    class_folders(tmp_path / "videos", classes=("left", "right"), clips=2, frames=12)
    tiny_project(tmp_path, "videos", extract={"cache_dir": "cache-torchrun"})
    for stage in ("subset", "split"):
        run_stage(stage, tmp_path)

    one_thread = {"OMP_NUM_THREADS": "1"}
    log = run_stage(
        "extract", tmp_path, launcher=("-m", "torch.distributed.run", "--nproc-per-node", "2"), env=one_thread
    ).stderr
    assert "on rank 0 of 2" in log and "on rank 1 of 2" in log, log[-2000:]
    shards = list((tmp_path / "cache-torchrun").rglob("shard-*.h5"))
    assert {s.name[:9] for s in shards} == {"shard-r0-", "shard-r1-"}, "each rank wrote its own shards"
    two = _read(tmp_path / "features/features.h5")

    tiny_project(tmp_path, "videos", extract={"cache_dir": "cache-single"})
    run_stage("extract", tmp_path, env=one_thread)
    one = _read(tmp_path / "features/features.h5")

    assert len(two["clip_ids"]) == 16 and len(set(two["clip_ids"])) == 16, "every clip exactly once"
    for key in ("clip_ids", "labels", "frame_indices"):
        np.testing.assert_array_equal(two[key], one[key])
    # Same clips, same network; batches differ in size, so allow float16 rounding.
    np.testing.assert_allclose(
        two["features"].astype(np.float32), one["features"].astype(np.float32), rtol=1e-2, atol=1e-3
    )
