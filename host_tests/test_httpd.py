"""HttpServer (lib/uipy/httpd.py) between two uipy stacks on the in-memory
link with a virtual clock: stack a serves, stack b is the client (raw TCP
through the event API, so every byte of the request is under the test's
control).  Status codes, limits, timeouts, traversal, keep-alive, pipelining,
chunked sending of a large file with the send queue watched, the connection
limit."""
import hashlib
import json
import os
import random

import pytest

from tcphelpers import Pair, Recorder, IP_A
from uipy.httpd import HttpServer, safe_path, unquote, content_type, mem_free

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WWW = os.path.join(ROOT, "firmware", "www")
SECRET = b"TOP-SECRET-outside-the-root"
INDEX = b"<!doctype html><title>t</title><h1>test page</h1>" + b"." * 700
BIG = 300 * 1024


@pytest.fixture
def root(tmp_path):
    www = tmp_path / "www"
    www.mkdir()
    (www / "index.html").write_bytes(INDEX)
    for name in ("a.css", "b.js", "c.json", "d.png", "e.svg", "f.ico", "g.txt", "h.bin", "noext"):
        (www / name).write_bytes(b"content of " + name.encode())
    (www / "empty.txt").write_bytes(b"")
    (www / "big.bin").write_bytes(random.Random(5).randbytes(BIG))
    (www / "sub").mkdir()
    (www / "sub" / "index.html").write_bytes(b"<p>sub index</p>")
    (www / "noindex").mkdir()
    (www / "noindex" / "x.txt").write_bytes(b"x")
    (tmp_path / "secret").write_bytes(SECRET)
    (tmp_path / "www2").mkdir()
    (tmp_path / "www2" / "secret").write_bytes(SECRET)
    return str(www)


class Server:
    """A pair with an HttpServer on stack a."""

    def __init__(self, root, tcp_a=None, tcp_b=None, **kw):
        self.pair = Pair(tcp_a=tcp_a or {"conns": 6, "queue_slots": 4},
                         tcp_b=tcp_b or {"conns": 8, "window": 8 * 1460})
        kw.setdefault("name", "testdev")
        self.http = HttpServer(self.pair.a, root=root, **kw)

    def client(self, connect=True):
        rec = Recorder()
        rec.conn = self.pair.b.connect(IP_A, 80, rec)
        if connect:
            assert self.pair.run(2000, lambda: rec.saw("CONNECTED"))
        return rec

    def run(self, ms, until=None):
        return self.pair.run(ms, until)

    def server_conns(self):
        return [c for c in self.pair.a.tcp.conns if c.state and c.lport == 80]


def parse(data, heads=()):
    """Responses in data: [(status, headers, body)]; heads: indexes of
    responses to HEAD requests (no body)."""
    out = []
    data = bytes(data)
    while data:
        end = data.find(b"\r\n\r\n")
        if end < 0:
            break
        lines = data[:end].decode().split("\r\n")
        assert lines[0].startswith("HTTP/1.1 "), lines[0]
        status = int(lines[0].split()[1])
        headers = {}
        for line in lines[1:]:
            k, v = line.split(":", 1)
            headers[k.strip().lower()] = v.strip()
        n = 0 if len(out) in heads else int(headers["content-length"])
        body = data[end + 4:end + 4 + n]
        if len(body) < n:
            break
        out.append((status, headers, body))
        data = data[end + 4 + n:]
    assert not data, "trailing bytes %r" % data[:80]
    return out


def exchange(srv, request, count=1, heads=(), rec=None, ms=3000):
    """Send request bytes on a (new) connection; wait for count responses."""
    rec = rec or srv.client()
    rec.data = bytearray()
    assert rec.conn.send(request)

    def done():
        try:
            return len(parse(rec.data, heads)) >= count
        except (AssertionError, ValueError, KeyError):
            return False
    srv.run(ms, done)
    return parse(rec.data, heads), rec


def get(srv, path, extra="", method="GET", version="HTTP/1.1", **kw):
    req = "%s %s %s\r\nHost: dev\r\n%s\r\n" % (method, path, version, extra)
    res, rec = exchange(srv, req.encode(), heads=(0,) if method == "HEAD" else (), **kw)
    assert len(res) == 1, (path, rec.data[:200])
    return res[0][0], res[0][1], res[0][2], rec


