"""A real HTTP server on 127.0.0.1 that serves bytes with Range support and can misbehave on purpose."""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Behaviour:
    body: bytes = b""
    drop_after: int | None = None  # close the connection after this many body bytes (first request only)
    announce: int | None = None  # Content-Length / total to announce instead of the true size
    honour_range: bool = True
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
        self.wfile.write(payload)


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request, client_address):
        pass  # clients that hang up (on purpose, in these tests) are not news


class LocalServer:
    """`with LocalServer(Behaviour(...)) as server: server.url`"""

    def __init__(self, behaviour: Behaviour):
        self.behaviour = behaviour
        self.httpd = _QuietServer(("127.0.0.1", 0), _Handler)
        self.httpd.behaviour = behaviour
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/UCF50.rar"

    def __enter__(self):
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()
