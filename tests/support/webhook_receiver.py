"""A local webhook endpoint for notification tests: what apprise's json:// posts lands here."""

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

# In every receiver URL: a secret that must never appear in a page, a log or an API answer.
TOKEN = "tok-9f3b2c7d1e-must-never-leak"


class WebhookReceiver:
    """An HTTP server on a free loopback port that keeps every JSON body posted to it."""

    def __init__(self):
        self.received = []  # (path, payload)
        self.status = 200
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                receiver.received.append((self.path, json.loads(self.rfile.read(length) or b"{}")))
                self.send_response(receiver.status)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def url(self, who):
        return f"json://127.0.0.1:{self.server.server_port}/hook/{who}/{TOKEN}"

    def to(self, who):
        return [payload for path, payload in self.received if path == f"/hook/{who}/{TOKEN}"]
