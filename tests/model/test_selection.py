"""Choosing the head: cross-validation by group on small datasets, the validation split on large ones; the
simplest head within one standard error of the best is kept."""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import statistics

import numpy as np
import pandas as pd
import pytest
import torch
from dvclive import Live

from actrec.features.store import FeatureSet
from actrec.model import selection
from actrec.model.checkpoint import Checkpoint, load_model
from actrec.model.choice import Evidence, HeadChoice, decide, rule
from actrec.model.heads import EnsembleHead, ProbeHead
from actrec.model.proba import predict_proba
from actrec.model.probe import linear_probe
from actrec.model.selection import (
    choice_folds,
    choose_and_train,
    group_folds,
    train_choice,
    weigh,
)
from actrec.params import ModelParams, TrainParams

CV3 = "cross-validation on train + val (3 group folds, train.choice_folds)"  # HeadChoice.by

MODEL = ModelParams(head=["lstm", "probe"], hidden_size=16)
TRAIN = TrainParams(epochs=25, batch_size=8, lr=3e-3, warmup_epochs=1, patience=25)


def _clips(groups: int, per_group: int, order_only: bool, seed: int = 0, split: str = "train") -> FeatureSet:
    """Two classes, `per_group` clips of each class per group, (N, 1, T=8, D=6) features.

    order_only: class 0 drifts one way over the clip, class 1 the other way: the same frames in reverse
    order, so the mean and spread over time (all the probe sees) are alike. Otherwise the classes differ
    in mean and frame order carries nothing.
    """
    rng = np.random.default_rng(seed)
    n = groups * per_group * 2
    labels = np.arange(n) % 2
    direction = np.array([1.0, -1, 1, -1, 1, -1])  # no mean across channels, which a per-frame LayerNorm removes
    ramp = np.linspace(-1, 1, 8)[:, None] * direction
    if order_only:
        base = np.where(labels[:, None, None] == 0, ramp, ramp[::-1])
    else:
        base = np.zeros((n, 8, 6)) + labels[:, None, None] * 0.8 * direction
    features = (base + 0.3 * rng.standard_normal((n, 8, 6)))[:, None].astype(np.float16)
    groups_of = np.array([f"{split}-g{i // (2 * per_group)}" for i in range(n)])
    ids = np.array([f"{split}{i}" for i in range(n)])
    return FeatureSet(features, labels, ids, np.full(n, split), ["a", "b"], {}, groups=groups_of)


def test_cross_validation_is_for_small_sets_and_never_has_more_folds_than_groups() -> None:
    assert choice_folds("auto", _clips(6, 2, False)) == 3
    assert choice_folds("auto", _clips(2, 2, False)) == 2, "two people: two folds"
    assert choice_folds("auto", _clips(1, 4, False)) == 0, "one group: nothing to hold out"
    assert choice_folds("auto", _clips(250, 2, False)) == 0, "1,000 clips: the validation split decides"
    assert choice_folds(5, _clips(250, 2, False)) == 5 and choice_folds(5, _clips(4, 2, False)) == 4
    assert choice_folds(0, _clips(6, 2, False)) == 0
    one_each = _clips(2, 1, False).rows(np.array([0, 3]))  # HMDB-51's mini split: one clip of each class
    assert choice_folds("auto", one_each) == 0, "a fold needs a class with a clip to hold out and one to keep"


def test_each_clip_is_held_out_once_and_no_group_straddles_a_fold() -> None:
    data = _clips(7, 3, False)
    held = np.concatenate([out for _, out in group_folds(data, 3, seed=0)])
    assert sorted(held.tolist()) == list(range(len(data.labels)))
    for fit_rows, out in group_folds(data, 3, seed=0):
        assert not set(data.groups[fit_rows]) & set(data.groups[out])
        assert set(data.labels[out]) == {0, 1}, "both classes held out in every fold"


def test_cross_validation_keeps_the_temporal_head_where_order_matters(caplog) -> None:
    train, val = _clips(6, 3, True), _clips(2, 3, True, seed=1, split="val")
    caplog.set_level(logging.INFO)
    model, choice, result = choose_and_train(MODEL, TRAIN, 0, train, val, title="outer 1/2: ")
    assert choice.head == "lstm" and choice.by == CV3
    # the log says what is planned, then each epoch line names its fit: the fold, or the final training
    planned = f"3 fits of 25 epochs (lstm × 3 folds), then the chosen head on all {len(train.labels) + len(val.labels)}"
    assert f"outer 1/2: {CV3}: {planned} labelled clips" in caplog.text
    epoch_lines = [r.getMessage() for r in caplog.records if " epoch " in r.getMessage()]
    fits = {line.split(" epoch ")[0] for line in epoch_lines}
    assert fits == {*(f"outer 1/2: lstm fold {k}/3" for k in (1, 2, 3)), "outer 1/2: lstm on all labelled clips"}
    assert len(epoch_lines) == 3 * TRAIN.epochs + choice.epochs
    assert choice.scores["lstm"] >= choice.scores["probe"] + 0.3, choice.scores
    assert 1 <= choice.epochs <= TRAIN.epochs and result.refit_epochs == choice.epochs
    test = _clips(3, 3, True, seed=2, split="test")
    assert (predict_proba(model, test.features).argmax(1) == test.labels).mean() >= 0.9


