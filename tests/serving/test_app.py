"""`actrec serve` started as a user starts it, on a free port: driven in a headless Chromium (Playwright), through its
HTTP API (gradio_client) and with raw requests for files it must not serve."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from actrec.inference.inputs import Span
from actrec.inference.predictor import Predictor
from tests.helpers import actrec, write_video

pytestmark = pytest.mark.slow

MAX_SIZE = 2 * 1024 * 1024  # --max-size 2MB: real UCF-101 clips pass, the test's junk file does not


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def listeners(port: int) -> list[str]:
    """Local addresses (hex, as /proc/net/tcp writes them) listening on `port`."""
    rows = [r.split() for r in Path("/proc/net/tcp").read_text().splitlines()[1:]]
    return [r[1].split(":")[0] for r in rows if r[1].endswith(f":{port:04X}") and r[3] == "0A"]


def get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=30) as answer:
            return answer.status, answer.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()


@pytest.fixture(scope="module")
def server(trained_run: Path) -> Iterator[str]:
    """`actrec serve` in the trained run's folder (its models/, reports/ and data/split.csv), with no --host."""
    port = free_port()
    command = [sys.executable, "-m", "actrec", "serve", "--port", str(port), "--max-size", "2MB", "--window", "1s"]
    process = subprocess.Popen(command, cwd=trained_run, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while True:
        assert process.poll() is None, process.stdout.read()
        assert time.monotonic() < deadline, "actrec serve did not answer within 120 s"
        try:
            if get(url)[0] == 200:
                break
        except OSError:
            time.sleep(0.3)
    yield url
    config = json.loads(get(f"{url}/config")[1])
    heatmap = next(c["props"]["value"] for c in config["components"] if c.get("type") == "image")
    process.terminate()
    try:
        process.wait(timeout=20)
    finally:
        process.kill()
    assert not Path(heatmap["path"]).parent.parent.exists(), "the uploads' folder outlives the server"


@pytest.fixture(scope="module")
def clip() -> Path:
    """The smallest real UCF-101 clip of ../shared."""
    clips = sorted((Path(__file__).resolve().parents[2].parent / "shared/data/ucf101-mini/UCF-101").glob("*/*.avi"))
    if not clips:
        pytest.skip("real UCF-101 clips not found (../shared is absent)")
    return min(clips, key=lambda p: p.stat().st_size)


@pytest.fixture(scope="module")
def expected(trained_run: Path, clip: Path) -> dict:
    """`actrec predict --json` on the clip: what the page and its API must answer."""
    done = actrec("predict", clip, "--json", "--model", "models/model.pt", cwd=trained_run)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


@pytest.fixture(scope="module")
def browser() -> Iterator:
    executable = shutil.which("chromium") or shutil.which("chromium-browser")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        executable = None
    if executable is None:
        pytest.skip("no headless browser: install Debian's chromium (apt-get install chromium) and playwright (pip)")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=executable, args=["--no-sandbox"])
        yield chromium
        chromium.close()


def upload(page, path: Path) -> None:
    """Choose a file as a person does: the × of the one shown first, then the file."""
    chooser = page.locator("#upload input[type=file]")
    if not chooser.count():  # a file is shown in its place
        page.locator("#upload button[aria-label='Clear']").first.click()
    chooser.set_input_files(path)


def answered(page, name: str) -> str:
    """The status line once the page has answered about `name` (a prediction or a message)."""
    page.wait_for_function(
        "name => document.querySelector(\"#status [data-testid='markdown']\").innerText.includes(name)",
        arg=name,
        timeout=120_000,
    )
    return page.locator("#status [data-testid='markdown']").inner_text()


def test_the_page_in_a_browser(server: str, browser, clip: Path, expected: dict, trained_run: Path, tmp_path: Path):
    """Upload a real clip, a corrupt file, a file over the limit, a long video; pick a test clip; screenshot."""
    page = browser.new_page(viewport={"width": 1400, "height": 1600})
    page.goto(server)
    predictor = Predictor(trained_run / "models" / "model.pt", "cpu")
    model_panel = page.locator("#model").inner_text()
    assert all(name in model_panel for name in predictor.classes)
    assert "top-1 accuracy" in model_panel and "efficientnet_lite0" in model_panel
    assert page.locator("#confusion img").count() == 1

    upload(page, clip)
    status = answered(page, clip.name)
    assert status.startswith(f"{expected['prediction']} (") and "answered in" in status
    assert page.locator("#top-k [data-testid='label-output-value']").inner_text() == expected["prediction"]
    assert page.locator("#frames img").count() == predictor.frames  # the T frames the model saw
    page.wait_for_selector("#played video", timeout=30_000)  # played back, the answer drawn on it

    broken = tmp_path / "broken.avi"
    broken.write_bytes(clip.read_bytes()[:3000])  # a clip cut off after its header
    upload(page, broken)
    status = answered(page, "broken.avi")
    assert status.startswith("⚠️ broken.avi") and ("could not be read" in status or "not a video" in status), status
    assert page.locator("#frames img").count() == 0

    big = tmp_path / "big.avi"
    big.write_bytes(b"\0" * (MAX_SIZE + 1))
    upload(page, big)
    page.wait_for_selector("text=exceed the maximum allowed size", timeout=30_000)  # Gradio refuses the upload

    long = write_video(tmp_path / "long.avi", frames=100, fps=25, width=96, height=72)  # 4 s: windows of 1 s
    upload(page, long)
    status = answered(page, "long.avi")
    assert "timeline of 4 windows" in status, status
    page.wait_for_selector("#timeline svg", timeout=30_000)
    assert page.locator("#frames img").count() == predictor.frames
    # what happens when: the segments as `actrec predict --window` prints them, together spanning the video
    table = page.locator("#segments").inner_text()
    runs = status.count("→") + 1  # the status lists them in turn: Bright 0.0–2.0 s (81%) → Dim 1.0–4.0 s (77%)
    assert "from (s)" in table and "confidence" in table and table.count("%") == runs, table
    assert status.startswith("Bright 0.0–") or status.startswith("Dim 0.0–"), status
    assert "–4.0 s" in status, status

    page.locator("#test-clip input").click()
    option = page.locator("[role=option]").first
    name = option.get_attribute("aria-label").split(" (")[0]  # Bright/Bright_g02_c01.avi (actual Bright, ...)
    actual = option.get_attribute("aria-label").split("(actual ")[1].split(",")[0]
    option.click()
    status = answered(page, name)
    assert "answered in" in status and f"true label {actual}" in status, status
    assert page.locator("#frames img").count() == predictor.frames
    page.wait_for_selector("#timeline svg", state="hidden", timeout=30_000)  # a test clip is one window
    page.screenshot(path=tmp_path / "page.png", full_page=True)
    assert (tmp_path / "page.png").stat().st_size > 10_000


