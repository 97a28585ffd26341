"""Stage: check the whole of params.yaml, before any other stage works.

python -m pipeline.params --out data/params.ok

Its dependency is the file itself, so any edit reruns it (a second): an unknown section or key, a wrong type,
a NaN or a value out of range, and a key left out, stop `dvc repro` and `dvc exp run` here with one line,
before DVC deletes any other stage's outputs to run it. Every other stage follows it (the first ones depend
on its output), and the output never changes, so a valid edit reruns only the stages whose params changed.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from actrec.errors import run_main
from actrec.files import output_dir, output_file
from actrec.params import load_params


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", type=Path, default=Path("params.yaml"), help="the params file to check")
    parser.add_argument("--out", type=Path, required=True, help="written once the file passes (always the same)")
    args = parser.parse_args(argv)
    load_params(args.params, complete=True)
    output_dir(args.out.parent)
    with output_file(args.out) as tmp:
        tmp.write_text("params.yaml passed the checks of actrec/params.py\n")


if __name__ == "__main__":
    run_main(main)