def closed_by_server(srv, rec, ms=2000):
    return srv.run(ms, lambda: rec.saw("CLOSED"))


# --- static files ---

def test_get_index_keeps_connection(root):
    srv = Server(root)
    status, h, body, rec = get(srv, "/")
    assert status == 200 and body == INDEX
    assert h["content-type"] == "text/html; charset=utf-8"
    assert h["content-length"] == str(len(INDEX))
    assert h["server"] == "testdev"
    assert "connection" not in h            # HTTP/1.1: persistent by default
    assert not closed_by_server(srv, rec, 1000)
    status, h, body, _ = get(srv, "/index.html", rec=rec)
    assert status == 200 and body == INDEX
    assert srv.http.requests == 2 and srv.http.active == 1


@pytest.mark.parametrize("name,ctype", [
    ("a.css", "text/css"), ("b.js", "text/javascript"), ("c.json", "application/json"),
    ("d.png", "image/png"), ("e.svg", "image/svg+xml"), ("f.ico", "image/x-icon"),
    ("g.txt", "text/plain; charset=utf-8"), ("h.bin", "application/octet-stream"),
    ("noext", "application/octet-stream")])
def test_content_types(root, name, ctype):
    srv = Server(root)
    status, h, body, _ = get(srv, "/" + name)
    assert status == 200 and h["content-type"] == ctype
    assert body == b"content of " + name.encode()


def test_content_type_helper():
    assert content_type("www/INDEX.HTML") == "text/html; charset=utf-8"
    assert content_type("www/a.b/file") == "application/octet-stream"


def test_empty_file(root):
    srv = Server(root)
    status, h, body, _ = get(srv, "/empty.txt")
    assert status == 200 and h["content-length"] == "0" and body == b""


def test_head_has_no_body(root):
    srv = Server(root)
    rec = srv.client()
    req = b"HEAD / HTTP/1.1\r\nHost: d\r\n\r\nHEAD /big.bin HTTP/1.1\r\nHost: d\r\n\r\n"
    res, _ = exchange(srv, req, count=2, heads=(0, 1), rec=rec)
    assert [r[0] for r in res] == [200, 200]
    assert res[0][1]["content-length"] == str(len(INDEX))
    assert res[1][1]["content-length"] == str(BIG)
    srv.run(300)
    assert bytes(rec.data).endswith(b"\r\n\r\n")          # nothing after the second head
    assert bytes(rec.data).count(b"HTTP/1.1 200") == 2
    status, h, body, _ = get(srv, "/status.json", method="HEAD", rec=rec)
    assert status == 200 and int(h["content-length"]) > 100


def test_directory_index_and_redirect(root):
    srv = Server(root)
    status, h, body, rec = get(srv, "/sub")
    assert status == 301 and h["location"] == "/sub/"
    status, h, body, _ = get(srv, "/sub/", rec=rec)       # a redirect keeps the connection
    assert status == 200 and body == b"<p>sub index</p>"
    status, h, body, _ = get(srv, "/sub/?x=1", rec=rec)
    assert status == 200 and body == b"<p>sub index</p>"
    status, _, _, _ = get(srv, "/noindex/", rec=rec)
    assert status == 404


def test_query_and_escapes(root):
    srv = Server(root)
    status, _, body, rec = get(srv, "/index.html?v=3#frag")
    assert status == 200 and body == INDEX
    status, _, body, _ = get(srv, "/%69ndex.html", rec=rec)
    assert status == 200 and body == INDEX


def test_serves_the_firmware_page():
    srv = Server(WWW)
    status, h, body, _ = get(srv, "/")
    assert status == 200 and h["content-type"].startswith("text/html")
    page = body.decode()
    assert len(body) < 8192
    assert "/status.json" in page and "fetch(" in page
    assert "http://" not in page and "https://" not in page   # nothing external


# --- status endpoint ---