def test_the_probe_is_kept_where_it_validates_better_and_refitted_on_every_labelled_clip() -> None:
    """An LSTM that cannot learn in one epoch at a tiny learning rate against the probe on mean-separated clips."""
    train, val = _clips(6, 3, False), _clips(2, 3, False, seed=1, split="val")
    crippled = dataclasses.replace(TRAIN, epochs=1, lr=1e-7, warmup_epochs=0)
    for folds, by in (
        (0, "validation split"),
        ("auto", CV3),
    ):
        model, choice, result = choose_and_train(
            MODEL, dataclasses.replace(crippled, choice_folds=folds), 0, train, val
        )
        assert choice.head == "probe" and choice.by == by and result is None
        assert choice.scores["probe"] > choice.scores["lstm"], choice.scores
        assert isinstance(model, ProbeHead)
        labelled = train.join(val)
        expected = linear_probe(labelled.features, labelled.labels, val.features, 2)
        with torch.no_grad():
            np.testing.assert_allclose(model(torch.from_numpy(val.features[:, 0])).softmax(1), expected, atol=1e-5)


def test_without_validation_clips_or_groups_the_first_listed_head_is_trained() -> None:
    train = _clips(1, 6, False)  # one group: neither a validation part nor folds
    model, choice, result = choose_and_train(MODEL, TRAIN, 0, train, train.part())
    assert choice.head == "lstm" and choice.by == "no validation clips" and result is not None
    assert not isinstance(model, ProbeHead)


@pytest.mark.parametrize("heads", [["probe"], ["lstm"]])
def test_a_single_head_is_trained_with_no_contest(heads: list[str]) -> None:
    train, val = _clips(30, 20, False), _clips(5, 20, False, seed=1, split="val")  # 1,400 clips: no folds
    short = dataclasses.replace(TRAIN, epochs=2)
    model, choice, _ = choose_and_train(dataclasses.replace(MODEL, head=heads[0]), short, 0, train, val)
    assert choice.head == heads[0] and choice.by == "only candidate" and list(choice.scores) == heads
    assert isinstance(model, ProbeHead) == (heads == ["probe"])


@pytest.mark.parametrize("heads, folds", [(["lstm", "probe"], "auto"), (["probe"], 0)])
def test_a_run_that_keeps_the_probe_still_has_its_training_plots(tmp_path, heads: list[str], folds) -> None:
    """DVC declares reports/train/plots: with the probe kept and no head trained to log its curves, the
    evidence is logged instead (each candidate's cross-validated accuracy by epoch, or the probe's score)."""
    train, val = _clips(6, 3, False), _clips(2, 3, False, seed=1, split="val")
    crippled = dataclasses.replace(TRAIN, epochs=3, lr=1e-7, warmup_epochs=0, choice_folds=folds)
    with Live(str(tmp_path), dvcyaml=None, save_dvc_exp=False, report=None) as live:
        _, choice, _ = choose_and_train(dataclasses.replace(MODEL, head=heads), crippled, 0, train, val, live)
    assert choice.head == "probe"
    plots = tmp_path / "plots" / "metrics"
    if folds == "auto":
        for head in heads:
            rows = pd.read_csv(plots / "cv" / head / "accuracy.tsv", sep="\t")
            assert len(rows) == crippled.epochs and rows["accuracy"].between(0, 1).all()
    else:
        assert pd.read_csv(plots / "val" / "accuracy.tsv", sep="\t")["accuracy"].tolist() == [choice.scores["probe"]]


def sem(values: np.ndarray) -> float:
    """The standard error of the mean, by the standard library (not the code under test's numpy)."""
    return statistics.stdev(values.tolist()) / math.sqrt(len(values))


def _judged(right: int, wrong: int) -> np.ndarray:
    return np.array([True] * right + [False] * wrong, dtype=bool)


