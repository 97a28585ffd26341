"""Tests for the synthetic demo generator: layout, decodability, determinism, visible motion."""

from __future__ import annotations

import math
from pathlib import Path

import decord
import numpy as np
import pytest

from actrec.data.synthetic import CLASSES, generate_demo

FPS, MIN_S, MAX_S = 25, 1.0, 1.6
ARGS = dict(clips_per_class=3, groups=2, seed=7, fps=FPS, min_seconds=MIN_S, max_seconds=MAX_S)


def _decode(path: Path) -> np.ndarray:
    vr = decord.VideoReader(str(path))
    return vr.get_batch(list(range(len(vr)))).asnumpy()


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Path]]:
    out = tmp_path_factory.mktemp("demo")
    return out, generate_demo(out, **ARGS)


def test_layout(demo: tuple[Path, list[Path]]) -> None:
    out, paths = demo
    assert len(CLASSES) == 6
    # clip c -> group c % groups + 1, numbered within its group
    names = ["g01_c01", "g02_c01", "g01_c02"]
    expected = {out / cls / f"{cls}_{n}.avi" for cls in CLASSES for n in names}
    assert len(paths) == len(expected) and set(paths) == expected
    on_disk = {p for p in out.rglob("*") if p.is_file()}
    assert on_disk == expected  # no temporary files left behind


def test_decodes_with_expected_length_and_size(demo: tuple[Path, list[Path]]) -> None:
    _, paths = demo
    lo, hi = math.ceil(MIN_S * FPS), math.floor(MAX_S * FPS)
    for path in paths:
        vr = decord.VideoReader(str(path))
        assert lo <= len(vr) <= hi, path
        assert vr[0].shape == (120, 160, 3)
        assert vr.get_avg_fps() == pytest.approx(FPS)


def test_deterministic(demo: tuple[Path, list[Path]], tmp_path: Path) -> None:
    out, paths = demo
    again = generate_demo(tmp_path, **ARGS)
    for a, b in zip(paths, again, strict=True):
        assert a.relative_to(out) == b.relative_to(tmp_path)
        np.testing.assert_array_equal(_decode(a), _decode(b))
    other = generate_demo(tmp_path / "other", **{**ARGS, "seed": 8, "clips_per_class": 1})
    assert not np.array_equal(_decode(other[0])[0], _decode(paths[0])[0])


def test_motion_is_visible(demo: tuple[Path, list[Path]]) -> None:
    _, paths = demo
    for path in paths:
        frames = _decode(path).astype(np.float32)
        diff = np.abs(frames[0] - frames[-1])
        # Pixel noise (sigma <= 6) almost never moves a pixel by > 40 levels; the object does.
        changed = (diff.max(axis=-1) > 40).mean()
        assert diff.mean() > 4.0 and changed > 0.03, (path, diff.mean(), changed)


def test_rejects_bad_arguments(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        generate_demo(tmp_path, clips_per_class=0, groups=1, seed=0)
    with pytest.raises(ValueError):
        generate_demo(tmp_path, clips_per_class=1, groups=1, seed=0, min_seconds=3, max_seconds=2)
