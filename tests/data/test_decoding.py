"""Frame sampling and decoding on real encoded videos and folders of frames: every decoding path gives the same
frames, the one `auto` takes is right for the clip, and the decoders' own words stay in the debug log."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from actrec.data import decoding, seeking
from actrec.data.clips import VideoError, clip_stem, find_clips, fingerprint, frame_files, is_frame_folder
from actrec.data.decoding import decoding_path, frame_chunks, read_clip, read_frames, video_info
from actrec.data.sampling import sample_indices
from actrec.data.seeking import decoder_logs, decord, torchcodec_usable
from tests.helpers import UCF_MINI, dump_frames, ffmpeg, ffmpeg_frames, write_timed_video, write_video


def test_read_clip_decodes_the_sampled_frames_in_order(tmp_path) -> None:
    path = write_video(tmp_path / "v.avi", frames=40, width=64, height=48)
    info = video_info(path)
    assert (info.frames, info.width, info.height) == (40, 64, 48)
    frames, idx = read_clip(path, 8)
    assert frames.shape == (8, 48, 64, 3) and frames.dtype == np.uint8
    brightness = frames.reshape(8, -1).mean(1)
    assert np.all(np.diff(brightness) > 0), "frames come back in temporal order"
    assert idx.tolist() == [sample_indices(40, 8)[0].tolist()]


def test_read_clip_of_short_video_repeats(tmp_path) -> None:
    frames, idx = read_clip(write_video(tmp_path / "short.mp4", frames=3), 16)
    assert frames.shape[0] == 16 and set(idx[0].tolist()) == {0, 1, 2}


@pytest.mark.parametrize(
    "content, reason",
    [(b"", "empty"), (b"not a video at all\n", "cannot open"), (np.random.default_rng(0).bytes(20000), "cannot open")],
)
def test_unreadable_files_raise_video_error(tmp_path, content: bytes, reason: str) -> None:
    path = tmp_path / "bad.avi"
    path.write_bytes(content)
    with pytest.raises(VideoError, match=reason):
        video_info(path)
    with pytest.raises(VideoError):
        read_clip(path, 16)


SHARED = UCF_MINI.parent
# Real clips whose frames a decoder does not give one per frame period: "not coded" placeholder frames in the
# middle of the stream (FFmpeg's decoder skips them: gaps in the timestamps), and packed B-frames (XviD in AVI:
# timestamps out of order). Every placeholder-bearing clip of ../shared, and packed-B ones of three classes.
PLACEHOLDERS = (
    *(f"ucf101-mini/UCF-101/TrampolineJumping/v_TrampolineJumping_g{g}.avi" for g in ("06_c02", "06_c03", "06_c04")),
    *(f"ucf101-mini/UCF-101/TrampolineJumping/v_TrampolineJumping_g{g}.avi" for g in ("09_c05", "09_c06")),
    *(f"ucf101-mini/UCF-101/VolleyballSpiking/v_VolleyballSpiking_g{g}.avi" for g in ("04_c06", "04_c07")),
    "ucf101-six/UCF-101/HorseRace/v_HorseRace_g20_c01.avi",
)
PACKED_B = (
    "ucf101-mini/UCF-101/UnevenBars/v_UnevenBars_g04_c01.avi",
    "ucf101-six/UCF-101/Archery/v_Archery_g03_c01.avi",
    "ucf101-six/UCF-101/Surfing/v_Surfing_g03_c01.avi",
    "hmdb51-mini/punch/AdvancedBoxingTechniquesandExercises_punch_u_nm_np1_ba_med_23.avi",
)
OFF_WHEN_SEEKING = (
    "ucf101-mini/UCF-101/TrampolineJumping/v_TrampolineJumping_g06_c02.avi",
    "ucf101-mini/UCF-101/UnevenBars/v_UnevenBars_g04_c01.avi",
)


def _frame_error(a: np.ndarray, b: np.ndarray) -> tuple[int, float]:
    """Largest difference of any pixel, and the largest mean difference of any frame (a wrong frame: several)."""
    diff = np.abs(a.astype(np.int16) - b).reshape(len(a), -1)
    return int(diff.max()), float(diff.mean(1).max())


def _wrong(frames: np.ndarray, reference: np.ndarray, indices: np.ndarray) -> list[int]:
    """The indices whose frame is not FFmpeg's at that index (a mean difference of 2 levels or more: colour
    conversion rounds by under one, a wrong frame differs by tens)."""
    assert indices.max() < len(reference), "an index past FFmpeg's last frame"
    diff = np.abs(frames.astype(np.int16) - reference[indices]).reshape(len(indices), -1).mean(1)
    return sorted({int(i) for i in indices[diff >= 2]})


@pytest.mark.parametrize("clip", PLACEHOLDERS + PACKED_B, ids=lambda c: Path(c).stem[-24:])
def test_avi_frames_are_ffmpegs_at_a_constant_rate(clip: str) -> None:
    """Index i is the picture FFmpeg outputs at time i / fps (`ffmpeg -fps_mode cfr`), every one of them: across
    a placeholder's gap, and where packed B-frames come out stamped out of order; the count is the stream's
    duration in frames. Seeking decoders cannot place these frames, and say so."""
    video = SHARED / clip
    if not video.is_file():
        pytest.skip(f"{video} not found (../shared is absent)")
    reference = ffmpeg_frames(video)
    count = video_info(video).frames
    assert count in (len(reference), len(reference) - 1), "FFmpeg repeats a late first picture at the end too"
    every = np.arange(count)
    assert decoding_path(video) == "pyav"
    assert _wrong(read_frames(video, every), reference, every) == []
    frames, indices = read_clip(video, 16, views=3, seed=1)
    assert _wrong(frames, reference, indices.ravel()) == []
    for seeker in [*(["decord"] if decord is not None else []), *(["torchcodec"] if torchcodec_usable() else [])]:
        with pytest.raises(VideoError, match=f"{seeker} cannot tell where"):
            read_frames(video, indices[0], decoder=seeker)


def test_a_folder_of_ffmpegs_frames_gives_its_videos_frames(tmp_path: Path) -> None:
    video = SHARED / PLACEHOLDERS[2]
    if not video.is_file():
        pytest.skip(f"{video} not found (../shared is absent)")
    folder = dump_frames(video, tmp_path / "frames")
    assert video_info(folder).frames == video_info(video).frames == 330, "the header's 330, not the 327 decoded"
    indices = sample_indices(330, 16, views=3, seed=2).ravel()
    worst_pixel, worst_frame = _frame_error(read_frames(folder, indices), read_frames(video, indices))
    assert worst_pixel <= 2 and worst_frame < 0.01, "the same frames, within colour conversion rounding"


@pytest.mark.parametrize("clip", OFF_WHEN_SEEKING, ids=lambda c: Path(c).stem)
def test_every_path_gives_ffmpegs_frames_of_variable_frame_rate_videos(tmp_path: Path, clip: str) -> None:
    """Real clips re-encoded keeping their timestamps (the placeholders' gaps: variable frame rate) as users
    bring them, H.264 MP4 and Matroska with B-frames and VP9 WebM: PyAV straight through, decord and
    torchcodec seeking, each sampled frame FFmpeg's at that index."""
    source = SHARED / clip
    if not source.is_file():
        pytest.skip(f"{source} not found (../shared is absent)")
    paths = ["pyav", *(["decord"] if decord is not None else []), *(["torchcodec"] if torchcodec_usable() else [])]
    h264 = ["-c:v", "libx264", "-g", "12", "-bf", "2"]
    for suffix, codec in ((".mp4", h264), (".mkv", h264), (".webm", ["-c:v", "libvpx-vp9", "-cpu-used", "8"])):
        video = tmp_path / (Path(clip).stem + suffix)
        ffmpeg("-i", source, "-an", "-fps_mode", "passthrough", "-frames:v", "160", *codec, video)
        reference = ffmpeg_frames(video)
        count = video_info(video).frames
        assert count == len(reference)
        for indices in (sample_indices(count, 16, views=3, seed=2).ravel(), np.arange(1, count, 23)):
            for decoder in paths:
                assert _wrong(read_frames(video, indices, decoder=decoder), reference, indices) == [], decoder


def test_a_variable_frame_rate_video_holds_each_picture_for_its_time(tmp_path: Path) -> None:
    """14 pictures 20 to 200 ms apart, played at 25 frames a second (the rate FFmpeg takes for it): each index
    shows the picture on screen then, as FFmpeg outputs it, and the count is the video's 0.9 s in frames."""
    gaps = [20, 40, 120, 40, 20, 200, 40, 40, 80, 20, 40, 160, 40]
    video = write_timed_video(tmp_path / "vfr.mkv", [sum(gaps[:i]) for i in range(14)])
    reference = ffmpeg_frames(video)
    info = video_info(video)
    assert (info.frames, info.fps) == (len(reference), 25.0) == (23, 25.0)
    every = np.arange(info.frames)
    assert _wrong(read_frames(video, every), reference, every) == []


def test_frames_further_apart_than_the_keyframes_are_sought(tmp_path: Path, monkeypatch) -> None:
    """Frames further apart than the keyframes go to torchcodec, or decord without it; closer ones are read
    straight through, and so is an AVI however far apart."""
    video = write_video(tmp_path / "long.mp4", frames=400, codec="libx264")  # x264: a keyframe every 250 frames
    sparse = tmp_path / "short_gop.mp4"
    ffmpeg("-i", video, "-c:v", "libx264", "-g", "10", sparse)
    ffmpeg("-i", video, "-c:v", "libx264", "-g", "10", tmp_path / "short_gop.avi")
    seeker = "torchcodec" if torchcodec_usable() else "decord" if decord is not None else "pyav"
    assert decoding_path(video, 16) == "pyav", "16 of 400 frames: 25 apart, keyframes 250 apart"
    assert decoding_path(sparse, 16) == seeker, "keyframes 10 apart"
    assert decoding_path(sparse, 100) == "pyav", "100 of 400 frames: 4 apart"
    assert decoding_path(tmp_path / "short_gop.avi", 16) == "pyav"
    if decord is not None:
        monkeypatch.setattr(seeking, "torchcodec_usable", lambda: False)
        assert decoding_path(sparse, 16) == "decord"


def test_decords_own_words_go_to_the_debug_log(tmp_path: Path, capfd, caplog) -> None:
    """decord prints its errors to stderr from C++; PyAV opens every file first, so decord meets few it cannot
    open, but one it does (here handed to it directly) says so in the debug log only."""
    if decord is None:
        pytest.skip("decord ships wheels for x86-64 only")
    bad = tmp_path / "bad.mp4"
    bad.write_text("not a video\n" * 100)
    with caplog.at_level(logging.DEBUG, logger="actrec.data.seeking"), pytest.raises(VideoError, match="cannot open"):
        seeking.decord_frames(bad, np.array([0]))
    assert capfd.readouterr().err == ""
    assert "decord said" in caplog.text and "ERROR opening" in caplog.text
    decoder_logs(True)
    try:
        with pytest.raises(VideoError):
            seeking.decord_frames(bad, np.array([0]))
        assert "ERROR opening" in capfd.readouterr().err, "asked for (actrec -v), the library's words reach stderr"
    finally:
        decoder_logs(False)


def test_a_folder_of_frames_is_a_clip_in_name_order(tmp_path: Path) -> None:
    folder = tmp_path / "clip"
    folder.mkdir()
    for i in range(12):  # Jester's names, unpadded: 10 comes after 9
        Image.fromarray(np.full((24, 32, 3), 10 * i, np.uint8)).save(folder / f"{i + 1}.png")
    assert is_frame_folder(folder)
    assert not is_frame_folder(folder / "1.png") and not is_frame_folder(tmp_path / "missing")
    info = video_info(folder, frame_rate=12.5)
    assert (info.frames, info.width, info.height, info.fps) == (12, 32, 24, 12.5)
    frames, indices = read_clip(folder, 4)
    assert frames.shape == (4, 24, 32, 3) and np.array_equal(frames[:, 0, 0, 0], 10 * indices[0])
    before = fingerprint(folder)
    Image.fromarray(np.zeros((24, 32, 3), np.uint8)).save(folder / "12.png")
    assert fingerprint(folder) != before, "a changed frame changes the clip's identity"

    rawframes = tmp_path / "rawframes"
    rawframes.mkdir()
    for i in range(3):
        Image.fromarray(np.full((8, 8, 3), 50 * i, np.uint8)).save(rawframes / f"img_{i + 1:05d}.jpg")
        (rawframes / f"flow_x_{i + 1:05d}.jpg").write_bytes((rawframes / f"img_{i + 1:05d}.jpg").read_bytes())
    assert [f.name for f in frame_files(rawframes)] == ["img_00001.jpg", "img_00002.jpg", "img_00003.jpg"]


def test_broken_frame_folders_raise_video_error(tmp_path: Path) -> None:
    folder = tmp_path / "clip"
    folder.mkdir()
    for i, size in enumerate([(24, 32), (24, 32), (30, 40)]):
        Image.fromarray(np.zeros((*size, 3), np.uint8)).save(folder / f"img_{i + 1:05d}.jpg")
    with pytest.raises(VideoError, match=re.escape("img_00003.jpg is 40x30, the first frame 32x24")):
        read_frames(folder, [0, 2])
    (folder / "img_00002.jpg").write_bytes(b"truncated")
    with pytest.raises(VideoError, match=re.escape("frame img_00002.jpg cannot be read")):
        read_frames(folder, [1])
    with pytest.raises(VideoError, match="the folder holds 3 frames"):
        read_frames(folder, [5])


def test_find_clips_lists_videos_and_frame_folders(tmp_path: Path) -> None:
    video = write_video(tmp_path / "a" / "x.avi", frames=3)
    frames = tmp_path / "a" / "y"
    frames.mkdir()
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(frames / "00001.jpg")
    (frames / "nested").mkdir()
    write_video(frames / "nested" / "inside_a_clip.avi", frames=3)  # a frame folder is not searched further
    assert find_clips(tmp_path / "a") == [video, frames]
    assert clip_stem("Golf/Yards!!!_golf_f_nm_np1_fr_med_0.avi") == "Yards!!!_golf_f_nm_np1_fr_med_0"
    assert clip_stem("Climb/Dr._Foo_climb_2") == "Dr._Foo_climb_2", "a frame folder's dots stay"


def test_ffmpegs_words_reach_the_log_only_when_asked_for(tmp_path: Path, capfd, caplog) -> None:
    bad = tmp_path / "notes.mp4"
    bad.write_text("these are my notes, not a video\n" * 40)
    with caplog.at_level(logging.DEBUG), pytest.raises(VideoError, match="cannot open"):
        video_info(bad)
    assert "moov atom" not in caplog.text + capfd.readouterr().err
    decoder_logs(True)  # actrec -v
    try:
        with caplog.at_level(logging.DEBUG), pytest.raises(VideoError, match="cannot open"):
            video_info(bad)
    finally:
        decoder_logs(False)
    assert "moov atom not found" in caplog.text


def test_a_video_without_frames_is_an_error(tmp_path: Path) -> None:
    whole = write_video(tmp_path / "whole.mkv", frames=60, codec="libx264").read_bytes()
    (tmp_path / "cut.mkv").write_bytes(whole[: len(whole) // 4])  # the header survives, no frame does
    with pytest.raises(VideoError, match="no decodable video frames"):
        video_info(tmp_path / "cut.mkv")


def test_a_read_opens_the_container_once(tmp_path: Path, monkeypatch) -> None:
    """Frame count, rate, the sampled frames and a long clip's chunks all come from one opening of the file."""
    import av

    avi = write_video(tmp_path / "clip.avi", frames=60)
    mkv = write_video(tmp_path / "clip.mkv", frames=60, codec="libx264")  # no count in the header: packets counted
    opened = []
    real_open = av.open
    monkeypatch.setattr(av, "open", lambda *a, **k: (opened.append(a[0]), real_open(*a, **k))[1])
    for video in (avi, mkv):
        opened.clear()
        frames, _ = read_clip(video, 8, views=2, seed=0)
        assert len(opened) == 1 and len(frames) == 16
        opened.clear()
        list(frame_chunks(video, [np.array([1, 5]), np.array([30, 59])]))
        assert len(opened) == 1
    with real_open(str(mkv)) as container:  # counting went through the packets: decoding starts at the start again
        every = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    assert np.array_equal(read_frames(mkv, [0, 1, 59]), np.stack([every[0], every[1], every[59]]))


def test_frame_chunks_decode_a_long_clip_once_and_give_each_chunks_frames(tmp_path: Path, monkeypatch) -> None:
    """A long video's windows come in chunks (bounded memory): read straight through, one pass serves them all."""
    avi = write_video(tmp_path / "long.avi", frames=90)
    chunks = [np.array([0, 5, 17]), np.array([18, 40]), np.array([41, 88, 89])]
    opened = []
    real_open = decoding._straight_chunks
    monkeypatch.setattr(decoding, "_straight_chunks", lambda *a: (opened.append(1), real_open(*a))[1])
    got = list(frame_chunks(avi, chunks))
    assert len(opened) == 1, "one pass for every chunk"
    for frames, chunk in zip(got, chunks, strict=True):
        assert np.array_equal(frames, read_frames(avi, chunk, decoder="pyav"))
    with pytest.raises(VideoError, match="ends after 90 frames"):
        list(frame_chunks(avi, [np.array([3]), np.array([95])]))
