"""The extraction benchmark runs on the real clips and prints
every figure it promises: the bound, the pipeline, the DataLoader alone, the naive loop and the ratios."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from actrec.devices import resolve_num_workers
from actrec.errors import ActrecError
from benchmarks.bench_suite import pytest_summary
from tests.helpers import ROOT


def _benchmark(name: str, *args: str) -> str:
    """What `python -m benchmarks.<name> ARGS` prints, run from the checkout; it must succeed."""
    run = subprocess.run(
        [sys.executable, "-m", f"benchmarks.{name}", *args], capture_output=True, text=True, timeout=600, cwd=ROOT
    )
    assert run.returncode == 0, run.stderr[-3000:]
    return run.stdout


def test_bench_extract_prints_every_figure(ucf_mini: Path) -> None:
    # Small images and the small backbone: the figures, not their size, are under test.
    out = _benchmark(
        "bench_extract",
        "--root",
        str(ucf_mini),
        "--limit",
        "2",
        "--repeat",
        "2",
        "--backbone",
        "efficientnet_lite0",
        "--image-size",
        "64",
        "--device",
        "cpu",
        "--decoders",
        "auto,decord",
        "--worker-counts",
        "1,2",
    )

    def figure(label: str) -> float:
        found = re.search(rf"{re.escape(label)}\s*:\s*([\d.]+)", out)
        assert found, f"no '{label}' in:\n{out}"
        return float(found.group(1))

    bound, pipeline = figure("1. backbone-only bound"), figure("2. pipeline")
    decoding, naive = figure("decoding alone"), figure("3. naive reference")
    assert min(bound, pipeline, decoding, naive) > 0
    assert out.startswith("machine: ") and " cores" in out.splitlines()[0], "it says what it ran on"
    workers = resolve_num_workers("auto", torch.device("cpu"))
    assert f"(4 clips x 16 frames, {workers} decoding worker" in out  # --repeat 2 over 2 clips
    assert figure("4. pipeline / bound") == pytest.approx(pipeline / bound, rel=0.01, abs=0.01)
    assert figure(f"decoding, {torch.get_num_threads()} workers") > 0, "decoding timed with every core decoding"
    combined = figure("combined bound")
    assert combined <= bound and figure("pipeline / combined") == pytest.approx(pipeline / combined, rel=0.01, abs=0.01)
    assert re.search(r"^engine \S+, precision (fp32|bf16) \((trial|cached|rule)\)$", out, re.M), out
    assert figure("pipeline / naive") == pytest.approx(pipeline / naive, rel=0.01, abs=0.01)
    assert re.search(r"^5\. decoding paths\s*: auto takes pyav for 2 of the clips$", out, re.M), out  # UCF-101: AVI
    row = r"\s+(\d) workers\s+[\d.]+ frames/s; a worker\s+[\d.]+ frames/s \(([\d.]+) of one alone"
    found = re.search(rf"^   auto{row}.*\n{row}", out, re.M)  # a row per worker count, the rate against one alone
    assert found and found.group(1, 3) == ("1", "2") and float(found.group(2)) == 1.0, out
    assert re.search(r"^   decord\s+no clip decoded \(it cannot tell where these clips' frames are shown\)$", out, re.M)


def test_bench_serve_prints_its_figures(trained_run: Path) -> None:
    """Upload-to-answer through a started `actrec serve`; the lag of `actrec watch` on a clip played in real time."""
    model = str(trained_run / "models" / "model.pt")
    out = _benchmark("bench_serve", "--model", model, "--runs", "1", "--watch-seconds", "6")
    assert out.startswith("machine: ")
    upload = re.search(r"upload to answer, median:\s+([\d.]+) s", out)
    assert upload and float(upload.group(1)) > 0, out
    watched = re.search(r"end of stream after 150 frames; (\d+) updates, (\d+) windows dropped", out)
    assert watched and int(watched.group(1)) + int(watched.group(2)) == 3, out  # 4 s windows every 1 s in 6 s
    assert re.search(r"lag behind real time: median [\d.]+ s", out) or watched.group(1) == "0", out


@pytest.mark.slow
def test_bench_reversed_prints_the_head_beside_the_probe(ucf_mini: Path) -> None:
    out = _benchmark("bench_reversed", "--shared", str(ucf_mini.parent), "--groups", "1", "--seconds", "1",
                     "--frames", "4", "--size", "64", "--epochs", "10")  # fmt: skip
    assert out.startswith("machine: ") and "date: " in out
    assert "miniature: 12 train and 6 validation (test) clips" in out
    for name in ("chosen head", "linear probe"):
        assert re.search(rf"test top-1, {name}: [01]\.\d{{3}} \[[01]\.\d{{3}}, [01]\.\d{{3}}\] on 6 clips", out), out


def test_bench_frames_counts_the_clips_whose_frames_differ_from_ffmpegs(ucf_mini: Path) -> None:
    out = _benchmark("bench_frames", "--shared", str(ucf_mini.parent), "--limit", "2", "--views", "1")
    assert out.startswith("machine: ")
    assert "clips checked: 2 (16 frames × 1 views each, against ffmpeg -fps_mode cfr)" in out
    assert "clips whose sampled frames differ from FFmpeg's: 0" in out


def test_bench_precision_writes_its_figures_with_the_machine(ucf_mini: Path, tmp_path: Path) -> None:
    out = tmp_path / "precision.json"
    printed = _benchmark("bench_precision", "--shared", str(ucf_mini.parent), "--clips", "1", "--frames", "2",
                         "--backbones", "resnet18", "--results", str(out))  # fmt: skip
    assert printed.startswith("machine: ")
    result = json.loads(out.read_text())
    assert result["machine"] and result["date"] and "bench_precision" in result["command"]
    (row,) = result["rows"]
    assert row[:4] == ["resnet18", "random init", 224, 2] and 0 < row[4] <= row[5] <= 1


def test_bench_suite_reads_pytests_counts_and_seconds(tmp_path: Path) -> None:
    """The suite benchmark's figures come from pytest's own last line, as `make test` prints it."""
    (tmp_path / "test_three.py").write_text(
        "import warnings, pytest\n"
        "def test_passes():\n    warnings.warn(UserWarning('counted apart'))\n"
        "def test_passes_too():\n    pass\n"
        "def test_skips():\n    pytest.skip('no GPU')\n"
    )
    run = subprocess.run([sys.executable, "-m", "pytest", "-ra", "-p", "no:cacheprovider", "test_three.py"],
                         capture_output=True, text=True, cwd=tmp_path)  # fmt: skip
    counts, seconds = pytest_summary(run.stdout)
    assert counts == "2 passed, 1 skipped" and 0 < seconds < 60, run.stdout
    with pytest.raises(ActrecError, match="no pytest summary"):
        pytest_summary(run.stdout.replace("passed", "ran"))
