"""The feature store: extracted clip features, cached so that no clip is ever paid for twice.

Two layers:
- the cache, `<cache_dir>/<backbone>-<settings key>/shard-*.h5`: immutable shards of clips
  extracted with one set of extraction settings, keyed by each video's content fingerprint.
  A shard is written under a temporary name and renamed into place, so a killed run leaves no
  half-written shard, and a run again skips every clip already in a shard (a shard that cannot
  be read is ignored with a warning, and its clips are extracted again). Changing anything that
  changes features (the backbone, its weights' identity: tag or file content, its preprocessing,
  T, K, sampling, and the engine and precision that computed them) selects another folder; switching
  back finds the old one again, and growing the subset only adds shards.
- the feature file (`features/features.h5`), assembled from the cache for exactly the clips of
  the current split: features (N, K, T, D) float16, labels, clip_ids, split, frame_indices, with
  attributes recording how the features were made, the engine and precision that ran among them.
  Training reads only this file, and refuses it when those attributes disagree with params.extract
  (`differing_settings`).
"""

from __future__ import annotations

import hashlib
import json
import logging
import uuid
from collections.abc import Iterable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pandas as pd

from actrec.data.decoding import FRAMES_VERSION
from actrec.errors import ActrecError
from actrec.files import output_dir, output_file, remove_leftovers
from actrec.params import ExtractParams

logger = logging.getLogger(__name__)

FORMAT_VERSION = 3
# How features were made, as recorded in the feature file: features differing in any of these
# are other features, never to be mixed with or swapped for the ones params.extract asks for.
MATCHED_SETTINGS = ("backbone", "weights", "motion", "frames", "views", "sampling", "stride", "image_size")
# Settings a feature file records only where they are set, and their unset values: features made without them
# keep their bytes (and their DVC hash).
OPTIONAL_SETTINGS = {"motion": None, "clip_len": "auto"}
# What the source resolved them to (its identity): a checkpoint's features must also agree with the feature file
# on these.
RESOLVED_SETTINGS = ("weights_id", "preprocessing")


class FeatureStoreError(ActrecError):
    """A feature file or cache that does not match what the pipeline needs."""


@dataclass(frozen=True)
class ExtractionSettings:
    """Everything that changes the numbers a feature source produces for a clip: params.extract as given (what the
    feature file is matched against) and what the source resolved them to (what the cache is keyed by)."""

    backbone: str
    weights: str | None
    weights_id: str  # the weights' identity: a weights enum, a tag, "sha256:…" of a file, "random init"
    preprocessing: str  # JSON of how the source prepares its input (a backbone's resize, crop, mean, std); "{}": none
    frames: int
    views: int
    sampling: str
    stride: int
    image_size: int | str  # as given: a size or "auto" (the crop in `preprocessing` is what it resolved to)
    # What ran the source's network (eager, compile, onnxruntime, openvino; none: no network) and in what precision:
    # engines agree only to rounding, so features computed otherwise are other features, never reused for these.
    engine: str
    precision: str
    seed: int

    @classmethod
    def from_params(
        cls,
        cfg: ExtractParams,
        engine: str,
        precision: str,
        seed: int,
        identity: dict[str, str],
        name: str | None = None,
    ) -> ExtractionSettings:
        """The settings params.extract asks for, with the `identity` of the feature source built from them
        (FeatureSource.identity: its weights_id and preprocessing) and the engine and precision it runs in; `name`
        is a source's other than extract.backbone (the motion stream joined to it, extract.motion).

        The seed only moves jittered views (K > 1); with K = 1 sampling is fixed and the key ignores it.
        """
        return cls(
            backbone=name or cfg.backbone,
            weights=cfg.weights,
            weights_id=identity["weights_id"],
            preprocessing=identity["preprocessing"],
            frames=cfg.frames,
            views=cfg.views,
            sampling=cfg.sampling,
            stride=cfg.stride,
            image_size=cfg.image_size,
            engine=engine,
            precision=precision,
            seed=seed if cfg.views > 1 else 0,
        )

    def key(self) -> str:
        """The cache's key: the backbone, its weights' identity and preprocessing, sampling, engine and precision. The
        weights and image size as given are left out, as what they resolved to is in (`imagenet` and
        `IMAGENET1K_V2` are one set of weights, `auto` and 224 one size for most models); so is the stride
        of uniform sampling, which ignores it."""
        record = {k: v for k, v in asdict(self).items() if k not in ("weights", "image_size")}
        if self.sampling != "strided":
            del record["stride"]
        blob = json.dumps({**record, "format": FORMAT_VERSION, "frames_from": FRAMES_VERSION}, sort_keys=True)
        return hashlib.sha1(blob.encode()).hexdigest()[:12]

    @property
    def input_size(self) -> int:
        """The crop the frames are given to the source's network at (what image_size `auto` resolved to; 0 for a
        source that takes no frames)."""
        return int(json.loads(self.preprocessing).get("crop_size", 0))


