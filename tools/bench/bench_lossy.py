"""Loss recovery against the kernel (needs root): 2% of frames dropped each
way by the seeded user-space fault injector (tools/net/faults.py), median over
SEEDS; everything byte-exact.

lossy_download_1MB_s / lossy_upload_1MB_s: 1 MB from / to the CPython stack
    over a TAP, the kernel as the peer.
lossy_kernel_1MB_s: the kernel to itself on the same kind of link: two
    namespaces whose TAPs a user-space relay joins through the same injector.
segments_per_MB_lossy_download: data segments the stack sent for the lossy
    1 MB download, retransmissions included (1 MB / MSS is 719).
"""
import os
import select
import statistics
import sys
import threading
import time

from bench_tcp import KERNEL_IP, MB, STACK_IP, Sink, Source, _Host, kernel_download, kernel_upload, payload, sha

SEEDS = (1, 2, 3, 4, 5)
LOSS = 0.02
TCP = {"conns": 4, "listeners": 2, "window": 16 * 1460, "queue_slots": 8}

# Kernel-side server for the kernel-to-kernel run: one connection, the data, close.
SERVER = r"""
import random, socket, sys
ip, port, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
data = random.Random(1).randbytes(n)
ls = socket.socket(); ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
ls.bind((ip, port)); ls.listen(1); ls.settimeout(30)
print("ready", flush=True)
c, _ = ls.accept(); c.settimeout(30)
c.sendall(data)
c.close()
"""


class SegmentCount:
    """Counts the TCP segments with data the stack sends (outside the injector)."""

    def __init__(self, inner):
        self.inner = inner
        self.mac = inner.mac
        self.data_segments = 0

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def send(self, mv, n):
        if n > 54 and mv[12] == 0x08 and mv[13] == 0 and mv[23] == 6:
            total = (mv[16] << 8) | mv[17]
            if total - 20 - (mv[46] >> 4) * 4 > 0:
                self.data_segments += 1
        return self.inner.send(mv, n)


def _uipy(seed):
    from faults import FaultyLink
    links = []

    def wrap(tap):
        links.append(SegmentCount(FaultyLink(tap, seed=seed, loss=LOSS, direction="both")))
        return links[0]
    h = _Host(TCP, wrap=wrap, idle_s=0.002)
    try:
        data = payload(MB, seed)
        src, sink = Source({5001: data}), Sink()
        h.call(lambda s: s.listen(5001, src))
        h.call(lambda s: s.listen(5002, sink))
        h.ns.run(["ping", "-c", "2", "-W", "1", STACK_IP], check=False)
        before = h.call(lambda s: links[0].data_segments)
        down = kernel_download(h.ns, 5001, limit=60)
        segs = h.call(lambda s: links[0].data_segments) - before
        if down["n"] != MB or down["sha"] != sha(data):
            raise RuntimeError("lossy download corrupted: %r" % down)
        up = kernel_upload(h.ns, 5002, MB, seed, limit=60)
        if up["reply"].split() != [str(MB), sha(payload(MB, seed))]:
            raise RuntimeError("lossy upload corrupted: %r" % up)
        return down["secs"], up["secs"], segs
    finally:
        h.close()


def _relay(a, b, stop):
    """Frames between two TAP links until stop is set (b is the faulty one)."""
    buf = bytearray(2048)
    mv = memoryview(buf)
    fds = [a.fileno(), b.fileno()]
    while not stop.is_set():
        r, _, _ = select.select(fds, [], [], 0.05)
        for link, other in ((a, b), (b, a)):
            for _ in range(64):
                n = link.recv_into(mv)
                if not n:
                    break
                other.send(mv, n)


def _kernel(seed):
    from faults import FaultyLink
    from netns import Namespace, create_tap_in_ns
    client, server = Namespace().create(), Namespace().create()
    stop = threading.Event()
    t = None
    try:
        ta = create_tap_in_ns(client, KERNEL_IP + "/24")
        tb = FaultyLink(create_tap_in_ns(server, STACK_IP + "/24"), seed=seed, loss=LOSS, direction="both")
        for ns in (client, server):
            for opt in ("rx", "tx"):                     # whole frames through the relay
                ns.run(["ethtool", "-K", ta.kernel_if if ns is client else tb.kernel_if, opt, "off"],
                       check=False)
        t = threading.Thread(target=_relay, args=(ta, tb, stop), daemon=True)
        t.start()
        p = server.popen([sys.executable, "-u", "-c", SERVER, STACK_IP, "5001", str(MB)], text=True)
        if p.stdout.readline().strip() != "ready":
            raise RuntimeError("kernel server did not start")
        down = kernel_download(client, 5001, limit=60)
        if down["n"] != MB:
            raise RuntimeError("kernel lossy download short: %r" % down)
        return down["secs"]
    finally:
        stop.set()
        if t is not None:
            t.join(2)
        server.delete()
        client.delete()


def lossy_figures():
    if os.geteuid() != 0:
        print("bench_lossy: not root, skipped")
        return {}
    runs = [_uipy(seed) for seed in SEEDS]
    kernel = [_kernel(seed) for seed in SEEDS]
    return {"lossy_download_1MB_s": round(statistics.median(r[0] for r in runs), 3),
            "lossy_upload_1MB_s": round(statistics.median(r[1] for r in runs), 3),
            "segments_per_MB_lossy_download": statistics.median(r[2] for r in runs),
            "lossy_kernel_1MB_s": round(statistics.median(kernel), 3)}


if __name__ == "__main__":
    here = os.path.dirname(os.path.abspath(__file__))
    sys.path[:0] = [os.path.join(here, "..", "..", d) for d in ("lib", "drivers", "tools")]
    import paths  # noqa: F401
    t0 = time.perf_counter()
    for k, v in lossy_figures().items():
        print("%-32s %s" % (k, v))
    print("(%.1f s)" % (time.perf_counter() - t0))
