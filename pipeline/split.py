"""Stage 2: assign every readable clip to train, val or test.

python -m pipeline.split  →  data/split.csv, reports/split.json

UCF-101 and HMDB-51 use their official split lists (split.official) when present, with
validation carved from train by group; any other dataset, or split.official: null, gets a
stratified group-aware split. reports/split.json records the counts and the leakage check.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd

from pipeline.datasets import read_table, splits_dir
from pipeline.errors import output_dir, output_file, run_main
from pipeline.params import Params, load_params
from pipeline.reports import write_json
from pipeline.splits import (
    PARTS,
    SplitError,
    carve_val,
    group_split,
    leakage,
    read_hmdb51_split,
    read_ucf101_split,
)
from pipeline.subset import CLIPS, REPORTS

logger = logging.getLogger("pipeline.split")

SPLIT = Path("data/split.csv")


def assign(table: pd.DataFrame, params: Params) -> tuple[pd.DataFrame, dict]:
    """The split column for `table`, and what the split lists said about it."""
    lists = splits_dir(params.dataset) if params.split.official else None
    info: dict = {"source": "group-aware"}
    if lists is not None:
        reader = read_ucf101_split if params.dataset.name == "ucf101" else read_hmdb51_split
        official = reader(lists, params.split.official, table["clip_id"].tolist())
        if not official.parts:
            raise SplitError(f"the official split {params.split.official} lists in {lists} have {official.listed} "
                             f"entries and none matches any of the {len(table)} clips under {params.dataset.root}; "
                             f"check dataset.root and dataset.splits_dir, or set split.official: null for a "
                             f"group-aware split")
        info = {"source": f"official split {params.split.official}", "listed": official.listed,
                "listed_missing": official.listed_missing, "unlisted": official.unlisted}
        logger.info("official split %d: %d clips listed, %d of them absent here; %d clips present "
                    "but not listed (left out)", params.split.official, official.listed,
                    official.listed_missing, official.unlisted)
        table = table[table["clip_id"].isin(official.parts)].copy()
        table["split"] = table["clip_id"].map(official.parts)
        for part in ("train", "test"):
            if not (table["split"] == part).any():
                raise SplitError(f"official split {params.split.official} leaves no {part} clips among the "
                                 f"clips present; choose another split.official or set it to null")
        table["split"] = carve_val(table, params.split.val_fraction, params.seed)
    else:
        if params.dataset.name in ("ucf101", "hmdb51") and params.split.official:
            logger.warning("no official split lists found for %s under %s; using a group-aware split",
                           params.dataset.name, params.dataset.root)
        table = table.copy()
        table["split"] = group_split(table, params.split.test_fraction, params.split.val_fraction, params.seed)
    return table, info


def main() -> None:
    params = load_params()
    clips = read_table(CLIPS, "subset")
    for folder in (SPLIT.parent, REPORTS):
        output_dir(folder)
    table, info = assign(clips[clips["readable"]], params)
    leaks = leakage(table)
    if leaks:
        raise SplitError(f"{leaks} group(s) fall in more than one part; refusing to write a leaky split")
    counts = {part: int((table["split"] == part).sum()) for part in PARTS}
    lonely = [c for c, parts in table.groupby("label")["split"].agg(set).items() if not {"train", "test"} <= parts]
    if lonely:
        logger.warning("class(es) without clips in both train and test: %s", ", ".join(lonely))
    with output_file(SPLIT) as tmp:
        table.to_csv(tmp, index=False)
    with output_file(REPORTS / "split.json") as tmp:
        write_json(tmp, {**info, **counts, "groups_in_two_parts": leaks})
    logger.info("split: %s", ", ".join(f"{p} {n}" for p, n in counts.items()))


if __name__ == "__main__":
    run_main(main)
