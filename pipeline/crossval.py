"""Stage 6 (optional): group k-fold evaluation of the recipe, when split.crossval_folds is set.

python -m pipeline.crossval --features features/features.h5 --out reports/crossval.json

With split.crossval_folds: N every clip of the feature file is test once, in N folds cut by group, and
the recipe trains N times on the rest; the report holds top-1 as mean ± std over the folds beside
the linear probe's. With split.crossval_folds: null (the default) the report says it was not asked for.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from actrec.errors import run_main
from actrec.files import output_dir, write_json
from actrec.params import load_params

logger = logging.getLogger("pipeline.crossval")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--features", type=Path, required=True, help="feature file the extract stage wrote")
    parser.add_argument("--out", type=Path, required=True, help="JSON report: every fold's figures")
    parser.add_argument("--scores", type=Path, required=True, help="the mean top-1s DVC compares (JSON, DVC metrics)")
    args = parser.parse_args(argv)
    params = load_params()
    output_dir(args.out.parent)
    output_dir(args.scores.parent)
    if params.split.crossval_folds is None:
        write_json(args.out, {"crossval_folds": None})
        write_json(args.scores, {})
        logger.info(
            "split.crossval_folds is null: no k-fold evaluation (set it to evaluate small datasets on every clip)"
        )
        return
    # imported only when asked for: with the default (null) the stage, rerun on every change of model.* or
    # train.* (each `dvc exp run` of a sweep), answers without torch's seconds of start-up
    from actrec.features.store import load_features
    from actrec.model.crossval import cross_evaluate

    report = cross_evaluate(load_features(args.features), params)
    write_json(args.out, report)
    means = {"cv_top1": report["top1_mean"], "cv_probe_top1": report["linear_probe_top1_mean"]}
    write_json(args.scores, {name: value for name, value in means.items() if value == value})  # NaN: no probe
    logger.info(
        "%d-fold group cross-validation over %d clips: top-1 %.3f ± %.3f, linear probe %.3f ± %.3f",
        report["crossval_folds"],
        report["clips"],
        report["top1_mean"],
        report["top1_std"],
        report["linear_probe_top1_mean"],
        report["linear_probe_top1_std"],
    )


if __name__ == "__main__":
    run_main(main)
