#!/usr/bin/env python3
"""A webhook receiver for the tests: verifies every delivery with the
`standardwebhooks` package (as a user's receiver would, no code of ours)
and records it as a JSON line on standard output. Prints its port first.

    receiver.py SECRET [PORT]

Paths: /ok answers 204 to a delivery that verifies (400 otherwise);
/fail answers 500; /redirect answers 302 to /redirected (which records
any request that reaches it); /hang never answers; /big answers 200 with
a body of 64 MiB, sent slowly.
"""
import json
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from standardwebhooks.webhooks import Webhook, WebhookVerificationError

SECRET = sys.argv[1]


def record(**fields):
    print(json.dumps(fields), flush=True)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def answer(self, status, body=b"", headers=()):
        self.send_response(status)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        headers = {k.lower(): v for k, v in self.headers.items()}
        try:
            payload = Webhook(SECRET).verify(body, headers)
            verified = True
        except WebhookVerificationError as e:
            payload, verified = str(e), False
        record(path=self.path, verified=verified, id=headers.get("webhook-id"), payload=payload)
        if self.path == "/ok":
            self.answer(204 if verified else 400, b"" if verified else b"bad signature")
        elif self.path == "/fail":
            self.answer(500, b"receiver broke\n")
        elif self.path == "/redirect":
            self.answer(302, headers=[("Location", "/redirected")])
        elif self.path == "/hang":
            time.sleep(60)
        elif self.path == "/big":
            self.send_response(200)
            self.send_header("Content-Length", str(64 << 20))
            self.end_headers()
            try:
                for _ in range(64 << 10):
                    self.wfile.write(b"x" * 1024)
                    time.sleep(0.001)
            except OSError:
                record(path="/big", note="the sender stopped reading")
        else:
            self.answer(404)


server = ThreadingHTTPServer(("127.0.0.1", int(sys.argv[2]) if len(sys.argv) > 2 else 0), Handler)
server.daemon_threads = True
print(server.server_address[1], flush=True)
server.serve_forever()
