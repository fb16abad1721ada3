"""A webhook endpoint on loopback: an HTTP server in a thread that answers 503 to its first
``fail_first`` requests (or never answers, with ``hang``), then 200, and keeps every
request it got."""
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class WebhookReceiver:
    def __init__(self, fail_first=0, hang=False):
        self.fail_first, self.hang = fail_first, hang
        self.received = []  # (headers as dict, body bytes, answered status)
        self.lock = threading.Lock()
        self.release = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802  (the http.server name)
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if receiver.hang:
                    receiver.release.wait(30)
                    return
                with receiver.lock:
                    status = 503 if len(receiver.received) < receiver.fail_first else 200
                    receiver.received.append((dict(self.headers), body, status))
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self):
        return f"http://127.0.0.1:{self.server.server_address[1]}/hooks"

    def accepted(self):
        return [(headers, body) for headers, body, status in self.received if status == 200]

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.release.set()
        self.server.shutdown()
        self.server.server_close()
