"""The training recipe: schedule, sampling, frame dropout; determinism and order-awareness on the real demo."""

from __future__ import annotations

import dataclasses
import itertools
import json
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from actrec.features.store import FeatureSet, load_features
from actrec.model import training
from actrec.model.heads import HEADS
from actrec.model.proba import predict_proba
from actrec.model.selection import choose_and_train
from actrec.model.training import _drop_frames, _epoch_order, _pick_view, fit, train_head
from actrec.params import ModelParams, TrainParams, load_params
from tests.helpers import ROOT, call_stage, run_stage

CV3 = "cross-validation on train + val (3 group folds, train.choice_folds)"  # HeadChoice.by


def _features(n: int, classes: int, seed: int = 0) -> FeatureSet:
    """Separable random clips (N, 1, T=4, D=8): class c has mean c on every channel."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % classes
    feats = (rng.standard_normal((n, 1, 4, 8)) + labels[:, None, None, None]).astype(np.float16)
    return FeatureSet(
        feats, labels, np.array([f"c{i}" for i in range(n)]), np.full(n, "train"), [str(c) for c in range(classes)], {}
    )


class _Recorder:
    """Collects what fit logs, as dvclive's Live would."""

    def __init__(self) -> None:
        self.metrics: dict[str, list[float]] = {}

    def log_metric(self, name: str, value: float) -> None:
        self.metrics.setdefault(name, []).append(value)

    def next_step(self) -> None:
        pass


def test_learning_rate_warms_up_then_decays_to_zero() -> None:
    data = _features(64, 2)
    cfg = TrainParams(epochs=10, batch_size=16, lr=0.01, warmup_epochs=2, patience=100)
    live = _Recorder()
    fit(torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(32, 2)), data, data, cfg, seed=0, live=live)
    lr = live.metrics["train/lr"]  # at the start of each epoch
    assert len(lr) == 10
    assert lr[0] < lr[1] < lr[2] == pytest.approx(0.01)
    assert all(a > b for a, b in itertools.pairwise(lr[2:]))
    assert lr[-1] < 0.001


def test_balanced_sampling_draws_each_class_equally_often() -> None:
    labels = torch.tensor([0] * 90 + [1] * 10)
    generator = torch.Generator().manual_seed(0)
    plain = _epoch_order(labels, balanced=False, generator=generator)
    assert sorted(plain.tolist()) == list(range(100))
    drawn = torch.cat([labels[_epoch_order(labels, balanced=True, generator=generator)] for _ in range(20)])
    assert abs(drawn.float().mean().item() - 0.5) < 0.05


def test_feature_dropout_zeroes_whole_frames() -> None:
    x = torch.randn(64, 16, 8) + 5
    dropped = _drop_frames(x, 0.25, torch.Generator().manual_seed(0))
    zero = (dropped == 0).all(-1)
    assert ((dropped == x).all(-1) | zero).all()  # a frame is kept whole or dropped whole
    assert 0.2 < zero.float().mean().item() < 0.3
    assert torch.equal(_drop_frames(x, 0.0, torch.Generator()), x)


def test_refit_trains_a_fresh_head_on_train_and_val_for_the_chosen_epochs(monkeypatch) -> None:
    """train.refit: validation picks the epoch count, then train + val are learned from, for exactly that long."""
    data = _features(48, 3)
    train = FeatureSet(*(a[:36] for a in (data.features, data.labels, data.clip_ids, data.split)), data.classes, {})
    val = FeatureSet(
        *(a[36:] for a in (data.features, data.labels, data.clip_ids)), np.full(12, "val"), data.classes, {}
    )
    cfg = TrainParams(epochs=6, patience=6, batch_size=8)
    seen = []
    real_fit = training.fit

    def spy(model, fit_train, fit_val, cfg, seed, live=None, epochs=None, **kwargs):
        seen.append((len(fit_train.labels), len(fit_val.labels), epochs))
        return real_fit(model, fit_train, fit_val, cfg, seed, live, epochs, **kwargs)

    monkeypatch.setattr(training, "fit", spy)
    plain, result = train_head(ModelParams(head="lstm", hidden_size=8), cfg, 0, train, val)
    assert seen == [(36, 12, None)] and result.refit_epochs == 0
    seen.clear()
    refit, again = train_head(
        ModelParams(head="lstm", hidden_size=8), dataclasses.replace(cfg, refit=True), 0, train, val
    )
    assert seen == [(36, 12, None), (48, 0, again.best_epoch)] and again.refit_epochs == again.best_epoch >= 1
    assert any(
        not torch.equal(a, b) for a, b in zip(plain.state_dict().values(), refit.state_dict().values(), strict=True)
    )