def asked_settings(attrs: dict) -> dict:
    """A feature file's settings as params.extract names them: features of a fine-tuned backbone were made with
    the weights fine-tuning started from (the feature file records them as `finetuned_from`)."""
    return {**attrs, "weights": attrs["finetuned_from"]} if "finetuned_from" in attrs else attrs


def differing_settings(made: dict, wanted: dict, keys: tuple[str, ...] = MATCHED_SETTINGS) -> str:
    """The keys on which two records differ, as "key: made ≠ wanted, ..."; "" when they agree.

    Records are feature-file attributes, a checkpoint's copy of them, or params.extract (the
    feature file stores null weights as "").
    """

    def value(record: dict, key: str) -> object:
        v = record.get(key)
        v = v.item() if hasattr(v, "item") else v
        return None if v == "" else v

    return ", ".join(f"{k}: {value(made, k)} ≠ {value(wanted, k)}" for k in keys if value(made, k) != value(wanted, k))


class FeatureCache:
    """A folder of immutable shards for one ExtractionSettings."""

    def __init__(self, cache_dir: str | Path, settings: ExtractionSettings) -> None:
        self.root, self.settings = Path(cache_dir), settings
        self.dir = output_dir(self.folder(cache_dir, settings))
        remove_leftovers(self.dir)
        meta = self.dir / "settings.json"
        if not meta.exists():
            with output_file(meta) as tmp:
                tmp.write_text(json.dumps(asdict(settings), indent=2) + "\n")

    def computed_by(self, engine: str) -> FeatureCache:
        """The cache of these settings computed by `engine` instead (this one, if it is the same): where the
        features go once a chosen engine could not run and another ran in its place."""
        if engine == self.settings.engine:
            return self
        return FeatureCache(self.root, replace(self.settings, engine=engine))

    @staticmethod
    def folder(cache_dir: str | Path, settings: ExtractionSettings) -> Path:
        return Path(cache_dir) / f"{settings.backbone.replace(':', '_')}-{settings.key()}"

    def index(self) -> dict[str, tuple[Path, int]]:
        """fingerprint → (shard, row) for every clip completely written to the cache."""
        return self.read_index(self.dir)

    @staticmethod
    def read_index(folder: Path) -> dict[str, tuple[Path, int]]:
        """The index of a cache folder, without creating it (an absent folder holds nothing)."""
        found: dict[str, tuple[Path, int]] = {}
        for shard in sorted(folder.glob("shard-*.h5")):
            try:
                with h5py.File(shard, "r") as f:
                    fingerprints = f["fingerprints"].asstr()[:]
            except (OSError, KeyError) as err:
                logger.warning("ignoring unreadable cache shard %s (%s); its clips will be extracted again", shard, err)
                continue
            for row, fp in enumerate(fingerprints):
                found.setdefault(fp, (shard, row))
        return found

    def write_shard(
        self, fingerprints: list[str], features: np.ndarray, frame_indices: np.ndarray, tag: str = ""
    ) -> Path:
        """Write one shard; it appears under its final name only once complete."""
        final = self.dir / f"shard-{tag}{uuid.uuid4().hex[:12]}.h5"
        with output_file(final) as tmp, h5py.File(tmp, "w") as f:
            f.create_dataset("fingerprints", data=np.array(fingerprints, dtype=object), dtype=h5py.string_dtype())
            f.create_dataset("features", data=features.astype(np.float16))
            f.create_dataset("frame_indices", data=frame_indices.astype(np.int32))
        return final


