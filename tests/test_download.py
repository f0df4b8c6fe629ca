import os

import pytest

from har.download import CertificateError, DownloadError, download, insecure_tls_requested
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
        path = download(server.url, tmp_path / "UCF50.rar", backoff=0.01)
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
            download(server.url, tmp_path / "UCF50.rar", attempts=2, timeout=5, backoff=0.01)
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


def test_a_self_signed_certificate_is_refused_with_one_line_naming_the_cause_and_the_opt_in(tmp_path, monkeypatch):
    monkeypatch.delenv("HAR_INSECURE_TLS", raising=False)
    behaviour = Behaviour(body=BODY)
    with LocalServer(behaviour, tls=True) as server:
        with pytest.raises(CertificateError) as caught:
            download(server.url, tmp_path / "UCF50.rar")
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith("127.0.0.1: its TLS certificate failed verification (self-signed certificate)")
    assert "--insecure-tls" in message and "HAR_INSECURE_TLS=1" in message
    assert behaviour.requests == []  # refused during the handshake: no request was ever sent
    assert list(tmp_path.iterdir()) == []


def test_insecure_tls_downloads_and_resumes_over_https(tmp_path):
    behaviour = Behaviour(body=BODY, drop_after=1_000_000)
    with LocalServer(behaviour, tls=True) as server:
        path = download(server.url, tmp_path / "UCF50.rar", insecure_tls=True, expected_size=len(BODY), backoff=0.01)
    assert path.read_bytes() == BODY
    assert behaviour.requests == [None, "bytes=1000000-"]


def test_the_environment_variable_opts_in_at_the_entry_point(tmp_path, monkeypatch):
    monkeypatch.setenv("HAR_INSECURE_TLS", "1")
    assert insecure_tls_requested() is True and insecure_tls_requested(False) is False
    with LocalServer(Behaviour(body=BODY), tls=True) as server:
        assert download(server.url, tmp_path / "UCF50.rar", insecure_tls=insecure_tls_requested()).read_bytes() == BODY


@pytest.mark.parametrize("value, requested", [("1", True), ("yes", True), ("TRUE ", True), ("0", False), ("", False)])
def test_insecure_tls_requested_reads_the_environment_only_without_a_flag(monkeypatch, value, requested):
    monkeypatch.setenv("HAR_INSECURE_TLS", value)
    assert insecure_tls_requested() is requested and insecure_tls_requested(None) is requested
    assert insecure_tls_requested(True) is True and insecure_tls_requested(False) is False


def test_download_itself_never_reads_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("HAR_INSECURE_TLS", "1")
    with LocalServer(Behaviour(body=BODY), tls=True) as server:
        with pytest.raises(CertificateError):
            download(server.url, tmp_path / "UCF50.rar")


def test_insecure_tls_still_checks_the_announced_size(tmp_path):
    with LocalServer(Behaviour(body=BODY), tls=True) as server:
        with pytest.raises(DownloadError, match="should have"):
            download(server.url, tmp_path / "UCF50.rar", insecure_tls=True, expected_size=len(BODY) + 1)
    assert not (tmp_path / "UCF50.rar").exists()


def test_a_finished_download_of_the_wrong_size_is_not_accepted(tmp_path):
    # The server answers 416 (nothing left after byte len(BODY)), so no size is announced for the early check;
    # only the check at the end catches a file that is not the expected one.
    (tmp_path / "UCF50.rar.part").write_bytes(BODY)
    with LocalServer(Behaviour(body=BODY)) as server:
        with pytest.raises(DownloadError, match="delete it"):
            download(server.url, tmp_path / "UCF50.rar", expected_size=len(BODY) + 10)
    assert not (tmp_path / "UCF50.rar").exists()


def test_retries_back_off_between_attempts_that_bring_nothing(tmp_path):
    import time

    with LocalServer(Behaviour(body=BODY)) as server:
        url = server.url
    started = time.monotonic()
    with pytest.raises(DownloadError, match="run the same command again"):
        download(url, tmp_path / "UCF50.rar", attempts=3, timeout=2, backoff=0.2)
    assert time.monotonic() - started >= 0.2 + 0.4  # two waits: 0.2 s, then 0.4 s


def test_the_official_url_must_deliver_the_official_size(tmp_path, monkeypatch):
    from har.datasets import ucf50

    assert ucf50.UCF50_SIZE == 3_233_554_570
    behaviour = Behaviour(body=BODY)
    with LocalServer(behaviour, tls=True) as server:
        monkeypatch.setattr(ucf50, "UCF50_URL", server.url)  # stands in for the official host
        with pytest.raises(DownloadError, match="3,233,554,570"):
            ucf50.download_archive(tmp_path, url=server.url, insecure_tls=True)
    assert behaviour.requests == [None] and not (tmp_path / "downloads" / "UCF50.rar").exists()