def test_a_lead_within_the_margin_is_a_near_tie_and_a_clear_lead_is_not() -> None:
    """A real 3-person set: 18 labelled clips, the BiLSTM 12 right, the probe 11. Clip by clip the
    BiLSTM gets 2 the probe misses and misses 1 it gets: a lead of 1/18 with a standard error of 0.055."""
    probe = np.concatenate([_judged(10, 0), _judged(1, 0), _judged(0, 2), _judged(0, 5)])
    lstm = np.concatenate([_judged(10, 0), _judged(0, 1), _judged(2, 0), _judged(0, 5)])
    evidence = {"lstm": Evidence(lstm, weights=1000), "probe": Evidence(probe, weights=10)}
    lead, error = evidence["lstm"].score - evidence["probe"].score, sem(lstm.astype(float) - probe.astype(float))
    assert lead == pytest.approx(1 / 18) and lead < error
    for margin in (1, 2):
        choice = decide("validation split", evidence, margin)
        assert choice.head == "probe" and choice.rule == rule(margin) and f"within {margin} standard" in choice.rule
    assert decide("validation split", evidence, 0).head == "lstm", "margin 0: the best score"
    # 2 more right than the probe and none fewer: more than one standard error ahead, not more than two
    two = np.concatenate([_judged(10, 0), _judged(1, 0), _judged(2, 0), _judged(0, 5)])
    lead, error = two.mean() - probe.mean(), sem(two.astype(float) - probe.astype(float))
    assert error < lead < 2 * error
    assert [decide("validation split", {**evidence, "lstm": Evidence(two, 1000)}, m).head for m in (1, 2)] == [
        "lstm",
        "probe",
    ]
    clear = np.concatenate([_judged(10, 0), _judged(1, 0), _judged(2, 0), _judged(5, 0)])  # 7 more, none fewer
    assert decide("validation split", {**evidence, "lstm": Evidence(clear, weights=1000)}, 2).head == "lstm"
    equal = {"lstm": Evidence(probe, weights=1000), "probe": Evidence(probe.copy(), weights=10)}
    assert decide("validation split", equal, 0).head == "probe", "a tie goes to the simpler, wherever it is listed"


@pytest.mark.parametrize("folds", ["auto", 0])
def test_the_probe_is_kept_where_the_temporal_head_only_ties_it(folds) -> None:
    """Mean-separated clips: the BiLSTM trains fine and ties the probe; listed first, it won the tie before."""
    train, val = _clips(6, 3, False), _clips(2, 3, False, seed=1, split="val")
    model, choice, result = choose_and_train(MODEL, dataclasses.replace(TRAIN, choice_folds=folds), 0, train, val)
    lstm, probe = choice.evidence["lstm"], choice.evidence["probe"]
    assert lstm.score >= 0.9, choice.scores
    lead, error = lstm.score - probe.score, sem(lstm.correct.astype(float) - probe.correct.astype(float))
    assert lead <= TRAIN.choice_margin * error, choice.scores
    assert choice.head == "probe" and isinstance(model, ProbeHead) and result is None


@pytest.mark.parametrize("folds", ["auto", 0])
def test_the_summary_records_each_score_with_its_standard_error_and_the_rule(tmp_path, folds) -> None:
    """Frame order decides (reversed pairs): the BiLSTM clearly beats the probe, by cross-validation or on
    the val clips, and reports/train/metrics.json says by how much against the noise."""
    train, val = _clips(6, 3, True), _clips(4, 3, True, seed=1, split="val")  # 24 val clips: enough to tell
    cfg = dataclasses.replace(TRAIN, choice_folds=folds)
    with Live(str(tmp_path), dvcyaml=None, save_dvc_exp=False, report=None) as live:
        _, choice, result = choose_and_train(MODEL, cfg, 0, train, val, live)
        live.summary = choice.summary(result)
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    judged = len(train.labels) + len(val.labels) if folds == "auto" else len(val.labels)
    assert metrics["head"] == "lstm" and metrics["choice_rule"] == rule(TRAIN.choice_margin)
    for head in ("lstm", "probe"):
        score = metrics[f"validation_accuracy_{head}"]
        assert len(choice.evidence[head].correct) == judged
        expected = np.sqrt(score * (1 - score) / (judged - 1))
        assert metrics[f"validation_accuracy_{head}_standard_error"] == pytest.approx(expected, abs=1e-4)
    lead = metrics["validation_accuracy_lstm_minus_probe"]
    error = metrics["validation_accuracy_lstm_minus_probe_standard_error"]
    gap = choice.evidence["lstm"].correct.astype(float) - choice.evidence["probe"].correct.astype(float)
    assert lead == pytest.approx(gap.mean(), abs=1e-4) and error == pytest.approx(sem(gap), abs=1e-4)
    assert lead > TRAIN.choice_margin * error > 0
    assert metrics["weights_probe"] < metrics["weights_lstm"]


