"""The house, drawn from its imports: each room of actrec/ imports only rooms below it, so data flows one way
(videos → features → model → predictions and reports) and no idea reaches back up."""

from __future__ import annotations

from pathlib import Path

from tests.helpers import ROOT
from tools.dvc_deps import imports

# Lowest first. A room may import its own files and any room of a lower layer, never one of its own layer or above.
LAYERS = (
    {"errors", "names"},
    {"params", "files", "progress", "devices", "distributed"},
    {"runtime"},
    {"data"},
    {"features"},
    {"model"},
    {"evaluation", "inference"},
    {"export", "serving"},
    {"commands"},
    {"cli"},
    {"__main__", "__init__"},
)


def _room(path: Path) -> str:
    parts = path.relative_to(ROOT / "actrec").parts
    return parts[0] if len(parts) > 1 else path.stem


def test_every_room_is_in_a_layer() -> None:
    rooms = {_room(p) for p in (ROOT / "actrec").rglob("*.py")}
    assert rooms == set().union(*LAYERS), rooms ^ set().union(*LAYERS)


def test_rooms_import_only_rooms_below_them() -> None:
    layer = {room: i for i, rooms in enumerate(LAYERS) for room in rooms}
    for path in sorted((ROOT / "actrec").rglob("*.py")):
        room = _room(path)
        for name in imports(path):
            words = name.split(".")
            if words[0] != "actrec" or len(words) < 2 or words[1] not in layer or words[1] == room:
                continue
            assert layer[words[1]] < layer[room], f"{path.relative_to(ROOT)} ({room}) imports {name}: an arrow up"
