"""The engine trial: it runs with whatever finishes the frames still to extract soonest, set-up counted, keeps
its figures per machine, times torch.compile only when it could pay, and obeys explicit params; kept figures
are timed again after a month, after an extraction that ran clearly slower, and on `actrec trial --refresh`."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from actrec import cli
from actrec.errors import ActrecError
from actrec.features import engine_trial, trial_cache
from actrec.features.engine_trial import CONFIRM_MIN_SECONDS, TRIAL_MIN_FRAMES, Trial, candidates, choose, confirm
from actrec.features.trial_cache import MAX_AGE_DAYS
from tests.helpers import tiny_project

CPU = torch.device("cpu")
BACKBONE = SimpleNamespace(name="efficientnet_lite0", image_size=224)  # what the trial keys its figures by
# (set-up s, frames/s) of each candidate on an imagined machine with native bf16
FIGURES = {
    ("eager", "fp32"): (0.1, 40),
    ("eager", "bf16"): (0.1, 150),
    ("onnxruntime", "fp32"): (1.0, 100),
    ("openvino", "fp32"): (1.0, 90),
    ("openvino", "bf16"): (1.5, 200),
    ("compile", "fp32"): (40.0, 50),
    ("compile", "bf16"): (40.0, 220),
}


@pytest.fixture
def timed(monkeypatch, tmp_path: Path) -> list[tuple[str, str]]:
    """Candidates are 'timed' from FIGURES (no model runs); returns the list of what was timed, in order."""
    monkeypatch.setenv("ACTREC_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(
        engine_trial,
        "candidates",
        lambda engine, precision, device: [
            pair for pair in FIGURES if engine in ("auto", pair[0]) and precision in ("auto", pair[1])
        ],
    )
    seen = []

    def fake(backbone, device, engine, precision, batch_size, seconds=1.0):
        seen.append((engine, precision))
        setup, fps = FIGURES[(engine, precision)]
        return Trial(engine, precision, setup, fps, measured=time.time()), f"runner {engine}/{precision}"

    monkeypatch.setattr(engine_trial, "time_candidate", fake)
    return seen


def _choose(frames: int, engine: str = "auto", precision: str = "auto", done: str = ""):
    return choose(BACKBONE, CPU, 16, engine, precision, lambda e, p: 0 if p == done else frames)


def test_the_fastest_for_the_frames_left_wins_and_is_kept(timed) -> None:
    choice = _choose(3_000)
    assert (choice.engine, choice.precision, choice.how) == ("openvino", "bf16", "trial")
    assert choice.runner == "runner openvino/bf16", "the runner the trial built is the one that runs"
    assert ("compile", "bf16") not in timed, "a 45 s compile cannot pay on 3,000 frames: not even timed"
    record = choice.record()
    assert record["chosen_by"] == "trial" and {t["engine"] for t in record["trials"]} == {
        "eager",
        "onnxruntime",
        "openvino",
    }
    timed.clear()
    again = _choose(3_000)
    assert timed == [] and again.how == "cached" and (again.engine, again.precision) == ("openvino", "bf16")
    assert again.runner is None, "from the cache, the chosen engine is built by the run itself"
    kept = json.loads(engine_trial.cache_file().read_text())
    assert len(kept) == 1 and next(iter(kept.values()))["backbone"] == "efficientnet_lite0"


def test_compile_is_timed_and_taken_only_when_the_run_repays_it(timed) -> None:
    long = _choose(200_000)
    assert ("compile", "bf16") in timed and (long.engine, long.precision) == ("compile", "bf16")
    timed.clear()
    short = _choose(3_000)  # compile's figures are known now, its 40 s set-up still counts
    assert timed == [] and (short.engine, short.precision) == ("openvino", "bf16")


def test_explicit_params_are_obeyed_without_a_trial(timed) -> None:
    given = _choose(10**6, engine="onnxruntime", precision="fp32")
    assert (given.engine, given.precision, given.how, timed) == ("onnxruntime", "fp32", "given", [])
    fp32 = _choose(3_000, precision="fp32")
    assert (fp32.engine, fp32.precision) == ("onnxruntime", "fp32") and {p for _, p in timed} == {"fp32"}
    timed.clear()
    assert _choose(3_000).engine == "openvino" and {p for _, p in timed} == {"bf16"}, "fp32's figures were kept"
    assert len(next(iter(json.loads(engine_trial.cache_file().read_text()).values()))["trials"]) == 5


def test_short_runs_and_cached_features_skip_the_trial(timed) -> None:
    short = _choose(TRIAL_MIN_FRAMES - 1)
    assert short.how == "rule" and timed == []
    cached = _choose(10**6, done="fp32")  # every clip already extracted in fp32: nothing to choose
    assert (cached.precision, cached.how, timed) == ("fp32", "cache", [])


def test_an_engine_that_cannot_run_is_passed_over(timed, monkeypatch) -> None:
    real = engine_trial.time_candidate

    def openvino_breaks(backbone, device, engine, precision, batch_size, seconds=1.0):
        if engine == "openvino":
            return Trial(engine, precision, 0.0, 0.0, "RuntimeError: no such operator"), None
        return real(backbone, device, engine, precision, batch_size, seconds)

    monkeypatch.setattr(engine_trial, "time_candidate", openvino_breaks)
    choice = _choose(3_000)
    assert (choice.engine, choice.precision) == ("eager", "bf16")  # the next fastest
    assert any(t["error"] for t in choice.record()["trials"] if t["engine"] == "openvino")


def test_candidates_follow_the_device_and_params(monkeypatch) -> None:
    monkeypatch.setattr(engine_trial, "resolve_precision", lambda precision, device: "bf16")
    monkeypatch.setattr(engine_trial, "available", lambda engine: engine != "openvino")
    assert candidates("auto", "auto", CPU) == [
        ("eager", "bf16"),
        ("eager", "fp32"),
        ("compile", "bf16"),
        ("compile", "fp32"),
        ("onnxruntime", "fp32"),
    ]
    assert candidates("auto", "fp32", CPU) == [("eager", "fp32"), ("compile", "fp32"), ("onnxruntime", "fp32")]
    assert candidates("auto", "auto", torch.device("cuda")) == [("eager", "bf16"), ("compile", "bf16")]
    assert candidates("onnxruntime", "bf16", CPU) == []
    with pytest.raises(ActrecError, match="'onnxruntime' cannot run in precision auto on cuda"):
        choose(BACKBONE, torch.device("cuda"), 512, "onnxruntime", "auto", lambda e, p: 10**6)


def test_pick_counts_set_up_unless_the_runner_is_built_and_falls_back_to_eager() -> None:
    """Measuring and picking are apart: pick weighs the figures alone, as the run's frame count makes them."""
    pairs = [("eager", "fp32"), ("onnxruntime", "fp32")]
    known = {pairs[0]: Trial("eager", "fp32", 0.1, 100.0), pairs[1]: Trial("onnxruntime", "fp32", 5.0, 400.0)}
    few, many = dict.fromkeys(pairs, 200), dict.fromkeys(pairs, 10_000)
    assert engine_trial.pick(pairs, known, {}, few, "test").engine == "eager"  # 2.1 s against 5.5 s
    assert engine_trial.pick(pairs, known, {}, many, "test").engine == "onnxruntime"
    built = {pairs[1]: object()}  # set up already by the trial: its set-up is spent
    assert engine_trial.pick(pairs, known, built, few, "test").how == "trial"
    assert engine_trial.pick(pairs, known, built, few, "test").engine == "onnxruntime"
    broken = {p: Trial(*p, 0.0, 0.0, "RuntimeError: no") for p in pairs}
    assert engine_trial.pick(pairs, broken, {}, few, "test").how == "fallback"


