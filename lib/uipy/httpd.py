"""The HTTP/1.1 server: static files from a directory, a JSON status endpoint.

    from uipy.httpd import HttpServer
    HttpServer(stack, root="www", status=lambda: {"board": "pico"}, name="pico-eth")

Built on the TCP event API.  GET and HEAD only.  Per connection it keeps the
request line, a few header flags and one line buffer; the request is parsed
byte by byte from the received memoryview, never collected whole.  A file is
sent in chunks read as the send queue frees up, into a ring of `chunks`
buffers of `chunk` bytes made for that response (each chunk is kept by
reference until acknowledged): at most `chunks` chunks of one connection are
held at a time, whatever the file's size.

Limits: max_conns connections at once (the listener's backlog).  A client
whose handshake completes while all are held makes room by evicting, with a
reset, a connection waiting for a request head: an idle keep-alive client
first, then one trickling its head in (slowloris), then one that has sent
nothing for 250 ms (httpd_more.EVICT_MS); when every
connection is busy answering, the new client waits (its request is
retransmitted until a slot is free; tcp_syn_backlog_full counts it).  A
connection this server has closed stops counting at once.  header_limit bytes
of request head (431,
414 when the request line alone is longer than line_limit), body_limit
bytes of request body (413), request_timeout_ms to finish the request head
(408, or a silent close when nothing was sent) and as the longest stall while
a response is being sent (reset), keep_alive_ms idle between requests on a
persistent connection and max_requests per connection.
"""
import gc
import json
import os

from uipy import run
from uipy.compat import const, ticks_add, ticks_diff

# tcp_conn's event numbers as this module's const()s: folded in place, where an
# imported name is a global lookup at each use (a test checks they agree)
_CONNECTED = const(1)
_NEWDATA = const(2)
_ACKED = const(4)
_POLL = const(16)
_CLOSED = const(32)
_ABORTED = const(64)
_TIMEDOUT = const(128)

# Parser and response phases of a connection
_HEAD = const(0)   # reading a request head
_SEND = const(1)   # queueing a response

STATUS_PATHS = ("/status.json", "/api/status")
# one string each rather than tuples of pairs: a third of the heap
_REASONS = ("\n200 OK\n301 Moved Permanently\n400 Bad Request\n403 Forbidden\n404 Not Found"
            "\n405 Method Not Allowed\n408 Request Timeout\n413 Content Too Large\n414 URI Too Long"
            "\n431 Request Header Fields Too Large\n500 Internal Server Error\n503 Service Unavailable\n")

_TYPES = ("\nhtml text/html; charset=utf-8\nhtm text/html; charset=utf-8\ncss text/css"
          "\njs text/javascript\njson application/json\npng image/png\nsvg image/svg+xml"
          "\nico image/x-icon\ntxt text/plain; charset=utf-8\n")
_DEFAULT_TYPE = "application/octet-stream"
_S_IFDIR = const(0x4000)


def mem_free():
    """Free heap bytes where the runtime reports them (MicroPython), else None."""
    fn = getattr(gc, "mem_free", None)
    return fn() if fn is not None else None


def _look_up(table, key):
    """The text after "\n<key> " in table, up to its line's end; None if absent."""
    key = "\n%s " % key
    k = table.find(key)
    if k < 0:
        return None
    k += len(key)
    return table[k:table.find("\n", k)]


def reason(code):
    return _look_up(_REASONS, code) or "Error"


def content_type(path):
    dot = path.rfind(".")
    if dot > path.rfind("/"):
        ext = path[dot + 1:].lower()
        if ext.isalpha():
            return _look_up(_TYPES, ext) or _DEFAULT_TYPE
    return _DEFAULT_TYPE


def unquote(b):
    """Percent-decode bytes once; None for a malformed escape.  A target with
    a '%' is rare: the decoder is uipy.httpd_more, loaded for the call
    (MemoryError when it cannot be: the request is answered 503)."""
    if b"%" not in b:
        return b
    return run("httpd_more", "unquote", b)