def optional_settings(cfg: ExtractParams) -> dict:
    """The OPTIONAL_SETTINGS params.extract sets, as the feature file records them."""
    return {k: getattr(cfg, k) for k, unset in OPTIONAL_SETTINGS.items() if getattr(cfg, k) != unset}


def assemble(
    caches: FeatureCache | list[FeatureCache],
    table: pd.DataFrame,
    classes: list[str],
    out_path: str | Path,
    attrs: dict,
    settings: ExtractionSettings | None = None,
) -> int:
    """Write the feature file for the rows of `table` (clip_id, label, split, fingerprint).

    Several caches (the parts of a joined source, features/sources/joined.py) give each clip's features side by
    side, in their order, and must have sampled the same frames; `settings` then records how the whole was made
    (the one cache's by default). Rows missing from a cache are left out; returns how many rows were written.
    Streams one shard at a time, so memory stays flat however many clips there are.
    """
    caches = [caches] if isinstance(caches, FeatureCache) else caches
    out_path = Path(out_path)
    indexes = [cache.index() for cache in caches]
    table = table[table["fingerprint"].map(lambda fp: all(fp in index for index in indexes))].reset_index(drop=True)
    n, s = len(table), settings or caches[0].settings
    if n == 0:
        raise FeatureStoreError("no clip of the split has features in the cache: nothing to assemble")
    widths = [_width(index, table["fingerprint"].iloc[0]) for index in indexes]
    label_ids = {c: i for i, c in enumerate(classes)}
    with output_file(out_path) as tmp, h5py.File(tmp, "w") as f:
        # Contiguous, so the file's bytes do not depend on the order shards are read in (their names are
        # random): the same features give the same DVC hash and train is not rerun.
        f.create_dataset("features", (n, s.views, s.frames, sum(widths)), dtype=np.float16)
        f.create_dataset("frame_indices", (n, s.views, s.frames), dtype=np.int32)
        for part, (index, start) in enumerate(zip(indexes, np.cumsum([0, *widths[:-1]]), strict=True)):
            columns = slice(int(start), int(start) + widths[part])
            for shard, group in table.groupby(table["fingerprint"].map(lambda fp, index=index: index[fp][0])):
                rows = np.array([index[fp][1] for fp in group["fingerprint"]])
                # h5py reads only increasing, unique rows; identical videos share one cached row.
                unique, inverse = np.unique(rows, return_inverse=True)
                with h5py.File(shard, "r") as src:
                    feats = src["features"][unique][inverse]  # now aligned with the group's rows
                    idx = src["frame_indices"][unique][inverse]
                for target, feat, ind in zip(group.index, feats, idx, strict=True):
                    f["features"][target, ..., columns] = feat
                    if part == 0:
                        f["frame_indices"][target] = ind
                    elif not np.array_equal(f["frame_indices"][target], ind):
                        raise FeatureStoreError(
                            f"{caches[part].dir} holds {table.at[target, 'clip_id']} at other frames than "
                            f"{caches[0].dir}; delete the newer of the two cache folders and extract again"
                        )
        f.create_dataset("labels", data=table["label"].map(label_ids).to_numpy(np.int64))
        f.create_dataset("clip_ids", data=table["clip_id"].to_numpy(object), dtype=h5py.string_dtype())
        f.create_dataset("split", data=table["split"].to_numpy(object), dtype=h5py.string_dtype())
        f.create_dataset("groups", data=table["group"].astype(str).to_numpy(object), dtype=h5py.string_dtype())
        f.attrs.update(
            {
                **{k: ("" if v is None else v) for k, v in asdict(s).items()},
                "input_size": s.input_size,
                "feature_dim": f["features"].shape[-1],
                "classes": json.dumps(classes),
                "settings_key": s.key(),
                "format": FORMAT_VERSION,
                **attrs,
            }
        )
    return n


def _width(index: dict[str, tuple[Path, int]], fingerprint: str) -> int:
    """D of a cache's features, read from the shard holding `fingerprint`."""
    with h5py.File(index[fingerprint][0], "r") as f:
        return int(f["features"].shape[-1])


