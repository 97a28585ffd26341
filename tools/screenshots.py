"""The docs' pictures of the page and of the site, taken in the browser the tests drive (headless Chromium).

python -m tools.screenshots --run . --video long.avi     writes docs/images/page-long-video.png (the page's
                                                         answer for VIDEO), page-test-clip.png (a test clip
                                                         picked) and docs-site.png (this site's home page)

RUN is a project after `dvc repro` (models/model.pt, reports/, data/split.csv); `actrec serve` is started there
on a free port, as a user starts it, and stopped after.
"""

from __future__ import annotations

import argparse
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from actrec.errors import ActrecError, run_main

ROOT = Path(__file__).resolve().parents[1]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_for(url: str, process: subprocess.Popen, limit: float = 600) -> None:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise ActrecError(f"actrec serve stopped: {process.stdout.read() if process.stdout else ''}")
        try:
            with urllib.request.urlopen(url, timeout=5):
                return
        except OSError:
            time.sleep(0.5)
    raise ActrecError(f"actrec serve did not answer at {url} within {limit:.0f} s")


def _answered(page, name: str) -> None:
    page.wait_for_function(
        "name => document.querySelector(\"#status [data-testid='markdown']\").innerText.includes(name)",
        arg=name,
        timeout=600_000,
    )
    page.wait_for_timeout(1500)  # the plot and the video settle


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", type=Path, default=Path("."), help="the project of a run (default: here)")
    parser.add_argument("--video", type=Path, required=True, help="a video longer than one window, to upload")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "images", help="folder for the pictures")
    args = parser.parse_args(argv)
    from playwright.sync_api import sync_playwright

    executable = shutil.which("chromium") or shutil.which("chromium-browser")
    if executable is None:
        raise ActrecError("no chromium on PATH: apt-get install chromium")
    args.out.mkdir(parents=True, exist_ok=True)
    port = _free_port()
    command = [sys.executable, "-m", "actrec", "serve", "--port", str(port)]
    server = subprocess.Popen(command, cwd=args.run, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        url = f"http://127.0.0.1:{port}"
        _wait_for(url, server)
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=executable, args=["--no-sandbox"])
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(url)
            page.locator("#upload input[type=file]").set_input_files(args.video.resolve())
            _answered(page, args.video.name)
            page.screenshot(path=args.out / "page-long-video.png", full_page=True)
            page.locator("#test-clip input").click()
            option = page.locator("[role=option]").first
            name = option.get_attribute("aria-label").split(" (")[0]
            option.click()
            _answered(page, name)
            page.screenshot(path=args.out / "page-test-clip.png", full_page=True)
            with tempfile.TemporaryDirectory() as site:
                build = [sys.executable, "-m", "mkdocs", "build", "--site-dir", site, "-q"]
                subprocess.run([*build, "--config-file", str(ROOT / "mkdocs.yml")], check=True, cwd=ROOT)
                page.goto(f"file://{site}/index.html")
                page.screenshot(path=args.out / "docs-site.png")
            browser.close()
    finally:
        server.terminate()
        server.wait(timeout=30)
    for name in ("page-long-video.png", "page-test-clip.png", "docs-site.png"):
        print(f"wrote {args.out / name}")


if __name__ == "__main__":
    run_main(main)