def test_status_json(root):
    extra = {"board": "virtual", "dhcp": "static"}
    srv = Server(root, status=lambda: extra)
    srv.run(3100)
    status, h, body, rec = get(srv, "/status.json")
    assert status == 200 and h["content-type"] == "application/json"
    assert h["cache-control"] == "no-store"
    d = json.loads(body)
    assert d["name"] == "testdev" and d["address"] == IP_A
    assert d["uptime_s"] == 3 and d["link_up"] is True
    assert d["board"] == "virtual" and d["dhcp"] == "static"
    assert d["stats"]["tcp_accepts"] == 1 and d["stats"]["rx_frames"] > 0
    assert d["http"]["requests"] == 1 and d["http"]["connections"] == 1
    assert ("heap_free" in d) == (mem_free() is not None)
    status, _, body2, _ = get(srv, "/api/status", rec=rec)
    assert status == 200 and json.loads(body2)["http"]["requests"] == 2


def test_status_heap_free_where_reported(root, monkeypatch):
    import gc
    monkeypatch.setattr(gc, "mem_free", lambda: 123456, raising=False)
    srv = Server(root)
    status, _, body, _ = get(srv, "/status.json")
    assert json.loads(body)["heap_free"] == 123456


def test_status_callable_failure_is_500(root):
    def broken():
        raise RuntimeError("sensor gone")
    srv = Server(root, status=broken)
    status, h, _, rec = get(srv, "/status.json")
    assert status == 500 and h["connection"] == "close"
    assert closed_by_server(srv, rec)


def test_uptime_counts_past_the_tick_wrap(root):
    srv = Server(root)
    for _ in range(8):                       # 8 x 100 s: past ticks_diff's reach many times over
        srv.pair.clock.advance(100000)
        srv.pair.a.poll()
    assert srv.http.uptime_s == 800


# --- errors ---

def test_404_keeps_connection(root):
    srv = Server(root)
    status, h, body, rec = get(srv, "/missing.html")
    assert status == 404 and body == b"404 Not Found\n" and "connection" not in h
    status, _, body, _ = get(srv, "/", rec=rec)
    assert status == 200 and body == INDEX
    assert srv.http.errors == 1


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "OPTIONS", "get"])
def test_405_with_allow(root, method):
    srv = Server(root)
    status, h, body, rec = get(srv, "/", method=method)
    assert status == 405 and h["allow"] == "GET, HEAD" and h["connection"] == "close"
    assert closed_by_server(srv, rec)


@pytest.mark.parametrize("line", [
    b"GARBAGE", b"GET /", b"GET / HTTP/2.0", b"GET  / HTTP/1.1", b"GET / HTTP/1.1 extra",
    b" / HTTP/1.1", b"\x00\x01\x02 / HTTP/1.1"])
def test_400_malformed_request_line(root, line):
    srv = Server(root)
    res, rec = exchange(srv, line + b"\r\nHost: d\r\n\r\n")
    assert res[0][0] == 400 and res[0][1]["connection"] == "close"
    assert closed_by_server(srv, rec)


@pytest.mark.parametrize("header", [b"Content-Length: abc", b"Content-Length: -4",
                                    b"Content-Length: 0\r\nContent-Length: 5", b"Connection"])
def test_400_malformed_headers(root, header):
    srv = Server(root)
    res, rec = exchange(srv, b"GET / HTTP/1.1\r\n" + header + b"\r\n\r\n")
    assert res[0][0] == 400
    assert closed_by_server(srv, rec)


def test_413_body_beyond_limit(root):
    srv = Server(root)
    status, h, _, rec = get(srv, "/", extra="Content-Length: 10\r\n")
    assert status == 413 and h["connection"] == "close"
    assert closed_by_server(srv, rec)
    status, _, _, _ = get(srv, "/", extra="Transfer-Encoding: chunked\r\n")
    assert status == 413


def test_body_within_limit_is_skipped(root):
    srv = Server(root, body_limit=16)
    req = b"GET / HTTP/1.1\r\nContent-Length: 10\r\n\r\n0123456789GET /g.txt HTTP/1.1\r\n\r\n"
    res, rec = exchange(srv, req, count=2)
    assert [r[0] for r in res] == [200, 200]
    assert res[0][2] == INDEX and res[1][2] == b"content of g.txt"
    status, _, _, _ = get(srv, "/", extra="Content-Length: 17\r\n", rec=rec)
    assert status == 413


def test_431_headers_beyond_limit(root):
    srv = Server(root, header_limit=1024)
    pad = "".join("X-Pad-%d: %s\r\n" % (i, "v" * 60) for i in range(16))   # > 1 KB
    status, h, _, rec = get(srv, "/", extra=pad)
    assert status == 431 and h["connection"] == "close"
    assert closed_by_server(srv, rec)
    # just below the limit is fine; a header line longer than the line buffer too
    srv2 = Server(root, header_limit=1024)
    status, _, body, _ = get(srv2, "/", extra="X-Long: %s\r\n" % ("y" * 900))
    assert status == 200 and body == INDEX


