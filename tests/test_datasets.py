import os
import shutil
import zipfile

import numpy as np
import pytest

from har.datasets import (
    DEMO_CLASSES,
    build_cache,
    find_clips,
    find_root,
    generate_demo,
    group_split,
    load_cache,
    make_split,
    report_split,
    ucf50,
)
from har.video import read_clip
from tests.http_server import Behaviour, LocalServer
from tests.media import indexed_frames, write_with_opencv


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    return generate_demo(tmp_path_factory.mktemp("data") / "demo", groups=3, clips_per_group=2)


def test_demo_is_in_the_ucf50_layout_with_groups(demo):
    clips = find_clips(demo)
    assert sorted({clip.class_name for clip in clips}) == sorted(DEMO_CLASSES) and len(DEMO_CLASSES) >= 4
    assert len(clips) == len(DEMO_CLASSES) * 3 * 2
    assert {clip.group for clip in clips} == {1, 2, 3}
    assert clips[0].path.name == f"v_{min(DEMO_CLASSES)}_g01_c01.avi"


def test_demo_is_deterministic_and_not_regenerated(demo, tmp_path):
    other = generate_demo(tmp_path / "again", groups=3, clips_per_group=2)
    for clip in find_clips(demo)[:3]:
        again = other / clip.class_name / clip.path.name
        np.testing.assert_array_equal(read_clip(clip.path), read_clip(again))
    before = os.stat(demo / "demo.json").st_mtime_ns
    generate_demo(demo, groups=3, clips_per_group=2)
    assert os.stat(demo / "demo.json").st_mtime_ns == before


def test_every_demo_clip_moves(demo):
    """Sampled frames change from one to the next in every clip: the figures act, they do not stand still."""
    motion = {}
    for clip in find_clips(demo):
        frames = read_clip(clip.path, 20, 64).astype(np.int16)
        motion.setdefault(clip.class_name, []).append(np.abs(np.diff(frames, axis=0)).mean())
    assert all(value > 0.5 for values in motion.values() for value in values)


def test_cache_round_trip_matches_read_clip(demo, tmp_path):
    path = build_cache(demo, tmp_path / "cache", sequence_length=8, image_size=32, workers=2)
    cache = load_cache(path)
    clips = find_clips(demo)
    assert cache.frames.shape == (len(clips), 8, 32, 32, 3) and cache.frames.dtype == np.uint8
    assert isinstance(cache.frames, np.memmap)
    assert cache.class_names == tuple(sorted(DEMO_CLASSES))
    for i in (0, 7, len(clips) - 1):
        np.testing.assert_array_equal(cache.frames[i], read_clip(clips[i].path, 8, 32))
        assert cache.class_names[cache.labels[i]] == clips[i].class_name
        assert cache.groups[i] == clips[i].group and cache.sources[i] == str(clips[i].path)
    assert (cache.real_frames == 8).all()
    info = cache.info()
    assert info["classes"] == {name: 6 for name in sorted(DEMO_CLASSES)}
    assert info["groups"] == 3 and info["padded_clips"] == 0 and info["bytes_on_disk"] > cache.frames.nbytes


def test_cache_is_reused_for_the_same_inputs_and_rebuilt_when_they_change(demo, tmp_path):
    source = shutil.copytree(demo, tmp_path / "source")
    path = build_cache(source, tmp_path / "cache", classes=["Swing", "TaiChi"], sequence_length=4, image_size=16)
    first = load_cache(path)
    stamp = os.stat(path / "frames.npy").st_mtime_ns
    assert build_cache(source, path, classes=["Swing", "TaiChi"], sequence_length=4, image_size=16) == path
    assert os.stat(path / "frames.npy").st_mtime_ns == stamp
    assert first.class_names == ("Swing", "TaiChi") and set(first.labels) == {0, 1}
    victim = find_clips(source, ["TaiChi"])[0].path
    victim.unlink()
    rebuilt = load_cache(build_cache(source, path, classes=["Swing", "TaiChi"], sequence_length=4, image_size=16))
    assert len(rebuilt) == len(first) - 1 and rebuilt.fingerprint != first.fingerprint


def test_another_class_list_gets_its_own_cache_and_never_replaces_one(demo, tmp_path):
    from har.datasets import default_cache_path

    everything = default_cache_path(tmp_path, demo, 4, 16)
    assert everything.name == "demo-T4-S16" == default_cache_path(tmp_path, demo, 4, 16, sorted(DEMO_CLASSES)).name
    two = list(DEMO_CLASSES[:2])
    other = default_cache_path(tmp_path, demo, 4, 16, two)
    assert other.name.startswith("demo-2c") and other != default_cache_path(tmp_path, demo, 4, 16, DEMO_CLASSES[1:3])
    build_cache(demo, everything, sequence_length=4, image_size=16)
    before = load_cache(everything).fingerprint
    with pytest.raises(ValueError, match="holds a cache of other classes.*another --out"):
        build_cache(demo, everything, classes=two, sequence_length=4, image_size=16)
    with pytest.raises(ValueError, match="holds a cache of other classes"):  # the same classes in another order
        build_cache(demo, everything, classes=sorted(DEMO_CLASSES, reverse=True), sequence_length=4, image_size=16)
    assert load_cache(everything).fingerprint == before


