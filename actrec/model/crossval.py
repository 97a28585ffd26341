"""Group k-fold evaluation (split.crossval_folds): for datasets too small for one test split to say much.

Every clip is cut into N folds by group (no person or source video on both sides). Each fold is
the test part once; the other clips get a validation part carved by group, as the split stage
carves one, and the run's recipe (model.head's choice, train's settings) trains on them. The
result is top-1 as mean ± standard deviation over the folds, beside the linear probe's on the same
folds, so 27 clips give an estimate from all 27 rather than from the 9 of one test split.
"""

from __future__ import annotations

import logging
from typing import Any

import pandas as pd

from actrec.data.splits import carve_val
from actrec.errors import ActrecError
from actrec.features.store import FeatureSet
from actrec.model.proba import predict_proba
from actrec.model.probe import linear_probe
from actrec.model.selection import choose_and_train, group_folds, most_folds
from actrec.params import Params

logger = logging.getLogger(__name__)


def cross_evaluate(data: FeatureSet, params: Params) -> dict[str, Any]:
    """Train and test the recipe once per fold of `params.split.crossval_folds`; top-1 per fold, mean and std."""
    folds = min(params.split.crossval_folds, most_folds(data))
    if folds < 2:
        raise ActrecError(
            "split.crossval_folds needs at least 2 groups of clips, and a class with at least 2 clips, "
            "to cut folds from"
        )
    rows = []
    for number, (rest, held) in enumerate(group_folds(data, folds, params.seed), start=1):
        labelled, test = data.rows(rest), data.rows(held)
        table = pd.DataFrame({"label": labelled.labels, "group": labelled.group_names(), "split": "train"})
        parts = carve_val(table, params.split.val_fraction, params.seed).to_numpy()
        train, val = labelled.rows(parts == "train"), labelled.rows(parts == "val")
        title = f"test fold {number}/{folds}: "
        model, choice, _ = choose_and_train(params.model, params.train, params.seed, train, val, title=title)
        top1 = float((predict_proba(model, test.features).argmax(1) == test.labels).mean())
        probe = linear_probe(labelled.features, labelled.labels, test.features, len(data.classes))
        probe_top1 = float((probe.argmax(1) == test.labels).mean()) if probe is not None else float("nan")
        rows.append(
            {
                "fold": number,
                "test_clips": len(test.labels),
                "head": choice.head,
                "top1": top1,
                "linear_probe_top1": probe_top1,
            }
        )
        logger.info("fold %d/%d: %s top-1 %.3f, linear probe %.3f", number, folds, choice.head, top1, probe_top1)
    table = pd.DataFrame(rows)
    summary: dict[str, Any] = {"crossval_folds": folds, "clips": len(data.labels)}
    for name in ("top1", "linear_probe_top1"):
        summary[f"{name}_mean"] = round(float(table[name].mean()), 4)
        summary[f"{name}_std"] = round(float(table[name].std(ddof=0)), 4)
    summary["per_fold"] = table.round(4).to_dict("records")
    return summary
