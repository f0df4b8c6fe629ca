import subprocess

import cv2
import numpy as np
import pytest

from har.video import VideoError, decode_clip, frame_strip, read_clip, sample_indices
from tests.media import FFMPEG, decode_index, ffmpeg, indexed_frames, write_with_ffmpeg, write_with_opencv


def content_indices(frames):
    return [decode_index(frame) for frame in frames]


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    """One 50-frame indexed clip per container and codec, all written for real."""
    folder = tmp_path_factory.mktemp("clips")
    frames = indexed_frames(50)
    paths = {name: write_with_ffmpeg(folder / f"clip.{name}", frames) for name in ("mp4", "mov", "mkv", "webm", "gif")}
    paths["xvid_avi"] = write_with_ffmpeg(folder / "clip.avi", frames)
    paths["opencv_xvid_avi"] = write_with_opencv(folder / "opencv_xvid.avi", frames, "XVID")
    paths["mjpeg_avi"] = write_with_opencv(folder / "mjpeg.avi", frames, "MJPG")
    ffmpeg("-i", str(paths["webm"]), "-c:v", "libvpx", "-b:v", "1M", str(folder / "vp8.webm"))
    paths["vp8_webm"] = folder / "vp8.webm"
    return paths


def test_sample_indices_follow_the_report_rule():
    assert sample_indices(50, 20) == list(range(0, 40, 2))
    assert sample_indices(100, 20) == list(range(0, 100, 5))
    assert sample_indices(7, 20) == list(range(7))
    assert sample_indices(39, 20) == list(range(20))


@pytest.mark.parametrize(
    "name", ["mp4", "mov", "mkv", "webm", "vp8_webm", "gif", "xvid_avi", "opencv_xvid_avi", "mjpeg_avi"]
)
def test_every_format_returns_the_report_frames_in_rgb(clips, name):
    clip = decode_clip(clips[name], sequence_length=20, image_size=64)
    assert clip.frames.shape == (20, 64, 64, 3) and clip.frames.dtype == np.uint8
    assert clip.indices == tuple(range(0, 40, 2))
    assert content_indices(clip.frames) == list(range(0, 40, 2))
    red_band = clip.frames[:, -8:].reshape(-1, 3).mean(axis=0)
    assert red_band[0] > 200 and red_band[1] < 60 and red_band[2] < 60
    assert clip.real_frames == 20 and clip.frame_count == 50


def test_read_clip_is_the_frames_of_decode_clip(clips):
    np.testing.assert_array_equal(read_clip(clips["mp4"], 10, 32), decode_clip(clips["mp4"], 10, 32).frames)


def test_short_clip_is_padded_with_its_last_frame(tmp_path):
    path = write_with_opencv(tmp_path / "short.avi", indexed_frames(7), "MJPG")
    clip = decode_clip(path, sequence_length=20)
    assert clip.real_frames == 7
    assert content_indices(clip.frames) == list(range(7)) + [6] * 13
    np.testing.assert_array_equal(clip.frames[7:], np.repeat(clip.frames[6:7], 13, axis=0))


def test_container_without_frame_count_is_counted_and_sampled_evenly(tmp_path):
    source = write_with_ffmpeg(tmp_path / "source.mp4", indexed_frames(300))
    live = tmp_path / "live.mkv"
    # Written to a pipe, Matroska gets no duration and OpenCV reports a negative frame count.
    with open(live, "wb") as sink:
        subprocess.run(
            [FFMPEG, "-loglevel", "error", "-i", str(source), "-c", "copy", "-f", "matroska", "pipe:1"],
            stdout=sink,
            check=True,
        )
    assert not cv2.VideoCapture(str(live)).get(cv2.CAP_PROP_FRAME_COUNT) > 0
    clip = decode_clip(live, sequence_length=20)
    assert clip.frame_count == 300
    steps = np.diff(clip.indices)
    assert len(clip.indices) == 20 and clip.indices[0] == 0
    assert steps.min() == steps.max() and steps[0] * 20 <= 300 and steps[0] * 20 > 150
    assert content_indices(clip.frames) == list(clip.indices)


def test_container_that_promises_more_frames_than_it_holds_is_resampled(tmp_path):
    path = write_with_opencv(tmp_path / "cut.avi", indexed_frames(100), "MJPG")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])  # the header still says 100 frames
    clip = decode_clip(path, sequence_length=10)
    assert len(clip.indices) == 10 and clip.indices[-1] < 60
    assert content_indices(clip.frames) == list(clip.indices)


def test_far_apart_frames_are_sought_and_match_sequential_decoding(tmp_path):
    path = write_with_ffmpeg(tmp_path / "long.mp4", indexed_frames(1000), options=["-g", "50"])
    sought = decode_clip(path, sequence_length=10, seek_min_skip=1)
    decoded = decode_clip(path, sequence_length=10, seek_min_skip=10_000)
    assert sought.indices == decoded.indices == tuple(range(0, 1000, 100))
    assert content_indices(sought.frames) == list(range(0, 1000, 100))
    assert content_indices(decoded.frames) == list(range(0, 1000, 100))


