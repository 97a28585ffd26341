"""The finetune stage: off, extract's features are exactly those of extract alone; on, extract runs with the
fine-tuned weights, the features say so, and train, predict and the checkpoint use the same backbone; killed,
it resumes after its last epoch and ends as an uninterrupted run does."""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
import yaml

from actrec.errors import ActrecError
from actrec.features.backbone_file import extract_params, write_backbone_file
from actrec.features.backbones.base import file_identity, read_state_dict
from actrec.inference.predictor import Predictor
from actrec.model import finetune as finetune_run
from actrec.model.tuned import FinetuneError
from actrec.params import ExtractParams, load_params
from tests.helpers import (
    ROOT,
    UCF_MINI,
    call_stage,
    class_folders,
    one_error_line,
    run_stage,
    stage_args,
    stage_command,
    tiny_project,
)


def _real_clips(folder: Path, **finetune: object) -> Path:
    """A tiny project on real UCF-101 clips (8 a class of 3 classes: 8 train, 2 val, 14 test in split 1), fine-tuning
    Lite0's last two blocks with a small head."""
    settings = {"enabled": True, "epochs": 1, "batch_size": 2, "samplings": 2, **finetune}
    return tiny_project(
        folder, dataset={"name": "ucf101", "root": str(UCF_MINI), "max_clips_per_class": 8}, finetune=settings
    )


def work_folder(project: Path = Path()) -> Path:
    """Where the finetune stage keeps an unfinished run's state: beside the feature cache."""
    return Path(load_params(project / "params.yaml").extract.cache_dir) / "finetune"


def _features(path: Path) -> tuple[np.ndarray, dict]:
    with h5py.File(path) as f:
        return f["features"][:].astype(np.float32), dict(f.attrs)


@pytest.mark.slow
def test_fine_tuned_weights_make_the_features_and_every_reader_uses_them(tmp_path: Path, monkeypatch) -> None:
    run, frozen = _real_clips(tmp_path / "run"), _real_clips(tmp_path / "frozen", enabled=False)
    monkeypatch.chdir(run)
    for stage in ("subset", "split", "finetune", "extract"):
        call_stage(stage)
    report = json.loads(Path("reports/finetune.json").read_text())
    assert report["enabled"] and report["epochs_run"] == 1 and report["learning"] == ["blocks.15", "head"]
    assert report["fine_tuned"] and report["best_epoch"] == 1
    assert report["train_clips"] == 8 and report["val_clips"] == 2 and report["inputs_held"] == "trunk output"
    assert Path("reports/finetune/plots/metrics/val/accuracy.tsv").is_file(), "dvclive's curves"
    assert not list(work_folder().iterdir()), "the work folder is emptied once done"
    tuned, attrs = _features(Path("features/features.h5"))
    assert attrs["weights"] == "models/backbone.pt" and attrs["finetuned_from"] == "imagenet"
    assert attrs["weights_id"] == file_identity("models/backbone.pt"), "the cache is keyed on the file's content"

    shutil.copytree(run / "data", frozen / "data")
    monkeypatch.chdir(frozen)
    for stage in ("finetune", "extract"):
        call_stage(stage)
    plain, frozen_attrs = _features(Path("features/features.h5"))
    assert frozen_attrs["weights_id"].startswith("imagenet") and frozen_attrs["weights"] == "imagenet"
    assert plain.shape == tuned.shape and not np.allclose(plain, tuned, atol=1e-2), "the blocks learned"

    monkeypatch.chdir(run)
    call_stage("train")  # the features match params.extract: they were fine-tuned from its weights
    predictor = Predictor("models/model.pt", "cpu")
    state = read_state_dict(Path("models/backbone.pt"))
    head_conv = predictor.source.backbone.model.net._conv_head.weight
    assert torch.equal(head_conv, state["_conv_head.weight"]), "predict runs the fine-tuned backbone"
    state["_conv_head.weight"] += 1  # the backbone file changes after training: the model refuses it
    torch.save({"state_dict": state}, "models/backbone.pt")
    with pytest.raises(ActrecError, match=r"other weights or preprocessing .* extract and train again"):
        Predictor("models/model.pt", "cpu")


