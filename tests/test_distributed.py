"""torchrun: two extraction processes (gloo, CPU) give the same feature file as one process."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import yaml
from conftest import write_video

ROOT = Path(__file__).resolve().parents[1]


def _run(args: list[str], cwd: Path) -> str:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    run = subprocess.run(args, cwd=cwd, capture_output=True, text=True, env=env)
    assert run.returncode == 0, f"{' '.join(args)} failed:\n{run.stderr[-3000:]}"
    return run.stderr


def _read(path: Path) -> dict:
    with h5py.File(path) as f:
        return {k: f[k][:] for k in ("features", "frame_indices", "labels", "clip_ids")}


def test_torchrun_two_processes_match_one(tmp_path: Path) -> None:
    videos = tmp_path / "videos"
    for k, c in enumerate(("left", "right")):
        for g in range(1, 5):
            for i in range(1, 3):
                write_video(videos / c / f"{c}_g{g:02d}_c{i:02d}.avi", frames=12 + 3 * g + i, seed=100 * k + 10 * g + i)
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["dataset"].update({"name": "folder", "root": str(videos)})
    params["extract"].update({"frames": 4, "image_size": 64, "num_workers": 0, "shard_size": 2,
                              "device": "cpu", "precision": "fp32", "cache_dir": "cache-torchrun"})
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    for stage in ("subset", "split"):
        _run([sys.executable, "-m", f"pipeline.{stage}"], tmp_path)

    log = _run([sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "-m", "pipeline.extract"],
               tmp_path)
    assert "on rank 0 of 2" in log and "on rank 1 of 2" in log, log[-2000:]
    shards = list((tmp_path / "cache-torchrun").rglob("shard-*.h5"))
    assert {s.name[:9] for s in shards} == {"shard-r0-", "shard-r1-"}, "each rank wrote its own shards"
    two = _read(tmp_path / "features/features.h5")

    params["extract"]["cache_dir"] = "cache-single"
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    _run([sys.executable, "-m", "pipeline.extract"], tmp_path)
    one = _read(tmp_path / "features/features.h5")

    assert len(two["clip_ids"]) == 16 and len(set(two["clip_ids"])) == 16, "every clip exactly once"
    for key in ("clip_ids", "labels", "frame_indices"):
        np.testing.assert_array_equal(two[key], one[key])
    # Same clips, same network; batches differ in size, so allow float16 rounding.
    np.testing.assert_allclose(two["features"].astype(np.float32), one["features"].astype(np.float32),
                               rtol=1e-2, atol=1e-3)
