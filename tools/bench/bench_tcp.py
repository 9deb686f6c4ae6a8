"""TCP figures on the host (needs root): a uipy Stack on CPython over a TAP in a
network namespace, the Linux kernel as peer.

    from bench_tcp import tcp_figures
    figures.update(tcp_figures())     # {} (and a note) when not root

host_tcp_download_MBps / host_tcp_upload_MBps: 10 MB from a uipy "source" to a
    kernel socket, and from a kernel socket to a uipy "sink" (hashed), timed by
    the kernel client from connect() to the last byte (download) or to the sink's
    digest reply (upload); both checked by sha256.
tcp_connect_ms: median time from stack.connect() to CONNECTED, kernel listener.
delayed_ack_40ms_kBps: 2 MB from uipy to a kernel receiver through a FaultyLink
    adding 20 ms each way (40 ms RTT), with conn.send() (several segments in flight).
uip_one_segment_40ms_kBps: the same path and receiver, but sent the uIP way
    (conn.out + conn.send_out(n), the next segment only on ACKED: one segment in
    flight).  Measured, not computed; bounded by time (6 s), not by size.
    Measured fact: Linux does not delay these ACKs.  Every send_out segment
    carries PSH, and a receiver whose application drains the socket ACKs a
    PSH segment as soon as it is read (tcp_cleanup_rbuf, ICSK_ACK_PUSHED), so
    the uIP figure is one MSS per RTT (about 36 kB/s at 40 ms), not one per
    RTT + 40 ms delayed ACK; the capture shows every ACK within 0.5 ms.

The services (Source, Sink, Echo, OneSegmentSender) and the kernel-side scripts
are also used by host_tests/test_e2e_tcp.py.
"""
import hashlib
import json
import os
import random
import statistics
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
if os.path.join(ROOT, "tools") not in sys.path:
    sys.path.insert(0, os.path.join(ROOT, "tools"))
import paths  # noqa: E402,F401  (tools/paths.py: lib, drivers, tools/emu, net, bench, device)

from uipy.tcp_conn import CONNECTED, NEWDATA, ACKED, REXMIT, POLL, CLOSED, ABORTED, TIMEDOUT  # noqa: E402

STACK_IP = "198.18.0.2"
KERNEL_IP = "198.18.0.1"
MB = 1 << 20


def payload(n, seed):
    """Deterministic bytes, the same here and in the kernel-side scripts."""
    return random.Random(seed).randbytes(n)


def sha(data):
    return hashlib.sha256(data).hexdigest()


# --- uipy services (handlers run in the stack thread) ---

class Source:
    """On CONNECTED send payloads[conn.lport] in chunks as the send queue frees
    up (by reference: memoryview slices of one bytes object), then close."""

    def __init__(self, payloads, chunk=16384):
        self.payloads = payloads
        self.chunk = chunk
        self.done = []                # (remote, bytes queued, final event names)
        self.errors = []

    def __call__(self, conn, ev):
        if ev & CONNECTED:
            conn.app = [memoryview(self.payloads[conn.lport]), 0, False]
        st = conn.app
        if st is None:
            return
        if ev & (ABORTED | TIMEDOUT):
            self.errors.append((conn.remote(), ev, st[1]))
            return
        if ev & (CONNECTED | ACKED | POLL) and not st[2]:
            mv, off = st[0], st[1]
            while off < len(mv) and conn.send_queue_free():
                n = min(self.chunk, len(mv) - off)
                if not conn.send(mv[off:off + n]):
                    break
                off += n
            st[1] = off
            if off >= len(mv):
                st[2] = True
                conn.close()
                self.done.append((conn.remote(), off))
        if ev & CLOSED and not st[2]:
            # the client went away before everything was sent
            self.errors.append((conn.remote(), "peer closed early", st[1]))
            st[2] = True
            conn.close()


class Sink:
    """Hashes everything it receives; on the peer's FIN replies
    b"<count> <sha256 hex>\\n" and closes."""

    def __init__(self):
        self.results = []             # (count, hexdigest)
        self.errors = []

    def __call__(self, conn, ev):
        if ev & CONNECTED:
            conn.app = [hashlib.sha256(), 0]
        st = conn.app
        if st is None:
            return
        if ev & (ABORTED | TIMEDOUT):
            self.errors.append((conn.remote(), ev, st[1]))
            return
        if ev & NEWDATA:
            st[0].update(conn.data)
            st[1] += len(conn.data)
        if ev & CLOSED:
            # (CLOSED comes again when our FIN is acknowledged: app is None then)
            conn.app = None
            digest = st[0].hexdigest()
            self.results.append((st[1], digest))
            conn.send(("%d %s\n" % (st[1], digest)).encode())
            conn.close()