def test_414_long_request_line(root):
    srv = Server(root)
    status, h, _, rec = get(srv, "/" + "a" * 300)
    assert status == 414 and h["connection"] == "close"
    assert closed_by_server(srv, rec)
    srv2 = Server(root, line_limit=512)
    status, _, _, _ = get(srv2, "/" + "a" * 300)
    assert status == 404


# --- path traversal ---

TRAVERSALS = [
    "/../secret", "/../www2/secret", "/%2e%2e/secret", "/%2E%2E/secret", "/.%2e/secret",
    "/%2e%2e%2fsecret", "/sub/..%2f..%2fsecret", "/sub/../../secret", "/..\\secret",
    "/sub\\..\\..\\secret", "/%5c..%5csecret", "/%2e%2e%5csecret", "http://dev/../secret",
    "secret", "../secret", "*", "//secret", "/%00", "/index.html%00.txt", "/%zz", "/%2",
    "/%c0%ae%c0%ae/secret", "/%252e%252e/secret", "/./../secret", "/sub/./../..//secret",
]


@pytest.mark.parametrize("target", TRAVERSALS)
def test_traversal_refused(root, target):
    srv = Server(root)
    status, _, body, _ = get(srv, target)
    assert status in (400, 403, 404), (target, status)
    assert SECRET not in body


def test_safe_path_helper():
    assert safe_path(b"/a/./b//c/?q=../..") == ["a", "b", "c"]
    assert safe_path(b"/") == []
    assert safe_path(b"/a/../b") == 403
    assert safe_path(b"/a/%2e%2e/b") == 403
    assert safe_path(b"/a%2f%2e%2e%2fb") == 403
    assert safe_path(b"a/b") == 400
    assert safe_path(b"/a\\b") == 400
    assert safe_path(b"/a\rb") == 400
    assert unquote(b"/%41%42c") == b"/ABc"
    assert unquote(b"/%4") is None and unquote(b"/%g1") is None



def test_no_memory_for_rare_paths_or_a_client(root, monkeypatch):
    """A MemoryError loading uipy.httpd_more (a '%' in the target) answers 503;
    one making a client's state resets that connection; both counted, the
    server keeps serving."""
    import uipy
    import uipy.httpd as httpd
    srv = Server(root)
    real_run = uipy.run

    def no_memory(name, *args):
        if name == "httpd_more":
            raise MemoryError
        return real_run(name, *args)
    monkeypatch.setattr(httpd, "run", no_memory)
    status, _, _, _ = get(srv, "/a%41.txt")
    assert status == 503 and srv.http.no_memory == 1
    monkeypatch.setattr(httpd, "run", real_run)

    class NoClient:
        def __init__(self, line_limit):
            raise MemoryError
    real_client = httpd._Client
    monkeypatch.setattr(httpd, "_Client", NoClient)
    rec = srv.client()
    assert srv.run(2000, lambda: rec.saw("ABORTED"))
    assert srv.http.no_memory == 2 and srv.http.active == 0
    monkeypatch.setattr(httpd, "_Client", real_client)
    assert get(srv, "/g.txt")[0] == 200


def test_no_memory_for_a_large_files_ring(root, monkeypatch):
    """No heap for a large file's send ring: 503 (the file closed, counted),
    and the server goes on serving."""
    import builtins
    import uipy.httpd as httpd
    srv = Server(root)
    real = builtins.bytearray
    opened = []
    real_open = builtins.open

    def no_ring(*args):
        if args and isinstance(args[0], int) and args[0] > 2000:
            raise MemoryError
        return real(*args)

    def track(*args):
        f = real_open(*args)
        opened.append(f)
        return f
    monkeypatch.setattr(httpd, "bytearray", no_ring, raising=False)
    monkeypatch.setattr(httpd, "open", track, raising=False)
    status, _, _, _ = get(srv, "/big.bin")
    assert status == 503 and srv.http.no_memory == 1
    assert opened and all(f.closed for f in opened)
    monkeypatch.undo()
    assert get(srv, "/g.txt")[0] == 200