def safe_path(target):
    """The request target as a list of path segments (str), or an error code:
    400 for a malformed target, 403 for one that would leave the root."""
    end = len(target)
    for stop in (b"?", b"#"):
        k = target.find(stop)
        if 0 <= k < end:
            end = k
    raw = target[:end]
    if not raw.startswith(b"/"):
        return 400                    # absolute-form, '*' or a relative path
    for ch in raw:
        if ch <= 32 or ch >= 127:
            return 400                # controls would end up in a Location header
    path = unquote(raw)
    if path is None or b"\\" in path or b"\x00" in path:
        return 400
    segs = []
    for s in path.split(b"/"):
        if s == b"..":
            return 403
        if s and s != b".":
            try:
                segs.append(s.decode())
            except UnicodeError:
                return 400
    return segs


class _Client:
    """Per-connection state, made when a client connects and dropped when it
    goes (about 530 B on an RP2040, line buffer included: nothing is held
    for clients while none is connected)."""

    def __init__(self, line_limit):
        self.line = bytearray(line_limit)
        self.slots = 0
        self.served = 0
        self.reset()
        self.f = None
        self.ring = None              # a file's send buffers (memoryview), while it is sent
        self.ri = 0                   # the ring's next chunk
        self.pending = None
        self.left = 0
        self.keep = False
        self.stash = None
        self.stopped = False
        self.peer_fin = False
        self.deadline = 0
        self.waiting = 0              # when it began to wait for a request head
        self.skip = 0                 # request body bytes still to discard (kept across reset)

    def reset(self):
        """Ready for the next request head."""
        self.phase = _HEAD
        self.len = 0                  # bytes in the line buffer
        self.long = False             # the current line did not fit
        self.hbytes = 0               # bytes of this request head so far
        self.got_line = False
        self.method = None
        self.target = None
        self.v11 = False
        self.close_req = False
        self.ka_req = False
        self.clen = -1
        self.chunked = False


