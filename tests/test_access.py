"""Public mode: who may do what, upload rationing per visitor, the capped scratch folder, and the one gate every
upload passes (`har.uploads`)."""

import threading

import pytest

from har.access import Access, ScratchFull, ScratchSpace, UploadAllowance, UploadLimits, visitor_key
from har.uploads import Upload, UploadGate, UploadRefused


def test_off_public_mode_everyone_is_the_owner():
    access = Access.from_environment({"HAR_OWNER_TOKEN": "s3cret-token"})
    assert not access.public and access.is_owner(None)
    assert not Access.from_environment({"HAR_PUBLIC": "0"}).public


def test_in_public_mode_only_the_right_token_is_the_owner():
    access = Access.from_environment({"HAR_PUBLIC": "1", "HAR_OWNER_TOKEN": "s3cret-token"})
    assert access.public
    assert access.is_owner("s3cret-token")
    for wrong in (None, "", "s3cret", "s3cret-token ", "S3CRET-TOKEN", "/etc/passwd", "http://127.0.0.1/"):
        assert not access.is_owner(wrong), wrong
    assert "owner token" in access.refusal()
    assert "s3cret" not in repr(access)  # the secret stays out of logs and tracebacks


def test_in_public_mode_without_a_token_nobody_is_the_owner():
    access = Access.from_environment({"HAR_PUBLIC": " True "})
    assert access.public
    assert not access.is_owner("") and not access.is_owner("anything")
    assert "switched off here" in access.refusal()


def test_uploads_are_rationed_per_visitor_over_a_sliding_minute():
    now = [0.0]
    allowance = UploadAllowance(uploads=3, megabytes=1, clock=lambda: now[0])
    assert [allowance.admit("a", 1000) for _ in range(3)] == [None] * 3
    message = allowance.admit("a", 1000)
    assert message.startswith("Upload limit reached") and "try again in 60 s" in message
    assert allowance.admit("b", 1000) is None  # another visitor is not held back
    assert allowance.admit("b", 2_000_000) is not None  # over the bytes allowance on its own
    now[0] = 60.0
    assert allowance.admit("a", 1000) is None  # the window moved on


def test_the_owner_can_set_the_allowance_and_a_wrong_value_is_named():
    environ = {"HAR_UPLOADS": "1", "HAR_UPLOAD_WINDOW_SECONDS": "3600"}
    assert UploadLimits.from_environment({}) == UploadLimits(uploads=20, megabytes=400, window_seconds=60)
    allowance = UploadLimits.from_environment(environ).allowance()
    assert allowance.admit("a", 10) is None
    assert "1 clips or 400 MB per 3600 s per visitor" in allowance.admit("a", 10)
    with pytest.raises(ValueError, match="HAR_UPLOAD_MB"):
        UploadLimits.from_environment({**environ, "HAR_UPLOAD_MB": "lots"})


def test_a_visitor_is_the_forwarded_address_behind_a_proxy_then_the_address_then_the_session():
    # On a Space every connection comes from the proxy's internal address (10.x): keyed on that, all visitors
    # would share one allowance.
    behind_proxy = {"Host": "x.hf.space", "X-Forwarded-For": "203.0.113.7, 10.16.3.80"}
    assert visitor_key(behind_proxy, "10.16.3.80", "s1") == "forwarded:203.0.113.7"
    assert visitor_key({"x-forwarded-for": "198.51.100.2"}, "10.16.3.80", "s2") == "forwarded:198.51.100.2"
    assert visitor_key({}, "192.0.2.5", "s1") == visitor_key({"X-Forwarded-For": " "}, "192.0.2.5", "s2")
    assert visitor_key({}, None, "s1") != visitor_key({}, None, "s2")  # localhost: one per browser session


def test_the_scratch_space_is_capped_and_leaves_nothing_behind(tmp_path):
    space = ScratchSpace(tmp_path / "scratch", cap_megabytes=1)
    with space.file(".mp4", 600_000) as first:
        first.write_bytes(b"x" * 600_000)
        with pytest.raises(ScratchFull, match="try again"):
            with space.file(".mp4", 600_000):
                pass
        assert space.used_bytes() == 600_000
    with space.file(".avi", 900_000) as second:  # room again once the first is gone
        second.write_bytes(b"y")
    assert list((tmp_path / "scratch").iterdir()) == []


def test_the_scratch_space_holds_under_concurrent_uploads(tmp_path):
    space = ScratchSpace(tmp_path / "scratch", cap_megabytes=1)
    admitted, refused, barrier = [], [], threading.Barrier(20)

    def upload():
        barrier.wait()
        try:
            with space.file(".mp4", 100_000) as path:
                path.write_bytes(b"z" * 100_000)
                admitted.append(space.used_bytes())
                barrier_hold.wait()
        except ScratchFull:
            refused.append(1)
            barrier_hold.wait()

    barrier_hold = threading.Barrier(20)
    threads = [threading.Thread(target=upload) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(admitted) == 10 and len(refused) == 10 and max(admitted) <= 1_000_000
    assert list((tmp_path / "scratch").iterdir()) == []


def test_the_upload_gate_counts_each_upload_once_and_never_the_servers_own_clips(tmp_path):
    gate = UploadGate(tmp_path / "scratch", UploadLimits(uploads=2), public=True)
    counted: set[str] = set()
    first, second, third = (Upload(f"clip{i}.avi", b"x" * 10, f"id{i}") for i in range(3))
    for _ in range(3):  # three reruns of the page that shows the first upload: one upload
        gate.admit(first, "visitor", counted)
    gate.admit(second, "visitor", counted)
    gate.admit(Upload("test-clip.avi", b"x" * 10), "visitor", counted)  # a held-out test clip: not metered
    with pytest.raises(UploadRefused, match="Upload limit reached"):
        gate.admit(third, "visitor", counted)
    assert counted == {"id0", "id1"}
    gate.admit(third, "another visitor", set())  # their own allowance


def test_off_public_mode_the_gate_meters_nothing_even_when_the_ration_is_set_wrongly(tmp_path):
    local = UploadGate(tmp_path / "scratch", None, public=False, problem="HAR_UPLOADS must be a number")
    for i in range(30):
        local.admit(Upload("clip.avi", b"x", f"id{i}"), "visitor", set())
    public = UploadGate(tmp_path / "scratch", None, public=True, problem="HAR_UPLOADS must be a number")
    with pytest.raises(UploadRefused, match="HAR_UPLOADS must be a number"):
        public.admit(Upload("clip.avi", b"x", "id"), "visitor", set())


def test_an_opened_upload_lies_in_the_scratch_folder_under_its_suffix_only_and_is_removed(tmp_path):
    gate = UploadGate(tmp_path / "scratch", UploadLimits(scratch_megabytes=0.001), public=True)
    with gate.open(Upload("../../../escaped.AVI", b"video bytes", "id"), "visitor", set()) as path:
        assert path.read_bytes() == b"video bytes"
        assert path.name == "upload.avi" and (tmp_path / "scratch") in path.parents
        (path.parent / "preview.mp4").write_bytes(b"made beside it")
        with pytest.raises(UploadRefused, match="full"):  # 1 kB of scratch: no room for a second
            with gate.open(Upload("big.avi", b"y" * 1000, "id2"), "visitor", set()):
                pass
    assert list((tmp_path / "scratch").iterdir()) == []
    assert not list(tmp_path.rglob("escaped*"))
