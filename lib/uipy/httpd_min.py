"""A minimal HTTP/1.0 responder on the TCP event API: GET / returns a small page,
HEAD works, anything else is 404 (405 for other methods).  Each connection
answers one request and closes.  The full web server is a separate module.

    from uipy.httpd_min import MinimalHttp
    MinimalHttp(stack, port=80, page=b"<h1>hello</h1>")
"""
from uipy.tcp_conn import NEWDATA, CLOSED

_MAX_REQUEST_LINE = 512

DEFAULT_PAGE = (b"<!doctype html><html><head><meta charset=utf-8><title>uipy</title></head>"
                b"<body><h1>Hello from uipy</h1><p>A TCP/IP stack in Python.</p></body></html>")


def _header(status, length, content_type=b"text/html; charset=utf-8"):
    return (b"HTTP/1.0 " + status + b"\r\nServer: uipy\r\nContent-Type: " + content_type +
            b"\r\nContent-Length: " + str(length).encode() + b"\r\nConnection: close\r\n\r\n")


class MinimalHttp:
    def __init__(self, stack, port=80, page=DEFAULT_PAGE, backlog=4):
        self.page = page
        self.ok_header = _header(b"200 OK", len(page))
        self.not_found = b"<h1>404 Not Found</h1>"
        self.not_found_header = _header(b"404 Not Found", len(self.not_found))
        self.bad_method = b"<h1>405 Method Not Allowed</h1>"
        self.bad_method_header = _header(b"405 Method Not Allowed", len(self.bad_method))
        self.requests = 0
        stack.listen(port, self._event, backlog)

    def _event(self, conn, events):
        # conn.app: the request line so far (bytes), then True once answered
        if events & NEWDATA and conn.app is not True:
            line = (conn.app or b"") + bytes(conn.data)
            end = line.find(b"\r\n")
            if end < 0 and len(line) < _MAX_REQUEST_LINE:
                conn.app = line           # the request line arrives in pieces
                return
            conn.app = True
            self._answer(conn, line[:end] if end >= 0 else line)
        elif events & CLOSED and conn.app is not True:
            conn.close()                  # the client gave up before a full request line

    def _answer(self, conn, line):
        self.requests += 1
        parts = line.split(b" ")
        method = parts[0]
        path = parts[1] if len(parts) > 1 else b""
        if method not in (b"GET", b"HEAD"):
            conn.send(self.bad_method_header)
            conn.send(self.bad_method)
        elif path in (b"/", b"/index.html"):
            conn.send(self.ok_header)
            if method == b"GET":
                conn.send(self.page)      # by reference: retransmitted from the same object
        else:
            conn.send(self.not_found_header)
            if method == b"GET":
                conn.send(self.not_found)
        conn.close()