def test_a_reduced_precision_not_native_here_falls_back_to_fp32_in_one_line(timed, monkeypatch, caplog) -> None:
    """bf16 asked for on a CPU without AVX512-BF16 or AMX: the run takes fp32, which its report, features.h5 and
    the cache's key then record (they take the choice's precision), and says so once."""
    monkeypatch.setattr(engine_trial, "native_precision", lambda precision, device: precision == "fp32")
    with caplog.at_level(logging.WARNING, logger="actrec.features.engine_trial"):
        given = _choose(3_000, engine="eager", precision="bf16")
        measured = _choose(3_000, precision="bf16")
    assert (given.engine, given.precision, given.how) == ("eager", "fp32", "given")
    assert measured.precision == "fp32" and measured.engine == "onnxruntime"
    lines = [r.getMessage() for r in caplog.records if "not native" in r.getMessage()]
    assert len(lines) == 2 and "runs in fp32" in lines[0], "one line per run"


def test_a_cache_holding_the_clips_with_one_engine_is_continued(timed) -> None:
    """Features are cached per engine and precision: the clips a candidate's cache holds cost it nothing, in the
    trial's reckoning and in the rule's."""
    nearly = {("onnxruntime", "fp32"): 40}  # its cache holds all but one clip of 4,000 frames
    frames = lambda e, p: nearly.get((e, p), 4_000)  # noqa: E731
    ruled = choose(BACKBONE, CPU, 16, "auto", "auto", frames)
    assert (ruled.engine, ruled.precision, ruled.how, timed) == ("onnxruntime", "fp32", "rule", [])
    eager_cached = lambda e, p: 2_000 if (e, p) == ("eager", "fp32") else 50_000  # noqa: E731
    measured = choose(BACKBONE, CPU, 16, "auto", "auto", eager_cached)
    assert (measured.engine, measured.precision, measured.how) == ("eager", "fp32", "trial"), "50 s against 251 s"


