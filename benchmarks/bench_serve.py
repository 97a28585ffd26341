"""Benchmark of `actrec serve` and `actrec watch` on CPU: upload-to-answer time, and lag behind a live source.

python -m benchmarks.bench_serve [--model models/model.pt] [--runs 5] [--watch-seconds 60]

(1) `actrec serve` is started as a user starts it; a generated 10-second 320×240 MPEG-4 clip is
uploaded through its HTTP API (gradio_client, as the page's upload does) and the time from the
start of the upload to the answer is taken (prediction, thumbnails and the 4 s / 1 s window
timeline of a 10 s clip included), median of --runs.
(2) `actrec watch --realtime` plays a generated 25 fps 320×240 clip of --watch-seconds at its own
rate with a 4 s window and 1 s stride, and the lag of each update behind real time is summarised,
with the windows dropped. Without a trained model the stand-in head of bench_predict is timed.
"""

from __future__ import annotations

import argparse
import json
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from benchmarks.bench_predict import FPS, HEIGHT, SECONDS, WIDTH, model_or_stand_in, write_clip
from benchmarks.machine import describe_machine
from benchmarks.results import parse_args


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_for(url: str, process: subprocess.Popen, limit: float = 180) -> float:
    start = time.perf_counter()
    while time.perf_counter() - start < limit:
        if process.poll() is not None:
            raise SystemExit(f"actrec serve exited:\n{process.stdout.read()}")
        try:
            with urllib.request.urlopen(url, timeout=5):
                return time.perf_counter() - start
        except OSError:
            time.sleep(0.2)
    raise SystemExit(f"actrec serve did not answer within {limit:.0f} s")


def bench_upload(model: Path, clip: Path, runs: int) -> None:
    from gradio_client import Client, handle_file

    port = _free_port()
    command = [sys.executable, "-m", "actrec", "serve", "--model", str(model), "--port", str(port)]
    server = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        ready = _wait_for(f"http://127.0.0.1:{port}", server)
        client = Client(f"http://127.0.0.1:{port}", verbose=False, download_files=False)
        times, answers = [], []
        for _ in range(runs + 1):  # the first request warms up; not counted
            start = time.perf_counter()
            answers.append(client.predict(handle_file(str(clip)), api_name="/predict")[-1])
            times.append(time.perf_counter() - start)
    finally:
        server.terminate()
        server.wait(timeout=30)
    print(f"actrec serve, a {SECONDS} s {WIDTH}×{HEIGHT} clip uploaded through the HTTP API ({runs} runs)")
    print(f"  server start (imports, model, engine set-up) until it answers: {ready:6.2f} s")
    print(f"  first request (warm-up):                                       {times[0]:6.2f} s")
    print(f"  upload to answer, median:                                      {statistics.median(times[1:]):6.2f} s")
    print(
        f"    of which the server's work (predict, thumbnails, timeline):  "
        f"{statistics.median(a['seconds'] for a in answers[1:]):6.2f} s"
    )


def bench_watch(model: Path, clip: Path, seconds: int) -> None:
    command = [sys.executable, "-m", "actrec", "watch", str(clip), "--realtime", "--json", "--model", str(model)]
    command += ["--window", "4s", "--stride", "1s"]
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    events = [json.loads(line) for line in done.stdout.splitlines()]
    lags = [e["lag_s"] for e in events if e["event"] == "update"]
    print(f"actrec watch --realtime, {seconds} s at {FPS} fps {WIDTH}×{HEIGHT}, window 4 s, stride 1 s")
    print(f"  {events[-1]['message']}")
    if lags:
        print(
            f"  lag behind real time: median {statistics.median(lags):.3f} s, mean {statistics.mean(lags):.3f} s, "
            f"max {max(lags):.3f} s (first window, the backbone on all its frames: {lags[0]:.3f} s)"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="models/model.pt", help="checkpoint (a stand-in is used if absent)")
    parser.add_argument("--runs", type=int, default=5, help="timed uploads (median reported)")
    parser.add_argument("--watch-seconds", type=int, default=60, help="length of the clip watched in real time")
    args = parse_args(parser)
    print(describe_machine())
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        model = model_or_stand_in(Path(args.model), tmp)
        bench_upload(model, write_clip(tmp / "clip.avi"), args.runs)
        bench_watch(model, write_clip(tmp / "long.avi", seconds=args.watch_seconds), args.watch_seconds)


if __name__ == "__main__":
    main()
