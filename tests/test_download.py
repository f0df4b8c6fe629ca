import os

import pytest

from har.download import DownloadError, download
from tests.http_server import Behaviour, LocalServer

BODY = os.urandom(3 * 1024 * 1024 + 17)


def test_download_writes_the_file_and_reports_progress(tmp_path):
    seen = []
    with LocalServer(Behaviour(body=BODY)) as server:
        path = download(server.url, tmp_path / "UCF50.rar", progress=lambda done, total: seen.append((done, total)))
    assert path.read_bytes() == BODY
    assert seen[-1] == (len(BODY), len(BODY))
    assert not (tmp_path / "UCF50.rar.part").exists()


def test_dropped_connection_is_resumed_with_a_range_request(tmp_path):
    behaviour = Behaviour(body=BODY, drop_after=1_000_000)
    with LocalServer(behaviour) as server:
        path = download(server.url, tmp_path / "UCF50.rar")
    assert path.read_bytes() == BODY
    assert behaviour.requests[0] is None
    assert behaviour.requests[1] == f"bytes={1_000_000}-"


def test_a_partial_file_from_an_earlier_run_is_continued(tmp_path):
    (tmp_path / "UCF50.rar.part").write_bytes(BODY[:12345])
    behaviour = Behaviour(body=BODY)
    with LocalServer(behaviour) as server:
        path = download(server.url, tmp_path / "UCF50.rar")
    assert path.read_bytes() == BODY
    assert behaviour.requests == ["bytes=12345-"]


def test_a_complete_partial_file_is_accepted_when_the_server_says_nothing_is_left(tmp_path):
    (tmp_path / "UCF50.rar.part").write_bytes(BODY)
    with LocalServer(Behaviour(body=BODY)) as server:
        assert download(server.url, tmp_path / "UCF50.rar").read_bytes() == BODY


def test_server_ignoring_range_restarts_from_zero(tmp_path):
    (tmp_path / "UCF50.rar.part").write_bytes(b"stale bytes")
    with LocalServer(Behaviour(body=BODY, honour_range=False)) as server:
        assert download(server.url, tmp_path / "UCF50.rar").read_bytes() == BODY


def test_a_server_announcing_more_than_it_sends_never_yields_a_final_file(tmp_path):
    with LocalServer(Behaviour(body=BODY, announce=len(BODY) + 500)) as server:
        with pytest.raises(DownloadError, match="run the same command again to resume"):
            download(server.url, tmp_path / "UCF50.rar", attempts=2, timeout=5)
    assert not (tmp_path / "UCF50.rar").exists()


def test_a_server_announcing_the_wrong_size_is_refused_before_downloading(tmp_path):
    behaviour = Behaviour(body=BODY, announce=len(BODY) - 1000)
    with LocalServer(behaviour) as server:
        with pytest.raises(DownloadError, match="should have"):
            download(server.url, tmp_path / "UCF50.rar", expected_size=len(BODY))
    assert not (tmp_path / "UCF50.rar").exists() and not (tmp_path / "UCF50.rar.part").exists()


def test_unreachable_host_gives_a_clear_error(tmp_path):
    with LocalServer(Behaviour(body=BODY)) as server:
        url = server.url
    with pytest.raises(DownloadError, match="127.0.0.1"):
        download(url, tmp_path / "UCF50.rar", attempts=1, timeout=2)
