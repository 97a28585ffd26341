"""Which engine and precision run the backbone fastest here, found by a short measured trial.

No rule written on one machine holds on another: on an AVX2 CPU onnxruntime in fp32 wins, on an
AVX512-BF16 CPU OpenVINO in bf16 wins on EfficientNet and torch in bf16 on ResNet50, and a GPU is
another world again (figures: docs/benchmarks.md, Engines and precision). So `extract.engine: auto`
(or `precision: auto`) times every candidate that can run here on the actual backbone, batch size and device, for a
moment each, and runs with the one that finishes the frames still to extract soonest, its set-up
counted, and the clips each candidate's feature cache already holds not counted (features are cached per
engine and precision). The measurements are kept per machine, backbone and settings (trial_cache.py),
so later runs choose at once, until they are a month old, an extraction finds them untrue (`confirm`)
or `actrec trial --refresh` times them again (`retime`); torch.compile, whose cold set-up can take
longer than a short run, is timed only when the run is long enough for it to pay.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from actrec.devices import native_precision, resolve_precision
from actrec.errors import ActrecError, first_line
from actrec.features import trial_cache
from actrec.features.backbones import Backbone
from actrec.features.engines import ENGINES, BackboneRunner, available, resolve_engine, supports
from actrec.features.trial_cache import Pair, Trial, cache_file

__all__ = ["EngineChoice", "Trial", "cache_file", "candidates", "choose", "confirm", "retime", "time_candidate"]

logger = logging.getLogger(__name__)

# Below this many frames to extract a trial costs more than it can save: the static rule decides.
TRIAL_MIN_FRAMES = 1_000
TRIAL_SECONDS = 0.5  # timed forward passes per candidate, after its set-up and a warm-up batch
# torch.compile is timed only if, gaining at most this much over eager torch in the same precision,
# it could repay its set-up: the measured one when known, else this guess at a cold compile.
COMPILE_MAX_GAIN = 1.5
COMPILE_SETUP_GUESS_S = 45.0
# A kept trial no longer holds when the engine it chose, timed in the extraction itself, runs under this share
# of the trial's rate over at least CONFIRM_MIN_SECONDS of forward passes (a shorter run says too little). In a
# run the backbone shares the cores with the decoding workers and keeps about three quarters of its trial rate
# on a 2-core CPU (docs/benchmarks.md, Engines and precision): half is clearly slower, not that sharing.
SLOW_RATIO = 0.5
CONFIRM_MIN_SECONDS = 60.0

FramesFor = Callable[[str, str], int]  # (engine, precision) → frames still to extract with them


@dataclass
class EngineChoice:
    """The engine and precision a run takes, why, the runner when the trial already built it, and the trial
    cache's entry its figures came from ("" when none did)."""

    engine: str
    precision: str
    # given (params), cache (features already extracted with this engine and precision), rule (too short for a
    # trial), trial (measured now), cached (measured before), fallback (no candidate could run)
    how: str
    trials: list[Trial] = field(default_factory=list)
    runner: BackboneRunner | None = None
    key: str = ""

    def record(self) -> dict:
        """What reports/extract.json keeps of the choice."""
        return {
            "engine": self.engine,
            "precision": self.precision,
            "chosen_by": self.how,
            "trials": [t.record() for t in self.trials],
        }


def candidates(engine: str, precision: str, device: torch.device) -> list[Pair]:
    """(engine, precision) pairs that may run: the params' values where given, else every installed engine
    in fp32 and in the reduced precision the device runs natively."""
    native = resolve_precision("auto", device)
    precisions = [precision] if precision != "auto" else list(dict.fromkeys((native, "fp32")))
    if device.type == "cuda" and precision == "auto":
        precisions = [native]  # a GPU's fp32 is never the fastest way to the same features
    engines = [engine] if engine != "auto" else [e for e in ENGINES if available(e)]
    return [(e, p) for e in engines for p in precisions if supports(e, p, device)]


def runnable_precision(precision: str, device: torch.device) -> str:
    """The precision asked for, or fp32 (said in one line) where the device does not run it natively."""
    if precision == "auto" or native_precision(precision, device):
        return precision
    logger.warning(
        "extract.precision = %s is not native on this %s (a CPU needs AVX512-BF16 or AMX for bf16): the "
        "backbone runs in fp32, and the features are recorded as fp32",
        precision,
        device.type,
    )
    return "fp32"


