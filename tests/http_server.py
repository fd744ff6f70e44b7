"""A loopback HTTP server over a folder, with Range support and injected faults (503s, dropped connections)."""

from __future__ import annotations

import threading
from collections import Counter, defaultdict
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


class FaultyServer:
    """Serves `root` on 127.0.0.1; `faults[path]` is a list of actions for successive GETs of that path:
    "503" (throttled), "reset" (headers, half the body, then the connection is closed), anything else = serve."""

    def __init__(self, root: Path):
        self.root = root
        self.faults: dict[str, list[str]] = defaultdict(list)
        self.requests: list[tuple[str, str]] = []
        self.gets: Counter = Counter()  # GET requests per path (HEADs not counted)
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def do_HEAD(self) -> None:
                self._serve(head=True)

            def do_GET(self) -> None:
                server.gets[self.path.lstrip("/")] += 1
                self._serve(head=False)

            def _serve(self, head: bool) -> None:
                path = self.path.lstrip("/")
                server.requests.append((path, self.headers.get("Range", "")))
                file = server.root / path
                if not file.is_file():
                    self.send_error(404)
                    return
                data = file.read_bytes()
                start = 0
                if self.headers.get("Range"):
                    start = int(self.headers["Range"].split("=")[1].split("-")[0])
                action = server.faults[path].pop(0) if (server.faults[path] and not head) else "ok"
                if action == "503":
                    self.send_response(503, "Slow Down")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                body = data[start:]
                self.send_response(206 if start else 200)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Accept-Ranges", "bytes")
                self.end_headers()
                if head:
                    return
                if action == "reset":
                    self.wfile.write(body[: len(body) // 2])
                    self.wfile.flush()
                    self.close_connection = True
                    self.connection.shutdown(2)
                    return
                self.wfile.write(body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> "FaultyServer":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