# --- keep-alive ---

def test_keep_alive_many_requests(root):
    srv = Server(root)
    rec = srv.client()
    for i in range(5):
        status, _, body, _ = get(srv, "/g.txt" if i % 2 else "/", rec=rec)
        assert status == 200
    assert srv.http.requests == 5 and srv.http.active == 1
    assert srv.pair.a.stats["tcp_accepts"] == 1


def test_connection_close_honoured(root):
    srv = Server(root)
    status, h, body, rec = get(srv, "/", extra="Connection: close\r\n")
    assert status == 200 and body == INDEX and h["connection"] == "close"
    assert closed_by_server(srv, rec)
    assert srv.http.active == 0


def test_http10_closes_unless_asked(root):
    srv = Server(root)
    status, h, _, rec = get(srv, "/", version="HTTP/1.0")
    assert status == 200 and h["connection"] == "close"
    assert closed_by_server(srv, rec)
    status, h, _, rec = get(srv, "/", version="HTTP/1.0", extra="Connection: Keep-Alive\r\n")
    assert status == 200 and h["connection"] == "keep-alive"
    assert not closed_by_server(srv, rec, 500)
    status, _, _, _ = get(srv, "/g.txt", version="HTTP/1.0", extra="Connection: keep-alive\r\n", rec=rec)
    assert status == 200


def test_max_requests_per_connection(root):
    srv = Server(root, max_requests=3)
    rec = srv.client()
    hops = [get(srv, "/", rec=rec)[1].get("connection") for _ in range(3)]
    assert hops == [None, None, "close"]
    assert closed_by_server(srv, rec)


def test_keep_alive_off(root):
    srv = Server(root, keep_alive=False)
    status, h, _, rec = get(srv, "/")
    assert status == 200 and h["connection"] == "close"
    assert closed_by_server(srv, rec)


def test_pipelined_requests_answered_in_order(root):
    srv = Server(root)
    req = b"".join(b"GET /%s HTTP/1.1\r\nHost: d\r\n\r\n" % n for n in (b"a.css", b"big.bin", b"g.txt", b"nope"))
    res, rec = exchange(srv, req, count=4, ms=20000)
    assert [r[0] for r in res] == [200, 200, 200, 404]
    assert res[0][2] == b"content of a.css" and len(res[1][2]) == BIG and res[2][2] == b"content of g.txt"
    srv.run(500)
    assert srv.pair.b.tcp.conns[0].snd_wnd > 0          # the window opened again


def test_pipelined_close_leaves_no_half_open_connection(root):
    srv = Server(root)
    req = b"GET /big.bin HTTP/1.1\r\n\r\nGET /g.txt HTTP/1.1\r\nConnection: close\r\n\r\n"
    res, rec = exchange(srv, req, count=2, ms=20000)
    assert [r[0] for r in res] == [200, 200] and res[1][1]["connection"] == "close"
    assert closed_by_server(srv, rec)
    rec.conn.close()
    # the client's FIN gets in (the window was opened again): TIME-WAIT, not FIN-WAIT-2
    assert srv.run(1000, lambda: [c.state_name() for c in srv.server_conns()] == ["TIME-WAIT"])


def test_half_closed_client_still_answered(root):
    srv = Server(root)
    rec = srv.client()
    rec.conn.send(b"GET / HTTP/1.1\r\nHost: d\r\n\r\n")
    rec.conn.close()                                     # FIN right after the request
    assert closed_by_server(srv, rec)
    res = parse(rec.data)
    assert res[0][0] == 200 and res[0][2] == INDEX
    srv.run(200)
    assert srv.http.active == 0


# --- timeouts ---

def test_slow_request_gets_408(root):
    srv = Server(root, request_timeout_ms=2000)
    rec = srv.client()
    rec.conn.send(b"GET / HT")
    assert not closed_by_server(srv, rec, 1400)
    assert closed_by_server(srv, rec, 1500)
    res = parse(rec.data)
    assert res[0][0] == 408 and res[0][1]["connection"] == "close"
    assert srv.http.timeouts == 1 and srv.http.active == 0


def test_silent_client_closed_without_answer(root):
    srv = Server(root)                                     # 10 s default
    rec = srv.client()
    assert not closed_by_server(srv, rec, 9000)
    assert closed_by_server(srv, rec, 2000)
    assert rec.data == b""
    assert srv.http.active == 0


