"""What many tests share: real videos written with PyAV, a tiny project folder, and running a stage as DVC does."""

from __future__ import annotations

import contextlib
import importlib
import io
import json
import logging
import os
import re
import shlex
import shutil
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pandas as pd
import pytest
import yaml

from actrec.data.clips import fingerprint

ROOT = Path(__file__).resolve().parents[1]
UCF_MINI = ROOT.parent / "shared" / "data" / "ucf101-mini"

# Small, fast extraction for tests: ImageNet Lite0 weights ship offline (random-init features round to zero in
# float16, and a random backbone could not be rebuilt identically at predict time).
FAST_EXTRACT = {
    "backbone": "efficientnet_lite0",
    "weights": "imagenet",
    "frames": 4,
    "views": 1,
    "image_size": 64,
    "batch_size": "auto",
    "num_workers": 0,
    "device": "cpu",
    "precision": "fp32",
    "cache_dir": "features/cache",
    "shard_size": 2,
}


def write_video(
    path: Path,
    frames: int = 30,
    width: int = 64,
    height: int = 48,
    fps: int = 25,
    codec: str = "mpeg4",
    pix_fmt: str = "yuv420p",
    seed: int = 0,
) -> Path:
    """Encode `frames` frames whose brightness encodes the frame number (so decoded order is checkable)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    texture = rng.integers(0, 60, (height, width, 3), dtype=np.uint8)
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, pix_fmt
        for i in range(frames):
            level = int(40 + 180 * i / max(frames - 1, 1))
            image = np.clip(texture.astype(np.int16) + level, 0, 255).astype(np.uint8)
            container.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
        container.mux(stream.encode())
    return path


def ffmpeg(*args: str | Path) -> None:
    """The ffmpeg command (re-encoding real clips, dumping their frames); the test is skipped where it is missing."""
    if shutil.which("ffmpeg") is None:
        pytest.skip("ffmpeg is not installed (apt-get install -y ffmpeg)")
    subprocess.run(["ffmpeg", "-loglevel", "error", "-y", *map(str, args)], check=True)


def dump_frames(video: Path, folder: Path, pattern: str = "img_%05d.png") -> Path:
    """Every frame FFmpeg outputs at the video's constant frame rate (what a player shows each frame period), as
    numbered images (MMAction2's rawframes names)."""
    folder.mkdir(parents=True)
    ffmpeg("-i", video, "-an", "-fps_mode", "cfr", "-q:v", "2", folder / pattern)
    return folder


def ffmpeg_frames(video: Path) -> np.ndarray:
    """Every frame FFmpeg outputs at the video's constant frame rate, decoded once: RGB (n, H, W, 3), the
    reference the decoders' frames are held to."""
    if shutil.which("ffmpeg") is None:
        pytest.skip("ffmpeg is not installed (apt-get install -y ffmpeg)")
    with av.open(str(video)) as container:
        width, height = container.streams.video[0].width, container.streams.video[0].height
    command = ["ffmpeg", "-loglevel", "error", "-i", str(video), "-an", "-fps_mode", "cfr"]
    raw = subprocess.run([*command, "-f", "rawvideo", "-pix_fmt", "rgb24", "-"], capture_output=True, check=True)
    return np.frombuffer(raw.stdout, np.uint8).reshape(-1, height, width, 3)


def write_timed_video(
    path: Path,
    pts: list[int],
    time_base: Fraction = Fraction(1, 1000),
    width: int = 64,
    height: int = 48,
    codec: str = "libx264",
    codec_tag: str | None = None,
) -> Path:
    """Encode one frame at each time in `pts` (× time_base), brightness rising per frame.

    Irregular gaps give a variable-frame-rate video; `codec_tag` sets the FourCC the container
    records (e.g. "XVID" for mpeg4 in AVI, as UCF-101's clips are).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=25)  # the nominal rate; the frames keep their own times
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.codec_context.time_base = time_base
        if codec_tag:
            stream.codec_context.codec_tag = codec_tag
        for i, t in enumerate(pts):
            image = np.full((height, width, 3), int(30 + 200 * i / max(len(pts) - 1, 1)), np.uint8)
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            frame.pts, frame.time_base = t, time_base
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    return path


def write_audio_only(path: Path, seconds: float = 1.0, rate: int = 16000) -> Path:
    """A container with one AAC audio stream and no video stream (a soundtrack saved as .mp4)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("aac", rate=rate)
        for i in range(int(seconds * rate) // 1024):
            tone = np.sin(np.arange(i * 1024, (i + 1) * 1024) * 2 * np.pi * 440 / rate).astype(np.float32)
            frame = av.AudioFrame.from_ndarray(tone[None], format="fltp", layout="mono")
            frame.sample_rate, frame.pts = rate, i * 1024
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    return path


def class_folders(
    root: Path, classes: tuple[str, ...] = ("jump", "wave"), groups: int = 4, clips: int = 1, frames: int = 20
) -> list[str]:
    """Videos in a folder per class, `clips` per group (<class>_gNN_cNN.avi), lengths and textures all distinct,
    so that a group-aware split has groups to share out. Returns the clip ids (paths relative to `root`)."""
    written = []
    for k, cls in enumerate(classes):
        for g in range(1, groups + 1):
            for c in range(1, clips + 1):
                path = write_video(
                    root / cls / f"{cls}_g{g:02d}_c{c:02d}.avi", frames=frames + g + c, seed=100 * k + 10 * g + c
                )
                written.append(path.relative_to(root).as_posix())
    return written


def clip_table(folder: Path, n: int) -> pd.DataFrame:
    """`n` videos in two classes as a split clip table (train/test alternating, a group per pair of videos);
    video i has 10 + i frames."""
    paths = [write_video(folder / f"c{i % 2}" / f"v{i}.avi", frames=10 + i, seed=i) for i in range(n)]
    return pd.DataFrame(
        {
            "clip_id": [p.relative_to(folder).as_posix() for p in paths],
            "path": [str(p) for p in paths],
            "label": [f"c{i % 2}" for i in range(n)],
            "split": ["train", "test"] * (n // 2),
            "group": [f"g{i // 2}" for i in range(n)],
            "fingerprint": [fingerprint(p) for p in paths],
        }
    )


def tiny_project(folder: Path, videos: Path | str | None = None, **sections: dict) -> Path:
    """A project folder whose params.yaml is the shipped one with a `folder` dataset at `videos`, fast
    extraction (FAST_EXTRACT) and 3 epochs, then `sections` on top ({"train": {"epochs": 5}}, ...)."""
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    if videos is not None:
        params["dataset"].update({"name": "folder", "root": str(videos)})
    params["extract"].update(FAST_EXTRACT)
    params["train"].update({"epochs": 3})
    for name, values in sections.items():
        if isinstance(values, dict):
            params[name].update(values)
        else:
            params[name] = values
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    return folder


def tiny_demo(repo: Path) -> Path:
    """The repo's own demo pipeline at its smallest (4 clips a class, 1-1.5 s, 4 frames at 64 px, 3 epochs)."""
    return tiny_project(repo, demo={"clips_per_class": 4, "groups": 4, "min_seconds": 1.0, "max_seconds": 1.5})


def ucf_miniature(root: Path, classes: tuple[str, ...], groups: tuple[int, ...], source: Path = UCF_MINI) -> Path:
    """A dataset root in the official UCF-101 layout holding links to the `c01` clip of `groups` of each class
    (split 1 tests on g01-g07, trains on g08-g25), and the official split lists."""
    for name in classes:
        (root / "UCF-101" / name).mkdir(parents=True)
        for g in groups:
            clip = f"v_{name}_g{g:02d}_c01.avi"
            (root / "UCF-101" / name / clip).symlink_to(source / "UCF-101" / name / clip)
    (root / "ucfTrainTestlist").symlink_to(source / "ucfTrainTestlist")
    return root


# The real UCF-101 miniature of the backbone and recipe tests (conftest.ucf_split), and its small extraction
UCF_CLASSES = ("TrampolineJumping", "UnevenBars")
TINY_UCF = {"frames": 4, "weights": None, "num_workers": 0, "cache_dir": "features/cache"}


def tiny_ucf_project(folder: Path, root: Path, split: Path, **sections: dict) -> Path:
    """The shipped params on `root` (official split 1), small extraction and a short training, `sections` on
    top (a recipe's keys, then the test's), and the split the subset and split stages wrote for `root`."""
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["dataset"].update({"name": "ucf101", "root": str(root)})
    params["split"].update({"official": 1, "val_fraction": 0.5})
    params["train"].update({"epochs": 2, "patience": 2})
    for name, values in sections.items():
        params[name].update(values)
    (folder / "data").mkdir(parents=True)
    (folder / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    for name in ("clips.csv", "split.csv"):
        shutil.copy(split / "data" / name, folder / "data" / name)
    (folder / "reports").mkdir()
    shutil.copy(split / "reports" / "subset.json", folder / "reports" / "subset.json")
    return folder


def run_pipeline(project: Path) -> dict:
    """extract, train and evaluate with dvc.yaml's arguments, in `project`; the extract report. Each stage's main
    runs in this process: the stages' start-up as a fresh process is tested where DVC runs them."""
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(project)
        for stage in ("extract", "train", "evaluate"):
            call_stage(stage)
    return json.loads((project / "reports/extract.json").read_text())


def stage_args(name: str) -> list[str]:
    """The stage's arguments as dvc.yaml gives them (every input and output path)."""
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    words = shlex.split(stages[name]["cmd"])
    assert words[:3] == ["python", "-m", f"pipeline.{name}"], words
    return words[3:]


def stage_command(name: str) -> list[str]:
    """The command dvc repro runs for the stage, with this interpreter."""
    return [sys.executable, "-m", f"pipeline.{name}", *stage_args(name)]


def run_stage(
    name: str, cwd: Path, check: bool = True, launcher: tuple[str, ...] = (), env: dict | None = None
) -> subprocess.CompletedProcess:
    """Run a stage in `cwd` as DVC does (a fresh process); by default it must succeed without a traceback.

    `launcher` goes before the stage's `-m pipeline.<name>`, e.g. torchrun's arguments.
    """
    command = stage_command(name)
    if launcher:
        command = [sys.executable, *launcher, *command[1:]]
    # The stage scripts are not installed (only actrec is): outside the repo they come from its checkout.
    path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)
    done = subprocess.run(
        command, cwd=cwd, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": path, **(env or {})}
    )
    if check:
        assert done.returncode == 0, f"{name} failed:\n{done.stderr[-3000:]}"
        assert "Traceback" not in done.stderr, done.stderr[-3000:]
    return done


def call_stage(name: str) -> None:
    """Run a stage's main() in this process, in the current folder (no second start-up to pay for)."""
    importlib.import_module(f"pipeline.{name}").main(stage_args(name))


def run_command(args: list[str], cwd: Path) -> str:
    """A command (dvc, git, ...) that must succeed, with this interpreter's environment first on PATH, as in
    the activated .venv (dvc.yaml's `python` must be this interpreter)."""
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    done = subprocess.run(args, cwd=cwd, capture_output=True, text=True, env=env)
    assert done.returncode == 0, f"{' '.join(args)} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done.stdout + done.stderr


def stages_run(log: str) -> set[str]:
    """The stages a `dvc repro` or `dvc exp run` log says it ran, but `files`: the listing of the dataset root,
    which runs every time."""
    return set(re.findall(r"Running stage '(\w+)'", log)) - {"files"}


def actrec(*args: str | Path, cwd: Path) -> subprocess.CompletedProcess:
    """The `actrec` command, as a user runs it."""
    return subprocess.run([sys.executable, "-m", "actrec", *map(str, args)], cwd=cwd, capture_output=True, text=True)


def actrec_main(*args: str | Path, cwd: Path) -> subprocess.CompletedProcess:
    """The `actrec` command's main() in this process, in `cwd`: its exit status and what it printed, as `actrec`
    gives them, without a fresh interpreter's start-up (torch and the backbone libraries imported again). For what a
    command computes; how it behaves as a process (one error line, exit codes, the decoders' own words on stderr)
    is tested through `actrec`."""
    from actrec.cli import main

    argv = list(map(str, args))
    stdout, stderr, root = io.StringIO(), io.StringIO(), logging.getLogger()
    level = root.level  # main() sets the root logger's level for the command's output; the session keeps its own
    with pytest.MonkeyPatch.context() as patch, contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        patch.chdir(cwd)
        try:
            main(argv)
            code = 0
        except SystemExit as stop:
            code = stop.code if isinstance(stop.code, int) else 1
        finally:
            root.setLevel(level)
    return subprocess.CompletedProcess(["actrec", *argv], code, stdout.getvalue(), stderr.getvalue())


def one_error_line(done: subprocess.CompletedProcess) -> str:
    """The single `error: ...` line a command prints for bad input (exit code 2, no traceback)."""
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr, done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, done.stderr
    return errors[0]


def real_clips(ucf: Path, classes: tuple[str, ...], per_class: int) -> dict[str, list[Path]]:
    """The first `per_class` real UCF-101 clips of each class (one per group first, so clips differ in scene)."""
    found = {}
    for name in classes:
        clips = sorted((ucf / "UCF-101" / name).glob("*.avi"))
        by_group = sorted(clips, key=lambda p: (p.stem.rsplit("_c", 1)[1], p.stem))  # c01 of every group first
        found[name] = by_group[:per_class]
    return found


def ntu_miniature(root: Path, ucf: Path, performers: tuple[int, ...] = (1, 3), cameras: tuple[int, ...] = (1, 2, 3)):
    """NTU RGB+D's `nturgb+d_rgb/SsssCcccPpppRrrrAaaa_rgb.avi`, linked to real UCF-101 clips: two actions
    (A027 jump up ← TrampolineJumping, A007 throw ← VolleyballSpiking), the k-th performer in setup k (so
    S001 is odd, S002 even), every camera a different real clip. Returns the sample names."""
    per_class = len(performers) * len(cameras)
    clips = real_clips(ucf, ("TrampolineJumping", "VolleyballSpiking"), per_class)
    folder = root / "nturgb+d_rgb"
    folder.mkdir(parents=True, exist_ok=True)
    names = []
    for action, source in zip((27, 7), clips.values(), strict=True):
        for i, (setup, performer, camera) in enumerate((s, p, c) for s, p in enumerate(performers, 1) for c in cameras):
            name = f"S{setup:03d}C{camera:03d}P{performer:03d}R001A{action:03d}"
            (folder / f"{name}_rgb.avi").symlink_to(source[i])
            names.append(name)
    return names


def write_skeleton(path: Path, joints: np.ndarray, present: np.ndarray | None = None) -> Path:
    """A .skeleton file in the official NTU text format: joints (frames, bodies, 25, 3), a body written in a
    frame where `present` (frames, bodies) says so; body ids are 7205759403792793<b>, as Kinect writes them."""
    frames, bodies = joints.shape[:2]
    present = np.ones((frames, bodies), dtype=bool) if present is None else present
    lines = [str(frames)]
    for t in range(frames):
        lines.append(str(int(present[t].sum())))
        for b in np.flatnonzero(present[t]):
            lines += [f"7205759403792793{b} 0 1 1 1 1 0 0.05 0.1 2", "25"]
            for x, y, z in joints[t, b]:
                lines.append(f"{x:.6f} {y:.6f} {z:.6f} 250.1 200.2 960.3 540.4 0.1 0.2 0.3 0.9 2")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
    return path


def raising_hand(frames: int, rising: bool, seed: int, bodies: int = 1) -> np.ndarray:
    """Joints (frames, bodies, 25, 3) of people standing about 3 m from the camera, somewhere in its view,
    the first one's right hand (joint 11) rising over the clip, or falling: the same poses in the other order."""
    rng = np.random.default_rng(seed)
    base = rng.normal(0, 0.15, (bodies, 25, 3)) + np.array([rng.uniform(-1, 1), 0.0, 3.0])
    joints = np.repeat(base[None], frames, axis=0) + rng.normal(0, 0.01, (frames, bodies, 25, 3))
    height = np.linspace(-0.4, 0.6, frames) if rising else np.linspace(0.6, -0.4, frames)
    joints[:, 0, 11, 1] += height
    return joints.astype(np.float32)


def webm(
    source: Path | tuple[Path, ...], out: Path, seconds: float = 2.0, size: int = 112, reverse: bool = False
) -> Path:
    """The first `seconds` of a real clip as Something-Something ships its videos: VP8 WebM (libvpx), scaled to
    `size` px high; several clips are cut together one after the other (at 25 frames/s); `reverse` plays the whole
    backwards."""
    out.parent.mkdir(parents=True, exist_ok=True)
    sources = source if isinstance(source, tuple) else (source,)
    inputs = [a for s in sources for a in ("-t", seconds, "-i", s)]
    parts = "".join(f"[{i}:v]scale=-2:{size},setsar=1,fps=25[v{i}];" for i in range(len(sources)))
    joined = "".join(f"[v{i}]" for i in range(len(sources))) + f"concat=n={len(sources)}:v=1"
    chain = parts + joined + (",reverse" if reverse else "")
    ffmpeg(*inputs, "-an", "-filter_complex", chain, "-c:v", "libvpx", "-deadline", "realtime", "-cpu-used", "8",
           "-b:v", "400k", out)  # fmt: skip
    return out


def sthv2_miniature(
    root: Path, clips: list[Path | tuple[Path, ...]], seconds: float = 2.0, size: int = 112, tested: set | None = None
) -> dict[str, int]:
    """A Something-Something v2 layout of real clips (or of real clips cut together, see `webm`) played forwards and
    backwards, two classes whose frames are the same and whose order differs: labels.json, train.json and
    validation.json, and `20bn-something-something-v2/<id>.webm`. Both copies of the clips in `tested` (by default
    every fourth clip) are the validation (test) set. Returns the entries per split."""
    templates = ("Moving [something] forwards in time", "Moving [something] backwards in time")
    labels = {t.replace("[", "").replace("]", ""): str(i) for i, t in enumerate(templates)}
    entries: dict[str, list[dict]] = {"train": [], "validation": []}
    tested = set(clips[3::4]) if tested is None else tested
    for i, source in enumerate(clips):
        for k, template in enumerate(templates):
            clip = str(1000 + 2 * i + k)
            webm(source, root / "20bn-something-something-v2" / f"{clip}.webm", seconds, size, reverse=k == 1)
            entry = {"id": clip, "label": template.replace("[something]", "a clip"), "template": template,
                     "placeholders": ["a clip"]}  # fmt: skip
            entries["validation" if source in tested else "train"].append(entry)
    (root / "labels.json").write_text(json.dumps(labels, indent=1))
    for split, listed in entries.items():
        (root / f"{split}.json").write_text(json.dumps(listed, indent=1))
    return {split: len(listed) for split, listed in entries.items()}
