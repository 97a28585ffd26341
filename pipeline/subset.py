"""Stage 1: scan the dataset root into the clip table and select the subset to work on.

python -m pipeline.subset --clip-table data/clips.csv --unreadable reports/unreadable.csv --report reports/subset.json

Every video of the selected classes is opened for its frame count, rate and size; one that cannot be
opened stays in the table with readable = False and its reason, is listed in the unreadable report, and goes no further.
A class left without readable clips is dropped with a warning, unless dataset.classes names it.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from actrec.data.datasets import NOT_ON_DISK, drop_empty_classes, limit_per_class, read_video_info, scan, select_classes
from actrec.data.ntu import MISSING_SKELETON
from actrec.errors import run_main
from actrec.files import output_dir, output_file, write_json
from actrec.names import clip_files
from actrec.params import load_params

logger = logging.getLogger("pipeline.subset")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clip-table", type=Path, required=True, help="clip table to write (CSV)")
    parser.add_argument("--unreadable", type=Path, required=True, help="CSV of the videos that cannot be read")
    parser.add_argument("--report", type=Path, required=True, help="JSON counts (DVC metrics)")
    args = parser.parse_args(argv)
    params = load_params()
    ds = params.dataset
    for path in (args.clip_table, args.unreadable, args.report):
        output_dir(path.parent)

    table = scan(ds, clip_files(params.extract.backbone))
    classes = select_classes(table, ds.classes)
    table = read_video_info(table[table["label"].isin(classes)], frame_rate=ds.frame_rate)
    table = limit_per_class(table, ds.max_clips_per_class, params.seed)
    classes = drop_empty_classes(table, classes, ds)
    unreadable, readable = table[~table["readable"]], table[table["readable"]]
    missing = int((unreadable["reason"] == NOT_ON_DISK).sum())  # Kinetics: listed, never downloaded
    no_skeleton = int((unreadable["reason"] == MISSING_SKELETON).sum())  # NTU's published missing skeletons
    for row in unreadable[~unreadable["reason"].isin((NOT_ON_DISK, MISSING_SKELETON))].itertuples():
        logger.warning("skipping unreadable clip %s: %s", row.clip_id, row.reason)

    with output_file(args.clip_table) as tmp:
        table.to_csv(tmp, index=False)
    with output_file(args.unreadable) as tmp:
        unreadable[["clip_id", "path", "reason"]].to_csv(tmp, index=False)
    write_json(
        args.report,
        {
            "dataset": ds.name,
            "classes": len(classes),
            "clips": len(readable),
            "unreadable": len(unreadable),
            "missing": missing,
            "missing_skeletons": no_skeleton,
            "groups": int(readable["group"].nunique()),
        },
    )
    logger.info(
        "%d readable clips in %d classes (%d unreadable, listed in %s)",
        len(readable),
        len(classes),
        len(unreadable),
        args.unreadable,
    )


if __name__ == "__main__":
    run_main(main)
