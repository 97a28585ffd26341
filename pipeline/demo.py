"""Stage 0 (demo only): render the built-in synthetic action dataset into data/demo.

python -m pipeline.demo
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

from pipeline.errors import run_main
from pipeline.params import load_params
from pipeline.synthetic import generate_demo

logger = logging.getLogger("pipeline.demo")

OUT_DIR = Path("data/demo")


def main() -> None:
    params = load_params()
    shutil.rmtree(OUT_DIR, ignore_errors=True)
    d = params.demo
    paths = generate_demo(OUT_DIR, clips_per_class=d.clips_per_class, groups=d.groups, seed=params.seed,
                          fps=d.fps, width=d.width, height=d.height, min_seconds=d.min_seconds,
                          max_seconds=d.max_seconds)
    logger.info("rendered %d demo clips into %s", len(paths), OUT_DIR)


if __name__ == "__main__":
    run_main(main)