def test_k_clips_training_draws_one_view_evaluation_averages_all() -> None:
    features = torch.randn(200, 3, 4, 8)  # 200 videos × K=3 views
    drawn = _pick_view(features, torch.Generator().manual_seed(0))
    which = (drawn.unsqueeze(1) == features).all(-1).all(-1).float().argmax(1)
    assert drawn.shape == (200, 4, 8) and torch.bincount(which, minlength=3).min() > 40  # every view drawn
    assert torch.equal(_pick_view(features, None), features[:, 0])

    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(32, 5))
    per_view = [predict_proba(model, features[:, k : k + 1]) for k in range(3)]
    np.testing.assert_allclose(predict_proba(model, features), np.mean(per_view, axis=0), atol=1e-6)


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo at two thirds of its size (20 clips a class, 36 test clips) with ImageNet features extracted once:
    8 frames at 160 px."""
    root = tmp_path_factory.mktemp("demo")
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["demo"].update(clips_per_class=20)
    params["extract"].update(frames=8, image_size=160, cache_dir=str(root / "cache"))
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    with pytest.MonkeyPatch.context() as patch:  # in-process: what is under test is the training that follows
        patch.chdir(root)
        for name in ("demo", "subset", "split", "extract"):
            call_stage(name)
    return root


@pytest.mark.slow
def test_order_aware_heads_beat_bag_of_frames_on_time_reversed_pairs(demo: Path) -> None:
    """Each demo class has a twin that is itself played backwards: only frame order tells them apart.
    The default params (the BiLSTM or the linear probe, whichever cross-validates better) keep the BiLSTM."""
    params = load_params(demo / "params.yaml")
    data = load_features(demo / "features" / "features.h5")
    train, val, test = data.part("train"), data.part("val"), data.part("test")
    top1, chosen = {}, {}
    by_validation = dataclasses.replace(params.train, choice_folds=0)  # each head alone, by its own early stopping
    heads = [h for h in HEADS if h != "ensemble"]  # the ensemble is two of them combined, never trained alone
    runs = {head: (dataclasses.replace(params.model, head=head), by_validation) for head in heads}
    for name, (model_params, cfg) in {**runs, "default": (params.model, params.train)}.items():
        model, choice, _ = choose_and_train(model_params, cfg, params.seed, train, val)
        top1[name], chosen[name] = float((predict_proba(model, test.features).argmax(1) == test.labels).mean()), choice
    print("\ndemo top-1 on", len(test.labels), "test clips:", {k: round(v, 3) for k, v in top1.items()})
    order_blind = ("mean", "probe")
    for head in order_blind:
        assert top1[head] < 0.75, (head, top1)  # a bag of frames cannot tell a clip from its reverse
    for head in heads:
        if head not in order_blind:
            assert top1[head] >= top1["mean"] + 0.30, (head, top1)
    assert chosen["default"].head == "lstm" and chosen["default"].by == CV3
    assert chosen["default"].scores["lstm"] > chosen["default"].scores["probe"] + 0.30
    assert top1["default"] >= top1["mean"] + 0.30


@pytest.mark.slow
def test_training_twice_gives_identical_metrics_and_weights(demo: Path) -> None:
    """The default recipe (the head choice's folds, then the chosen head), at 6 epochs: repeating a run does not
    depend on its length."""
    text = (demo / "params.yaml").read_text()
    params = yaml.safe_load(text)
    params["train"]["epochs"] = 6
    (demo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    try:
        _twice_then_another_seed(demo, params)
    finally:
        (demo / "params.yaml").write_text(text)


def _twice_then_another_seed(demo: Path, params: dict) -> None:
    runs = []
    for _ in range(2):  # the same checkpoint bytes give the same evaluation: the evaluate stage is not rerun
        run_stage("train", demo)
        checkpoint = demo / "models" / "model.pt"
        runs.append(
            (
                json.loads((demo / "reports/train/metrics.json").read_text()),
                torch.load(checkpoint, weights_only=True)["state_dict"],
                checkpoint.read_bytes(),
            )
        )
    (metrics, weights, saved), (metrics_again, weights_again, saved_again) = runs
    assert metrics == metrics_again
    assert saved == saved_again, "the same run gives the same checkpoint file, so DVC sees the same hash"
    assert weights.keys() == weights_again.keys()
    assert all(torch.equal(weights[k], weights_again[k]) for k in weights)

    params["seed"] += 1  # another seed: another model (so the equality above is not vacuous)
    (demo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    run_stage("train", demo)
    other = torch.load(demo / "models" / "model.pt", weights_only=True)["state_dict"]
    assert not all(torch.equal(weights[k], other[k]) for k in weights)