class Echo:
    """Sends back what it receives; closes after the peer's FIN.  Tracks how
    many of its connections were open at once."""

    def __init__(self):
        self.open = 0
        self.max_open = 0
        self.accepted = 0
        self.closed = 0
        self.errors = []

    def __call__(self, conn, ev):
        if ev & CONNECTED:
            conn.app = [[], False]    # bytes not yet queued (send queue full), peer's FIN seen
            self.accepted += 1
            self.open += 1
            self.max_open = max(self.max_open, self.open)
        st = conn.app
        if st is None:
            return
        if ev & (ABORTED | TIMEDOUT):
            self.errors.append((conn.remote(), ev))
            self.open -= 1
            conn.app = None
            return
        if ev & NEWDATA:
            st[0].append(bytes(conn.data))
        if ev & CLOSED:
            st[1] = True
        pend = st[0]
        while pend and conn.send(pend[0]):
            pend.pop(0)
        if pend:
            conn.stop()               # back-pressure until the queue drains
        else:
            conn.restart()
            if st[1]:
                self.closed += 1
                self.open -= 1
                conn.app = None
                conn.close()


class Exchange:
    """Active open: send `data`, collect what the peer sends, close after
    everything was queued; records events."""

    def __init__(self, data, chunk=16384):
        self.mv = memoryview(data)
        self.chunk = chunk
        self.off = 0
        self.closing = False
        self.received = bytearray()
        self.events = []
        self.t_connect = None
        self.t_closed = None

    def __call__(self, conn, ev):
        self.events.append(ev)
        if ev & CONNECTED:
            self.t_connect = time.perf_counter()
        if ev & NEWDATA:
            self.received += conn.data
        if ev & (ABORTED | TIMEDOUT):
            return
        if ev & (CONNECTED | ACKED | POLL) and not self.closing:
            while self.off < len(self.mv) and conn.send_queue_free():
                n = min(self.chunk, len(self.mv) - self.off)
                if not conn.send(self.mv[self.off:self.off + n]):
                    break
                self.off += n
            if self.off >= len(self.mv):
                self.closing = True
                conn.close()
        if ev & CLOSED:
            self.t_closed = time.perf_counter()


class Timed:
    """Active open sending `data` with conn.send(); times CONNECTED to the ACK of
    the last byte, then closes."""

    def __init__(self, data, chunk=16384):
        self.mv = memoryview(data)
        self.chunk = chunk
        self.off = 0
        self.t0 = self.t1 = None
        self.errors = []

    def __call__(self, conn, ev):
        if ev & (ABORTED | TIMEDOUT):
            self.errors.append(ev)
            return
        if ev & CONNECTED:
            self.t0 = time.perf_counter()
        if ev & (CONNECTED | ACKED | POLL) and self.t1 is None:
            while self.off < len(self.mv) and conn.send_queue_free():
                n = min(self.chunk, len(self.mv) - self.off)
                if not conn.send(self.mv[self.off:self.off + n]):
                    break
                self.off += n
            if self.off >= len(self.mv) and conn.unacked() == 0:
                self.t1 = time.perf_counter()
                conn.close()


class OneSegmentSender:
    """uIP's contract: write one segment into conn.out, send_out(n); the next
    only on ACKED, the same bytes again on REXMIT.  Stops after limit_s
    (bytes_acked / seconds is the figure)."""

    def __init__(self, data, limit_s):
        self.data = data
        self.limit_s = limit_s
        self.off = 0                  # first byte not yet acknowledged
        self.n = 0                    # bytes of the segment in flight
        self.t0 = self.t1 = None
        self.rexmits = 0
        self.errors = []

    def _write(self, conn):
        n = min(conn.mss, len(self.data) - self.off)
        conn.out[:n] = self.data[self.off:self.off + n]
        if conn.send_out(n):
            self.n = n
        return n

    def __call__(self, conn, ev):
        if ev & (ABORTED | TIMEDOUT):
            self.errors.append(ev)
            return
        if self.t1 is not None:
            return
        if ev & CONNECTED:
            self.t0 = time.perf_counter()
            self._write(conn)
            return
        if ev & ACKED:
            self.off += self.n
            self.n = 0
            if self.off >= len(self.data) or time.perf_counter() - self.t0 >= self.limit_s:
                self.t1 = time.perf_counter()
                conn.close()
                return
            self._write(conn)
        elif ev & REXMIT:
            self.rexmits += 1
            self._write(conn)
        elif ev & POLL and self.n == 0:
            self._write(conn)         # send_out refused earlier (no send space)


