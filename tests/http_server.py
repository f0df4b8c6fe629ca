"""A real HTTP(S) server on 127.0.0.1 that serves bytes with Range support and can misbehave on purpose.

With `tls=True` it speaks HTTPS with a self-signed certificate made for it by the `openssl` tool, so a client
that verifies certificates refuses it, as it would the UCF50 host's.
"""

from __future__ import annotations

import re
import ssl
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


@dataclass
class Behaviour:
    body: bytes = b""
    drop_after: int | None = None  # close the connection after this many body bytes (first request only)
    announce: int | None = None  # Content-Length / total to announce instead of the true size
    honour_range: bool = True
    seconds_per_64k: float = 0.0  # send the body this slowly (64 KB at a time), for tests that interrupt it
    # On the first request, send this many body bytes, then trickle 1 KB every 0.1 s (never the last byte) until
    # `release` is set (at most 120 s): a download certainly under way and never finished, however slow the
    # machine, whose reads still return, so a client can stop between them.
    hold_after: int | None = None
    release: threading.Event = field(default_factory=threading.Event)
    requests: list = field(default_factory=list)  # Range headers seen, in order


class _Handler(BaseHTTPRequestHandler):
    behaviour: Behaviour

    def log_message(self, *args):  # keep test output clean
        pass

    def do_GET(self):
        behaviour = self.server.behaviour
        header = self.headers.get("Range")
        behaviour.requests.append(header)
        body, start = behaviour.body, 0
        total = behaviour.announce if behaviour.announce is not None else len(body)
        match = re.match(r"bytes=(\d+)-", header or "")
        if match and behaviour.honour_range:
            start = int(match.group(1))
            if start >= total:
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{total}")
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{total - 1}/{total}")
        else:
            self.send_response(200)
        self.send_header("Content-Length", str(total - start))
        self.end_headers()
        payload = body[start:]
        if behaviour.drop_after is not None and len(behaviour.requests) == 1:
            payload = payload[: behaviour.drop_after]
            self.wfile.write(payload)
            self.wfile.flush()
            self.close_connection = True
            return
        if behaviour.hold_after is not None and len(behaviour.requests) == 1:
            sent, deadline = behaviour.hold_after, time.monotonic() + 120
            self.wfile.write(payload[:sent])
            self.wfile.flush()
            while not behaviour.release.is_set() and time.monotonic() < deadline and sent + 1024 < len(payload):
                self.wfile.write(payload[sent : sent + 1024])
                self.wfile.flush()
                sent += 1024
                time.sleep(0.1)
            payload = payload[sent:]
        if behaviour.seconds_per_64k:
            for start in range(0, len(payload), 1 << 16):
                self.wfile.write(payload[start : start + (1 << 16)])
                time.sleep(behaviour.seconds_per_64k)
            return
        self.wfile.write(payload)


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request, client_address):
        pass  # clients that hang up (on purpose, in these tests) are not news


def self_signed_certificate(folder: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 signed by its own key: (certificate, key) PEM files in `folder`."""
    certificate, key = folder / "certificate.pem", folder / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-keyout",
            str(key),
            "-out",
            str(certificate),
        ],
        check=True,
        capture_output=True,
    )
    return certificate, key


class LocalServer:
    """`with LocalServer(Behaviour(...)) as server: server.url`"""

    def __init__(self, behaviour: Behaviour, *, tls: bool = False, name: str = "UCF50.rar"):
        self.behaviour = behaviour
        self.httpd = _QuietServer(("127.0.0.1", 0), _Handler)
        self.httpd.behaviour = behaviour
        if tls:
            with tempfile.TemporaryDirectory() as folder:
                context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
                context.load_cert_chain(*self_signed_certificate(Path(folder)))
            self.httpd.socket = context.wrap_socket(self.httpd.socket, server_side=True)
        scheme = "https" if tls else "http"
        self.url = f"{scheme}://127.0.0.1:{self.httpd.server_address[1]}/{name}"

    def __enter__(self):
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()
