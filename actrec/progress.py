"""Progress bars that suit where they are written: live on a terminal, a few lines a minute in a log.

DVC's logs, CI and `> file` are not terminals: a bar redrawn ten times a second there fills the
file with thousands of carriage-return updates, so off a terminal it redraws every LOG_INTERVAL.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator
from typing import TypeVar

from tqdm import tqdm

T = TypeVar("T")
LOG_INTERVAL = 20.0  # seconds between redraws off a terminal


def progress(items: Iterable[T], **options) -> Iterator[T]:
    """tqdm over `items` (same options), redrawn every LOG_INTERVAL seconds when stderr is not a terminal."""
    if not sys.stderr.isatty():
        options = {"mininterval": LOG_INTERVAL, "maxinterval": LOG_INTERVAL, **options}
    return tqdm(items, **options)
