"""HTTP figures on the host (needs root): uipy's HttpServer on CPython over a
TAP in a network namespace, the Linux kernel as client.

    from bench_http import http_figures
    figures.update(http_figures())     # {} (and a note) when not root

page_ttfb_ms: median time from connect() to the first byte of the answer to
    GET / (firmware/www/index.html), a new connection each time.
page_load_ms: the same, to the last byte of the page.
first_contact_ttfb_ms: page_ttfb_ms for a client the stack has no ARP entry
    for (its cache emptied before each fetch): the SYN-ACK meets the miss and
    goes out as soon as the ARP reply is in.
status_rps: /status.json answers per second: 2 kernel clients, each on a
    keep-alive connection sending requests back to back for about 3 s.  The
    server runs with max_requests high enough not to close them meanwhile: a
    server-side close leaves TIME-WAIT, which (in the current tcp.py) keeps one
    of the listener's max_conns backlog slots for 2 MSL, and the next SYNs wait
    1 s + 2 s for their retransmission (about 100 requests/s with max_requests=100).
http_1mb_MBps: one 1 MB static file, connect to last byte, checked by sha256.
"""
import hashlib
import json
import os
import shutil
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
if os.path.join(ROOT, "tools") not in sys.path:
    sys.path.insert(0, os.path.join(ROOT, "tools"))
import paths  # noqa: E402,F401  (tools/paths.py: lib, drivers, tools/emu, net, bench, device)

STACK_IP = "198.18.0.2"
KERNEL_IP = "198.18.0.1"
TCP_CONFIG = {"conns": 8, "listeners": 2, "window": 8 * 1460, "queue_slots": 4}

# Kernel-side client: bounded in count and time, prints one JSON line.
CLIENT = r"""
import hashlib, json, socket, statistics, sys, threading, time
ip, what = sys.argv[1], sys.argv[2]

def read_response(s, buf=b""):
    while b"\r\n\r\n" not in buf:
        b = s.recv(65536)
        if not b:
            raise EOFError("closed")
        buf += b
    head, _, body = buf.partition(b"\r\n\r\n")
    n = [int(l.split(b":")[1]) for l in head.split(b"\r\n") if l.lower().startswith(b"content-length:")][0]
    while len(body) < n:
        b = s.recv(65536)
        if not b:
            raise EOFError("short body")
        body += b
    if b"connection: close" in head.lower():
        s.close()                     # max_requests reached: the server closes
        return int(head.split()[1]), body[:n], None
    return int(head.split()[1]), body[:n], body[n:]

if what == "page":
    ttfb, load = [], []
    for _ in range(int(sys.argv[3])):
        t0 = time.perf_counter()
        s = socket.create_connection((ip, 80), timeout=5)
        s.sendall(b"GET / HTTP/1.1\r\nHost: dev\r\n\r\n")
        first = s.recv(65536)
        t1 = time.perf_counter()
        code, body, _ = read_response(s, first)
        t2 = time.perf_counter()
        s.close()
        assert code == 200 and len(body) > 1000
        ttfb.append((t1 - t0) * 1000)
        load.append((t2 - t0) * 1000)
        time.sleep(0.02)
    print(json.dumps({"ttfb": statistics.median(ttfb), "load": statistics.median(load)}))
elif what == "status":
    secs, conns = float(sys.argv[3]), int(sys.argv[4])
    counts, errors = [0] * conns, []
    def worker(k):
        try:
            end = time.perf_counter() + secs
            rest = None
            while time.perf_counter() < end and counts[k] < 200000:
                if rest is None:
                    s = socket.create_connection((ip, 80), timeout=5)
                    rest = b""
                s.sendall(b"GET /status.json HTTP/1.1\r\nHost: dev\r\n\r\n")
                code, body, rest = read_response(s, rest)
                assert code == 200 and body.startswith(b"{")
                counts[k] += 1
            if rest is not None:
                s.close()
        except Exception as e:
            errors.append(repr(e))
    t0 = time.perf_counter()
    ts = [threading.Thread(target=worker, args=(k,)) for k in range(conns)]
    for t in ts: t.start()
    for t in ts: t.join(secs + 10)
    print(json.dumps({"rps": sum(counts) / (time.perf_counter() - t0), "errors": errors}))
elif what == "big":
    t0 = time.perf_counter()
    s = socket.create_connection((ip, 80), timeout=10)
    s.sendall(b"GET /big.bin HTTP/1.1\r\nHost: dev\r\n\r\n")
    code, body, _ = read_response(s)
    t1 = time.perf_counter()
    s.close()
    print(json.dumps({"secs": t1 - t0, "size": len(body), "sha": hashlib.sha256(body).hexdigest()}))
"""