class HttpServer:
    def __init__(self, stack, root="www", port=80, status=None, max_conns=4, header_limit=1024,
                 body_limit=0, request_timeout_ms=10000, keep_alive=True, name="uipy",
                 line_limit=256, keep_alive_ms=5000, max_requests=100, chunk=2920, chunks=2):
        run("httpd_cfg", "check", stack, root, status, name, max_conns, header_limit, body_limit,
            request_timeout_ms, line_limit, keep_alive_ms, max_requests, chunk, chunks)
        self.stack = stack
        self.root = root.rstrip("/") or "/"
        self.port = port
        self.status = status
        self.max_conns = max_conns
        self.header_limit = header_limit
        self.body_limit = body_limit
        self.request_timeout_ms = request_timeout_ms
        self.keep_alive = keep_alive
        self.keep_alive_ms = keep_alive_ms
        self.max_requests = max_requests
        self.name = name
        self.chunk = chunk
        self.chunks = chunks
        self.line_limit = line_limit
        self.active = 0
        self.requests = 0
        self.errors = 0               # 4xx and 5xx answers
        self.timeouts = 0
        self.evicted = 0              # connections let go to make room for a new client
        self.no_memory = 0            # rare paths not taken for want of heap to load them (503s)
        self.uptime_s = 0
        self._t0 = stack.now
        stack.tickers.append(self._tick)
        stack.listen(port, self._event, max_conns, on_full=self._evict)

    def _tick(self, now):
        d = ticks_diff(now, self._t0)
        if d >= 1000:                 # whole seconds only: the counter never wraps
            self.uptime_s += d // 1000
            self._t0 = ticks_add(self._t0, d // 1000 * 1000)

    # --- connection events ---

    def _event(self, conn, ev):
        c = conn.app
        if c is None:
            if not ev & _CONNECTED:
                return                # after our close: FIN-WAIT data and the end
            c = self._take(conn)
            if c is None:
                return
        if ev & (_ABORTED | _TIMEDOUT):
            self._release(conn, c)
            return
        now = self.stack.now
        if ev & _ACKED and c.phase == _SEND:
            c.deadline = ticks_add(now, self.request_timeout_ms)   # progress
        if ev & _NEWDATA:
            self._feed(conn, c, conn.data)
            if conn.app is not c:
                return
        if c.phase == _SEND:
            self._pump(conn, c)
            if conn.app is not c:
                return
        if ev & _CLOSED:
            c.peer_fin = True         # the client sends no more: answer what it asked, then close
        if ev & _POLL and ticks_diff(now, c.deadline) >= 0:
            self.timeouts += 1
            if c.phase == _SEND:
                self._release(conn, c)
                conn.abort()          # stalled for request_timeout_ms: give the slot back
                return
            if not c.hbytes:
                self._close(conn, c)  # idle: nothing to answer
                return
            self._error(conn, c, 408)
            if conn.app is not c:
                return
        if c.phase == _HEAD:          # (a no-op while a response is queued: no call per ACK)
            self._resume(conn, c)

    def _evict(self):
        """All max_conns are held and a new client has completed its handshake:
        the connection to reset for it, or None (uipy.httpd_more.evict, loaded
        for the call: the table is rarely full; without the memory to load
        it, nobody is evicted and the new client waits, counted)."""
        try:
            return run("httpd_more", "evict", self, _Client)
        except MemoryError:
            self.no_memory += 1
            return None

    def _take(self, conn):
        try:
            c = _Client(self.line_limit)
        except MemoryError:           # no heap for one more client now: reset it, counted
            self.no_memory += 1
            conn.abort()
            return None
        c.slots = conn.send_queue_free()
        c.deadline = ticks_add(self.stack.now, self.request_timeout_ms)
        c.waiting = self.stack.now
        conn.app = c
        self.active += 1
        return c

    def _release(self, conn, c):
        """Forget the connection: close its file; the client becomes garbage."""
        if c.f is not None:
            c.f.close()
        c.f = c.pending = c.stash = c.ring = None
        conn.app = None
        self.active -= 1

    def _close(self, conn, c):
        if c.stopped:
            conn.restart()            # or the client's FIN would meet a zero window
        self._release(conn, c)
        conn.close()                  # FIN after whatever is queued

    def _resume(self, conn, c):
        """A response is fully queued: read what came meanwhile, reopen the window."""
        while c.phase == _HEAD and c.stash is not None:
            data = c.stash
            c.stash = None
            self._feed(conn, c, memoryview(data))
            if conn.app is not c:
                return
        if c.phase == _HEAD:
            if c.peer_fin:
                self._close(conn, c)
            elif c.stopped:
                c.stopped = False
                conn.restart()

    # --- request parsing ---

    def _feed(self, conn, c, mv):
        i = 0
        n = len(mv)
        while i < n and conn.app is c:
            if c.phase == _SEND:
                # A pipelined request: keep it until this response is queued and
                # take no more meanwhile (the window closes).
                rest = bytes(mv[i:])
                c.stash = rest if c.stash is None else c.stash + rest
                if not c.stopped:
                    c.stopped = True
                    conn.stop()
                return
            i = self._parse(conn, c, mv, i, n)

    def _parse(self, conn, c, mv, i, n):
        """Consume bytes up to the end of one request head (or n); returns the index."""
        line = c.line
        cap = len(line)
        limit = self.header_limit
        while i < n:
            if c.skip:
                k = c.skip if c.skip < n - i else n - i
                c.skip -= k
                i += k
                continue
            b = mv[i]
            i += 1
            if c.hbytes == 0 and c.served:
                c.deadline = ticks_add(self.stack.now, self.request_timeout_ms)
            c.hbytes += 1
            if b == 10:
                if self._line(conn, c):
                    return i
            elif c.len < cap:
                line[c.len] = b
                c.len += 1
            elif not c.got_line:
                self._error(conn, c, 414)
                return n
            else:
                c.long = True         # a long header line: not one we need
            if c.hbytes > limit:
                self._error(conn, c, 431 if c.got_line else 414)
                return n
        return n

    def _line(self, conn, c):
        """One line of the head is complete; True when the request is (or failed)."""
        line = c.line
        n = c.len
        if n and line[n - 1] == 13:
            n -= 1
        long = c.long
        c.len = 0
        c.long = False
        if not c.got_line:
            if n == 0:
                return False          # stray CRLF between requests (RFC 9112 2.2)
            parts = bytes(line[:n]).split(b" ")
            if len(parts) != 3 or not parts[0] or not parts[2].startswith(b"HTTP/1."):
                self._error(conn, c, 400)
                return True
            for ch in parts[0]:
                if ch < 33 or ch > 126:
                    self._error(conn, c, 400)
                    return True
            c.got_line = True
            c.method, c.target = parts[0], parts[1]
            c.v11 = parts[2] != b"HTTP/1.0"
            return False
        if n == 0:
            self._dispatch(conn, c)
            return True
        first = line[0] | 0x20
        if long or (first != 99 and first != 116):   # only Connection, Content-Length, Transfer-Encoding
            return False
        h = bytes(line[:n]).lower()
        colon = h.find(b":")
        if colon < 0:
            self._error(conn, c, 400)
            return True
        name = h[:colon]
        value = h[colon + 1:].strip()
        if name == b"connection":
            if b"close" in value:
                c.close_req = True
            if b"keep-alive" in value:
                c.ka_req = True
        elif name == b"content-length":
            try:
                length = int(value)
            except ValueError:
                length = -1
            if length < 0 or (c.clen >= 0 and c.clen != length):
                self._error(conn, c, 400)
                return True
            c.clen = length
        elif name == b"transfer-encoding":
            c.chunked = True
        return False

    # --- answering ---

    def _dispatch(self, conn, c):
        self.requests += 1
        c.served += 1
        c.keep = (self.keep_alive and not c.close_req and (c.v11 or c.ka_req) and not c.peer_fin
                  and c.served < self.max_requests)
        m = c.method
        if m != b"GET" and m != b"HEAD":
            self._error(conn, c, 405, "Allow: GET, HEAD\r\n")
            return
        if c.chunked or c.clen > self.body_limit:
            self._error(conn, c, 413)
            return
        c.skip = c.clen if c.clen > 0 else 0
        try:
            segs = safe_path(c.target)
        except MemoryError:           # the decoder could not be loaded
            self.no_memory += 1
            segs = 503
        if isinstance(segs, int):
            self._error(conn, c, segs)
            return
        path = "/" + "/".join(segs)
        if path in STATUS_PATHS:
            self._status(conn, c)
        else:
            self._file(conn, c, segs)

    def _status(self, conn, c):
        ip = self.stack.ip
        d = {"name": self.name, "address": "%d.%d.%d.%d" % (ip[0], ip[1], ip[2], ip[3]),
             "uptime_s": self.uptime_s, "link_up": bool(self.stack.link_up()),
             "http": {"requests": self.requests, "errors": self.errors, "timeouts": self.timeouts,
                      "connections": self.active},
             "stats": self.stack.stats}  # type: dict
        free = mem_free()
        if free is not None:
            d["heap_free"] = free
        if self.status is not None:
            try:
                extra = self.status()
            except Exception:
                extra = None
            if not isinstance(extra, dict):
                self._error(conn, c, 500)
                return
            d.update(extra)
        body = json.dumps(d).encode()
        self._start(conn, c, 200, "application/json", len(body), body, None,
                    "Cache-Control: no-store\r\n")

    def _file(self, conn, c, segs):
        fs = self.root
        for s in segs:
            fs += "/" + s
        if not segs:
            fs += "/index.html"       # the root is a directory
        f = None
        try:
            try:
                # a file, the common case: opened at once (an os.stat first
                # costs about 1 ms on an RP2040), its size from a seek
                f = open(fs, "rb")
            except OSError:
                if not segs or not os.stat(fs)[0] & _S_IFDIR:
                    raise
                if not c.target.split(b"?")[0].endswith(b"/"):
                    loc = c.target.split(b"?")[0].decode() + "/"
                    self._error(conn, c, 301, "Location: %s\r\n" % loc, keep=True)
                    return
                fs += "/index.html"
                f = open(fs, "rb")
            size = f.seek(0, 2)
            f.seek(0)
            if c.method != b"GET" or not size:
                f.close()
                f = None
        except (OSError, UnicodeError):
            if f is not None:
                f.close()
            self._error(conn, c, 404, keep=True)
            return
        self._start(conn, c, 200, content_type(fs), size, None, f, "")

    def _error(self, conn, c, code, extra="", keep=False):
        """A short text answer; the connection closes after it unless keep
        (the request was well-formed and fully read)."""
        if code >= 400:
            self.errors += 1
        if not keep:
            c.keep = False
            c.skip = 0
        body = ("%d %s\n" % (code, reason(code))).encode()
        self._start(conn, c, code, "text/plain; charset=utf-8", len(body), body, None, extra)

    def _start(self, conn, c, code, ctype, length, body, f, extra):
        if not c.keep:
            hop = "Connection: close\r\n"
        elif not c.v11:
            hop = "Connection: keep-alive\r\n"
        else:
            hop = ""
        head = ("HTTP/1.1 %d %s\r\nServer: %s\r\nContent-Type: %s\r\nContent-Length: %d\r\n%s%s\r\n"
                % (code, reason(code), self.name, ctype, length, extra, hop)).encode()
        c.phase = _SEND
        c.left = 0
        c.deadline = ticks_add(self.stack.now, self.request_timeout_ms)
        if c.method == b"HEAD":
            c.pending = head
        elif f is not None:
            chunk = self.chunk
            hl = len(head)
            if hl + length <= chunk:      # one object: head and the whole file
                first = f.read(length)
                c.pending = head + first
                c.left = length - len(first)
            else:
                # The file goes out of a ring of `chunks` buffers of `chunk`
                # bytes, read into in place (readinto: a tenth of f.read's time
                # on an RP2040) and queued as memoryviews: a buffer is reused
                # only once what was queued from it is acknowledged (the queue
                # is FIFO and holds fewer than `chunks` of this file's objects);
                # no larger than the response (a page of a few KB fits whole).
                whole = hl + length if chunk > hl + 64 else length
                size = chunk * self.chunks
                try:
                    ring = memoryview(bytearray(size if size < whole else whole))
                except MemoryError:   # no heap for the ring now: 503, counted
                    f.close()
                    self.no_memory += 1
                    self._error(conn, c, 503)
                    return
                c.ring = ring
                c.ri = 1 % self.chunks
                if chunk > hl + 64:
                    ring[:hl] = head
                    n = f.readinto(ring[hl:chunk])
                    c.pending = ring[:hl + n]
                    c.left = length - n
                else:
                    c.pending = head
                    c.left = length
            c.f = f
        else:
            c.pending = head + body if body else head
        self._pump(conn, c)

    def _pump(self, conn, c):
        """Queue what the send queue takes (at most `chunks` objects held)."""
        try:
            if c.pending is not None:
                if not conn.send(c.pending):
                    return            # queue full: again on the next _ACKED or _POLL
                c.pending = None
            f = c.f
            chunk = self.chunk
            while f is not None and c.left > 0:
                free = conn.send_queue_free()
                if not free or c.slots - free >= self.chunks:
                    return
                i = c.ri * chunk
                c.ri = c.ri + 1 if c.ri + 1 < self.chunks else 0
                n = f.readinto(c.ring[i:i + (chunk if chunk < c.left else c.left)])
                if not n:             # the file shrank: the promised length cannot be kept
                    self._release(conn, c)
                    conn.abort()
                    return
                conn.send(c.ring[i:i + n])
                c.left -= n
        except OSError:               # not open for sending any more, or a read error
            self._release(conn, c)
            conn.abort()
            return
        if c.f is not None:
            c.f.close()
            c.f = c.ring = None     # the queue keeps what it still holds of the ring
        if c.keep:
            c.reset()
            c.deadline = ticks_add(self.stack.now, self.keep_alive_ms)
            c.waiting = self.stack.now
        else:
            self._close(conn, c)