def test_phone_rotation_metadata_is_applied(tmp_path):
    upright = write_with_ffmpeg(tmp_path / "upright.mp4", indexed_frames(10))
    rotated = tmp_path / "rotated.mp4"
    ffmpeg("-display_rotation", "90", "-i", str(upright), "-c", "copy", str(rotated))
    frame = read_clip(rotated, sequence_length=5, image_size=64)[0]
    # The red band that ran along the bottom now runs down the left or right edge.
    red_left, red_right = frame[:, :8, 0].mean(), frame[:, -8:, 0].mean()
    assert max(red_left, red_right) > 200
    assert frame[-8:, :, 0].mean() < 200


def test_large_portrait_video_comes_back_small(tmp_path):
    path = write_with_ffmpeg(tmp_path / "portrait.mp4", indexed_frames(4, width=1080, height=1920))
    clip = decode_clip(path, sequence_length=4, image_size=64)
    assert clip.frames.shape == (4, 64, 64, 3)
    assert content_indices(clip.frames) == [0, 1, 2, 3]


def bad_files(folder, good_mp4, good_avi):
    """Each unreadable kind of file the issue names, written for real."""
    files = {}
    files["empty.mp4"] = b""
    files["text.mp4"] = b"this is not a video, just some text\n" * 20
    mp4 = good_mp4.read_bytes()
    files["truncated.mp4"] = mp4[: len(mp4) // 3]
    files["random.avi"] = np.random.default_rng(27).integers(0, 256, 50_000, dtype=np.uint8).tobytes()
    ok, png = cv2.imencode(".png", np.zeros((64, 64, 3), np.uint8))
    files["image.mp4"] = png.tobytes()
    avi = good_avi.read_bytes()
    files["header_only.avi"] = avi[: avi.find(b"movi") + 4]
    paths = {}
    for name, data in files.items():
        paths[name] = folder / name
        paths[name].write_bytes(data)
    return paths


@pytest.mark.parametrize(
    "name", ["empty.mp4", "text.mp4", "truncated.mp4", "random.avi", "image.mp4", "header_only.avi"]
)
def test_unreadable_files_raise_a_one_line_video_error_naming_the_file(tmp_path, clips, name):
    path = bad_files(tmp_path, clips["mp4"], clips["mjpeg_avi"])[name]
    with pytest.raises(VideoError) as raised:
        read_clip(path)
    message = str(raised.value)
    assert str(path) in message and "\n" not in message
    assert isinstance(raised.value, ValueError)


def test_missing_file_raises_video_error(tmp_path):
    with pytest.raises(VideoError, match="no such file"):
        read_clip(tmp_path / "missing.mp4")


def test_decoding_is_bounded_in_time(clips):
    with pytest.raises(VideoError, match="too long"):
        decode_clip(clips["mp4"], timeout=0.0)


def test_frame_strip_lays_frames_out_in_rows():
    frames = np.stack([np.full((4, 5, 3), i, np.uint8) for i in range(6)])
    strip = frame_strip(frames, columns=4, gap=1)
    assert strip.shape == (2 * 4 + 1, 4 * 5 + 3, 3)
    assert (strip[:4, :5] == 0).all() and (strip[:4, 6:11] == 1).all() and (strip[5:, 6:11] == 5).all()
    assert (strip[4] == 255).all()
    with pytest.raises(ValueError):
        frame_strip(np.zeros((4, 4, 3), np.uint8))


def test_a_truncated_avi_says_how_many_frames_it_claimed(tmp_path):
    from har.video import decode_clip
    from tests.media import truncated_copy

    whole = write_with_opencv(tmp_path / "whole.avi", indexed_frames(200))
    clip = decode_clip(truncated_copy(whole, tmp_path / "cut.avi", 0.3), 20, 32)
    assert clip.claimed_frames == 200 and 0 < clip.frame_count < 200
    assert [decode_index(frame) for frame in clip.frames[: clip.real_frames]] == list(clip.indices)
    assert "says it has 200 frames but only" in clip.problems()[0]


def test_a_broken_first_frame_is_stepped_over_and_reported(tmp_path):
    from har.video import decode_clip
    from tests.media import break_first_frame

    whole = write_with_opencv(tmp_path / "whole.avi", indexed_frames(40))
    clip = decode_clip(break_first_frame(whole, tmp_path / "broken.avi"), 20, 32)
    assert clip.broken_frames == (0,)
    assert clip.indices[0] == 1  # (its pixels are smeared: it was predicted from the broken keyframe)
    assert clip.problems() == ["1 frame could not be decoded and was skipped (frame 0)."]


def test_a_whole_clip_has_no_problems_and_a_short_one_says_it_is_padded(tmp_path):
    from har.video import decode_clip

    assert decode_clip(write_with_opencv(tmp_path / "whole.avi", indexed_frames(40)), 20, 32).problems() == []
    short = decode_clip(write_with_opencv(tmp_path / "short.avi", indexed_frames(16)), 20, 32)
    assert short.problems() == ["Only 16 distinct frames for the 20 the model takes: the last one is repeated 4 times."]


def test_browser_video_turns_an_xvid_avi_into_h264_mp4(tmp_path):
    import cv2

    from har.video import browser_video

    preview = browser_video(write_with_opencv(tmp_path / "clip.avi", indexed_frames(30)), tmp_path / "preview.mp4")
    capture = cv2.VideoCapture(str(preview))
    fourcc = int(capture.get(cv2.CAP_PROP_FOURCC)).to_bytes(4, "little").decode()
    assert preview.read_bytes()[4:8] == b"ftyp" and fourcc in ("avc1", "h264")
    assert int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) == 30
