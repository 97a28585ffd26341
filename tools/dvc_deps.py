"""Write each stage's code deps in dvc.yaml from its import closure, so a new import never needs hand editing.

`make deps` (or `python -m tools.dvc_deps`) rewrites the `.py` entries of every stage's `deps:` in place,
keeping the other entries and the comments; `--check` only says which stages would change (exit 1).
tests/stages/test_dvc_yaml.py checks dvc.yaml against the same closure.
"""

from __future__ import annotations

import argparse
import ast
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OWN = ("actrec", "pipeline")  # the project's packages; everything else is an installed dependency
_STAGE = re.compile(r"^  (\w[\w-]*):\s*$")
_ITEM = re.compile(r"^      - (\S+)\s*$")


def _module_file(root: Path, name: str) -> Path | None:
    base = root / name.replace(".", "/")
    for candidate in (base / "__init__.py", base.with_suffix(".py")):
        if candidate.is_file():
            return candidate
    return None  # a name imported from a module (a function, a class), not a module


def imports(path: Path) -> set[str]:
    """Every module name `path` imports when it runs: at the top or inside functions, not under TYPE_CHECKING."""
    tree = ast.parse(path.read_text())
    typing_only = {
        id(n)
        for node in ast.walk(tree)
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
        for statement in node.body
        for n in ast.walk(statement)
    }
    names = set()
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)  # `from actrec.data import decoding`
    return names


def code_closure(script: Path, root: Path = ROOT) -> set[str]:
    """The project's files that run when `script` runs: its imports, followed transitively, and the
    __init__.py of every package on the way (Python runs each when it imports a module below it)."""
    parts = script.relative_to(root).with_suffix("").parts
    todo = [script] + [f for i in range(1, len(parts)) if (f := _module_file(root, ".".join(parts[:i])))]
    seen: set[Path] = set()
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        for name in imports(path):
            words = name.split(".")
            if words[0] in OWN:
                todo += [f for i in range(1, len(words) + 1) if (f := _module_file(root, ".".join(words[:i])))]
    return {p.relative_to(root).as_posix() for p in seen}


def stage_code(stage: str, root: Path = ROOT) -> list[str]:
    """A stage's code deps in dvc.yaml's order: its script, pipeline/__init__.py, then the library, sorted."""
    script = f"pipeline/{stage}.py"
    rest = code_closure(root / script, root) - {script, "pipeline/__init__.py"}
    return [script, "pipeline/__init__.py", *sorted(rest)]


def rewrite(text: str, root: Path = ROOT) -> tuple[str, list[str]]:
    """dvc.yaml's text with every stage's `.py` deps replaced by its closure, and the stages that changed."""
    out: list[str] = []
    changed: list[str] = []
    stage: str | None = None
    lines = text.splitlines(keepends=True)
    i = 0
    while i < len(lines):
        line = lines[i]
        out.append(line)
        i += 1
        if match := _STAGE.match(line):
            stage = match.group(1)
        elif stage and line.rstrip() == "    deps:":
            items = []
            while i < len(lines) and (item := _ITEM.match(lines[i])):
                items.append(item.group(1))
                i += 1
            code = stage_code(stage, root) if (root / "pipeline" / f"{stage}.py").is_file() else []
            others = [d for d in items if not d.endswith(".py")]
            if [d for d in items if d.endswith(".py")] != code:
                changed.append(stage)
            out += [f"      - {d}\n" for d in code + others]
        elif not line.startswith(" ") and line.strip():
            stage = None  # a top-level key after stages: (plots:, vars:)
    return "".join(out), changed


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dvc-yaml", type=Path, default=ROOT / "dvc.yaml", help="the pipeline file to rewrite")
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 if a stage's deps are stale")
    args = parser.parse_args(argv)
    text, changed = rewrite(args.dvc_yaml.read_text(), args.dvc_yaml.resolve().parent)
    if args.check:
        print(f"stale code deps: {', '.join(changed)}" if changed else "dvc.yaml: code deps up to date")
        sys.exit(1 if changed else 0)
    args.dvc_yaml.write_text(text)
    print(f"dvc.yaml: rewrote the code deps of {', '.join(changed)}" if changed else "dvc.yaml: code deps up to date")


if __name__ == "__main__":
    main()
