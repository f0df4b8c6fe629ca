"""Public mode: who may do what, upload rationing per visitor, the capped scratch folder."""

import threading

import pytest

from har.access import ScratchFull, ScratchSpace, UploadAllowance, is_owner, public_mode, refusal, visitor_key


def test_off_public_mode_everyone_is_the_owner(monkeypatch):
    monkeypatch.delenv("HAR_PUBLIC", raising=False)
    monkeypatch.delenv("HAR_OWNER_TOKEN", raising=False)
    assert not public_mode() and is_owner(None)


def test_in_public_mode_only_the_right_token_is_the_owner(monkeypatch):
    monkeypatch.setenv("HAR_PUBLIC", "1")
    monkeypatch.setenv("HAR_OWNER_TOKEN", "s3cret-token")
    assert public_mode()
    assert is_owner("s3cret-token")
    for wrong in (None, "", "s3cret", "s3cret-token ", "S3CRET-TOKEN", "/etc/passwd", "http://127.0.0.1/"):
        assert not is_owner(wrong), wrong
    assert "owner token" in refusal()


def test_in_public_mode_without_a_token_nobody_is_the_owner(monkeypatch):
    monkeypatch.setenv("HAR_PUBLIC", "true")
    monkeypatch.delenv("HAR_OWNER_TOKEN", raising=False)
    assert not is_owner("") and not is_owner("anything")
    assert "switched off here" in refusal()


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


def test_the_owner_can_set_the_allowance_and_a_wrong_value_is_named(monkeypatch):
    monkeypatch.setenv("HAR_UPLOADS", "1")
    monkeypatch.setenv("HAR_UPLOAD_WINDOW_SECONDS", "3600")
    allowance = UploadAllowance.from_environment()
    assert allowance.admit("a", 10) is None
    assert "1 clips or 400 MB per 3600 s per visitor" in allowance.admit("a", 10)
    monkeypatch.setenv("HAR_UPLOAD_MB", "lots")
    with pytest.raises(ValueError, match="HAR_UPLOAD_MB"):
        UploadAllowance.from_environment()


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
