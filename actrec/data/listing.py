"""What is under the dataset root, as a table of files and sizes: what DVC watches in the root's place.

Were `dataset.root` a DVC dependency, DVC would hash the whole folder before any stage starts: one symbolic
link loop there stops every command (`Too many levels of symbolic links`), and a large dataset is read whole
on a first run. Instead the `files` stage lists each file's path and size (a stat, no read) on every run, and
the stages that read the root depend on that listing: a clip added, removed or rewritten at another size
reruns them, and an unchanged listing reruns nothing. Linked folders are followed, but not a link back to
a folder the walk is inside; a link that leads nowhere or round in a loop is listed with its reason, and
probing reports it as an unreadable clip.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pandas as pd

COLUMNS = ["path", "size", "problem"]


def walk(root: Path) -> Iterator[tuple[str, list[str], list[str]]]:
    """os.walk following linked folders, except a link to a folder the walk is inside or to one above it (a loop,
    which os.walk would follow until the system refuses the path). Prune the yielded folder names as os.walk's."""
    chains: dict[str, frozenset[str]] = {}
    for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
        here = os.path.realpath(dirpath)
        inside = chains.pop(dirpath, frozenset()) | {here}
        targets = {d: os.path.realpath(os.path.join(dirpath, d)) for d in dirnames}
        dirnames[:] = [d for d in dirnames if targets[d] not in inside and not Path(here).is_relative_to(targets[d])]
        yield dirpath, dirnames, filenames
        chains.update((os.path.join(dirpath, d), inside) for d in dirnames)


def list_files(root: Path) -> pd.DataFrame:
    """Every file under `root` (path relative to it, size in bytes, and why a link cannot be followed), sorted."""
    rows = []
    for dirpath, _, filenames in walk(root):
        for name in filenames:
            path = Path(dirpath) / name
            try:
                rows.append((path.relative_to(root).as_posix(), path.stat().st_size, ""))
            except OSError as err:  # a dangling link or a loop: os.walk lists it as a file it cannot stat
                rows.append((path.relative_to(root).as_posix(), -1, err.strerror or type(err).__name__))
    return pd.DataFrame(rows, columns=COLUMNS).sort_values("path", ignore_index=True)