# --- kernel-side scripts, run with the venv's python inside the namespace ---

DOWNLOAD_CLIENT = r"""
import hashlib, json, socket, sys, time
ip, port, limit = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
t0 = time.perf_counter()
s = socket.create_connection((ip, port), timeout=limit)
s.settimeout(limit)
h, n, buf = hashlib.sha256(), 0, bytearray(262144)
mv = memoryview(buf)
while True:
    k = s.recv_into(mv)
    if not k:
        break
    h.update(mv[:k])
    n += k
t = time.perf_counter() - t0
s.close()
print(json.dumps({"n": n, "sha": h.hexdigest(), "secs": t}))
"""

UPLOAD_CLIENT = r"""
import json, random, socket, sys, time
ip, port, n, seed, limit = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5])
data = random.Random(seed).randbytes(n)
t0 = time.perf_counter()
s = socket.create_connection((ip, port), timeout=limit)
s.settimeout(limit)
s.sendall(data)                          # (returns once the data is in the socket buffer)
s.shutdown(socket.SHUT_WR)
reply = b""
while True:
    s.settimeout(max(0.01, limit - (time.perf_counter() - t0)))   # limit: the whole upload
    k = s.recv(4096)
    if not k:
        break
    reply += k
t = time.perf_counter() - t0
s.close()
print(json.dumps({"reply": reply.decode(), "secs": t}))
"""

# Accepts `count` connections one after the other; per connection sends
# random.Random(seed).randbytes(nsend), reads until EOF, closes; prints one
# JSON line per connection.  Prints "ready" once listening.
KERNEL_SERVER = r"""
import hashlib, json, random, socket, sys, time
ip, port, count, nsend, seed, limit = (sys.argv[1], int(sys.argv[2]), int(sys.argv[3]),
                                       int(sys.argv[4]), int(sys.argv[5]), float(sys.argv[6]))
data = random.Random(seed).randbytes(nsend)
ls = socket.socket()
ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
ls.bind((ip, port))
ls.listen(64)
ls.settimeout(limit)
print("ready", flush=True)
for _ in range(count):
    c, peer = ls.accept()
    c.settimeout(limit)
    t0 = time.perf_counter()
    if data:
        c.sendall(data)
    h, n = hashlib.sha256(), 0
    while True:
        k = c.recv(262144)
        if not k:
            break
        h.update(k)
        n += len(k)
    c.close()
    print(json.dumps({"n": n, "sha": h.hexdigest(), "secs": time.perf_counter() - t0,
                      "peer": list(peer)}), flush=True)
ls.close()
"""


def start_kernel_server(ns, port, count, nsend=0, seed=0, limit=30.0):
    """KERNEL_SERVER in the namespace; returns the Popen once it listens."""
    p = ns.popen([sys.executable, "-u", "-c", KERNEL_SERVER, KERNEL_IP, str(port), str(count),
                  str(nsend), str(seed), str(limit)], text=True)
    line = p.stdout.readline()
    if line.strip() != "ready":
        p.kill()
        raise RuntimeError("kernel server did not start: %r %r" % (line, p.stderr.read()))
    return p


def kernel_download(ns, port, limit=30.0):
    r = ns.run([sys.executable, "-c", DOWNLOAD_CLIENT, STACK_IP, str(port), str(limit)],
               timeout=limit + 10, check=False)
    if r.returncode:
        raise RuntimeError("download client failed: %s" % r.stderr.strip()[-800:])
    return json.loads(r.stdout)


def kernel_upload(ns, port, n, seed, limit=30.0):
    r = ns.run([sys.executable, "-c", UPLOAD_CLIENT, STACK_IP, str(port), str(n), str(seed), str(limit)],
               timeout=limit + 10, check=False)
    if r.returncode:
        raise RuntimeError("upload client failed: %s" % r.stderr.strip()[-800:])
    return json.loads(r.stdout)


def wait_until(fn, limit_s, step=0.01):
    """Poll fn() until true or limit_s passed; returns its last value."""
    deadline = time.monotonic() + limit_s
    while True:
        v = fn()
        if v or time.monotonic() > deadline:
            return v
        time.sleep(step)


# --- the figures ---

