"""Attacks on a small server (issue 11), end to end: firmware-like settings (a
Stack with tcp conns=6, HttpServer max_conns=4 serving firmware/www) in a
StackThread on a TAP in a namespace of its own; the attacks come from inside
that namespace (tools/net/attacks.py): a spoofed SYN flood (sources in
198.19.0.0/16, AF_PACKET on the kernel's TAP interface) while curl fetches
the page, slowloris and clients that never close, a burst of clients larger
than the table, a raw peer with MSS 1, forged segments on an established
connection.  Needs root (skipped locally without it, a failure under CI=true).
"""
import os
import sys
import time

import pytest

from kernel_net import KERNEL_IP, STACK_IP, KernelNet
from levels import ROOT, need_root, tool

URL = "http://%s/" % STACK_IP
PAGE = os.path.join(ROOT, "firmware", "www")
PAGE_BYTES = open(os.path.join(PAGE, "index.html"), "rb").read()
MAX_CONNS = 4
TCP_CONFIG = {"conns": MAX_CONNS + 2}           # as firmware/main.py
N_BURST = 100
GET = b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"


class Server(KernelNet):
    def __init__(self):
        super().__init__()
        self.start(self._build, idle_s=0.002)

    def _build(self, nic):
        from uipy.httpd import HttpServer
        from uipy.stack import Stack
        stack = Stack(nic, ip=STACK_IP, gateway=KERNEL_IP, tcp=TCP_CONFIG)
        self.http = HttpServer(stack, root=PAGE, max_conns=MAX_CONNS)
        return stack

    def states(self):
        return self.call(lambda s: [c.state_name() for c in s.tcp.conns if c.state])

    def evicted(self):
        return self.call(lambda s: self.http.evicted)

    def peer(self, i, **kw):
        from attacks import RawPeer, spoof_ip
        p = RawPeer(self.ns.name, self.tap.kernel_if, self.nic.mac, STACK_IP, spoof_ip(i), **kw)
        self.ns.own(p.sock)
        return p


@pytest.fixture(scope="module")
def server():
    need_root()
    tool("ip")
    tool("curl")
    s = Server()
    try:
        assert s.ns.ping(STACK_IP), "the stack does not answer ping"
        yield s
    finally:
        s.close()


def wait_idle(server, limit_s=8.0):
    """Until the HTTP server holds no connection (earlier tests' clients gone)."""
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline and server.call(lambda s: server.http.active):
        time.sleep(0.1)


def test_syn_flood_page_stays_up(server):
    """~1000 spoofed SYNs/s for 4 s: every fetch succeeds fast, no SYN-RECEIVED
    entry ever, each SYN answered by a cookie."""
    from attacks import FLOOD, FETCH_LOOP, finish_json, start_json
    need_root()
    before = server.stats()
    flood = start_json(server.ns, FLOOD, server.tap.kernel_if, server.nic.mac.hex(), STACK_IP, 80, 1000, 4)
    try:
        time.sleep(0.3)
        fetch = start_json(server.ns, FETCH_LOOP, tool("curl"), URL, 3.2, len(PAGE_BYTES), 200)
        seen = set()
        end = time.monotonic() + 3.5
        while time.monotonic() < end:
            seen.update(server.states())
            time.sleep(0.05)
        got = finish_json(fetch, 20)
    finally:
        sent = finish_json(flood, 20)
    after = server.stats()
    assert not got["fails"], got["fails"][:5]
    assert len(got["times"]) >= 10, got
    assert max(got["times"]) < 1.0, sorted(got["times"])[-5:]
    assert "SYN-RECEIVED" not in seen, seen
    assert sent["sent"] >= 3900 and sent["errors"] == 0, sent
    cookies = after["tcp_syn_cookies"] - before["tcp_syn_cookies"]
    assert cookies >= 0.95 * sent["sent"], (cookies, sent)
    # the flood left nothing behind: every slot is free or a curl's
    assert len([st for st in server.states() if st not in ("TIME-WAIT",)]) <= 1
    print("syn flood: %d SYNs in %.1f s, %d fetches, max %.0f ms" % (
        sent["sent"], sent["secs"], len(got["times"]), 1000 * max(got["times"])))