def test_two_builders_of_one_cache_at_once_leave_one_whole_cache_and_no_leftovers(demo, tmp_path):
    import subprocess
    import sys

    code = (
        f"from har.datasets import build_cache; build_cache({str(demo)!r}, {str(tmp_path / 'cache')!r}, "
        "sequence_length=4, image_size=16, workers=1)"
    )
    builders = [subprocess.Popen([sys.executable, "-c", code], stderr=subprocess.PIPE, text=True) for _ in range(2)]
    for builder in builders:
        assert builder.wait(300) == 0, builder.stderr.read()[-2000:]
    cache = load_cache(tmp_path / "cache")
    assert len(cache) == len(find_clips(demo))
    assert sorted(p.name for p in tmp_path.iterdir() if p.is_dir()) == ["cache"]


def test_unreadable_and_short_clips_are_recorded_not_dropped_silently(tmp_path):
    for name in ("A", "B"):
        (tmp_path / "set" / name).mkdir(parents=True)
        for group in (1, 2):
            write_with_opencv(tmp_path / "set" / name / f"v_{name}_g0{group}_c01.avi", indexed_frames(30), "MJPG")
    write_with_opencv(tmp_path / "set" / "A" / "v_A_g03_c01.avi", indexed_frames(5), "MJPG")
    (tmp_path / "set" / "B" / "v_B_g03_c01.avi").write_bytes(b"garbage" * 100)
    cache = load_cache(build_cache(tmp_path / "set", tmp_path / "cache", sequence_length=10, image_size=32))
    assert len(cache) == 5
    assert cache.info()["padded_clips"] == 1 and sorted(cache.real_frames) == [5, 10, 10, 10, 10]
    assert [item["path"].endswith("v_B_g03_c01.avi") for item in cache.skipped] == [True]
    assert "cannot be opened" in cache.skipped[0]["reason"]
    assert not any(source.endswith("v_B_g03_c01.avi") for source in cache.sources)
    assert sorted(p.name for p in tmp_path.iterdir() if p.is_dir()) == ["cache", "set"]  # no staging folder left


def test_load_cache_rejects_a_folder_that_is_not_a_cache(tmp_path):
    with pytest.raises(FileNotFoundError, match="not a frame cache"):
        load_cache(tmp_path)
    (tmp_path / "meta.json").write_text("{broken")
    with pytest.raises(ValueError, match="damaged"):
        load_cache(tmp_path)


def test_report_split_is_the_reports_train_test_split_then_a_random_validation_part():
    from sklearn.model_selection import train_test_split

    split = report_split(100, seed=27)
    train_val, test = train_test_split(np.arange(100), test_size=0.25, shuffle=True, random_state=27)
    assert sorted(split.test) == sorted(test)
    assert len(split.test) == 25 and len(split.validation) == 15 and len(split.train) == 60
    assert set(split.train) | set(split.validation) == set(train_val)
    assert not set(split.validation) >= set(train_val[-15:])  # not Keras' "last 20%"
    np.testing.assert_array_equal(report_split(100, seed=27).test, split.test)
    assert not np.array_equal(report_split(100, seed=28).test, split.test)


def test_group_split_keeps_every_group_in_one_part():
    groups = np.repeat(np.arange(1, 26), 8)  # 25 groups, like UCF50
    split = group_split(groups, seed=27)
    parts = [set(groups[part]) for part in split]
    assert not parts[0] & parts[1] and not parts[0] & parts[2] and not parts[1] & parts[2]
    assert sum(len(part) for part in split) == len(groups)
    assert 4 <= len(parts[2]) <= 8
    ungrouped = group_split(np.full(30, -1))  # no gXX in the names: each clip is its own group
    assert sum(len(part) for part in ungrouped) == 30
    with pytest.raises(ValueError, match="at least 3 groups"):
        group_split(np.array([1, 1, 2, 2]))
    with pytest.raises(ValueError, match="split='random'"):
        make_split(groups, split="random", test_fraction=0.25, validation_fraction=0.2, seed=27)


def ucf50_zip(demo, path):
    """A small archive in UCF50's layout, made from the demo clips."""
    with zipfile.ZipFile(path, "w") as archive:
        for clip in find_clips(demo):
            archive.write(clip.path, f"UCF50/{clip.class_name}/{clip.path.name}")
    return path


def test_prepare_downloads_from_the_host_and_extracts_requested_classes(demo, tmp_path):
    body = ucf50_zip(demo, tmp_path / "UCF50.zip").read_bytes()
    # The real UCF50 host cannot be reached here; a local server plays it, and the real code path runs.
    with LocalServer(Behaviour(body=body, drop_after=len(body) // 2)) as server:
        root = ucf50.prepare(tmp_path / "data", ["Swing", "TaiChi"], url=server.url.replace(".rar", ".zip"))
    assert root == tmp_path / "data" / "UCF50"
    assert sorted(p.name for p in root.iterdir()) == ["Swing", "TaiChi"]
    assert (tmp_path / "data" / "downloads" / "UCF50.zip").read_bytes() == body
    assert len(find_clips(root)) == 12


def test_prepare_accepts_an_extracted_folder_one_level_down(demo, tmp_path):
    shutil.copytree(demo, tmp_path / "unpacked" / "UCF50")
    assert ucf50.prepare(tmp_path / "data", ["Swing"], source=tmp_path / "unpacked") == tmp_path / "unpacked" / "UCF50"
    assert find_root(tmp_path / "unpacked") == tmp_path / "unpacked" / "UCF50"


def test_unknown_ucf50_class_is_refused_before_any_download(tmp_path):
    with pytest.raises(ValueError, match="not UCF50 classes: Tai_Chi"):
        ucf50.prepare(tmp_path, ["Tai_Chi"], url="http://127.0.0.1:9/never")
    assert not (tmp_path / "downloads").exists()
    assert len(ucf50.UCF50_CLASSES) == 50 == len(set(ucf50.UCF50_CLASSES))