@dataclass
class FeatureSet:
    """A feature file's clips: features (N, K, T, D) float16, in memory or streamed from the file
    (features.stream), and what each row is.

    `groups` names each clip's group (person, source video), which cross-validation keeps on one side
    of each fold; None makes each clip its own group.
    """

    features: Any
    labels: np.ndarray
    clip_ids: np.ndarray
    split: np.ndarray
    classes: list[str]
    attrs: dict
    groups: np.ndarray | None = None

    def group_names(self) -> np.ndarray:
        """Each clip's group (its clip id where no groups are recorded)."""
        return self.clip_ids if self.groups is None else self.groups

    def join(self, other: FeatureSet) -> FeatureSet:
        """These clips and `other`'s, in one set (the same classes and attributes)."""
        rows = zip(ROWS, self._rows(), other._rows(), strict=True)
        return FeatureSet(**{n: _joined(a, b) for n, a, b in rows}, classes=self.classes, attrs=self.attrs)

    def part(self, *names: str) -> FeatureSet:
        """The clips of the named split parts ("train", "val", "test")."""
        return self.rows(np.isin(self.split, names))

    def rows(self, index: np.ndarray) -> FeatureSet:
        """The clips `index` selects (a boolean mask or row numbers)."""
        rows = zip(ROWS, self._rows(), strict=True)
        return FeatureSet(**{n: a[index] for n, a in rows}, classes=self.classes, attrs=self.attrs)

    def _rows(self) -> tuple[np.ndarray, ...]:
        return self.features, self.labels, self.clip_ids, self.split, self.group_names()


ROWS = ("features", "labels", "clip_ids", "split", "groups")  # FeatureSet's per-clip fields, in _rows' order


def _joined(a: Any, b: Any) -> Any:
    """Two sets' rows of one field; streamed features (features.stream.DiskFeatures) join as a lazy view."""
    return a.join(b) if hasattr(a, "join") else np.concatenate([a, b])


PARTS = ("features", "frame_indices", "labels", "clip_ids", "split", "groups")  # one row per clip each


def _open(path: Path) -> h5py.File:
    if not path.is_file():
        raise FeatureStoreError(f"feature file {path} not found; run the extract stage first")
    try:
        f = h5py.File(path, "r")
    except OSError as err:
        raise FeatureStoreError(f"{path} cannot be read as HDF5 ({err}); run the extract stage again") from err
    if f.attrs.get("format") != FORMAT_VERSION or "features" not in f:
        f.close()
        raise FeatureStoreError(f"{path} is not an actrec feature file (format {FORMAT_VERSION})")
    missing = [p for p in PARTS if p not in f] + [a for a in ("classes",) if a not in f.attrs]
    rows = {len(f[p]) for p in PARTS if p in f and isinstance(f[p], h5py.Dataset) and f[p].shape}
    if missing or len(rows) > 1:
        f.close()
        said = f"no {', '.join(missing)}" if missing else "parts of different lengths"
        raise FeatureStoreError(f"{path} has {said} (a cut or edited feature file); run the extract stage again")
    return f


def read_split(path: str | Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str], dict, np.ndarray]:
    """Everything of the feature file but the features: split parts, labels, clip ids, classes, attributes,
    groups."""
    with _open(Path(path)) as f:
        return (
            f["split"].asstr()[:],
            f["labels"][:],
            f["clip_ids"].asstr()[:],
            json.loads(f.attrs["classes"]),
            dict(f.attrs),
            f["groups"].asstr()[:],
        )


def load_features(path: str | Path, parts: Iterable[str] | None = None, chunk: int = 1024) -> FeatureSet:
    """Read the feature file (optionally only some split parts) into memory.

    Read `chunk` rows at a time, keeping the wanted ones: contiguous reads, and no copy of the whole file
    on top of the rows kept.
    """
    split, labels, clip_ids, classes, attrs, groups = read_split(path)
    mask = np.isin(split, list(parts)) if parts is not None else np.ones(len(split), dtype=bool)
    with _open(Path(path)) as f:
        dataset = f["features"]
        features = np.empty((int(mask.sum()), *dataset.shape[1:]), dtype=dataset.dtype)
        kept = 0
        for start in range(0, len(mask), chunk):
            wanted = mask[start : start + chunk]
            if wanted.any():
                rows = dataset[start : start + len(wanted)][wanted]
                features[kept : kept + len(rows)] = rows
                kept += len(rows)
    return FeatureSet(features, labels[mask], clip_ids[mask], split[mask], classes, attrs, groups[mask])