def test_the_http_api_answers_as_actrec_predict(server: str, clip: Path, expected: dict) -> None:
    from gradio_client import Client, handle_file

    answer = Client(server, verbose=False).predict(handle_file(str(clip)), api_name="/predict")[-1]
    assert answer["video"] == clip.name
    assert answer["prediction"] == expected["prediction"]
    assert [t["class"] for t in answer["top_k"]] == [t["class"] for t in expected["top_k"]]
    for got, want in zip(answer["top_k"], expected["top_k"], strict=True):
        assert got["probability"] == pytest.approx(want["probability"], abs=1e-3)


def test_four_requests_at_once_are_all_answered(server: str, clip: Path, expected: dict, tmp_path: Path) -> None:
    from gradio_client import Client, handle_file

    junk = tmp_path / "notes.txt"
    junk.write_text("not a video")
    files = [clip, junk, clip, clip]
    # The answers are what is checked: the client's own download of the thumbnails (four threads writing the
    # same files into one folder) stays out of it.
    client = Client(server, verbose=False, download_files=False)
    with ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(lambda f: client.predict(handle_file(str(f)), api_name="/predict")[-1], files))
    assert [a.get("prediction") for a in answers] == [expected["prediction"], None, *[expected["prediction"]] * 2]
    assert "not a video" in answers[1]["error"]


def test_no_file_of_the_machine_is_served(server: str, trained_run: Path) -> None:
    from gradio_client import Client

    config = json.loads(get(f"{server}/config")[1])
    heatmap = next(c["props"]["value"] for c in config["components"] if c.get("type") == "image")
    status, body = get(heatmap["url"])  # the route serves what the page shows, from the server's own folder
    assert status == 200 and body.startswith(b"\x89PNG")
    own = heatmap["path"].rsplit("/", 1)[0]
    secrets = ["/etc/passwd", str(trained_run / "params.yaml"), str(trained_run / "models" / "model.pt")]
    for path in secrets:
        for route in (
            "/gradio_api/file=",
            "/file=",
            "/gradio_api/file=../../../..",
            f"/gradio_api/file={own}/../../..",
        ):
            status, body = get(f"{server}{route}{path}")
            assert status != 200 and b"root:" not in body, (route, path, status)
    # a path in place of a test clip's label: refused at the server's door (400), before Gradio's own check
    with pytest.raises(httpx.HTTPStatusError) as refused:
        Client(server, verbose=False).predict("/etc/passwd", api_name="/predict_test_clip")
    assert refused.value.response.status_code == 400


def test_a_test_clip_is_only_ever_one_of_the_list(trained_run: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Behind Gradio's own check of the choices, the page opens only the clips of the run's split it listed."""
    from actrec.serving.app import Analyst, ServeOptions, split_test_clips

    monkeypatch.chdir(trained_run)  # the split's paths are relative to the run's folder, where `actrec serve` runs
    options = ServeOptions(max_size=MAX_SIZE, window=Span(1, seconds=True), stride=Span(1, seconds=True))
    clips = split_test_clips(trained_run / "data" / "split.csv", trained_run / "reports")
    assert len(clips) == 4 and all(path.is_file() for path in clips.values())
    analyst = Analyst(Predictor(trained_run / "models" / "model.pt", "cpu"), clips, options)
    status, top, _, frames, *_ = analyst.test_clip("/etc/passwd", progress=lambda *_, **__: None)
    assert status == "⚠️ That is not one of this run's test clips." and top is None and frames is None


def test_it_listens_on_localhost_only_by_default(server: str) -> None:
    assert listeners(int(server.rsplit(":", 1)[1])) == ["0100007F"]  # 127.0.0.1, not 0.0.0.0
