"""Stage 1: scan the dataset root into the clip table and select the subset to work on.

python -m pipeline.subset  →  data/clips.csv, reports/subset.json, reports/unreadable.csv

Every video of the selected classes is probed; one that cannot be opened stays in the table
with readable = False and its reason, is listed in reports/unreadable.csv, and goes no further.
A class left without readable clips is dropped with a warning, unless dataset.classes names it.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd

from pipeline.datasets import DatasetError, limit_per_class, probe_table, scan, select_classes
from pipeline.errors import output_dir, output_file, run_main
from pipeline.params import DatasetParams, load_params
from pipeline.reports import write_json

logger = logging.getLogger("pipeline.subset")

CLIPS = Path("data/clips.csv")
REPORTS = Path("reports")


def drop_empty_classes(table: pd.DataFrame, classes: list[str], ds: DatasetParams) -> list[str]:
    """The classes with at least one readable clip; fails if a class named in dataset.classes has none."""
    empty = [c for c in classes if not table.loc[table["label"] == c, "readable"].any()]
    if empty:
        first = table[~table["readable"]].groupby("label").first()
        said = ", ".join(f"{c} (e.g. {first.at[c, 'clip_id']}: {first.at[c, 'reason']})" for c in empty)
        if isinstance(ds.classes, list):
            raise DatasetError(f"no readable clips in class(es) named by dataset.classes: {said}")
        logger.warning("dropping class(es) without readable clips (listed in reports/unreadable.csv): %s", said)
    kept = [c for c in classes if c not in empty]
    if len(kept) < 2:
        raise DatasetError(f"{len(kept)} class(es) with readable clips under {ds.root} ({', '.join(kept) or 'none'}); "
                           f"telling actions apart needs at least 2")
    return kept


def main() -> None:
    params = load_params()
    ds = params.dataset
    for folder in (CLIPS.parent, REPORTS):
        output_dir(folder)
    table = scan(ds)
    classes = select_classes(table, ds.classes)
    table = probe_table(table[table["label"].isin(classes)])
    table = limit_per_class(table, ds.max_clips_per_class, params.seed)
    classes = drop_empty_classes(table, classes, ds)
    unreadable = table[~table["readable"]]
    readable = table[table["readable"]]
    for row in unreadable.itertuples():
        logger.warning("skipping unreadable clip %s: %s", row.clip_id, row.reason)

    with output_file(CLIPS) as tmp:
        table.to_csv(tmp, index=False)
    with output_file(REPORTS / "unreadable.csv") as tmp:
        unreadable[["clip_id", "path", "reason"]].to_csv(tmp, index=False)
    with output_file(REPORTS / "subset.json") as tmp:
        write_json(tmp, {"dataset": ds.name, "classes": len(classes), "clips": len(readable),
                         "unreadable": len(unreadable), "groups": int(readable["group"].nunique())})
    logger.info("%d readable clips in %d classes (%d unreadable, listed in reports/unreadable.csv)",
                len(readable), len(classes), len(unreadable))


if __name__ == "__main__":
    run_main(main)