def test_off_by_default_extract_gives_the_features_of_extract_alone(tmp_path: Path, monkeypatch) -> None:
    """The shipped params pass the pretrained weights through: the same cache key, the same feature file bytes."""
    class_folders(tmp_path / "videos")
    run = tiny_project(tmp_path / "run", tmp_path / "videos")
    monkeypatch.chdir(run)
    assert not load_params().finetune.enabled
    for stage in ("subset", "split", "finetune", "extract"):
        call_stage(stage)
    assert json.loads(Path("reports/finetune.json").read_text()) == {"enabled": False}
    assert Path("reports/finetune/metrics.json").is_file(), "DVC's outputs exist, curves or none"
    assert extract_params(Path("models/backbone.pt"), load_params().extract, True) == (load_params().extract, {})
    alone = [a for a in stage_args("extract") if a not in ("--backbone-file", "models/backbone.pt")]
    alone[alone.index("--out") + 1] = "features/alone.h5"
    from pipeline import extract

    extract.main(alone)
    assert json.loads(Path("reports/extract.json").read_text())["extracted"] == 0, "one cache for both"
    assert Path("features/alone.h5").read_bytes() == Path("features/features.h5").read_bytes()
    written = Path("models/backbone.pt").read_bytes()
    call_stage("finetune")
    assert Path("models/backbone.pt").read_bytes() == written, "the same bytes: DVC does not rerun extract"
    # off, extract does not read the file: a fine-tuned run's leftover, or none at all, changes nothing
    write_backbone_file("models/backbone.pt", load_params().extract, {"conv1.weight": torch.zeros(1)}, {})
    call_stage("extract")
    assert Path("features/features.h5").read_bytes() == Path("features/alone.h5").read_bytes()
    Path("models/backbone.pt").unlink()
    call_stage("extract")
    assert Path("features/features.h5").read_bytes() == Path("features/alone.h5").read_bytes()


def test_a_backbone_file_for_other_params_is_one_line(tmp_path: Path) -> None:
    class_folders(tmp_path / "videos")
    extract = {"backbone": "resnet50", "weights": None}
    run = tiny_project(tmp_path / "run", tmp_path / "videos", extract=extract, finetune={"enabled": True})
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(run)
        for stage in ("subset", "split"):
            call_stage(stage)
    write_backbone_file(run / "models/backbone.pt", ExtractParams(), {"conv1.weight": torch.zeros(1)}, {})
    line = one_error_line(run_stage("extract", run, check=False))
    assert line == (
        "error: models/backbone.pt was written for other extract params (file ≠ params: backbone efficientnet_lite0 "
        "≠ resnet50, pretrained imagenet ≠ None, frames 16 ≠ 4, image_size auto ≠ 64); run the finetune stage first "
        "(dvc repro)"
    )
    assert not (run / "features").exists(), "nothing was extracted"


def test_layers_naming_no_block_fail_before_any_decoding(tmp_path: Path, monkeypatch) -> None:
    class_folders(tmp_path / "videos")
    run = tiny_project(tmp_path / "run", tmp_path / "videos", finetune={"enabled": True, "layers": ["layer4"]})
    monkeypatch.chdir(run)
    for stage in ("subset", "split"):
        call_stage(stage)
    with pytest.raises(FinetuneError, match=r"finetune\.layers names 'layer4', not a block of efficientnet_lite0"):
        call_stage("finetune")
    assert not list(work_folder().iterdir()) and not Path("models/backbone.pt").exists()