def _about(backbone: Backbone, batch_size: int) -> dict:
    """What the trial cache's entry says it is for."""
    return {
        "machine": trial_cache.machine(),
        "backbone": backbone.name,
        "image_size": backbone.image_size,
        "batch_size": batch_size,
    }


def _key(backbone: Backbone, device: torch.device, batch_size: int) -> str:
    return trial_cache.entry_key(backbone.name, backbone.image_size, device, batch_size)


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
        error = f"{type(err).__name__}: {first_line(err, 120)}"
        return Trial(engine, precision, 0.0, 0.0, error, measured=time.time()), None
    if runner.engine != engine:  # it fell back to eager: its figures are eager's
        return Trial(engine, precision, setup, 0.0, "fell back to eager", measured=time.time()), None
    return Trial(engine, precision, round(setup, 2), round(fps, 1), measured=time.time()), runner


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _compile_may_pay(known: dict[Pair, Trial], precision: str, frames: dict[Pair, int]) -> bool:
    """Whether torch.compile, at best COMPILE_MAX_GAIN times eager torch, could beat the best engine measured."""
    eager = known.get(("eager", precision))
    if eager is None or eager.error:
        return False
    best = min((t.seconds_for(frames[pair]) for pair, t in known.items() if pair[0] != "compile"), default=math.inf)
    setup = known[("compile", precision)].setup_s if ("compile", precision) in known else COMPILE_SETUP_GUESS_S
    return setup + frames[("compile", precision)] / (eager.fps * COMPILE_MAX_GAIN) < best


def choose(
    backbone: Backbone,
    device: torch.device,
    batch_size: int,
    engine: str,
    precision: str,
    frames_for: FramesFor,
) -> EngineChoice:
    """The engine and precision to run, for `frames_for(engine, precision)` frames still to extract with them.

    Explicit params are obeyed. Otherwise the figures come from the trial cache; what is missing or stale
    is measured now (and kept), unless the run is too short to repay a trial, which then follows the static
    rule (`_by_rule`).
    """
    precision = runnable_precision(precision, device)
    if engine != "auto" and precision != "auto":
        return EngineChoice(engine, precision, "given")
    pairs = candidates(engine, precision, device)
    if not pairs:
        raise ActrecError(
            f"params: extract.engine = {engine!r} cannot run in precision {precision} on {device.type} "
            f"(or its runtime is not installed); use engine auto"
        )
    frames = {pair: frames_for(*pair) for pair in pairs}
    done = [pair for pair in pairs if frames[pair] == 0]
    if done:  # every clip is in the cache already with this engine and precision: nothing will run
        return EngineChoice(*done[0], "cache")
    key = _key(backbone, device, batch_size)
    known = {pair: trial for pair, trial in trial_cache.load(key).items() if pair in pairs}
    # An engine given in params is timed whatever its set-up; under `auto` a compile only if it may pay.
    gated = engine == "auto"
    missing = [pair for pair in pairs if pair not in known and (pair[0] != "compile" or not gated)]
    if missing and min(frames.values()) < TRIAL_MIN_FRAMES:
        return _by_rule(pairs, frames, engine, precision, device)
    measured, built = measure(backbone, device, batch_size, pairs, known, frames, gated)
    known.update(measured)
    if measured:
        trial_cache.save(key, list(measured.values()), _about(backbone, batch_size))
    source = "measured now" if built else f"from {cache_file()}"
    choice = pick(pairs, known, built, frames, source)
    choice.key = key if choice.how in ("trial", "cached") else ""  # the entry `confirm` may drop
    return choice


def _by_rule(
    pairs: list[Pair], frames: dict[Pair, int], engine: str, precision: str, device: torch.device
) -> EngineChoice:
    """A run too short to repay a trial: the static rule's pair (engines.resolve_engine for the frames of a fresh
    start, devices.resolve_precision), unless another candidate's cache already holds more of the clips, which
    then has the least left to do."""
    chosen = precision if precision != "auto" else resolve_precision("auto", device)
    rule = (engine if engine != "auto" else resolve_engine("auto", device, chosen, max(frames.values())), chosen)
    return EngineChoice(*min(pairs, key=lambda pair: (frames[pair], pair != rule)), "rule")


