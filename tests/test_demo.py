"""The demo generator: the report's classes, UCF50-like groups, and pictures that show each action."""

import dataclasses
import math

import numpy as np
import pytest

from har.config import REPORT_CLASSES, Config
from har.datasets import DEMO_CLASSES, DemoData, ensure_demo, find_clips, generate_demo, load_cache
from har.datasets.demo_drawing import render_clips, render_frame
from har.datasets.demo_scenes import HEIGHT, WIDTH, sample_scene
from har.video import read_clip


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    return generate_demo(tmp_path_factory.mktemp("data") / "demo", groups=3, clips_per_group=2)


def calm(class_name, group=1, **changes):
    """A group's scene without the camera, lighting and noise effects, on a flat grey background."""
    scene = sample_scene(class_name, np.random.default_rng([27, DEMO_CLASSES.index(class_name), group]))
    background = np.full_like(scene.background, 128)
    return dataclasses.replace(
        scene,
        background=background,
        pan=0.0,
        shake=0.0,
        tilt=0.0,
        gain=1.0,
        offset=0.0,
        flicker=0.0,
        noise=0.0,
        jpeg=0,
        blur=0,
        occluders=(),
        distractors=(),
        **changes,
    )


def figure_mask(scene, t):
    return (render_frame(scene, t) != 128).any(axis=2)


def centre_x(mask):
    return np.nonzero(mask)[1].mean()


def test_the_classes_are_the_reports_in_its_order():
    assert DEMO_CLASSES == REPORT_CLASSES


def test_layout_counts_and_names(demo):
    clips = find_clips(demo, DEMO_CLASSES)
    assert len(clips) == 4 * 3 * 2
    assert [clip.path.name for clip in clips[:3]] == [
        "v_WalkingWithDog_g01_c01.avi",
        "v_WalkingWithDog_g01_c02.avi",
        "v_WalkingWithDog_g02_c01.avi",
    ]
    assert sorted(p.name for p in demo.iterdir()) == ["HorseRace", "Swing", "TaiChi", "WalkingWithDog", "demo.json"]
    clip = read_clip(clips[0].path, 20, 64)
    assert clip.shape == (20, 64, 64, 3) and clip.dtype == np.uint8


def test_a_group_is_the_same_for_any_number_of_groups(demo, tmp_path):
    fewer = generate_demo(tmp_path / "fewer", groups=1, clips_per_group=2)
    for name in ("v_Swing_g01_c01.avi", "v_Swing_g01_c02.avi"):
        np.testing.assert_array_equal(read_clip(fewer / "Swing" / name), read_clip(demo / "Swing" / name))


def test_the_clips_of_a_group_share_their_scene(demo):
    """Each clip's nearest neighbour, by its colours row by row (which a camera pan does not change), is the other
    clip of its own group."""
    for class_name in DEMO_CLASSES:
        clips = find_clips(demo, [class_name])
        pictures = np.stack([read_clip(clip.path, 8, 16).mean(axis=(0, 2)).ravel() for clip in clips])
        distances = np.linalg.norm(pictures[:, None] - pictures[None], axis=2)
        np.fill_diagonal(distances, np.inf)
        nearest = distances.argmin(axis=1)
        assert [clips[i].group for i in nearest] == [clip.group for clip in clips], class_name


def test_a_group_is_one_performance_cut_into_consecutive_clips():
    scene = calm("TaiChi")
    first, second = render_clips(scene, 2)
    assert 40 <= len(first) <= 56 and 40 <= len(second) <= 56
    # The second clip continues the motion: it does not start over where the first began.
    assert not np.array_equal(first[0], second[0])
    again = render_clips(scene, 2)
    assert all(np.array_equal(a, b) for a, b in zip(first + second, again[0] + again[1]))


def test_groups_differ_in_scale_speed_camera_and_noise():
    scenes = [sample_scene("TaiChi", np.random.default_rng([27, 1, group])) for group in range(1, 26)]
    for name in ("scale", "tempo", "gain", "noise", "x", "ground"):
        values = [getattr(scene, name) for scene in scenes]
        assert max(values) > 1.15 * min(values), name
    assert {scene.facing for scene in scenes} == {-1, 1}
    assert any(scene.pan > 0 for scene in scenes) and any(scene.pan == 0 for scene in scenes)
    assert any(scene.occluders for scene in scenes) and any(scene.distractors for scene in scenes)
    assert any(scene.jpeg for scene in scenes) and any(scene.shake for scene in scenes)


@pytest.mark.parametrize("group", [1, 2, 3])
def test_swing_is_a_pendulum(group):
    """The picture repeats after one period of the swing; half a period on, the seat is on the other side."""
    scene = calm("Swing", group)
    period = 1 / scene.tempo
    start = int(round((math.pi / 2 - scene.phase) % (2 * math.pi) / (2 * math.pi) * period))  # at full swing
    half = round(period / 2)
    first, later, opposite = (figure_mask(scene, start + k) for k in (0, round(period), half))
    assert (first != later).mean() < 0.25 * (first != opposite).mean()
    # What moved lies on one side of the pivot at one end of the swing and on the other side at the other end.
    pivot = scene.x  # a calm scene's camera stays at world x 0
    assert (centre_x(first & ~opposite) - pivot) * (centre_x(opposite & ~first) - pivot) < 0