def _client(ns, *args, timeout=60):
    r = ns.run([sys.executable, "-c", CLIENT, STACK_IP] + [str(a) for a in args], timeout=timeout, check=False)
    if r.returncode:
        raise RuntimeError("bench_http client failed: " + r.stderr[-2000:])
    return json.loads(r.stdout)


def http_figures():
    if os.geteuid() != 0:
        print("bench_http: not root, HTTP host figures skipped")
        return {}
    from hostrun import StackThread
    from netns import Namespace, create_tap_in_ns
    from uipy.httpd import HttpServer
    from uipy.stack import Stack

    www = tempfile.mkdtemp(prefix="uipy-bench-www-")
    ns = Namespace().create()
    thread = None
    try:
        shutil.copy(os.path.join(ROOT, "firmware", "www", "index.html"), os.path.join(www, "index.html"))
        big = os.urandom(1 << 20)
        with open(os.path.join(www, "big.bin"), "wb") as f:
            f.write(big)
        tap = create_tap_in_ns(ns, KERNEL_IP + "/24")
        stack = Stack(tap, ip=STACK_IP, gateway=KERNEL_IP, tcp=TCP_CONFIG)
        HttpServer(stack, root=www, max_conns=4, name="bench", max_requests=1 << 20)
        thread = StackThread(stack, tap, idle_s=0.002).start()
        ns.run(["ping", "-c", "1", "-W", "2", STACK_IP], check=False)
        page = _client(ns, "page", 30)
        first = []
        for _ in range(10):
            thread.call(lambda s: s.arp.clear())
            first.append(_client(ns, "page", 1)["ttfb"])
        first.sort()
        status = _client(ns, "status", 3, 2)
        if status["errors"]:
            raise RuntimeError("bench_http: status clients failed: %s" % status["errors"])
        dl = _client(ns, "big")
        if dl["size"] != len(big) or dl["sha"] != hashlib.sha256(big).hexdigest():
            raise RuntimeError("bench_http: 1 MB download corrupted")
        errors = thread.call(lambda s: s.stats["handler_errors"])
        if errors:
            raise RuntimeError("bench_http: %d handler errors in the stack" % errors)
        return {"page_ttfb_ms": round(page["ttfb"], 2), "page_load_ms": round(page["load"], 2),
                "first_contact_ttfb_ms": round(first[len(first) // 2], 2),
                "status_rps": round(status["rps"], 1),
                "http_1mb_MBps": round(len(big) / dl["secs"] / 1e6, 2)}
    finally:
        try:
            if thread is not None:
                thread.stop()
        finally:
            ns.delete()
            shutil.rmtree(www, ignore_errors=True)


def chip_page_figures():
    """Time to first byte and full load of the page through each emulated chip
    on the virtual board (driver + register-level emulator + TAP)."""
    if os.geteuid() != 0:
        print("bench_http: not root, per-chip page figures skipped")
        return {}
    import boards
    from hostrun import StackThread
    from netns import Namespace, create_tap_in_ns
    from uipy.httpd import HttpServer
    from uipy.stack import Stack

    figures = {}
    for chip in ("w5500", "enc28j60"):
        with Namespace() as ns:
            tap = create_tap_in_ns(ns, KERNEL_IP + "/24")
            ns.own(tap)
            nic = boards.nic("virtual", chip=chip, tap=tap)
            stack = Stack(nic, ip=STACK_IP, gateway=KERNEL_IP, tcp=TCP_CONFIG)
            HttpServer(stack, root=os.path.join(ROOT, "firmware", "www"), max_conns=4, name="bench",
                       max_requests=1 << 20)
            with StackThread(stack, nic, idle_s=0.002):
                ns.run(["ping", "-c", "1", "-W", "2", STACK_IP], check=False)
                page = _client(ns, "page", 30)
            figures["page_ttfb_ms_" + chip] = round(page["ttfb"], 2)
            figures["page_load_ms_" + chip] = round(page["load"], 2)
    return figures


if __name__ == "__main__":
    t = time.perf_counter()
    figs = http_figures()
    figs.update(chip_page_figures())
    for k, v in figs.items():
        print("%-28s %s" % (k, v))
    print("(%.1f s)" % (time.perf_counter() - t))
