"""The NTU RGB+D 60 and 120 layout: sample names that carry setup, camera, performer and action, the
published protocols, and the Kinect skeleton files.

A sample is named `SsssCcccPpppRrrrAaaa`: setup sss (S001–S017 in NTU-60, to S032 in NTU-120), camera
ccc (1–3), performer ppp (1–40, to 106), replication rrr and action aaa (A001–A060, to A120). Its RGB
video is `<name>_rgb.avi` (the official `nturgb+d_rgb/` folder) and its skeletons `<name>.skeleton`
(`nturgb+d_skeletons/`), found anywhere under the dataset root. Clips are grouped by performer. The
protocols assign train and test by name: cross-subject by performer, cross-view by camera (NTU-60),
cross-setup by setup (NTU-120). The .skeleton files' format is read in data/ntu_skeleton.py.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

import pandas as pd

from actrec.data.ntu_skeleton import SKELETON_SUFFIX
from actrec.errors import ActrecError
from actrec.files import files_under

logger = logging.getLogger(__name__)

SAMPLE = re.compile(r"S(\d{3})C(\d{3})P(\d{3})R(\d{3})A(\d{3})")
RGB_SUFFIX = "_rgb.avi"
# The published lists of samples whose skeletons are missing, as the dataset's authors name them; put them in
# the dataset root (or dataset.splits_dir) to have those samples skipped.
MISSING_LISTS = ("NTU_RGBD_samples_with_missing_skeletons.txt", "NTU_RGBD120_samples_with_missing_skeletons.txt")
MISSING_SKELETON = "in the published list of samples with missing skeletons"

# Cross-subject: these performers train, every other one tests (NTU-60's 20 up to 38, then NTU-120's 33 more).
# fmt: off
XSUB_TRAIN = frozenset((
    1, 2, 4, 5, 8, 9, 13, 14, 15, 16, 17, 18, 19, 25, 27, 28, 31, 34, 35, 38,
    45, 46, 47, 49, 50, 52, 53, 54, 55, 56, 57, 58, 59, 70, 74, 78, 80, 81, 82, 83, 84, 85, 86, 89, 91, 92, 93, 94, 95,
    97, 98, 100, 103,
))
# fmt: on
XVIEW_TRAIN_CAMERAS = frozenset((2, 3))  # cross-view: camera 1 tests
NTU60_SETUPS = 17  # cross-setup (NTU-120): even setups train, odd ones test
PROTOCOLS = {"xsub": "cross-subject", "xview": "cross-view", "xset": "cross-setup"}

ACTIONS = {
    i + 1: name
    for i, name in enumerate(
        (
            "drink water",
            "eat meal/snack",
            "brushing teeth",
            "brushing hair",
            "drop",
            "pickup",
            "throw",
            "sitting down",
            "standing up (from sitting position)",
            "clapping",
            "reading",
            "writing",
            "tear up paper",
            "wear jacket",
            "take off jacket",
            "wear a shoe",
            "take off a shoe",
            "wear on glasses",
            "take off glasses",
            "put on a hat/cap",
            "take off a hat/cap",
            "cheer up",
            "hand waving",
            "kicking something",
            "reach into pocket",
            "hopping (one foot jumping)",
            "jump up",
            "make a phone call/answer phone",
            "playing with phone/tablet",
            "typing on a keyboard",
            "pointing to something with finger",
            "taking a selfie",
            "check time (from watch)",
            "rub two hands together",
            "nod head/bow",
            "shake head",
            "wipe face",
            "salute",
            "put the palms together",
            "cross hands in front (say stop)",
            "sneeze/cough",
            "staggering",
            "falling",
            "touch head (headache)",
            "touch chest (stomachache/heart pain)",
            "touch back (backache)",
            "touch neck (neckache)",
            "nausea or vomiting condition",
            "use a fan (with hand or paper)/feeling warm",
            "punching/slapping other person",
            "kicking other person",
            "pushing other person",
            "pat on back of other person",
            "point finger at the other person",
            "hugging other person",
            "giving something to other person",
            "touch other person's pocket",
            "handshaking",
            "walking towards each other",
            "walking apart from each other",
            # NTU-120 adds A061–A120
            "put on headphone",
            "take off headphone",
            "shoot at the basket",
            "bounce ball",
            "tennis bat swing",
            "juggling table tennis balls",
            "hush (quite)",
            "flick hair",
            "thumb up",
            "thumb down",
            "make ok sign",
            "make victory sign",
            "staple book",
            "counting money",
            "cutting nails",
            "cutting paper (using scissors)",
            "snapping fingers",
            "open bottle",
            "sniff (smell)",
            "squat down",
            "toss a coin",
            "fold paper",
            "ball up paper",
            "play magic cube",
            "apply cream on face",
            "apply cream on hand back",
            "put on bag",
            "take off bag",
            "put something into a bag",
            "take something out of a bag",
            "open a box",
            "move heavy objects",
            "shake fist",
            "throw up cap/hat",
            "hands up (both hands)",
            "cross arms",
            "arm circles",
            "arm swings",
            "running on the spot",
            "butt kicks (kick backward)",
            "cross toe touch",
            "side kick",
            "yawn",
            "stretch oneself",
            "blow nose",
            "hit other person with something",
            "wield knife towards other person",
            "knock over other person (hit with body)",
            "grab other person's stuff",
            "shoot at other person with a gun",
            "step on foot",
            "high-five",
            "cheers and drink",
            "carry something with other person",
            "take a photo of other person",
            "follow other person",
            "whisper in other person's ear",
            "exchange things with other person",
            "support somebody with hand",
            "finger-guessing game (playing rock-paper-scissors)",
        )
    )
}


class NtuError(ActrecError):
    """An NTU file whose name or list entry is not in the official format."""


def sample_name(path: str | Path) -> str | None:
    """The sample a file holds (`S001C002P003R001A010`), or None when the name is not NTU's."""
    name = Path(path).name
    for suffix in (RGB_SUFFIX, SKELETON_SUFFIX):
        if name.endswith(suffix) and SAMPLE.fullmatch(name[: -len(suffix)]):
            return name[: -len(suffix)]
    return None


