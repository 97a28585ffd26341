"""Stage 2: assign every readable clip to train, val or test.

python -m pipeline.split --clip-table data/clips.csv --out data/split.csv --report reports/split.json

UCF-101 and HMDB-51 use their official split lists (split.official) when present, with
validation carved from train by group; any other dataset, or split.official: null, gets a
stratified group-aware split. The report records the counts and the leakage check.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from actrec.data.datasets import read_table
from actrec.data.splits import PARTS, SplitError, assign_parts, classes_missing_a_part, leakage
from actrec.errors import run_main
from actrec.files import output_dir, output_file, write_json
from actrec.params import load_params

logger = logging.getLogger("pipeline.split")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clip-table", type=Path, required=True, help="clip table the subset stage wrote")
    parser.add_argument("--out", type=Path, required=True, help="clip table with its split column (CSV)")
    parser.add_argument("--report", type=Path, required=True, help="JSON counts and leakage (DVC metrics)")
    args = parser.parse_args(argv)
    params = load_params()
    clips = read_table(args.clip_table, "subset")
    for path in (args.out, args.report):
        output_dir(path.parent)

    table, info = assign_parts(clips[clips["readable"]], params.dataset, params.split, params.seed)
    leaks = leakage(table, info.get("kept_apart", PARTS))
    if leaks:
        raise SplitError(f"{leaks} group(s) fall in more than one part; refusing to write a leaky split")
    lonely = classes_missing_a_part(table)
    if lonely:
        logger.warning("class(es) without clips in both train and test: %s", ", ".join(lonely))
    counts = {part: int((table["split"] == part).sum()) for part in PARTS}

    with output_file(args.out) as tmp:
        table.to_csv(tmp, index=False)
    write_json(args.report, {**info, **counts, "groups_in_two_parts": leaks})
    logger.info("split: %s", ", ".join(f"{p} {n}" for p, n in counts.items()))


if __name__ == "__main__":
    run_main(main)