def test_the_ensemble_is_the_mean_of_its_members_and_round_trips_through_the_checkpoint(tmp_path) -> None:
    train, val = _clips(6, 3, True), _clips(2, 3, True, seed=1, split="val")
    labelled = train.join(val)
    heads = dataclasses.replace(MODEL, head=["lstm", "probe", "ensemble"])
    by, evidence = weigh(heads, TRAIN, 0, train, val)
    ensemble = evidence["ensemble"]
    assert ensemble.temporal == "lstm" and ensemble.epochs == evidence["lstm"].epochs
    assert ensemble.weights == evidence["lstm"].weights + evidence["probe"].weights
    model, _ = train_choice(HeadChoice("ensemble", by, evidence), heads, TRAIN, 0, labelled)
    lstm, _ = train_choice(HeadChoice("lstm", by, evidence), heads, TRAIN, 0, labelled)
    probe, _ = train_choice(HeadChoice("probe", by, evidence), heads, TRAIN, 0, labelled)
    test = _clips(3, 3, True, seed=2, split="test")
    mean = (predict_proba(lstm, test.features) + predict_proba(probe, test.features)) / 2
    assert isinstance(model, EnsembleHead)
    np.testing.assert_allclose(predict_proba(model, test.features), mean, atol=1e-5)
    choice = HeadChoice("ensemble", by, evidence)
    Checkpoint(
        head="ensemble",
        head_options={**heads.head_options(), **choice.options},
        input_dim=6,
        classes=labelled.classes,
        features={},
        state_dict=model.state_dict(),
    ).save(tmp_path / "model.pt")
    loaded, checkpoint = load_model(tmp_path / "model.pt")
    assert checkpoint.head == "ensemble" and checkpoint.head_options["temporal"] == "lstm"
    np.testing.assert_allclose(predict_proba(loaded, test.features), mean, atol=1e-5)


@pytest.mark.parametrize(
    "right_after, epochs, correct",
    [
        # each group right after one epoch only, its own: luck, not learning. The pooled accuracy ties at 2 of 6
        # after every epoch (so 3 epochs, the later of equals), but where the other folds peak each fold is wrong:
        # group 0's others tie epochs 2 and 3 (the later), group 1's 1 and 3, group 2's 1 and 2.
        ({0: {1}, 1: {2}, 2: {3}}, 3, [0, 0, 0, 0, 0, 0]),
        # groups 1 and 2 learn for good after epoch 2, right where the others peak; group 0's luck is not kept
        ({0: {1}, 1: {2, 3}, 2: {2, 3}}, 3, [0, 0, 1, 1, 1, 1]),
        # every group right after epoch 2 alone: a real peak, kept, and every fold chooses it
        ({0: {2}, 1: {2}, 2: {2}}, 2, [1, 1, 1, 1, 1, 1]),
    ],
)
def test_cross_validation_scores_each_fold_at_the_epoch_the_other_folds_choose(
    monkeypatch, right_after: dict[int, set[int]], epochs: int, correct: list[int]
) -> None:
    """The epoch count is where the pooled held-out accuracy peaks; scored at that peak a trained head would be
    the best of every epoch on the clips that judge it. Each fold is scored where the other folds peak instead.
    The training is scripted: which groups' clips are right after which epoch is set by hand."""
    data = _clips(3, 1, False)  # 3 groups of 2 clips (one of each class): 3 folds, one group held out in each

    def scripted_fit(model, fit_part, held, cfg, seed, epochs=None, world=None, watch=None, title=""):
        groups = [int(clip.removeprefix("train")) // 2 for clip in held.clip_ids]
        for epoch in range(1, cfg.epochs + 1):
            right = np.array([epoch in right_after[g] for g in groups])
            watch(np.eye(2)[np.where(right, held.labels, 1 - held.labels)])

    monkeypatch.setattr(selection, "fit", scripted_fit)
    _, evidence = weigh(MODEL, dataclasses.replace(TRAIN, epochs=3), 0, data, data.part("val"))
    lstm = evidence["lstm"]
    assert lstm.folds.tolist() == np.repeat(lstm.folds[::2], 2).tolist() and len(set(lstm.folds)) == 3
    assert lstm.epochs == epochs
    np.testing.assert_array_equal(lstm.correct, np.array(correct, dtype=bool))
    assert (evidence["probe"].folds == lstm.folds).all()