def test_slowloris_and_idle_clients_evicted(server):
    """All 4 slots held, by 2 slowloris connections (a header byte every
    0.3 s) and 2 keep-alive clients that never close: each new curl still gets
    the page, by evicting the one waiting longest (at least 250 ms) for a request head."""
    from attacks import SLOWLORIS, finish_json, start_json
    need_root()
    wait_idle(server)
    ev0 = server.evicted()
    # two kernel clients served once, then silent on their keep-alive connections
    idle_script = (
        "import socket, sys, time\n"
        "ss = []\n"
        "for _ in range(2):\n"
        "    s = socket.create_connection((sys.argv[1], 80), timeout=5)\n"
        "    s.sendall(b'GET / HTTP/1.1\\r\\nHost: x\\r\\n\\r\\n')\n"
        "    got = b''\n"
        "    while len(got) < %d:\n"
        "        b = s.recv(65536)\n"
        "        if not b: break\n"
        "        got += b\n"
        "    ss.append(s)\n"
        "print('ready', flush=True)\n"
        "time.sleep(float(sys.argv[2]))\n" % len(PAGE_BYTES))
    holder = server.ns.popen([sys.executable, "-c", idle_script, STACK_IP, 6], text=True)
    assert holder.stdout.readline().strip() == "ready"
    loris = start_json(server.ns, SLOWLORIS, STACK_IP, 4, 5, 0.3)   # more than the free slots
    try:
        times = []
        for _ in range(3):
            deadline = time.monotonic() + 3
            while time.monotonic() < deadline and server.call(lambda s: server.http.active) < MAX_CONNS:
                time.sleep(0.05)
            assert server.call(lambda s: server.http.active) == MAX_CONNS
            r = server.ns.run([tool("curl"), "-s", "-S", "--max-time", "5", "-o", "/dev/null", "-w",
                               "%{http_code} %{size_download} %{time_total}", URL], timeout=10, check=False)
            code, size, secs = r.stdout.split()
            assert r.returncode == 0 and code == "200" and int(size) == len(PAGE_BYTES), r
            times.append(float(secs))
        # a held connection becomes evictable after httpd_more.EVICT_MS (250 ms) of waiting for
        # a request head: a newcomer that finds them all younger waits for its
        # retransmission (so a client whose request is in flight is never reset)
        assert max(times) < 1.5, times
        assert server.evicted() >= ev0 + 3
        res = finish_json(loris, 20)
        assert res["connects"] >= 5, res       # evicted, they came back
    finally:
        holder.terminate()
        holder.wait(5)
    print("slowloris: fetches %s s, evicted %d" % (times, server.evicted() - ev0))


def test_burst_larger_than_table(server):
    """100 kernel clients at once (about 17 times the table): all get the page
    within 10 s, none reset.  Clients beyond the free slots get a zero window
    in the SYN-ACK and wait (tcp_wait) until a slot frees, then are let in at
    once; without that they retransmitted in synchronized waves at 0.2, 0.6,
    1.4, 3, 6, 12 s and 300 of them were not all served in 30 s.  Eviction is
    for clients that hold a slot without asking: nobody is evicted here."""
    from attacks import BURST, run_json
    need_root()
    wait_idle(server)
    ev0 = server.evicted()
    w0 = server.stats()["tcp_clients_waiting"]
    res = run_json(server.ns, BURST, STACK_IP, N_BURST, 10, len(PAGE_BYTES), timeout=60)
    evicted = server.evicted() - ev0
    resets = sum(n for e, n in res["errors"].items() if "reset" in e.lower())
    assert resets == 0 and evicted == 0, ("clients reset while their request was in flight", evicted, res)
    assert res["ok"] == N_BURST, res
    assert server.stats()["tcp_clients_waiting"] - w0 > 0, "nobody waited: the burst did not fill the table"
    print("burst of %d: all served, last after %.1f s" % (N_BURST, res["max_s"]))


def test_full_listener_clients_wait_their_turn(server):
    """A listener whose one slot is held: the next clients' SYN-ACKs offer a
    zero window, their handshake ACK (or a zero-window probe, seq = ISN) puts
    them in the waiting room, and each time a slot frees the longest-waiting
    one gets an ACK opening the window at once, then its request is served.
    One that comes back by itself while a slot can be made for it (on_full
    gives a victim) gets in directly, and leaves the room."""
    from attacks import ACK, SYN, mss_option, parse_tcp
    from uipy.tcp_conn import CONNECTED, NEWDATA
    need_root()
    held = []
    evict = []

    def handler(c, ev):
        if ev & CONNECTED:
            held.append(c)
        if ev & NEWDATA:
            c.send(b"ok:" + bytes(c.data))
            c.close()
    server.call(lambda s: s.tcp.listen(7007, handler, 1, on_full=lambda: evict.pop() if evict else None))
    peers = [server.peer(7001 + i, port=7007) for i in range(3)]

    def waiting():
        return server.call(lambda s: s.tcp.waiting.count)
    try:
        w0 = server.stats()["tcp_clients_waiting"]
        first, second, third = peers
        assert first.open()
        assert first.frames and parse_tcp(first.frames[-1])[7] > 0      # a slot free: window open
        assert second.open()
        assert parse_tcp(second.frames[-1])[7] == 0                      # full: told to wait
        third.send(SYN, seq=third.iss, ack=0, opts=mss_option(1460))
        third.snd_nxt = third.iss + 1
        synack = [p for p in third.segments(1.0) if p[6] & (SYN | ACK) == SYN | ACK]
        assert synack and synack[0][7] == 0
        third.irs = synack[0][4]
        third.rcv_nxt = (third.irs + 1) & 0xFFFFFFFF
        third.send(ACK, seq=third.iss)       # its handshake ACK lost; a zero-window probe
        deadline = time.monotonic() + 3
        while server.stats()["tcp_clients_waiting"] - w0 < 2 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert server.stats()["tcp_clients_waiting"] - w0 == 2 and waiting() == 2
        assert server.call(lambda s: len(held)) == 1

        server.call(lambda s: evict.append(held[0]) and None)
        third.send(ACK, seq=third.iss)       # probes again: the first is given up for it
        opened = next((p for p in third.segments(1.0) if p[6] & ACK and p[7] > 0), None)
        assert opened, "the returning client was not let in"
        assert any(p[6] & 0x04 for p in first.segments(0.5)), "the victim was not reset"
        assert waiting() == 1, "the client let in is still in the waiting room"
        t0 = time.monotonic()
        assert third.request(b"three", timeout=5) == b"ok:three"        # ...and closing frees the slot
        opened = next((p for p in second.segments(1.0) if p[6] & ACK and p[7] > 0), None)
        assert opened and time.monotonic() - t0 < 0.5, "the waiting client's window did not open"
        assert second.request(b"two", timeout=5) == b"ok:two"
        assert waiting() == 0
        for p in (second, third):
            p.close()
    finally:
        server.call(lambda s: [c.abort() for c in held if c.state] and None)
        server.call(lambda s: s.tcp.unlisten(7007))
        for p in peers:
            p.close_socket()


