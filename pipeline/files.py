"""Stage: list the files under dataset.root with their sizes, which the stages reading the root depend on.

python -m pipeline.files --out data/files.csv

DVC runs it every time (always_changed: a stat of each file, no read); the listing changes only when a file
under the root is added, removed or changes size, and only then do the stages after it run again.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from actrec.data.datasets import video_root
from actrec.data.listing import list_files
from actrec.errors import run_main
from actrec.files import output_dir, output_file
from actrec.params import load_params

logger = logging.getLogger("pipeline.files")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="the listing to write (CSV: path, size, problem)")
    args = parser.parse_args(argv)
    dataset = load_params().dataset
    video_root(dataset)  # a missing root: one line naming dataset.root
    output_dir(args.out.parent)
    listing = list_files(Path(dataset.root))
    with output_file(args.out) as tmp:
        listing.to_csv(tmp, index=False)
    problems = listing[listing["problem"] != ""]
    for row in problems.itertuples():
        logger.warning("cannot follow %s under %s: %s", row.path, dataset.root, row.problem)
    logger.info("%d files under %s (%d links that cannot be followed)", len(listing), dataset.root, len(problems))


if __name__ == "__main__":
    run_main(main)
