"""Stage 0 (demo only): render the built-in synthetic action dataset.

python -m pipeline.demo --out data/demo
"""

from __future__ import annotations

import argparse
import logging
import shutil

from actrec.data.synthetic import generate_demo
from actrec.errors import run_main
from actrec.params import load_params

logger = logging.getLogger("pipeline.demo")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="folder to render the videos into (replaced)")
    args = parser.parse_args(argv)
    params = load_params()
    d = params.demo
    shutil.rmtree(args.out, ignore_errors=True)
    paths = generate_demo(
        args.out,
        clips_per_class=d.clips_per_class,
        groups=d.groups,
        seed=params.seed,
        fps=d.fps,
        width=d.width,
        height=d.height,
        min_seconds=d.min_seconds,
        max_seconds=d.max_seconds,
    )
    logger.info("rendered %d demo clips into %s", len(paths), args.out)


if __name__ == "__main__":
    run_main(main)
