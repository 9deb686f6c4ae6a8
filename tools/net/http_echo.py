"""A small HTTP/1.0 server for the kernel side of a test namespace (host only):
GET /hello.txt answers HELLO (the query string, if any, in an X-Query
header); POST (any path) answers a JSON object with what
it received: method, path, content_type, content_length and body (text).
Closes every connection after the answer (HTTP/1.0).

    python3 tools/net/http_echo.py 198.18.0.1 8080    # prints "listening" when ready
"""
import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HELLO = b"Hello from the kernel side\r\nsecond line\r\n"


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"

    def _answer(self, body, ctype):
        self.send_response(200)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in getattr(self, "extra", ()):
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def do_GET(self):
        path, _, query = self.path.partition("?")
        if path == "/hello.txt":
            self.extra = [("X-Query", query)] if query else []
            self._answer(HELLO, "text/plain")
        else:
            self.send_error(404)

    def do_POST(self):
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n) if n else b""
        out = {"method": "POST", "path": self.path, "content_type": self.headers.get("Content-Type"),
               "content_length": n, "body": body.decode("utf-8", "replace")}
        self._answer(json.dumps(out, sort_keys=True).encode(), "application/json")

    def log_message(self, fmt, *args):
        sys.stderr.write("%s %s\n" % (self.address_string(), fmt % args))


def main():
    host, port = sys.argv[1], int(sys.argv[2])
    server = ThreadingHTTPServer((host, port), Handler)
    server.timeout = 1
    print("listening", flush=True)
    try:
        server.serve_forever()
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
