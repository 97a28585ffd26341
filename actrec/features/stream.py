"""Feeding features to training and evaluation: from memory where they fit, streamed from the HDF5 file where not.

The feature file holds one contiguous (N, K, T, D) float16 dataset, so any set of rows is one h5py read
(rows sorted, then put back in the asked order): a batch of 32 random UCF-101 rows from the page cache
costs a fraction of a millisecond, against tens of milliseconds for the training step it feeds, and the
process holds only the batch in hand. Training
takes the in-memory path whenever the features fit comfortably (`choose_in_memory`); evaluation reads
each clip once, so it always streams. Figures: docs/benchmarks.md, Feature files larger than memory.

Under torchrun each rank trains on its share of every epoch's order (`shard`), as torch's
DistributedSampler deals it, so the ranks' batches together are the single process's batch.
"""

from __future__ import annotations

import copy
import logging
import os
from collections.abc import Iterator
from pathlib import Path

import h5py
import numpy as np
import torch

from actrec.distributed import World
from actrec.errors import ActrecError
from actrec.features.store import FeatureSet, FeatureStoreError, load_features, read_split

logger = logging.getLogger(__name__)

# In memory only when the features take at most this share of the memory available to each local rank:
# the rest is for the model, a refit's joined copy, and the other processes on the machine.
MEMORY_SHARE = 0.5


class DiskFeatures:
    """Some rows of a feature file's features, read only when asked for (`read`, `np.asarray`).

    Indexing the first axis (a slice, a boolean mask, an array of positions) gives another lazy view,
    as numpy's views do, so FeatureSet.part works on streamed features unchanged.
    """

    def __init__(self, path: str | Path, rows: np.ndarray) -> None:
        self.path = Path(path)
        self.rows = np.asarray(rows, dtype=np.int64)
        self._file = h5py.File(self.path, "r")  # shared by the views; closed when the last goes
        dataset = self._file["features"]
        self.shape: tuple[int, ...] = (len(self.rows), *dataset.shape[1:])
        self.dtype = dataset.dtype

    def __len__(self) -> int:
        return len(self.rows)

    @property
    def nbytes(self) -> int:
        return int(np.prod(self.shape)) * self.dtype.itemsize

    def __getitem__(self, key: slice | np.ndarray) -> DiskFeatures:
        view = copy.copy(self)  # shares the open file
        view.rows = self.rows[key]
        view.shape = (len(view.rows), *self.shape[1:])
        return view

    def join(self, other: DiskFeatures) -> DiskFeatures:
        """These rows, then `other`'s (of the same file)."""
        if other.path != self.path:
            raise FeatureStoreError(f"cannot join streamed features of {self.path} and {other.path}")
        return DiskFeatures(self.path, np.concatenate([self.rows, other.rows]))

    def read(self, positions: np.ndarray | None = None) -> np.ndarray:
        """The features at `positions` (all rows when None), in that order: one read of the sorted rows."""
        rows = self.rows if positions is None else self.rows[positions]
        dataset = self._file["features"]
        if len(rows) == 0:
            return np.empty((0, *self.shape[1:]), dtype=self.dtype)
        # h5py reads only increasing, unique rows; a run of consecutive rows is read as one slice.
        unique, inverse = np.unique(rows, return_inverse=True)
        consecutive = unique[-1] - unique[0] + 1 == len(unique)
        block = dataset[unique[0] : unique[-1] + 1] if consecutive else dataset[unique]
        return block if np.array_equal(rows, unique) else block[inverse]

    def __array__(self, dtype: np.dtype | None = None, copy: bool | None = None) -> np.ndarray:
        data = self.read()
        return data if dtype is None else data.astype(dtype)


Features = np.ndarray | DiskFeatures


def available_memory() -> int:
    """Bytes the kernel could give this process now without swapping (MemAvailable; free pages elsewhere)."""
    meminfo = Path("/proc/meminfo")
    if meminfo.is_file():
        for line in meminfo.read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


def choose_in_memory(nbytes: int, available: int, local_ranks: int = 1) -> bool:
    """In memory when every rank on this machine can hold its own copy within MEMORY_SHARE of what is available."""
    return nbytes * local_ranks <= MEMORY_SHARE * available


def open_features(path: str | Path, parts: tuple[str, ...]) -> FeatureSet:
    """The clips of the named split parts, their features left on disk (labels and ids in memory)."""
    split, labels, clip_ids, classes, attrs, groups = read_split(path)
    mask = np.isin(split, parts)
    return FeatureSet(
        DiskFeatures(path, np.flatnonzero(mask)),
        labels[mask],
        clip_ids[mask],
        split[mask],
        classes,
        attrs,
        groups[mask],
    )


def load_for_training(
    path: str | Path, parts: tuple[str, ...], in_memory: bool | None = None
) -> tuple[FeatureSet, ...]:
    """One FeatureSet per split part, in memory where they fit together (None: decide by the memory
    available now, see choose_in_memory), else streamed. The choice is logged with its figures."""
    streamed = [open_features(path, (part,)) for part in parts]
    size, available = sum(s.features.nbytes for s in streamed), available_memory()
    local_ranks = int(os.environ.get("LOCAL_WORLD_SIZE", "1"))
    if in_memory is None:
        in_memory = choose_in_memory(size, available, local_ranks)
    figures = f"{size / 1e9:.2f} GB of {available / 1e9:.1f} GB available" + (
        f", {local_ranks} ranks on this machine" if local_ranks > 1 else ""
    )
    if in_memory:
        logger.info("features: in memory (%s)", figures)
        return tuple(load_features(path, (part,)) for part in parts)
    logger.info("features: streamed from disk (%s), read per batch from %s", figures, path)
    return tuple(streamed)


def share(order: torch.Tensor, world: World) -> torch.Tensor:
    """This rank's share of an epoch's order, as DistributedSampler deals it: padded (with the order's first
    clips) to a multiple of the world size, then every world-size-th clip from this rank's position."""
    if world.size == 1:
        return order
    padded = torch.cat([order, order[: (-len(order)) % world.size]])
    return padded[world.rank :: world.size]


def per_rank_batch(batch_size: int, world: World) -> int:
    """Clips each rank takes a step: train.batch_size shared out evenly, so the ranks' batches together are
    the single process's batch."""
    if batch_size % world.size:
        raise ActrecError(f"train.batch_size {batch_size} must be a multiple of the {world.size} torchrun ranks")
    return batch_size // world.size


def batches(features: Features, order: torch.Tensor, batch_size: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """(positions, float16 features) for consecutive `batch_size` slices of `order`.

    In memory: a gather. Streamed: one read per batch, in this thread: a reader thread ahead of the model
    measured no faster from the page cache, and slower on a busy CPU, where it has to wait for a turn.
    """
    slices = [order[start : start + batch_size] for start in range(0, len(order), batch_size)]
    if isinstance(features, np.ndarray):
        tensor = torch.from_numpy(features)
        for idx in slices:
            yield idx, tensor[idx]
        return
    for idx in slices:
        yield idx, torch.from_numpy(features.read(idx.numpy()))
