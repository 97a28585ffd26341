"""The documentation: the site builds strictly, the README stays short and points at real pages, every page is
in the nav, the pages speak of the product in the present tense, every measured figure comes from the results
file a benchmark wrote (benchmarks/results/), and what the pages say of the defaults is what params.yaml says."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from benchmarks.results import RESULTS, read
from tools.render_results import stale

ROOT = Path(__file__).resolve().parents[1]

README = ROOT / "README.md"
DOCS = ROOT / "docs"
RENDER = "python -m tools.render_results"
# The lines the docs must never hold: they speak of the product, not of how it was made.
WORK = ("sess" + "ion", "le" + "ase", "iss" + "ue")  # spelled apart, so this file is no match for the check it holds
HISTORY = re.compile(
    rf"\b(this|earlier|last|one short) ({WORK[0]}|{WORK[1]})|{WORK[0]}'?s machine|\b{WORK[1]}\b"
    rf"|before {WORK[2]} [0-9]|\b{WORK[2]} [0-9]+\b",
    re.IGNORECASE,
)
# A manual in the present tense: no first person, nothing of how it was made, what is pending or what was before.
FIRST_PERSON = re.compile(r"(?<![\w/-])(I|I'm|I've|I'd|[Ww]e|[Oo]ur|[Uu]s|[Mm]y)(?![\w/-])")
PAST = re.compile(
    r"\b(old|new) rule\b|\bas before\b|\bof before\b|\bprevious (version|default|rule)\b|\bno longer\b"
    r"|\bnot (measured|run|done) yet\b|\bhas not run\b|\bstill to be\b|\bTODO\b|\bpending\b|\bwas changed\b"
    r"|\bbefore \(|\bafter \(|\bnow record|\bused to (be|decode|read)\b",
    re.IGNORECASE,
)
# A measured figure: a decimal, or a number with thousands separators that is not a round thousand (a setting),
# of three significant digits or more.
FIGURE = re.compile(r"(?<![\w.,/-])(\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+\.\d+)(?![\w]|[.,]\d)")
# How the pages name the default backbone, and the statements of a key's default they make.
BACKBONES = {"efficientnet_lite0": "EfficientNet-Lite0"}
DEFAULT_OF_KEY = re.compile(r"`(?P<key>[a-z_]+\.[a-z_]+)`[^`.;\n]{0,40}?\(default:? `?(?P<value>[^`),;]+)`?[),;]")
# The head rule, in the words every page that states it uses.
HEAD_RULE = "by more than `train.choice_margin` standard errors"


class _MkDocsLoader(yaml.SafeLoader):
    """mkdocs.yml with its `!relative` tag read as the plain string it carries."""


_MkDocsLoader.add_constructor("!relative", lambda loader, node: loader.construct_scalar(node))


def _nav_pages(entries: list | dict | str) -> list[str]:
    if isinstance(entries, str):
        return [entries]
    if isinstance(entries, dict):
        return [page for value in entries.values() for page in _nav_pages(value)]
    return [page for entry in entries for page in _nav_pages(entry)]


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
    # The pages that include a results file's table and README.md's pipeline picture got them.
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


def test_the_docs_are_written_in_the_present_of_the_product() -> None:
    for path in [README, *sorted(DOCS.rglob("*.md"))]:
        for number, line in enumerate(path.read_text().splitlines(), 1):
            where = f"{path.relative_to(ROOT)}:{number}"
            assert not FIRST_PERSON.search(line), f"{where} speaks in the first person: {line.strip()}"
            assert not PAST.search(line), f"{where} tells what was before or is pending: {line.strip()}"


def test_the_pages_show_what_the_results_files_hold() -> None:
    """Each results file's table (benchmarks/results/NAME.md) and the README's blocks are written from it."""
    out_of_date = stale()
    assert not out_of_date, f"out of date: {sorted(str(p.relative_to(ROOT)) for p in out_of_date)}; run {RENDER}"


def _digits(figure: str) -> str:
    """The significant digits: 0.050 and 1.00 are one each (a round value), 0.891 and 2,708 are measured."""
    whole, _, part = figure.replace(",", "").partition(".")
    return (whole + part.rstrip("0")).lstrip("0")


def _figures(text: str) -> set[str]:
    return {
        figure.replace(",", "")
        for figure in FIGURE.findall(text)
        if len(_digits(figure)) >= 3 and not re.fullmatch(r"\d+(,000)+", figure)
    }


def test_no_figure_of_a_results_file_is_written_by_hand() -> None:
    """A measured figure has one home: a page that quotes one outside an included table is a second copy."""
    measured = set().union(*(_figures(path.read_text()) for path in RESULTS.glob("*.json")))
    readme = re.sub(r"<!-- results:([\w.-]+) -->.*?<!-- /results:\1 -->", "", README.read_text(), flags=re.DOTALL)
    for path, text in [(README, readme), *((p, p.read_text()) for p in sorted(DOCS.rglob("*.md")))]:
        fenced = False
        for number, line in enumerate(text.splitlines(), 1):
            fenced ^= line.lstrip().startswith("```")
            if fenced:  # a command's example output, not a figure quoted as measured
                continue
            copied = _figures(line) & measured
            assert not copied, (
                f"{path.relative_to(ROOT)}:{number} writes {sorted(copied)} by hand, a figure of benchmarks/results/: "
                'include the table (--8<-- "benchmarks/results/NAME.md") or link to it'
            )


def _demo_reference() -> dict[str, float]:
    return read(RESULTS / "accuracy.json").figures


def test_the_demo_row_holds_the_reference_figures() -> None:
    """The demo row of the Results table quotes the figures its results file records, to their digits."""
    results = read(RESULTS / "accuracy.json")
    demo = next(r for r in results.rows if str(r[0]).startswith("built-in demo"))
    row = dict(zip(results.columns, demo, strict=True))
    ref = results.figures

    def quoted(*keys: str) -> list[str]:
        return [f"{ref[key]:.3f}" for key in keys]

    assert re.findall(r"\d\.\d{3}", row["top-1 (95% interval)"]) == quoted("top1", "top1_ci95_low", "top1_ci95_high")
    probe = quoted("linear_probe_top1", "linear_probe_top1_ci95_low", "linear_probe_top1_ci95_high")
    assert re.findall(r"\d\.\d{3}", row["linear probe"]) == probe
    assert f"{ref['test_clips']} test clips" in row["dataset"]
    scores = quoted(*(f"validation_accuracy_{h}{e}" for h in ("lstm", "probe") for e in ("", "_standard_error")))
    assert re.findall(r"\d\.\d{3}", row["head"]) == scores


def test_a_demo_run_reaches_the_reference_intervals() -> None:
    """`dvc repro` of the demo on any CPU lands inside the reference's 95% intervals; its digits may differ."""
    reports = ROOT / "reports"
    try:
        subset = json.loads((reports / "subset.json").read_text())
        extract = json.loads((reports / "extract.json").read_text())
        metrics = json.loads((reports / "metrics.json").read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        pytest.skip("no run's reports in reports/: run dvc repro")
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    if subset.get("dataset") != "demo" or (extract.get("backbone"), extract.get("frames")) != (
        params["extract"]["backbone"],
        params["extract"]["frames"],
    ):
        pytest.skip("reports/ holds a run of other data or settings than the demo's defaults")
    ref = _demo_reference()
    for name in ("top1", "linear_probe_top1"):
        low, high = ref[f"{name}_ci95_low"], ref[f"{name}_ci95_high"]
        figure = metrics[name]
        assert low <= figure <= high, f"{name} {figure:.3f} outside the reference's interval [{low:.3f}, {high:.3f}]"


def test_the_pages_state_the_defaults_params_yaml_holds() -> None:
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    pages = [README, *sorted(DOCS.rglob("*.md"))]
    stated = 0
    for path in pages:
        text = path.read_text()
        for match in DEFAULT_OF_KEY.finditer(text):
            section, key = match.group("key").split(".")
            if section not in params or key not in params[section]:
                continue
            value = params[section][key]
            shown = f"{value:g}" if isinstance(value, float) else str(value)
            assert match.group("value").strip() in (shown, str(value)), (
                f"{path.relative_to(ROOT)} says {match.group(0)!r}; params.yaml has {section}.{key}: {value}"
            )
            stated += 1
        for name, shown in BACKBONES.items():
            if f"{shown} by default" in text or f"`{name}` (default)" in text:
                assert params["extract"]["backbone"] == name, f"{path.relative_to(ROOT)} names {shown} the default"
    assert stated >= 3, "the pages state the defaults of train.choice_margin, extract.frames and others by key"


def test_every_page_that_states_the_head_rule_states_it_alike() -> None:
    """index.md, heads.md and the README say what train.choice_margin does in the same words; summary.md too."""
    for path in (README, DOCS / "index.md", DOCS / "heads.md"):
        text = " ".join(path.read_text().split())  # a sentence may wrap anywhere
        assert HEAD_RULE in text, f"{path.relative_to(ROOT)} does not state the head rule as {HEAD_RULE!r}"
    from actrec.evaluation.summary import verdict

    assert HEAD_RULE in " ".join(verdict({}, head="probe").split())