def test_trickling_client_cannot_extend_the_deadline(root):
    srv = Server(root, request_timeout_ms=3000)
    rec = srv.client()
    for ch in b"GET / HTTP/1.1\r\nX: ":
        rec.conn.send(bytes([ch]))
        srv.run(200)
        if rec.saw("CLOSED"):
            break
    assert closed_by_server(srv, rec, 1000)
    assert parse(rec.data)[0][0] == 408


def test_keep_alive_idle_limit(root):
    srv = Server(root, keep_alive_ms=2000)
    status, _, _, rec = get(srv, "/")
    assert status == 200
    assert not closed_by_server(srv, rec, 1400)
    assert closed_by_server(srv, rec, 1500)
    assert bytes(rec.data).count(b"HTTP/1.1") == 1       # no 408 on an idle connection


def test_stalled_download_is_reset(root):
    srv = Server(root, request_timeout_ms=3000)
    rec = srv.client()
    rec.conn.stop()                                      # the client reads nothing: zero window
    rec.conn.send(b"GET /big.bin HTTP/1.1\r\n\r\n")
    srv.run(1000)
    assert srv.http.active == 1
    srv.run(5000, lambda: srv.http.active == 0)
    assert srv.http.active == 0 and srv.http.timeouts == 1
    srv.run(2000, lambda: not srv.server_conns())
    assert not srv.server_conns()


# --- large files ---

def test_large_file_in_chunks(root):
    srv = Server(root)
    rec = srv.client()
    rec.conn.send(b"GET /big.bin HTTP/1.1\r\nHost: d\r\n\r\n")
    most_objects = most_unacked = 0
    for _ in range(60000):
        srv.pair.step(1)
        for c in srv.server_conns():
            most_objects = max(most_objects, 4 - c.send_queue_free())     # queue_slots=4
            most_unacked = max(most_unacked, c.unacked())
        if len(rec.data) >= BIG + 100:
            try:
                if parse(rec.data):
                    break
            except (AssertionError, KeyError, ValueError):
                pass
    res = parse(rec.data)
    assert res[0][0] == 200 and int(res[0][1]["content-length"]) == BIG
    want = open(os.path.join(root, "big.bin"), "rb").read()
    assert hashlib.sha256(res[0][2]).digest() == hashlib.sha256(want).digest()
    # never more than `chunks` objects (2 by default) of at most `chunk` bytes held
    assert most_objects <= srv.http.chunks
    assert most_unacked <= srv.http.chunks * srv.http.chunk
    assert srv.http.active == 1 and all(c.app.f is None for c in srv.server_conns())


def test_large_file_over_lossy_link(root):
    """5% loss, duplication and reordering each way: still byte-exact."""
    from faults import FaultyLink

    def wrap(link, side):
        return FaultyLink(link, seed=40 + (side == "b"), loss=0.05, duplicate=0.02, reorder=0.03,
                          delay_ms=1, direction="tx")
    srv = Server.__new__(Server)
    srv.pair = Pair(wrap=wrap, tcp_a={"conns": 6, "queue_slots": 4}, tcp_b={"conns": 4})
    srv.pair.link_a.clock = srv.pair.link_b.clock = srv.pair.clock
    srv.http = HttpServer(srv.pair.a, root=root, chunks=3, chunk=1024)
    rec = srv.client()
    rec.conn.send(b"GET /big.bin HTTP/1.1\r\n\r\n")

    def done():
        try:
            return len(rec.data) > BIG and bool(parse(rec.data))
        except (AssertionError, KeyError, ValueError):
            return False
    assert srv.pair.run(600000, done, step=2)
    want = open(os.path.join(root, "big.bin"), "rb").read()
    assert parse(rec.data)[0][2] == want
    assert srv.pair.a.stats["tcp_retransmits"] > 0 and srv.pair.a.stats["handler_errors"] == 0


# --- the connection limit ---

def test_connection_limit(root):
    """Two slots, both held by clients that sent nothing: a third client
    evicts the one that waited longest for a request head, and is served."""
    srv = Server(root, max_conns=2)
    a = srv.client()
    srv.run(200)
    b = srv.client()
    srv.run(200)
    assert srv.http.active == 2
    c = srv.client()
    assert get(srv, "/", rec=c)[0] == 200
    assert srv.http.evicted == 1 and a.saw("ABORTED") and not b.saw("ABORTED")
    assert srv.pair.a.stats["tcp_syn_backlog_full"] >= 1


