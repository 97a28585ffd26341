"""Which engine and precision run the backbone fastest here, found by a short measured trial.

No rule written on one machine holds on another: on an AVX2 CPU onnxruntime in fp32 wins, on an
AVX512-BF16 CPU OpenVINO in bf16 wins on EfficientNet and torch in bf16 on ResNet50, and a GPU is
another world again (figures: docs/benchmarks.md, Engines and precision). So `extract.engine: auto`
(or `precision: auto`) times every candidate that can run here on the actual backbone, batch size and device, for a
moment each, and runs with the one that finishes the frames still to extract soonest, its set-up
counted. The measurements are kept per machine, backbone and settings (in ~/.cache/actrec, or
$ACTREC_CACHE_DIR), so later runs choose at once; torch.compile, whose cold set-up can take longer
than a short run, is timed only when the run is long enough for it to pay.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import platform
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from actrec.devices import native_precision, resolve_precision
from actrec.errors import ActrecError, first_line
from actrec.features.backbones import Backbone
from actrec.features.engines import ENGINES, BackboneRunner, available, resolve_engine, supports
from actrec.files import output_file

logger = logging.getLogger(__name__)

# Below this many frames to extract a trial costs more than it can save: the static rule decides.
TRIAL_MIN_FRAMES = 1_000
TRIAL_SECONDS = 0.5  # timed forward passes per candidate, after its set-up and a warm-up batch
# torch.compile is timed only if, gaining at most this much over eager torch in the same precision,
# it could repay its set-up: the measured one when known, else this guess at a cold compile.
COMPILE_MAX_GAIN = 1.5
COMPILE_SETUP_GUESS_S = 45.0
CPU_FLAGS = ("avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile")


@dataclass(frozen=True)
class Trial:
    """One candidate's figures: seconds to set up (export, compile, first batch) and steady frames/s."""

    engine: str
    precision: str
    setup_s: float
    fps: float
    error: str = ""

    def seconds_for(self, frames: int, built: bool = False) -> float:
        """Time to extract `frames` frames with this candidate (its set-up not counted when already built)."""
        if self.error or self.fps <= 0:
            return math.inf
        return (0.0 if built else self.setup_s) + frames / self.fps


@dataclass
class EngineChoice:
    """The engine and precision a run takes, why, and the runner when the trial already built it."""

    engine: str
    precision: str
    # given (params), cache (features already extracted in this precision), rule (too short for a trial),
    # trial (measured now), cached (measured before), fallback (no candidate could run)
    how: str
    trials: list[Trial] = field(default_factory=list)
    runner: BackboneRunner | None = None

    def record(self) -> dict:
        """What reports/extract.json keeps of the choice."""
        return {
            "engine": self.engine,
            "precision": self.precision,
            "chosen_by": self.how,
            "trials": [{k: v for k, v in asdict(t).items() if v != ""} for t in self.trials],
        }


def candidates(engine: str, precision: str, device: torch.device) -> list[tuple[str, str]]:
    """(engine, precision) pairs that may run: the params' values where given, else every installed engine
    in fp32 and in the reduced precision the device runs natively."""
    native = resolve_precision("auto", device)
    precisions = [precision] if precision != "auto" else list(dict.fromkeys((native, "fp32")))
    if device.type == "cuda" and precision == "auto":
        precisions = [native]  # a GPU's fp32 is never the fastest way to the same features
    engines = [engine] if engine != "auto" else [e for e in ENGINES if available(e)]
    return [(e, p) for e in engines for p in precisions if supports(e, p, device)]


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
    for runtime in ("onnxruntime", "openvino"):
        if available(runtime):
            from importlib.metadata import version

            parts.append(f"{runtime} {version(runtime)}")
    return ", ".join(parts)


def cache_file() -> Path:
    root = os.environ.get("ACTREC_CACHE_DIR") or Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    return Path(root) / "actrec" / "engine-trials.json"