def _kept_at(when: float, monkeypatch) -> None:
    monkeypatch.setattr(trial_cache, "time", SimpleNamespace(time=lambda: when))


def test_kept_figures_are_timed_again_once_older_than_the_max_age(timed, monkeypatch, caplog) -> None:
    now = time.time()
    _choose(3_000)
    timed.clear()
    _kept_at(now + (MAX_AGE_DAYS - 1) * 86_400, monkeypatch)
    assert _choose(3_000).how == "cached" and timed == [], "a month minus a day: still trusted"
    _kept_at(now + (MAX_AGE_DAYS + 1) * 86_400, monkeypatch)
    with caplog.at_level(logging.INFO, logger="actrec.features.trial_cache"):
        again = _choose(3_000)
    assert again.how == "trial" and {"openvino", "onnxruntime", "eager"} <= {e for e, _ in timed}
    assert sum("over 30 days old" in r.getMessage() for r in caplog.records) == 1


def test_an_extraction_clearly_slower_than_its_trial_drops_the_figures(timed, caplog) -> None:
    """openvino bf16 was timed at 200 frames/s; the rate the extraction measured decides, never the clock."""
    choice = _choose(3_000)
    assert choice.key and confirm(choice, "openvino", frames=14_400, seconds=CONFIRM_MIN_SECONDS * 2)  # 120/s
    assert confirm(choice, "openvino", frames=100, seconds=CONFIRM_MIN_SECONDS / 2), "too short to say"
    assert _choose(3_000).how == "cached"
    with caplog.at_level(logging.WARNING, logger="actrec.features.engine_trial"):
        assert not confirm(choice, "openvino", frames=9_600, seconds=CONFIRM_MIN_SECONDS * 2)  # 80/s < 0.5 × 200
    [line] = [r.getMessage() for r in caplog.records if "no longer holds" in r.getMessage()]
    assert "80.0 frames/s" in line and "under 0.5 of the 200.0 its trial measured" in line
    assert "the next run times the engines again" in line
    assert engine_trial.cache_file().read_text().strip() == "{}", "the entry is gone"
    timed.clear()
    assert _choose(3_000).how == "trial" and timed, "the next run times the engines again"
    fell_back = _choose(3_000)
    assert not confirm(fell_back, "eager", frames=1, seconds=1.0), "an engine that could not run: untrue too"
    given = _choose(3_000, engine="openvino", precision="bf16")
    assert confirm(given, "openvino", frames=1, seconds=CONFIRM_MIN_SECONDS * 10), "given: no figure to doubt"


def test_actrec_trial_refresh_times_the_engines_again_and_prints_the_table(timed, tmp_path, capsys) -> None:
    tiny_project(tmp_path, extract={"image_size": 32, "engine": "auto", "precision": "auto"})

    def run(*flags: str) -> None:
        args = cli.build_parser().parse_args(["trial", *flags, "--params", str(tmp_path / "params.yaml")])
        args.func(args)

    run()
    assert "nothing kept" in capsys.readouterr().out and timed == []
    run("--refresh")
    out = capsys.readouterr().out
    assert sorted(timed) == sorted(p for p in FIGURES if p[0] != "compile"), "compile only with --compile"
    assert "openvino     bf16" in out and "<- auto for 100,000 frames" in out
    assert "100,000 frames: auto takes openvino/bf16 at 200.0 frames/s, 1.00 of the best rate measured" in out
    timed.clear()
    run("--refresh", "--compile", "--frames", "3000")
    out = capsys.readouterr().out
    assert ("compile", "bf16") in timed and "auto takes openvino/bf16 at 200.0 frames/s, 0.91 of the best" in out