def test_busy_server_makes_a_new_client_wait(root):
    """Every slot answering a request (none waits for a head): the new client's
    request waits in the client until a slot is free."""
    srv = Server(root, max_conns=1)
    a = srv.client()
    a.conn.send(b"GET /big.bin HTTP/1.1\r\nHost: x\r\n\r\n")
    a.conn.stop()                                        # a reads nothing: its response stalls
    srv.run(300)
    b = srv.client()
    b.conn.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    srv.run(1000)
    assert srv.http.evicted == 0 and not b.data and srv.pair.a.stats["tcp_syn_backlog_full"] >= 1
    a.conn.abort()                                       # a goes away: b's retransmission gets in
    assert srv.run(8000, lambda: b"200 OK" in bytes(b.data))


def test_many_connections_one_after_another(root):
    srv = Server(root, max_conns=2)
    for _ in range(10):
        rec = srv.client()
        assert get(srv, "/g.txt", rec=rec)[0] == 200
        rec.conn.close()
        srv.run(500, lambda: srv.http.active == 0)
    assert srv.http.active == 0 and srv.http.no_memory == 0


# --- configuration ---

def test_bad_configuration(root):
    p = Pair(tcp_a={"conns": 2})
    with pytest.raises(ValueError, match="max_conns"):
        HttpServer(p.a, root=root, max_conns=3)
    with pytest.raises(ValueError, match="header_limit"):
        HttpServer(p.a, root=root, max_conns=1, header_limit=0)
    with pytest.raises(ValueError, match="name"):
        HttpServer(p.a, root=root, max_conns=1, name="a\r\nb")
    with pytest.raises(ValueError, match="status"):
        HttpServer(p.a, root=root, max_conns=1, status={"x": 1})
    q = Pair(tcp_a=False)
    with pytest.raises(ValueError, match="tcp=False"):
        HttpServer(q.a, root=root)


# --- the same module under MicroPython ---

MPY_SCRIPT = r"""
import sys, json
root = sys.argv[1]
sys.path.insert(0, root + "/host_tests")
sys.path.insert(0, root + "/lib")
from mpy_pair import make_pair, run
from uipy.httpd import HttpServer
from uipy.tcp_conn import CONNECTED, NEWDATA, CLOSED

clock, a, b, la, lb = make_pair({"conns": 4})
srv = HttpServer(a, root=root + "/firmware/www", status=lambda: {"port": "unix"}, name="mpydev")
got = bytearray()
state = {"closed": False}

def client(conn, ev):
    if ev & NEWDATA:
        got.extend(conn.data)
    if ev & CLOSED:
        state["closed"] = True

c = b.connect("198.18.0.10", 80, client)
run(clock, a, b, 500, lambda: c.state_name() == "ESTABLISHED")
c.send(b"GET / HTTP/1.1\r\n\r\nGET /status.json HTTP/1.1\r\n\r\nGET /%2e%2e/x HTTP/1.1\r\nConnection: close\r\n\r\n")
run(clock, a, b, 5000, lambda: state["closed"])
text = bytes(got)
page = open(root + "/firmware/www/index.html", "rb").read()
print("page_ok", page in text)
k = text.find(b"HTTP/1.1 200", len(page))
i = text.find(b"\r\n\r\n", k) + 4
d = json.loads(text[i:text.find(b"HTTP/1.1 403", i)])
print("status", d["name"], d["port"], d["address"], "heap_free" in d)
print("codes", text.count(b"HTTP/1.1 200"), text.count(b"HTTP/1.1 403"), state["closed"])
"""


def test_runs_under_micropython(tmp_path):
    from levels import tool, VENV_BIN, run
    mp = tool("micropython", VENV_BIN)
    script = tmp_path / "httpd_check.py"
    script.write_text(MPY_SCRIPT)
    r = run([mp, "-X", "heapsize=400K", str(script), ROOT], timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "page_ok True" in r.stdout
    assert "status mpydev unix 198.18.0.10 True" in r.stdout
    assert "codes 2 1 True" in r.stdout
