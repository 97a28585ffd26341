"""Output files written whole or not at all, so a failed or killed run never leaves a partial file.

Outputs are written through `output_file`: a temporary name beside the target, renamed into
place once complete, so neither a later run nor DVC ever takes a half-written file as complete.
Inputs found by walking a folder are found through links too (`files_under`).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from actrec.errors import ActrecError

logger = logging.getLogger(__name__)


class OutputError(ActrecError):
    """An output that cannot be written: no permission, a file where a folder should be, a full disk."""


def _cannot_write(path: Path, err: OSError, folder: Path) -> str:
    in_the_way = next((p for p in (folder, *folder.parents) if p.exists() and not p.is_dir()), None)
    why = f"{in_the_way} is a file, not a folder" if in_the_way else (err.strerror or str(err))
    return f"cannot write {path}: {why}"


def output_dir(path: str | Path) -> Path:
    """Create an output folder, or fail with one line saying why (stages call it before any work)."""
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise OutputError(_cannot_write(path, err, path)) from err
    return path


@contextlib.contextmanager
def output_file(path: str | Path) -> Iterator[Path]:
    """A temporary path beside `path` to write to; renamed to `path` only once the block completes.

    On failure the temporary file is removed and an OSError becomes an OutputError naming `path`.
    A SIGKILL leaves `.<name>.<pid>.tmp`, which `remove_leftovers` deletes on a later run.
    """
    path = Path(path)
    output_dir(path.parent)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        yield tmp
        os.replace(tmp, path)
    except OSError as err:
        raise OutputError(_cannot_write(path, err, path.parent)) from err
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink()


def write_json(path: str | Path, data: dict[str, Any]) -> None:
    """Write `data` as indented JSON, whole or not at all, as DVC reads metrics files."""
    with output_file(path) as tmp:
        tmp.write_text(json.dumps(data, indent=2) + "\n")


def write_torch(path: str | Path, data: Any) -> None:
    """torch.save `data`, whole or not at all; the same tensors always give the same bytes.

    Saved through a file object: torch.save would name the archive's inner folder after the temporary
    file, and the same content would then hash differently on every run (DVC would rerun what follows).
    """
    import torch  # here, not at the top: the stages that write no tensors need not import torch

    with output_file(path) as tmp, open(tmp, "wb") as f:
        torch.save(data, f)


def read_torch(path: str | Path, what: str, error: type[ActrecError] = ActrecError, mmap: bool = False) -> Any:
    """What write_torch wrote: torch.load onto the CPU, tensors and plain containers only (weights_only); with
    `mmap`, a large file is paged in as it is read rather than copied (the file must then stay as it is while
    its tensors are used: write_torch replaces a file, it never rewrites one). A file torch.load cannot read
    raises `error` in one line: `path` is not `what`.

    The unpickler fails on foreign bytes in many ways (KeyError, EOFError, UnpicklingError, RuntimeError, ...),
    and torch's own messages run to paragraphs about weights_only: the type says enough.
    """
    import torch  # here, not at the top: the stages that read no tensors need not import torch

    try:
        return torch.load(path, map_location="cpu", weights_only=True, mmap=mmap)
    except Exception as err:
        raise error(f"{path} is not {what}: torch.load cannot read it ({type(err).__name__})") from err


def _running(pid: int) -> bool:
    if os.name == "nt":  # os.kill would end the process there; keep its files
        return True
    try:
        os.kill(pid, 0)  # signal 0 only asks whether the process exists
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, as another user's
        pass
    return True


def remove_leftovers(folder: str | Path) -> int:
    """Delete the temporary files of killed runs in `folder` (their process is gone); return how many."""
    removed = 0
    for tmp in Path(folder).glob(".*.tmp"):
        pid = tmp.name.rsplit(".", 2)[-2]
        if pid.isdigit() and not _running(int(pid)):
            with contextlib.suppress(OSError):
                tmp.unlink()
                removed += 1
    if removed:
        logger.info("removed %d temporary file(s) left in %s by an interrupted run", removed, folder)
    return removed


def files_under(root: Path, suffixes: tuple[str, ...]) -> list[Path]:
    """Every file under `root` whose name ends in one of `suffixes` (case-insensitive), sorted, following linked
    folders as well (a dataset root often links to where the videos are; pathlib's rglob does not follow)."""
    found = []
    for folder, _, names in os.walk(root, followlinks=True):
        found += [Path(folder) / n for n in names if n.lower().endswith(suffixes)]
    return sorted(p for p in found if p.is_file())