def missing_skeletons(folders: list[Path]) -> set[str]:
    """The samples the published missing-skeleton lists found in `folders` name (none when no list is there)."""
    names: set[str] = set()
    for path in (f / n for f in folders for n in MISSING_LISTS):
        if not path.is_file():
            continue
        for number, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), start=1):
            entry = line.strip()
            if not entry or entry.startswith("#"):
                continue
            if not SAMPLE.fullmatch(entry):
                raise NtuError(f"{path}:{number}: {entry[:60]!r} is not an NTU sample name (SsssCcccPpppRrrrAaaa)")
            names.add(entry)
    return names


def scan(root: Path, skeletons: bool, list_folders: list[Path]) -> pd.DataFrame:
    """Every NTU video (or .skeleton file) under `root`: clip_id, path, label, group (the performer), setup,
    camera, performer, and missing_skeleton (named by a published missing-skeleton list)."""
    suffix = SKELETON_SUFFIX if skeletons else RGB_SUFFIX
    missing = missing_skeletons(list_folders) if skeletons else set()
    rows, other = [], 0
    for path in files_under(root, (suffix,)):
        name = sample_name(path)
        if name is None:
            other += 1
            continue
        setup, camera, performer, _, action = (int(n) for n in SAMPLE.fullmatch(name).groups())
        if action not in ACTIONS:
            raise NtuError(f"{path}: action A{action:03d} is not one of NTU's A001–A{len(ACTIONS):03d}")
        rows.append(
            {
                "clip_id": path.relative_to(root).as_posix(),
                "path": str(path),
                "label": ACTIONS[action],
                "group": f"P{performer:03d}",
                "setup": setup,
                "camera": camera,
                "performer": performer,
                "missing_skeleton": name in missing,
            }
        )
    if other:
        logger.warning("skipping %d file(s) ending in %s whose names are not NTU's SsssCcccPpppRrrrAaaa", other, suffix)
    if not rows:
        raise NtuError(f"no NTU files named SsssCcccPpppRrrrAaaa{suffix} under {root}")
    return pd.DataFrame(rows)


def protocol_parts(table: pd.DataFrame, protocol: str) -> pd.Series:
    """train or test for each clip, as the published protocol assigns it from the sample's name."""
    if protocol == "xsub":
        train = table["performer"].isin(XSUB_TRAIN)
    elif protocol == "xview":
        train = table["camera"].isin(XVIEW_TRAIN_CAMERAS)
    else:
        train = table["setup"] % 2 == 0
    published = {"xview": table["setup"] <= NTU60_SETUPS, "xset": table["setup"] > NTU60_SETUPS}.get(protocol)
    if published is not None and not published.all():
        logger.warning(
            "%s is published for NTU-%s; %d of the clips here are not from that set",
            PROTOCOLS[protocol],
            "60" if protocol == "xview" else "120",
            int((~published).sum()),
        )
    return train.map({True: "train", False: "test"})