def test_mss_1_peer_gets_floor(server):
    """A peer announcing MSS 1: the stack's segments carry 64 bytes (the
    floor), the page arrives whole, the wire costs about 1.9 bytes per byte."""
    from attacks import http_body, parse_tcp
    need_root()
    wait_idle(server)
    p = server.peer(1001)
    try:
        assert p.open(mss=1), "no SYN-ACK"
        data = p.request(GET, timeout=10)
        p.close()
    finally:
        p.close_socket()
    head, body = http_body(data)
    assert head.startswith(b"HTTP/1.1 200 OK") and body == PAGE_BYTES, (head, len(body))
    sizes = [len(seg[9]) for seg in map(parse_tcp, p.frames) if seg[9]]
    assert max(sizes) == 64 and sum(sizes) == len(data), sizes
    # a short segment only where one of the server's send objects ends (the
    # head, each 1460-byte chunk of the file): segments are not merged across them
    small = [n for n in sizes if n < 64]
    assert len(small) <= 2 + len(PAGE_BYTES) // 1460, sizes
    ratio = sum(len(f) for f in p.frames) / len(PAGE_BYTES)
    assert ratio < 2.2, ratio
    print("MSS 1: %d data segments, wire ratio %.2f" % (len(sizes), ratio))


def test_forged_segments_rate_limited(server):
    """On an established connection, 600 forged segments in 1.5 s (in-window
    RSTs, SYNs, out-of-window data, ACKs of data never sent... ) get a few
    ACKs per second back; the connection survives and serves the page."""
    from attacks import ACK, PSH, RST, SYN, http_body
    need_root()
    wait_idle(server)
    s0 = server.stats()
    p = server.peer(1002)
    try:
        assert p.open(mss=1460)
        list(p.segments(0.2))                  # (nothing expected)
        n0 = len(p.frames)
        t0 = time.monotonic()
        kinds = 0
        for i in range(600):
            k = i % 4
            if k == 0:
                p.send(RST, seq=p.snd_nxt + 1 + i * 7)                       # in window, not exact
            elif k == 1:
                p.send(SYN, seq=p.snd_nxt + 10 + i)                          # SYN in window
            elif k == 2:
                p.send(PSH | ACK, seq=p.snd_nxt + 200000 + i, payload=b"x" * 10)   # out of window
            else:
                p.send(ACK, seq=p.snd_nxt, ack=p.rcv_nxt - 300000, payload=b"y")  # ACK far in the past
            kinds += 1
            if i % 40 == 39:
                list(p.segments(0.1))          # pace: 600 in about 1.5 s
        list(p.segments(0.5))
        secs = time.monotonic() - t0
        answers = p.frames[n0:]
        assert server.call(lambda s: [c.state_name() for c in s.tcp.conns if c.rport == p.sport]) == ["ESTABLISHED"]
        data = p.request(GET, timeout=10)
        p.close()
    finally:
        p.close_socket()
    s1 = server.stats()
    # one ACK per 500 ms per connection, at most
    assert len(answers) <= secs / 0.5 + 2, (len(answers), secs)
    assert all(f[47] & (RST | SYN) == 0 for f in answers)
    assert s1["tcp_ack_limited"] - s0["tcp_ack_limited"] >= 500
    head, body = http_body(data)
    assert head.startswith(b"HTTP/1.1 200 OK") and body == PAGE_BYTES
    print("forged: %d segments in %.1f s -> %d ACKs" % (kinds, secs, len(answers)))


def test_nothing_left_behind(server):
    need_root()
    deadline = time.monotonic() + 12
    live = None
    while time.monotonic() < deadline:
        live = [st for st in server.states() if st != "TIME-WAIT"]
        if not live and server.call(lambda s: server.http.active) == 0:
            break
        time.sleep(0.2)
    assert live == [] and server.call(lambda s: server.http.active) == 0
    assert server.stats()["handler_errors"] == 0
    assert server.call(lambda s: server.http.no_memory) == 0