class _Host:
    """A namespace with a TAP (kernel at KERNEL_IP), a stack in a thread."""

    def __init__(self, tcp, wrap=None, idle_s=0.005):
        from hostrun import StackThread
        from netns import Namespace, create_tap_in_ns
        from uipy.stack import Stack
        self.ns = Namespace().create()
        self.thread = None
        try:
            self.tap = create_tap_in_ns(self.ns, KERNEL_IP + "/24")
            nic = wrap(self.tap) if wrap else self.tap
            self.stack = Stack(nic, ip=STACK_IP, gateway=KERNEL_IP, tcp=tcp)
            self.thread = StackThread(self.stack, nic, idle_s=idle_s).start()
        except BaseException:
            self.close()
            raise

    def call(self, fn, timeout=5.0):
        return self.thread.call(fn, timeout)

    def close(self):
        try:
            if self.thread is not None:
                self.thread.stop()
        finally:
            self.ns.delete()


def _throughput(size=10 * MB):
    tcp = {"conns": 4, "listeners": 2, "window": 32 * 1460, "queue_slots": 16}
    h = _Host(tcp)
    try:
        data = payload(size, 1)
        src = Source({5001: data}, chunk=32768)
        sink = Sink()
        h.call(lambda s: s.listen(5001, src))
        h.call(lambda s: s.listen(5002, sink))
        h.ns.run(["ping", "-c", "1", "-W", "1", STACK_IP], check=False)      # ARP settled
        down = kernel_download(h.ns, 5001, limit=40)
        if down["n"] != size or down["sha"] != sha(data):
            raise RuntimeError("download corrupted: %r" % down)
        up = kernel_upload(h.ns, 5002, size, 1, limit=40)
        if up["reply"].split() != [str(size), sha(data)]:
            raise RuntimeError("upload corrupted: %r" % up)
        return {"host_tcp_download_MBps": round(size / MB / down["secs"], 2),
                "host_tcp_upload_MBps": round(size / MB / up["secs"], 2)}
    finally:
        h.close()


def _connect_ms(tries=20):
    h = _Host({"conns": 4, "listeners": 1})
    try:
        server = start_kernel_server(h.ns, 6001, tries + 1, limit=20)
        times = []
        h.ns.run(["ping", "-c", "1", "-W", "1", STACK_IP], check=False)
        for i in range(tries + 1):
            ex = Exchange(b"")
            t0 = h.call(lambda s: (time.perf_counter(), s.connect(KERNEL_IP, 6001, ex))[0])
            if not wait_until(lambda: ex.t_connect is not None, 5):
                raise RuntimeError("connect %d: no CONNECTED (%r)" % (i, ex.events))
            if i:                      # the first one also waits for ARP
                times.append((ex.t_connect - t0) * 1000)
            wait_until(lambda: ex.t_closed is not None, 5)
        server.wait(10)
        return {"tcp_connect_ms": round(statistics.median(times), 3)}
    finally:
        h.close()


def _delayed_ack(size=2 * MB, one_segment_s=6.0):
    from faults import FaultyLink
    faulty = []

    def wrap(tap):
        faulty.append(FaultyLink(tap, seed=1, delay_ms=20, direction="both"))
        return faulty[0]

    tcp = {"conns": 4, "listeners": 1, "window": 32 * 1460, "queue_slots": 16}
    h = _Host(tcp, wrap=wrap, idle_s=0.001)
    try:
        data = payload(size, 2)
        server = start_kernel_server(h.ns, 6002, 2, limit=30)
        h.ns.run(["ping", "-c", "1", "-W", "1", STACK_IP], check=False)
        out = {}
        for name, app in (("delayed_ack_40ms_kBps", Timed(data)),
                          ("uip_one_segment_40ms_kBps", OneSegmentSender(data, one_segment_s))):
            h.call(lambda s: s.connect(KERNEL_IP, 6002, app))
            if not wait_until(lambda: app.t1 is not None or app.errors, 40, 0.05) or app.errors:
                raise RuntimeError("%s: transfer did not finish (%r)" % (name, app.errors))
            got = json.loads(server.stdout.readline())
            sent = app.off if isinstance(app, OneSegmentSender) else size
            if got["n"] != sent or got["sha"] != sha(data[:sent]):
                raise RuntimeError("%s: receiver got %r" % (name, got))
            out[name] = round(sent / 1000 / (app.t1 - app.t0), 1)
        server.wait(10)
        return out
    finally:
        h.close()


def tcp_figures():
    if os.geteuid() != 0:
        print("bench_tcp: not root, TCP host figures skipped")
        return {}
    figures = {}
    figures.update(_throughput())
    figures.update(_connect_ms())
    figures.update(_delayed_ack())
    return figures


if __name__ == "__main__":
    t = time.perf_counter()
    figs = tcp_figures()
    for k, v in figs.items():
        print("%-28s %s" % (k, v))
    print("(%.1f s)" % (time.perf_counter() - t))
