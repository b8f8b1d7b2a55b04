"""Tiny real processes for the launcher tests: `python -c SERVER <mode> <port>`.

Modes: `ok` answers every GET 200; `exit` exits with status 3 at once; `silent` listens and never
answers; `slow-stop` answers and ignores SIGTERM."""

from __future__ import annotations

import socket
import sys

SERVER = r"""
import signal, socket, sys, time
from http.server import BaseHTTPRequestHandler, HTTPServer
mode, port = sys.argv[1], int(sys.argv[2])
print(f"mode {mode} on {port}", flush=True)
if mode == "exit":
    print("boom: configuration error", flush=True)
    sys.exit(3)
if mode == "silent":
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", port)); s.listen(16)
    time.sleep(600)
if mode == "slow-stop":
    signal.signal(signal.SIGTERM, lambda *a: print("ignoring SIGTERM", flush=True))
class H(BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200); self.send_header("Content-Length", "2"); self.end_headers(); self.wfile.write(b"ok")
    def log_message(self, *a):
        pass
HTTPServer.allow_reuse_address = True
HTTPServer(("127.0.0.1", port), H).serve_forever()
"""


def argv(mode: str, port: int) -> list[str]:
    return [sys.executable, "-c", SERVER, mode, str(port)]


def bindable(port: int) -> bool:
    """Whether a server can listen on `port` again (with SO_REUSEADDR, as uvicorn and LiteLLM do)."""
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True
