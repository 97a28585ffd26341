"""Small helpers for the files stages leave in reports/: JSON summaries DVC reads as metrics."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def write_json(path: str | Path, data: dict[str, Any]) -> None:
    """Write `data` as indented JSON (creating the folder), as DVC metrics files are read."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, sort_keys=False) + "\n")
