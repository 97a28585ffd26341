"""Stage 1: scan the dataset root into the clip table and select the subset to work on.

python -m pipeline.subset  →  data/clips.csv, reports/subset.json, reports/unreadable.csv

Every video of the selected classes is probed; one that cannot be opened stays in the table
with readable = False and its reason, is listed in reports/unreadable.csv, and goes no further.
"""

from __future__ import annotations

import logging
from pathlib import Path

from pipeline.datasets import DatasetError, limit_per_class, probe_table, scan, select_classes
from pipeline.errors import run_main
from pipeline.params import load_params
from pipeline.reports import write_json

logger = logging.getLogger("pipeline.subset")

CLIPS = Path("data/clips.csv")


def main() -> None:
    params = load_params()
    ds = params.dataset
    table = scan(ds)
    classes = select_classes(table, ds.classes)
    table = probe_table(table[table["label"].isin(classes)])
    table = limit_per_class(table, ds.max_clips_per_class, params.seed)
    readable = table[table["readable"]]
    empty = sorted(set(classes) - set(readable["label"]))
    if empty:
        raise DatasetError(f"no readable clips in class(es) {', '.join(empty)} under {ds.root}")
    unreadable = table[~table["readable"]]
    for row in unreadable.itertuples():
        logger.warning("skipping unreadable clip %s: %s", row.clip_id, row.reason)

    for folder in (CLIPS.parent, Path("reports")):
        folder.mkdir(parents=True, exist_ok=True)
    table.to_csv(CLIPS, index=False)
    unreadable[["clip_id", "path", "reason"]].to_csv("reports/unreadable.csv", index=False)
    write_json("reports/subset.json", {
        "dataset": ds.name, "classes": len(classes), "clips": len(readable),
        "unreadable": len(unreadable), "groups": int(readable["group"].nunique()),
    })
    logger.info("%d readable clips in %d classes (%d unreadable, listed in reports/unreadable.csv)",
                len(readable), len(classes), len(unreadable))


if __name__ == "__main__":
    run_main(main)
