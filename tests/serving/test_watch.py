"""`actrec watch`: a generated file played in real time and streams served on 127.0.0.1 by FFmpeg give the windows
`actrec predict --window` gives; a lost stream ends cleanly; a model too slow for the stride drops windows."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from actrec.inference.inputs import Span
from actrec.inference.predictor import Predictor
from tests.helpers import actrec, one_error_line, write_video

pytestmark = pytest.mark.slow

FPS, SECONDS = 25, 4


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def listening(port: int) -> bool:
    """Whether something listens on 127.0.0.1:port, read from /proc (connecting would take FFmpeg's one client)."""
    rows = Path("/proc/net/tcp").read_text().splitlines()[1:]
    return any(r.split()[1] == f"0100007F:{port:04X}" and r.split()[3] == "0A" for r in rows)


@pytest.fixture
def ffmpeg() -> str:
    path = shutil.which("ffmpeg")
    if path is None:
        pytest.skip("ffmpeg not found: install it (apt-get install ffmpeg) to serve test streams")
    return path


@pytest.fixture(scope="module")
def video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """4 s at 25 fps, its brightness rising frame by frame: windows along it differ."""
    return write_video(tmp_path_factory.mktemp("watch") / "long.avi", frames=FPS * SECONDS, fps=FPS)


def watch(*args: str | Path, model: Path, cwd: Path, timeout: float = 120) -> list[dict]:
    """Run `actrec watch ... --json`: it must end by itself, exit 0, no traceback; its JSON lines."""
    done = subprocess.run(
        [sys.executable, "-m", "actrec", "watch", *map(str, args), "--json", "--model", str(model)],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr, done.stderr
    return [json.loads(line) for line in done.stdout.splitlines()]


def assert_same_windows(events: list[dict], expected: pd.DataFrame, classes: list[str]) -> None:
    """Every update names the window `predict --window` places there, with its probabilities."""
    updates = [e for e in events if e["event"] == "update"]
    assert updates
    by_start = expected.set_index("start_s")
    for update in updates:
        row = by_start.loc[update["start_s"]]
        assert update["end_s"] == row["end_s"]
        assert update["prediction"] == row["predicted"]
        assert {t["class"] for t in update["top_k"]} == set(classes)
        for top in update["top_k"]:
            assert top["probability"] == pytest.approx(row[top["class"]], abs=2e-4), update


def test_a_file_played_in_real_time_gives_the_windows_of_predict_window(trained_run: Path, video: Path) -> None:
    model = trained_run / "models" / "model.pt"
    start = time.monotonic()
    events = watch(video, "--realtime", "--window", "1s", "--stride", "0.5s", model=model, cwd=trained_run)
    took = time.monotonic() - start
    predictor = Predictor(model, "cpu")
    expected = predictor.windows(video, Span(1, seconds=True), Span(0.5, seconds=True))  # as predict --window
    assert took >= SECONDS * 0.9, f"{took:.1f} s: not played at its own rate"
    windows = [e for e in events if e["event"] in ("update", "dropped")]
    assert [w["start_s"] for w in windows] == expected["start_s"].tolist()  # each window once, in order
    assert_same_windows(events, expected, predictor.classes)
    assert all(e["lag_s"] >= 0 for e in windows)
    dropped = len(windows) - len([e for e in windows if e["event"] == "update"])
    assert events[-1] == {
        "event": "end",
        "message": f"end of stream after {FPS * SECONDS} frames; {len(windows) - dropped} updates, "
        f"{dropped} windows dropped",
    }


def test_a_stream_served_over_http_gives_the_windows_of_predict_window(
    trained_run: Path, video: Path, ffmpeg: str
) -> None:
    model, http = trained_run / "models" / "model.pt", f"http://127.0.0.1:{free_port()}"
    server = subprocess.Popen(  # a live MPEG-TS stream of the file's frames, sent at their own rate to one client
        [ffmpeg, "-loglevel", "error", "-re", "-i", video, "-c", "copy", "-f", "mpegts", "-listen", "1", http]
    )
    try:
        deadline = time.monotonic() + 20
        while not listening(int(http.rsplit(":", 1)[1])):
            assert time.monotonic() < deadline and server.poll() is None, "ffmpeg did not start listening"
            time.sleep(0.05)
        events = watch(http, "--window", "1s", "--stride", "0.5s", model=model, cwd=trained_run)
    finally:
        server.kill()
        server.wait()
    predictor = Predictor(model, "cpu")
    expected = predictor.windows(video, Span(1, seconds=True), Span(0.5, seconds=True))
    assert_same_windows(events, expected, predictor.classes)
    assert events[-1]["event"] == "end"


def test_a_lost_stream_ends_cleanly_with_a_message(trained_run: Path, video: Path, ffmpeg: str) -> None:
    """UDP never says a stream ended: the sender is killed half-way and watch gives up after --timeout."""
    model, port = trained_run / "models" / "model.pt", free_port(socket.SOCK_DGRAM)
    command = [sys.executable, "-m", "actrec", "watch", f"udp://127.0.0.1:{port}", "--json", "--timeout", "3"]
    command += ["--window", "1s", "--stride", "0.5s", "--model", str(model)]
    watcher = subprocess.Popen(command, cwd=trained_run, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    udp = f"udp://127.0.0.1:{port}?pkt_size=1316"
    sender = subprocess.Popen(
        [ffmpeg, "-loglevel", "error", "-re", "-stream_loop", "-1", "-i", video, "-c", "copy", "-f", "mpegts", udp]
    )
    try:
        first = json.loads(watcher.stdout.readline())  # updates arrive while the stream plays
        assert first["event"] in ("update", "dropped"), first
        sender.kill()
        out, err = watcher.communicate(timeout=60)
    finally:
        sender.kill()
        watcher.kill()
    assert watcher.returncode == 0, err
    assert "Traceback" not in err, err
    last = json.loads(out.splitlines()[-1])
    assert last["event"] == "end"
    assert last["message"].startswith("lost the source after ") and "no data within the timeout" in last["message"]


def test_too_slow_for_the_stride_drops_windows_and_says_so(trained_run: Path, tmp_path: Path) -> None:
    """1,000 frames a second, a window every frame: no CPU keeps up, so windows are dropped instead of lag piling up."""
    fast = write_video(tmp_path / "fast.avi", frames=300, fps=1000)
    model = trained_run / "models" / "model.pt"
    events = watch(fast, "--realtime", "--window", "8", "--stride", "1", model=model, cwd=trained_run)
    windows = [e for e in events if e["event"] in ("update", "dropped")]
    assert len(windows) == 300 - 8 + 1
    dropped = [e for e in windows if e["event"] == "dropped"]
    assert dropped and all(e["lag_s"] >= 0.001 for e in dropped)  # over one stride behind
    predictor = Predictor(model, "cpu")
    assert_same_windows(events, predictor.windows(fast, Span(8), Span(1)), predictor.classes)


def test_a_source_that_cannot_be_opened_is_one_error_line(trained_run: Path, tmp_path: Path) -> None:
    missing = one_error_line(actrec("watch", tmp_path / "nothing.avi", cwd=trained_run))
    assert "no such file, webcam or stream URL" in missing
    text = tmp_path / "notes.txt"
    text.write_text("not a video")
    assert one_error_line(actrec("watch", text, cwd=trained_run)).startswith(f"error: cannot open {text}: ")
    refused = one_error_line(actrec("watch", f"http://127.0.0.1:{free_port()}/live", "--timeout", "2", cwd=trained_run))
    assert refused.startswith("error: cannot open http://127.0.0.1:")
