"""dvc.yaml cannot go stale: each stage depends on exactly the code its script runs, found by following its
imports, and names every path its command reads or writes."""

from __future__ import annotations

import shlex
import shutil
from pathlib import Path

import pytest
import yaml

from actrec.features.store import MATCHED_SETTINGS
from tests.helpers import ROOT
from tools.dvc_deps import code_closure, imports, rewrite

STAGES = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]


def _paths(entries: list) -> set[str]:
    return {next(iter(e)) if isinstance(e, dict) else e for e in entries}


def _code_deps(stage: dict) -> set[str]:
    return {d for d in stage["deps"] if d.endswith(".py")}


@pytest.mark.parametrize("name", sorted(STAGES))
def test_each_stage_depends_on_exactly_the_code_it_runs(name: str) -> None:
    needed, declared = code_closure(ROOT / "pipeline" / f"{name}.py"), _code_deps(STAGES[name])
    missing, extra = sorted(needed - declared), sorted(declared - needed)
    assert not missing, f"dvc.yaml: stage {name!r} runs {', '.join(missing)} but does not depend on it"
    assert not extra, f"dvc.yaml: stage {name!r} depends on {', '.join(extra)}, which it does not run"


def test_the_closure_follows_imports_inside_functions_and_packages() -> None:
    """The check itself: a dependency reached only through a function-level import or a package is found."""
    closure = code_closure(ROOT / "pipeline" / "evaluate.py")
    assert "actrec/model/proba.py" in closure  # predict_proba, used by evaluate
    assert {"actrec/__init__.py", "actrec/model/__init__.py", "pipeline/__init__.py"} <= closure
    cli = code_closure(ROOT / "actrec" / "cli.py")
    assert "actrec/evaluation/plots.py" in cli, "imported inside a function"
    assert "actrec/export.py" in cli and "pipeline/__init__.py" not in cli


def test_a_missing_dep_is_named(monkeypatch) -> None:
    """Remove one library file from a stage's deps: the check fails, naming the stage and the file."""
    edited = {**STAGES["evaluate"], "deps": [d for d in STAGES["evaluate"]["deps"] if d != "actrec/model/proba.py"]}
    monkeypatch.setitem(STAGES, "evaluate", edited)
    with pytest.raises(AssertionError, match=r"stage 'evaluate' runs actrec/model/proba\.py but does not"):
        test_each_stage_depends_on_exactly_the_code_it_runs("evaluate")


def test_predicting_or_exporting_never_reruns_a_stage() -> None:
    """The CLI, predict and export are no stage's code: changing them never re-extracts features or retrains."""
    for name, stage in STAGES.items():
        assert not _code_deps(stage) & {
            "actrec/cli.py",
            "actrec/export.py",
            "actrec/inference/predictor.py",
            "actrec/inference/inputs.py",
        }, name


def test_no_stage_imports_another_and_the_library_imports_no_stage() -> None:
    for name in STAGES:
        stages = {p for p in code_closure(ROOT / "pipeline" / f"{name}.py") if p.startswith("pipeline/")}
        assert stages == {f"pipeline/{name}.py", "pipeline/__init__.py"}, name
    for path in sorted((ROOT / "actrec").rglob("*.py")):
        outside = {n for n in imports(path) if n.split(".")[0] in ("pipeline", "benchmarks", "tests")}
        assert not outside, f"{path.relative_to(ROOT)} imports {outside}"


@pytest.mark.parametrize("name", sorted(STAGES))
def test_every_path_a_command_names_is_declared(name: str) -> None:
    """dvc.yaml is the one home of the stages' paths: each path in a command is a dep, an out, a metric or a plot
    (or the folder holding them)."""
    stage = STAGES[name]
    declared = (
        _paths(stage.get("deps", []))
        | _paths(stage.get("outs", []))
        | _paths(stage.get("metrics", []))
        | _paths(stage.get("plots", []))
    )
    for word in shlex.split(stage["cmd"])[3:]:
        if not word.startswith("--"):
            assert word in declared or any(d.startswith(f"{word}/") for d in declared), (name, word)


def test_train_declares_the_extract_params_it_checks() -> None:
    """train refuses features extracted otherwise than params.yaml says, so those keys are its params."""
    assert {f"extract.{k}" for k in MATCHED_SETTINGS} <= set(STAGES["train"]["params"])


def test_evaluate_declares_its_reports() -> None:
    stage = STAGES["evaluate"]
    assert {"reports/summary.md", "reports/predictions.csv", "reports/per_class.csv"} <= _paths(stage["outs"])
    assert "reports/confusion.png" in _paths(stage["plots"]) and "reports/metrics.json" in _paths(stage["outs"])


def test_metrics_are_the_few_scores_people_compare() -> None:
    """`dvc metrics show` and `dvc exp show` list the compared scores only (reports/scores/), so they fit a
    terminal; every other report is a plain output."""
    declared = {path for stage in STAGES.values() for path in _paths(stage.get("metrics", []))}
    assert declared == {"reports/scores/test.json", "reports/scores/choice.json", "reports/scores/crossval.json"}


def test_every_declared_plot_is_written_by_every_run() -> None:
    """The top-level plots read only files evaluate always writes, whatever head was kept and whatever is off."""
    plots = yaml.safe_load((ROOT / "dvc.yaml").read_text())["plots"]
    files = {path for plot in plots for spec in plot.values() for path in spec["y"]}
    assert files <= _paths(STAGES["evaluate"]["outs"]), files


def test_stage_scripts_are_short() -> None:
    """A stage reads params and inputs, calls the library and writes outputs; the work lives in actrec/."""
    for name in STAGES:
        lines = (ROOT / "pipeline" / f"{name}.py").read_text().splitlines()
        assert len(lines) <= 100, f"pipeline/{name}.py has {len(lines)} lines"


def test_make_deps_writes_the_closure_after_a_new_import(tmp_path: Path) -> None:
    """A stage module that gains an import: `make deps` adds the file to exactly the stages that run it."""
    for folder in ("actrec", "pipeline"):
        shutil.copytree(ROOT / folder, tmp_path / folder, ignore=shutil.ignore_patterns("__pycache__"))
    text = (ROOT / "dvc.yaml").read_text()
    assert rewrite(text, ROOT) == (text, []), "dvc.yaml's code deps are stale: run `make deps`"
    (tmp_path / "actrec" / "newmod.py").write_text('"""A new module."""\n')
    metrics = tmp_path / "actrec" / "evaluation" / "metrics.py"
    metrics.write_text(metrics.read_text() + "\nfrom actrec import newmod  # noqa: E402, F401\n")
    new, changed = rewrite(text, tmp_path)
    assert changed == ["evaluate"]
    deps = yaml.safe_load(new)["stages"]["evaluate"]["deps"]
    assert "actrec/newmod.py" in deps and "models/model.pt" in deps  # data deps are kept
    assert new.count("#") == text.count("#")  # comments are kept