def test_tai_chi_is_slow_and_on_the_spot():
    for group in (1, 2, 3):
        tai_chi, walking = calm("TaiChi", group), calm("WalkingWithDog", group, follow=0.0)
        assert tai_chi.tempo < 0.6 * walking.tempo
        positions = [centre_x(figure_mask(tai_chi, t)) for t in range(0, 100, 10)]
        assert max(positions) - min(positions) < 1.5 * tai_chi.scale
        assert not np.array_equal(figure_mask(tai_chi, 0), figure_mask(tai_chi, 10))


def test_walkers_travel_and_horses_gallop_faster():
    for group in (1, 2, 3):
        walking = calm("WalkingWithDog", group, follow=0.0)
        race = calm("HorseRace", group, follow=0.0)
        assert abs(race.speed) > abs(walking.speed) and len(race.extra["horses"]) >= 3
        moved = centre_x(figure_mask(walking, 20)) - centre_x(figure_mask(walking, 0))
        assert np.sign(moved) == walking.facing and abs(moved) > 0.5 * abs(walking.speed) * 20


def test_a_following_camera_scrolls_the_background():
    race = sample_scene("HorseRace", np.random.default_rng([27, 3, 1]))
    scene = dataclasses.replace(calm("HorseRace"), background=race.background, extra={**race.extra, "horses": []})
    first, later = render_frame(scene, 0), render_frame(scene, 10)
    assert first.shape == (HEIGHT, WIDTH, 3) and not np.array_equal(first, later)
    shift = round(scene.follow * scene.speed * 10)  # the camera's travel in 10 frames, in pixels
    assert abs(shift) >= 5
    if shift > 0:
        np.testing.assert_array_equal(later[:, : WIDTH - shift], first[:, shift:])
    else:
        np.testing.assert_array_equal(later[:, -shift:], first[:, : WIDTH + shift])


TINY = Config(sequence_length=4, image_size=16)


def ensure_tiny(data_dir, config=TINY, groups=1):
    """`ensure_demo` at a tiny size, recording the progress callbacks' last (done, total)."""
    calls = {}
    made = ensure_demo(
        data_dir,
        config,
        groups=groups,
        clips_per_group=2,
        workers=1,
        on_generate=lambda done, total: calls.__setitem__("generate", (done, total)),
        on_decode=lambda done, total: calls.__setitem__("decode", (done, total)),
    )
    return made, calls


def test_ensure_demo_makes_the_dataset_and_its_cache(tmp_path):
    made, calls = ensure_tiny(tmp_path)
    assert made == DemoData(tmp_path / "demo", tmp_path / "caches" / "demo-T4-S16", False, False)
    assert not made.reused
    assert calls == {"generate": (8, 8), "decode": (8, 8)}
    cache = load_cache(made.cache)
    assert cache.class_names == tuple(sorted(DEMO_CLASSES))  # as `har data build` makes it: every class, sorted
    assert cache.frames.shape == (8, 4, 16, 16, 3)


def test_ensure_demo_reuses_what_is_there(tmp_path):
    first, _ = ensure_tiny(tmp_path)
    written = {path: path.stat().st_mtime_ns for path in (first.dataset / "demo.json", first.cache / "meta.json")}
    again, calls = ensure_tiny(tmp_path)
    assert again == DemoData(first.dataset, first.cache, True, True) and again.reused
    assert "generate" not in calls and "decode" not in calls
    assert {path: path.stat().st_mtime_ns for path in written} == written


def test_ensure_demo_regenerates_a_demo_of_another_size(tmp_path):
    ensure_tiny(tmp_path, groups=1)
    bigger, calls = ensure_tiny(tmp_path, groups=2)
    assert (bigger.dataset_reused, bigger.cache_reused) == (False, False)
    assert calls == {"generate": (16, 16), "decode": (16, 16)}
    assert len(load_cache(bigger.cache)) == 16


def test_ensure_demo_builds_a_cache_per_frame_size(tmp_path):
    small, _ = ensure_tiny(tmp_path)
    longer, calls = ensure_tiny(tmp_path, Config(sequence_length=5, image_size=16))
    assert longer.dataset_reused and not longer.cache_reused and "generate" not in calls
    assert longer.cache == tmp_path / "caches" / "demo-T5-S16" != small.cache
    assert load_cache(longer.cache).frames.shape[1:] == (5, 16, 16, 3) and (small.cache / "meta.json").is_file()


def test_ensure_demo_without_settings_keeps_the_demo_that_is_there(tmp_path):
    small, _ = ensure_tiny(tmp_path, groups=1)
    kept = ensure_demo(tmp_path, TINY, workers=1)  # what the pages call: "made if missing"
    assert kept == DemoData(small.dataset, small.cache, True, True)
    assert len(load_cache(kept.cache)) == 8