def measure(
    backbone: Backbone,
    device: torch.device,
    batch_size: int,
    pairs: list[Pair],
    known: dict[Pair, Trial],
    frames: dict[Pair, int],
    gated: bool,
) -> tuple[dict[Pair, Trial], dict[Pair, BackboneRunner]]:
    """Time the candidates not yet `known`: their trials, and the runners they built (ready to run).

    Under `gated` (engine auto) torch.compile is timed only where, at its best, it could beat what is known.
    """
    measured: dict[Pair, Trial] = {}
    built: dict[Pair, BackboneRunner] = {}
    todo = [p for p in pairs if p not in known]
    for pair in [p for p in todo if p[0] != "compile"] + [p for p in todo if p[0] == "compile"]:
        if pair[0] == "compile" and gated and not _compile_may_pay({**known, **measured}, pair[1], frames):
            continue
        logger.info("engine trial: timing %s in %s", *pair)
        measured[pair], runner = time_candidate(backbone, device, *pair, batch_size)
        if runner is not None:
            built[pair] = runner
    return measured, built


def pick(
    pairs: list[Pair],
    known: dict[Pair, Trial],
    built: dict[Pair, BackboneRunner],
    frames: dict[Pair, int],
    source: str,
) -> EngineChoice:
    """The candidate that finishes its `frames` soonest, its set-up counted unless `built`; eager if none can run."""

    def seconds(pair: Pair) -> float:
        return known[pair].seconds_for(frames[pair], built=pair in built)

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
        frames[best],
    )
    return EngineChoice(best[0], best[1], "trial" if built else "cached", trials, built.get(best))


def confirm(choice: EngineChoice, ran: str, frames: int, seconds: float) -> bool:
    """Whether the choice's trial held in a real extraction that ran `frames` frames through engine `ran` in
    `seconds` of forward passes. Where it did not (the engine could not run, or ran under SLOW_RATIO of its
    trial's rate over at least CONFIRM_MIN_SECONDS), the trial cache's entry is dropped, in one line, so that
    the next run times every candidate again."""
    trial = next((t for t in choice.trials if (t.engine, t.precision) == (choice.engine, choice.precision)), None)
    if not choice.key or trial is None:
        return True  # given, from the rule or a feature cache: no figure to doubt
    if ran != choice.engine:
        reason = f"{choice.engine} could not run the backbone and eager PyTorch ran instead"
    elif seconds < CONFIRM_MIN_SECONDS or frames / seconds >= SLOW_RATIO * trial.fps:
        return True
    else:
        reason = (
            f"{choice.engine}/{choice.precision} ran at {frames / seconds:.1f} frames/s over {seconds:.0f} s, "
            f"under {SLOW_RATIO} of the {trial.fps:.1f} its trial measured"
        )
    if trial_cache.drop(choice.key):
        logger.warning("engine trial no longer holds (%s): the next run times the engines again", reason)
    return False


def retime(
    backbone: Backbone, device: torch.device, batch_size: int, engine: str, precision: str, with_compile: bool
) -> tuple[list[Trial], str]:
    """Every candidate for these params timed now (torch.compile only `with_compile`: its cold build can take
    minutes), in place of the trial cache's entry; the trials, and the entry's key."""
    precision = runnable_precision(precision, device)
    pairs = [(engine, precision)] if "auto" not in (engine, precision) else candidates(engine, precision, device)
    timed = [pair for pair in pairs if pair[0] != "compile" or with_compile or engine == "compile"]
    trials = []
    for pair in timed:
        logger.info("engine trial: timing %s in %s", *pair)
        trials.append(time_candidate(backbone, device, *pair, batch_size)[0])
    key = _key(backbone, device, batch_size)
    trial_cache.drop(key)
    trial_cache.save(key, trials, _about(backbone, batch_size))
    return trials, key


def kept(backbone: Backbone, device: torch.device, batch_size: int) -> tuple[list[Trial], str]:
    """The trials kept for this backbone, device and batch size on this machine (stale ones left out), and the
    trial cache's entry they are in."""
    key = _key(backbone, device, batch_size)
    return list(trial_cache.load(key).values()), key


def auto_pick(trials: list[Trial], engine: str, precision: str, device: torch.device, frames: int) -> Pair | None:
    """The pair `choose` takes from these figures for `frames` frames, none of them cached (None: none measured
    is a candidate here)."""
    pairs = candidates(engine, runnable_precision(precision, device), device)
    known = {(t.engine, t.precision): t for t in trials if (t.engine, t.precision) in pairs}
    if not known:
        return None
    choice = pick(pairs, known, {}, dict.fromkeys(pairs, frames), "kept figures")
    return choice.engine, choice.precision
