"""The measured tables on the pages, written from the benchmarks' results files.

python -m tools.render_results            writes benchmarks/results/NAME.md from every NAME.json, and the
                                          README's blocks marked <!-- results:NAME --> ... <!-- /results:NAME -->
python -m tools.render_results --check    says which of those files are out of date, and fails if any is

The docs' pages include NAME.md with mkdocs' snippets (--8<-- "benchmarks/results/NAME.md"); GitHub shows the
README as it is, so its tables are written into it. tests/test_docs.py checks that both are current.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

from benchmarks.results import RESULTS, read

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
BLOCK = re.compile(r"(<!-- results:(?P<name>[\w.-]+) -->\n)(?P<body>.*?)(<!-- /results:(?P=name) -->)", re.DOTALL)


def tables() -> dict[str, str]:
    """Every results file's table, by name."""
    return {path.stem: read(path).markdown(path.stem) for path in sorted(RESULTS.glob("*.json"))}


def readme(text: str, rendered: dict[str, str]) -> str:
    """The README with each marked block holding its results file's table."""

    def fill(match: re.Match[str]) -> str:
        name = match.group("name")
        if name not in rendered:
            raise SystemExit(f"error: README.md has a block results:{name}, but there is no {RESULTS / name}.json")
        return match.group(1) + rendered[name] + match.group(4)

    return BLOCK.sub(fill, text)


def stale() -> dict[Path, str]:
    """The files whose text is not what the results files give, with the text they should have."""
    rendered = tables()
    wanted = {RESULTS / f"{name}.md": text for name, text in rendered.items()}
    wanted[README] = readme(README.read_text(), rendered)
    return {path: text for path, text in wanted.items() if not path.is_file() or path.read_text() != text}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="only say which files are out of date (exit 1 if any)")
    args = parser.parse_args(argv)
    out_of_date = stale()
    for path, text in out_of_date.items():
        if args.check:
            print(f"out of date: {path.relative_to(ROOT)} (run python -m tools.render_results)")
        else:
            path.write_text(text)
            print(f"wrote {path.relative_to(ROOT)}")
    return 1 if args.check and out_of_date else 0


if __name__ == "__main__":
    sys.exit(main())