def _key(backbone: str, image_size: int, device: torch.device, batch_size: int) -> str:
    text = json.dumps([machine(), device.type, backbone, image_size, batch_size])
    return hashlib.sha1(text.encode()).hexdigest()[:16]


def _load(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def _save(path: Path, key: str, trials: list[Trial], about: dict) -> None:
    """Add this run's measurements to the file (best effort: a read-only home only costs a trial next time)."""
    data = _load(path)
    data[key] = {**about, "trials": [asdict(t) for t in trials]}
    try:
        with output_file(path) as tmp:
            tmp.write_text(json.dumps(data, indent=2) + "\n")
    except OSError as err:
        logger.warning("cannot keep the engine trial in %s (%s); the next run measures again", path, err)


def time_candidate(
    backbone: Backbone,
    device: torch.device,
    engine: str,
    precision: str,
    batch_size: int,
    seconds: float = TRIAL_SECONDS,
) -> tuple[Trial, BackboneRunner | None]:
    """Set the candidate up and time it on random images of the run's size; an engine that fails is an error."""
    size = backbone.image_size
    images = torch.randint(0, 256, (batch_size, 3, size, size), dtype=torch.uint8, device=device)
    start = time.perf_counter()
    try:
        runner = BackboneRunner(backbone, device, precision, batch_size, engine)
        with torch.inference_mode():
            runner(images)
            _sync(device)
            setup = time.perf_counter() - start
            runner(images)  # warm-up: first-call allocations and kernel choices
            frames, begin = 0, time.perf_counter()
            while frames < 2 * batch_size or time.perf_counter() - begin < seconds:
                runner(images)
                frames += batch_size
            _sync(device)
            fps = frames / (time.perf_counter() - begin)
    except Exception as err:  # an engine that cannot run here is not a candidate
        return Trial(engine, precision, 0.0, 0.0, f"{type(err).__name__}: {first_line(err, 120)}"), None
    if runner.engine != engine:  # it fell back to eager: its figures are eager's
        return Trial(engine, precision, setup, 0.0, "fell back to eager"), None
    return Trial(engine, precision, round(setup, 2), round(fps, 1)), runner


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _compile_may_pay(known: dict[tuple[str, str], Trial], precision: str, frames: int) -> bool:
    """Whether torch.compile, at best COMPILE_MAX_GAIN times eager torch, could beat the best engine measured."""
    eager = known.get(("eager", precision))
    if eager is None or eager.error:
        return False
    best = min((t.seconds_for(frames) for (e, _), t in known.items() if e != "compile"), default=math.inf)
    setup = known[("compile", precision)].setup_s if ("compile", precision) in known else COMPILE_SETUP_GUESS_S
    return setup + frames / (eager.fps * COMPILE_MAX_GAIN) < best


def choose(
    backbone: Backbone,
    device: torch.device,
    batch_size: int,
    engine: str,
    precision: str,
    frames_for: Callable[[str], int],
) -> EngineChoice:
    """The engine and precision to run, for `frames_for(precision)` frames still to extract in that precision.

    Explicit params are obeyed. Otherwise the figures come from the cache file; what is missing is
    measured now (and added to the file), unless the run is too short to repay a trial, which then
    follows the static rule (engines.resolve_engine, devices.resolve_precision).
    """
    if precision != "auto" and not native_precision(precision, device):
        logger.warning(
            "extract.precision = %s is not native on this %s (a CPU needs AVX512-BF16 or AMX for bf16): the "
            "backbone runs in fp32, and the features are recorded as fp32",
            precision,
            device.type,
        )
        precision = "fp32"
    if engine != "auto" and precision != "auto":
        return EngineChoice(engine, precision, "given")
    pairs = candidates(engine, precision, device)
    if not pairs:
        raise ActrecError(
            f"params: extract.engine = {engine!r} cannot run in precision {precision} on {device.type} "
            f"(or its runtime is not installed); use engine auto"
        )
    frames = {p: frames_for(p) for p in {p for _, p in pairs}}
    done = [p for p, n in frames.items() if n == 0]
    if done:  # every clip is in the cache already in this precision: nothing will run
        return EngineChoice(engine if engine != "auto" else "eager", done[0], "cache")
    path, key = cache_file(), _key(backbone.name, backbone.image_size, device, batch_size)
    kept = {(t["engine"], t["precision"]): Trial(**t) for t in _load(path).get(key, {}).get("trials", [])}
    known = {pair: trial for pair, trial in kept.items() if pair in pairs}  # what this run may choose from
    # An engine given in params is timed whatever its set-up; under `auto` a compile only if it may pay.
    gated = engine == "auto"
    missing = [pair for pair in pairs if pair not in known and (pair[0] != "compile" or not gated)]
    if missing and max(frames.values()) < TRIAL_MIN_FRAMES:
        chosen = precision if precision != "auto" else resolve_precision("auto", device)
        return EngineChoice(
            engine if engine != "auto" else resolve_engine("auto", device, chosen, frames[chosen]), chosen, "rule"
        )
    measured, built = measure(backbone, device, batch_size, pairs, known, frames, gated)
    known.update(measured)
    if measured:
        about = {
            "machine": machine(),
            "backbone": backbone.name,
            "image_size": backbone.image_size,
            "batch_size": batch_size,
        }
        _save(path, key, list({**kept, **known}.values()), about)  # keep what other params' runs measured
    return pick(pairs, known, built, frames, source="measured now" if built else f"from {path}")


def measure(
    backbone: Backbone,
    device: torch.device,
    batch_size: int,
    pairs: list[tuple[str, str]],
    known: dict[tuple[str, str], Trial],
    frames: dict[str, int],
    gated: bool,
) -> tuple[dict[tuple[str, str], Trial], dict[tuple[str, str], BackboneRunner]]:
    """Time the candidates not yet `known`: their trials, and the runners they built (ready to run).

    Under `gated` (engine auto) torch.compile is timed only where, at its best, it could beat what is known.
    """
    measured: dict[tuple[str, str], Trial] = {}
    built: dict[tuple[str, str], BackboneRunner] = {}
    for pair in [p for p in pairs if p not in known and p[0] != "compile"] + [
        p for p in pairs if p not in known and p[0] == "compile"
    ]:
        if pair[0] == "compile" and gated and not _compile_may_pay({**known, **measured}, pair[1], frames[pair[1]]):
            continue
        logger.info("engine trial: timing %s in %s", *pair)
        measured[pair], runner = time_candidate(backbone, device, *pair, batch_size)
        if runner is not None:
            built[pair] = runner
    return measured, built


def pick(
    pairs: list[tuple[str, str]],
    known: dict[tuple[str, str], Trial],
    built: dict[tuple[str, str], BackboneRunner],
    frames: dict[str, int],
    source: str,
) -> EngineChoice:
    """The candidate that finishes `frames` soonest, its set-up counted unless `built`; eager if none can run."""

    def seconds(pair: tuple[str, str]) -> float:
        return known[pair].seconds_for(frames[pair[1]], built=pair in built)

    trials = [known[p] for p in pairs if p in known]
    best = min(known, key=seconds, default=("eager", pairs[0][1]))
    if best not in known or math.isinf(seconds(best)):  # nothing could run: eager torch runs anything
        return EngineChoice("eager", best[1], "fallback", trials)
    logger.info(
        "engine trial (%s): %s; running %s in %s for %d frames",
        source,
        ", ".join(
            f"{t.engine}/{t.precision} {t.fps:.0f} frames/s after {t.setup_s:.1f} s set-up"
            if not t.error
            else f"{t.engine}/{t.precision} failed ({t.error})"
            for t in trials
        ),
        *best,
        frames[best[1]],
    )
    return EngineChoice(best[0], best[1], "trial" if built else "cached", trials, built.get(best))