@pytest.mark.slow
def test_a_killed_finetune_resumes_after_its_last_epoch(tmp_path: Path, monkeypatch) -> None:
    """Killed once an epoch's state is written, a rerun goes on from there and ends exactly as an uninterrupted run."""
    settings = {"epochs": 6, "freeze_epochs": 1, "patience": 6}
    run, ref = _real_clips(tmp_path / "run", **settings), _real_clips(tmp_path / "ref", **settings)
    monkeypatch.chdir(run)
    for stage in ("subset", "split"):
        call_stage(stage)
    shutil.copytree(run / "data", ref / "data")
    state = run / work_folder(run) / "state.pt"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(stage_command("finetune"), cwd=run, env=env, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 600
    while proc.poll() is None and not state.exists() and time.monotonic() < deadline:
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    assert proc.wait() == -signal.SIGKILL, "the run ended before it could be killed"
    epoch = torch.load(state, weights_only=True)["epoch"]
    assert 1 <= epoch < 6 and not (run / "models/backbone.pt").exists()

    resumed = run_stage("finetune", run).stderr
    assert f"resuming after epoch {epoch} of 6" in resumed and "inputs of 8 clips from" in resumed, resumed
    run_stage("finetune", ref)
    # the same bytes: the same weights (or the same pass-through, where the head alone validated best)
    assert (run / "models/backbone.pt").read_bytes() == (ref / "models/backbone.pt").read_bytes()
    report, reference = (json.loads((p / "reports/finetune.json").read_text()) for p in (run, ref))
    assert report["resumed_after_epoch"] == epoch and reference["resumed_after_epoch"] == 0
    assert report["best_epoch"] == reference["best_epoch"] and report["epochs_run"] == reference["epochs_run"] == 6
    for curve in ("train/loss.tsv", "val/accuracy.tsv"):
        path = Path("reports/finetune/plots/metrics") / curve
        assert (run / path).read_text() == (ref / path).read_text(), "every epoch's figures, the resumed ones too"


def test_a_state_of_other_params_is_not_resumed_from(tmp_path: Path, monkeypatch, caplog) -> None:
    """A run's state left in the work folder is ignored by a run of other params (another learning rate), which
    trains from its first epoch; the decoded inputs, which the learning rate does not change, are reused."""
    class_folders(tmp_path / "videos")
    run = tiny_project(
        tmp_path / "run",
        tmp_path / "videos",
        finetune={"enabled": True, "epochs": 2, "freeze_epochs": 1, "samplings": 1},
    )
    monkeypatch.chdir(run)
    for stage in ("subset", "split"):
        call_stage(stage)
    work = work_folder()
    with monkeypatch.context() as keep:
        emptied = shutil.rmtree
        # the run's state stays, as after a kill
        keep.setattr(shutil, "rmtree", lambda path, **kw: None if Path(path) == work else emptied(path, **kw))
        call_stage("finetune")
    assert (work_folder() / "state.pt").is_file()
    params = yaml.safe_load(Path("params.yaml").read_text())
    params["finetune"]["head_lr"] = 0.01
    Path("params.yaml").write_text(yaml.safe_dump(params))
    caplog.set_level(logging.INFO, logger="actrec")
    call_stage("finetune")
    report = json.loads(Path("reports/finetune.json").read_text())
    assert "resuming" not in caplog.text and f"inputs of {report['train_clips']} clips from" in caplog.text
    assert report["resumed_after_epoch"] == 0 and report["epochs_run"] == 2


def test_without_val_clips_early_stopping_watches_the_training_accuracy(tmp_path: Path, monkeypatch, caplog) -> None:
    class_folders(tmp_path / "videos")
    settings = {"enabled": True, "epochs": 2, "freeze_epochs": 1, "samplings": 1}
    run = tiny_project(tmp_path / "run", tmp_path / "videos", split={"val_fraction": 0}, finetune=settings)
    monkeypatch.chdir(run)
    for stage in ("subset", "split", "finetune"):
        call_stage(stage)
    report = json.loads(Path("reports/finetune.json").read_text())
    assert report["val_clips"] == 0 and report["epochs_run"] == 2 and report["train_clips"] > 0
    curves = Path("reports/finetune/plots/metrics")
    assert (curves / "val/accuracy.tsv").read_text() == (curves / "train/accuracy.tsv").read_text()
    assert "no validation clips: early stopping watches the training accuracy" in caplog.text


def test_where_the_head_alone_validates_best_the_pretrained_weights_pass_through(tmp_path: Path, monkeypatch) -> None:
    """The blocks' learning must validate at least as well as the head alone; here the validation accuracy is
    scripted to fall once they learn (the head alone: 1.0, then 0.5), so the pretrained weights are kept, and
    extract runs as with fine-tuning off."""
    class_folders(tmp_path / "videos")
    accuracies, evaluate = iter([1.0, 0.5]), finetune_run.evaluate

    def scripted(predict, batches):
        loss, _, probs = evaluate(predict, batches)
        return loss, next(accuracies), probs

    monkeypatch.setattr(finetune_run, "evaluate", scripted)
    settings = {"enabled": True, "epochs": 2, "freeze_epochs": 1, "samplings": 1}
    run = tiny_project(tmp_path / "run", tmp_path / "videos", finetune=settings)
    monkeypatch.chdir(run)
    for stage in ("subset", "split", "finetune", "extract"):
        call_stage(stage)
    report = json.loads(Path("reports/finetune.json").read_text())
    assert report["epochs_run"] == 2 and report["best_epoch"] == 1 and not report["fine_tuned"]
    _, attrs = _features(Path("features/features.h5"))
    assert (
        attrs["weights"] == "imagenet" and attrs["weights_id"].startswith("imagenet") and "finetuned_from" not in attrs
    )
