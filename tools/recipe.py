"""The `dvc exp run` overrides of a recipe: a params file in recipes/ holding the keys that make one system.

python -m tools.recipe recipes/resnet18_bilstm_attention.yaml     prints  -S extract.backbone=resnet18 -S ...
dvc exp run $(python -m tools.recipe recipes/resnet18_bilstm_attention.yaml)

Each recipe's first comment lines give the same `dvc exp run` line to copy (tests/test_recipes.py checks
that they agree). The overrides go on top of params.yaml, so the keys a recipe leaves out keep their values
there; the merged params are validated before anything is printed.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import yaml

from actrec.errors import run_main
from actrec.params import ParamsError, parse_params


def overrides(recipe: dict[str, Any], prefix: str = "") -> list[str]:
    """`key=value` for every leaf of the recipe, values written as dvc's -S parses them."""
    out = []
    for key, value in recipe.items():
        if isinstance(value, dict):
            out += overrides(value, f"{prefix}{key}.")
        elif isinstance(value, list):
            out.append(f"{prefix}{key}=[{','.join(map(str, value))}]")
        else:
            out.append(f"{prefix}{key}={json.dumps(value) if isinstance(value, bool) or value is None else value}")
    return out


def merged(recipe: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
    """params.yaml with the recipe's keys set."""
    out = dict(params)
    for key, value in recipe.items():
        out[key] = merged(value, params.get(key, {})) if isinstance(value, dict) else value
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("recipe", type=Path, help="a recipe file (recipes/*.yaml)")
    parser.add_argument("--params", type=Path, default=Path("params.yaml"), help="the params the recipe goes onto")
    args = parser.parse_args(argv)
    if not args.recipe.is_file():
        raise ParamsError(f"recipe {args.recipe} not found (the recipes are in recipes/)")
    recipe = yaml.safe_load(args.recipe.read_text()) or {}
    parse_params(merged(recipe, yaml.safe_load(args.params.read_text())))  # a bad key is one line, here
    print(" ".join(f"-S {o}" for o in overrides(recipe)))


if __name__ == "__main__":
    run_main(main)
