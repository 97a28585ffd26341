"""The engine trial's kept figures: one file per user, an entry per machine, backbone and settings.

A measurement holds only while the machine it was made on stays as it was, and nothing tells when that
stops: a driver or runtime update the version string misses, a CPU now shared with other jobs, a
firmware change. So a kept figure is not trusted for ever. Each trial carries the time it was measured
and is timed again once older than `MAX_AGE_DAYS`; an extraction whose engine runs clearly slower than
its trial said drops the whole entry (engine_trial.confirm); `actrec trial --refresh` times it again on
demand. Writing is best effort: a read-only home only costs a trial next time.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import platform
import time
from dataclasses import asdict, dataclass
from importlib.metadata import version
from pathlib import Path

import torch

from actrec.features.engines import available
from actrec.files import output_file

logger = logging.getLogger(__name__)

# A kept trial older than this is timed again: long enough that most runs choose at once, short enough that
# an upgrade or a change of load the machine description cannot see is caught within a month.
MAX_AGE_DAYS = 30
MAX_AGE_S = MAX_AGE_DAYS * 86_400
CPU_FLAGS = ("avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile")

Pair = tuple[str, str]  # (engine, precision)


@dataclass(frozen=True)
class Trial:
    """One candidate's figures: seconds to set up (export, compile, first batch), steady frames/s, and when
    (Unix seconds) it was measured; 0 for figures kept before times were recorded, which count as stale."""

    engine: str
    precision: str
    setup_s: float
    fps: float
    error: str = ""
    measured: float = 0.0

    def seconds_for(self, frames: int, built: bool = False) -> float:
        """Time to extract `frames` frames with this candidate (its set-up not counted when already built)."""
        if self.error or self.fps <= 0:
            return math.inf
        return (0.0 if built else self.setup_s) + frames / self.fps

    def record(self) -> dict:
        """What a report keeps of it: its figures, without an empty error or the time it was measured."""
        return {k: v for k, v in asdict(self).items() if v != "" and k != "measured"}


def machine() -> str:
    """What the figures depend on besides the model: CPU model and flags or GPU, threads, runtime versions."""
    info = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").is_file() else ""
    lines = info.splitlines()
    model = next((x.split(":", 1)[1].strip() for x in lines if x.startswith("model name")), platform.processor())
    flags = set(next((x.split(":", 1)[1].split() for x in lines if x.startswith("flags")), []))
    parts = [
        model,
        "+".join(f for f in CPU_FLAGS if f in flags),
        f"{torch.get_num_threads()} threads",
        f"torch {torch.__version__}",
    ]
    if torch.cuda.is_available():
        parts.append(torch.cuda.get_device_name())
    parts += [f"{runtime} {version(runtime)}" for runtime in ("onnxruntime", "openvino") if available(runtime)]
    return ", ".join(parts)


def cache_file() -> Path:
    """~/.cache/actrec/engine-trials.json, or under $ACTREC_CACHE_DIR (or $XDG_CACHE_HOME)."""
    root = os.environ.get("ACTREC_CACHE_DIR") or Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    return Path(root) / "actrec" / "engine-trials.json"


def entry_key(backbone: str, image_size: int, device: torch.device, batch_size: int) -> str:
    """The entry of this machine, backbone, image size, device type and batch size."""
    text = json.dumps([machine(), device.type, backbone, image_size, batch_size])
    return hashlib.sha1(text.encode()).hexdigest()[:16]


def _load(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def _write(path: Path, data: dict) -> None:
    try:
        with output_file(path) as tmp:
            tmp.write_text(json.dumps(data, indent=2) + "\n")
    except OSError as err:
        logger.warning("cannot keep the engine trial in %s (%s); the next run measures again", path, err)


def load(key: str, now: float | None = None) -> dict[Pair, Trial]:
    """The entry's trials measured within MAX_AGE_DAYS of `now` (default: the clock); older ones are left out,
    to be timed again, and said so in one line."""
    now = time.time() if now is None else now
    kept = [Trial(**t) for t in _load(cache_file()).get(key, {}).get("trials", [])]
    fresh = {(t.engine, t.precision): t for t in kept if now - t.measured <= MAX_AGE_S}
    if len(fresh) < len(kept):
        stale = len(kept) - len(fresh)
        logger.info("engine trial: %d kept figures are over %d days old and are timed again", stale, MAX_AGE_DAYS)
    return fresh


def save(key: str, trials: list[Trial], about: dict) -> None:
    """Put these trials in the entry, beside what other params' runs measured there (a trial of the same
    engine and precision replaced)."""
    path = cache_file()
    data = _load(path)
    kept = {(t["engine"], t["precision"]): t for t in data.get(key, {}).get("trials", [])}
    kept.update({(t.engine, t.precision): asdict(t) for t in trials})
    data[key] = {**about, "trials": list(kept.values())}
    _write(path, data)


def drop(key: str) -> bool:
    """Forget the entry, so that the next run times every candidate again; whether there was one."""
    path = cache_file()
    data = _load(path)
    if data.pop(key, None) is None:
        return False
    _write(path, data)
    return True


def table(trials: list[Trial], picks: dict[int, Pair], now: float | None = None) -> list[str]:
    """The trials as the lines of a table (set-up, steady frames/s and, given `now`, their age), the pair `auto`
    takes for each number of frames in `picks` marked, then per number of frames how auto's pick's rate
    compares with the best rate measured (`auto` weighs set-up too, so for a short run it may take a slower
    engine that is ready sooner)."""
    ran = [t for t in trials if not t.error and t.fps > 0]
    best = max(ran, key=lambda t: t.fps, default=None)
    lines = [f"  {'engine':12s} {'precision':9s} {'set-up':>8s} {'frames/s':>9s}" + ("  measured" if now else "")]
    for t in trials:
        marks = [f"{n:,}" for n, pair in picks.items() if pair == (t.engine, t.precision)]
        age = f"  {_age(now - t.measured):>8s}" if now else ""
        if t.error:
            lines.append(f"  {t.engine:12s} {t.precision:9s} failed: {t.error}{age}")
            continue
        mark = f"   <- auto for {' and '.join(marks)} frames" if marks else ""
        lines.append(f"  {t.engine:12s} {t.precision:9s} {t.setup_s:6.1f} s {t.fps:9.1f}{age}{mark}")
    for n, pair in picks.items():
        chosen = next((t for t in ran if (t.engine, t.precision) == pair), None)
        if best is None or chosen is None:
            lines.append(f"  {n:,} frames: auto takes {pair[0]}/{pair[1]}, not among the rates measured here")
            continue
        lines.append(
            f"  {n:,} frames: auto takes {pair[0]}/{pair[1]} at {chosen.fps:.1f} frames/s, {chosen.fps / best.fps:.2f} "
            f"of the best rate measured ({best.engine}/{best.precision}, {best.fps:.1f} frames/s)"
        )
    return lines


def _age(seconds: float) -> str:
    days = seconds / 86_400
    return "now" if seconds < 60 else f"{seconds / 60:.0f} min ago" if days < 1 / 24 else f"{days:.1f} d ago"
