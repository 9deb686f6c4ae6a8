"""Frame links for host tests: pipe, fault injector, pcap capture, TAP and veth
in network namespaces (those two need root)."""
import socket
import struct
import subprocess
import sys
import time

import pytest

from faults import FaultyLink
from levels import need_root, tool
from pcap import CaptureLink, PcapWriter
from pipe import make_pipe

MAC_A = bytes.fromhex("020000000001")
MAC_B = bytes.fromhex("020000000002")
STACK_IP = "198.18.0.2"
KERNEL_IP = "198.18.0.1"


def frame(i, size=60):
    """A numbered test frame: broadcast, ethertype 0x88b5 (local experimental)."""
    body = struct.pack("!I", i) + bytes((i + k) & 0xFF for k in range(size - 18))
    return b"\xff" * 6 + MAC_A + b"\x88\xb5" + body


def number(f):
    return struct.unpack_from("!I", f, 14)[0]


def drain(link, limit=1000):
    buf = bytearray(2048)
    mv = memoryview(buf)
    out = []
    for _ in range(limit):
        n = link.recv_into(mv)
        if not n:
            break
        out.append(bytes(buf[:n]))
    return out


# --- pipe ---

def test_pipe_both_ways_byte_exact():
    a, b = make_pipe(MAC_A, MAC_B)
    buf = bytearray(frame(1, 100))
    assert a.send(memoryview(buf), 80)
    buf[20] ^= 0xFF                     # sender reuses its buffer: the pipe has a copy
    assert drain(b) == [frame(1, 100)[:80]]
    assert b.send(frame(2), 60) and b.send(frame(3, 1514), 1514)
    assert drain(a) == [frame(2), frame(3, 1514)]
    assert drain(a) == [] and drain(b) == []
    assert a.mac == MAC_A and b.mac == MAC_B


def test_pipe_capacity_and_link_state():
    a, b = make_pipe(MAC_A, MAC_B, capacity=4)
    sent = [a.send(frame(i), 60) for i in range(6)]
    assert sent == [True] * 4 + [False] * 2
    assert a.counters["dropped_full"] == 2 and a.counters["sent"] == 4
    assert [number(f) for f in drain(b)] == [0, 1, 2, 3]
    a.pipe.set_up(False)
    assert not a.link_up() and not b.link_up()
    assert not b.send(frame(9), 60)
    assert b.counters["dropped_down"] == 1 and drain(a) == []
    a.pipe.set_up(True)
    assert a.link_up() and b.send(frame(10), 60) and len(drain(a)) == 1


# --- fault injector ---

class VClock:
    def __init__(self):
        self.t = 5000

    def __call__(self):
        return self.t

    def advance(self, ms):
        self.t += ms


class RealClock:
    def __call__(self):
        return int(time.monotonic() * 1000)

    def advance(self, ms):
        time.sleep(ms / 1000)


@pytest.fixture(params=["virtual", "real"])
def clock(request):
    return VClock() if request.param == "virtual" else RealClock()


def through(n, clock, direction="tx", settle_ms=0, flush=False, **faults):
    """Send frames 0..n-1 through a FaultyLink on a pipe; the frames that came out."""
    a, b = make_pipe(MAC_A, MAC_B, capacity=10000)
    if direction == "tx":
        f = FaultyLink(a, clock=clock, direction="tx", **faults)
        for i in range(n):
            f.send(frame(i), 60)
        if settle_ms:
            clock.advance(settle_ms)
            f.poll()
        if flush:
            f.flush()
        return drain(b), f
    f = FaultyLink(b, clock=clock, direction="rx", **faults)
    for i in range(n):
        a.send(frame(i), 60)
    out = drain(f)
    if settle_ms:
        clock.advance(settle_ms)
        out += drain(f)
    if flush:
        f.flush()
        out += drain(f)
    return out, f


def test_faults_deterministic(clock):
    # A long reorder hold: a slow machine must not release a frame by timeout.
    kw = dict(loss=0.2, duplicate=0.2, reorder=0.2, corrupt=0.2, reorder_hold_ms=100000, flush=True)
    out1, f1 = through(300, clock, seed=42, **kw)
    out2, f2 = through(300, clock, seed=42, **kw)
    out3, _ = through(300, clock, seed=43, **kw)
    assert out1 == out2 and f1.counters == f2.counters
    assert out1 != out3
    for what in ("lost", "duplicated", "reordered", "corrupted"):
        assert f1.counters["tx_" + what] > 20, f1.counters


def test_fault_decisions_do_not_shift_with_settings(clock):
    # Frame k's loss draw is the same whether or not duplication is on.
    out1, _ = through(200, clock, seed=5, loss=0.3)
    out2, _ = through(200, clock, seed=5, loss=0.3, duplicate=1.0)
    assert sorted(set(number(f) for f in out1)) == sorted(set(number(f) for f in out2))


@pytest.mark.parametrize("direction", ["tx", "rx"])
def test_loss(clock, direction):
    out, f = through(400, clock, direction, seed=1, loss=0.25)
    lost = f.counters[direction + "_lost"]
    assert 60 < lost < 140
    assert len(out) == 400 - lost
    assert [number(x) for x in out] == sorted(number(x) for x in out)


@pytest.mark.parametrize("direction", ["tx", "rx"])
def test_duplicate(clock, direction):
    out, f = through(50, clock, direction, seed=1, duplicate=1.0)
    assert out == [frame(i) for i in range(50) for _ in (0, 1)]
    assert f.counters[direction + "_duplicated"] == 50


@pytest.mark.parametrize("direction", ["tx", "rx"])
def test_reorder(clock, direction):
    # reorder=1: every frame is held unless one already is -> pairs swap.
    out, f = through(6, clock, direction, seed=1, reorder=1.0)
    assert [number(x) for x in out] == [1, 0, 3, 2, 5, 4]
    # An odd frame out is held only for reorder_hold_ms, or until flush().
    out, f = through(3, clock, direction, seed=1, reorder=1.0, reorder_hold_ms=50)
    assert [number(x) for x in out] == [1, 0]
    assert f.pending() == 1
    clock.advance(60)
    f.poll()
    rest = drain(f.inner.peer if direction == "tx" else f)
    assert [number(x) for x in rest] == [2] and f.pending() == 0


def test_reorder_flush():
    out, f = through(1, VClock(), "tx", seed=1, reorder=1.0)
    assert out == [] and f.pending() == 1
    f.flush()
    assert drain(f.inner.peer) == [frame(0)]


@pytest.mark.parametrize("direction", ["tx", "rx"])
def test_corrupt(clock, direction):
    out, f = through(100, clock, direction, seed=3, corrupt=1.0)
    assert len(out) == 100 and f.counters[direction + "_corrupted"] == 100
    for i, got in enumerate(out):
        want = frame(i)
        diff = [(k, got[k] ^ want[k]) for k in range(len(want)) if got[k] != want[k]]
        assert len(diff) == 1, diff
        k, bits = diff[0]
        assert k >= 14 and bin(bits).count("1") == 1   # one bit, past the Ethernet header


@pytest.mark.parametrize("direction", ["tx", "rx"])
def test_delay(clock, direction):
    a, b = make_pipe(MAC_A, MAC_B)
    f = FaultyLink(a if direction == "tx" else b, seed=1, delay_ms=40, clock=clock, direction=direction)
    t0 = clock()
    if direction == "tx":
        f.send(frame(7), 60)
        far = b
    else:
        a.send(frame(7), 60)
        far = f
    assert drain(far) == [] and f.pending() == 1
    assert 0 < f.next_due() <= 40
    clock.advance(20)
    f.poll()
    assert drain(far) == []
    deadline = time.monotonic() + 2
    got = []
    while not got and time.monotonic() < deadline:
        clock.advance(5)
        f.poll()
        got = drain(far)
    assert got == [frame(7)]
    assert clock() - t0 >= 40
    assert f.pending() == 0 and f.next_due() is None
    assert f.counters[direction + "_delayed"] == 1


def test_delay_jitter_bounds():
    clock = VClock()
    out, f = through(100, clock, seed=9, delay_ms=10, jitter_ms=20)
    assert out == [] and f.pending() == 100
    clock.advance(9)
    f.poll()
    assert drain(f.inner.peer) == []
    clock.advance(31)       # now 40 ms: everything due (at most 10 + 20)
    f.poll()
    got = drain(f.inner.peer)
    assert sorted(number(x) for x in got) == list(range(100))
    assert [number(x) for x in got] != list(range(100))   # jitter lets frames overtake


def test_faults_other_direction_untouched():
    a, b = make_pipe(MAC_A, MAC_B)
    f = FaultyLink(b, seed=1, loss=1.0, direction="rx")
    a.send(frame(1), 60)
    assert drain(f) == []
    f.send(frame(2), 60)                 # tx passes straight through
    assert drain(a) == [frame(2)]
    assert f.mac == MAC_B and f.link_up()


# --- pcap ---

def test_pcap_readable_by_tshark_and_scapy(tmp_path):
    path = str(tmp_path / "links.pcap")
    a, b = make_pipe(MAC_A, MAC_B)
    frames = [arp_request(MAC_A, STACK_IP, KERNEL_IP), frame(1, 100), frame(2, 1514)]
    with PcapWriter(path) as w:
        cap = CaptureLink(a, w)
        for fr in frames:
            cap.send(fr, len(fr))
        b.send(frame(3, 64), 64)
        assert drain(cap) == [frame(3, 64)]
        assert w.frames == 4
    want = frames + [frame(3, 64)]

    tshark = tool("tshark")
    r = subprocess.run([tshark, "-r", path, "-T", "fields", "-e", "frame.len", "-e", "eth.type"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    rows = [line.split("\t") for line in r.stdout.strip().splitlines()]
    assert [int(x[0]) for x in rows] == [len(f) for f in want]
    assert rows[0][1] == "0x0806"

    from scapy.utils import rdpcap
    pkts = rdpcap(path)
    assert [bytes(p) for p in pkts] == want
    assert all(float(p.time) > 1e9 for p in pkts)


# --- kernel peers in namespaces ---

def ip4(s):
    return socket.inet_aton(s)


def arp_request(src_mac, src_ip, target_ip):
    return (b"\xff" * 6 + src_mac + b"\x08\x06"
            + struct.pack("!HHBBH", 1, 0x0800, 6, 4, 1)
            + src_mac + ip4(src_ip) + b"\x00" * 6 + ip4(target_ip))


def is_arp_reply(f, mac):
    return (len(f) >= 42 and f[0:6] == mac and f[12:14] == b"\x08\x06"
            and f[20:22] == b"\x00\x02" and f[28:32] == ip4(KERNEL_IP)
            and f[32:38] == mac and f[38:42] == ip4(STACK_IP))


def csum(data):
    if len(data) % 2:
        data += b"\x00"
    s = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return s


def udp_checksum_ok(f):
    ihl = (f[14] & 0x0F) * 4
    ip = f[14:14 + ihl]
    total = struct.unpack_from("!H", f, 16)[0]
    udp = f[14 + ihl:14 + total]
    pseudo = ip[12:20] + struct.pack("!BBH", 0, 17, len(udp))
    return csum(ip) == 0xFFFF and csum(pseudo + udp) == 0xFFFF


def wait_for(link, pred, seconds=3.0):
    """Frames read until one matches pred (returned last), within seconds."""
    buf = bytearray(2048)
    seen = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        link.wait(0.05)
        n = link.recv_into(memoryview(buf))
        if n:
            seen.append(bytes(buf[:n]))
            if pred(seen[-1]):
                return seen
    pytest.fail("no matching frame within %.1fs; saw %d frames" % (seconds, len(seen)))


@pytest.fixture
def ns():
    need_root()
    from netns import Namespace
    n = Namespace()
    try:
        n.create()
        yield n
    finally:
        n.delete()


@pytest.fixture
def wire_ns():
    need_root()
    from netns import Namespace
    n = Namespace()
    try:
        n.create()
        yield n
    finally:
        n.delete()


def arp_then_udp(ns, link):
    """ARP for the kernel from the link side, then a UDP datagram from the
    kernel: both arrive, with complete checksums."""
    req = arp_request(link.mac, STACK_IP, KERNEL_IP)
    assert link.send(req, len(req))
    seen = wait_for(link, lambda f: is_arp_reply(f, link.mac))
    assert req not in seen                      # our own frame is not read back
    # The kernel learnt our MAC from the request.
    assert ns.neigh_mac(STACK_IP) == link.mac
    assert ns.neigh_state(STACK_IP) in ("STALE", "REACHABLE", "DELAY", "PROBE")

    code = ("import socket; s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM);"
            "s.sendto(b'x' * 300, ('%s', 9999))" % STACK_IP)
    ns.run([sys.executable, "-c", code])
    seen = wait_for(link, lambda f: f[12:14] == b"\x08\x00" and f[23] == 17)
    assert udp_checksum_ok(seen[-1])


def test_tap_in_namespace(ns):
    from netns import create_tap_in_ns
    tap = create_tap_in_ns(ns, KERNEL_IP + "/24")
    out = ns.run(["ip", "-br", "addr", "show", "dev", tap.kernel_if]).stdout
    assert KERNEL_IP + "/24" in out
    # A TAP's operstate stays UNKNOWN; the flags tell whether it is up with carrier.
    flags = ns.run(["ip", "link", "show", "dev", tap.kernel_if]).stdout
    assert ",UP," in flags and "LOWER_UP" in flags
    # The interface is in ns only, and the fd opened before the move still works.
    r = subprocess.run(["ip", "link", "show", tap.kernel_if], capture_output=True, text=True)
    assert r.returncode != 0
    arp_then_udp(ns, tap)


@pytest.mark.parametrize("separate_wire", [False, True])
def test_veth_in_namespace(ns, wire_ns, separate_wire):
    from netns import create_veth_in_ns
    link = create_veth_in_ns(ns, KERNEL_IP + "/24", wire_ns=wire_ns if separate_wire else None)
    feats = ns.run(["ethtool", "-k", link.kernel_if]).stdout
    assert "tx-checksumming: off" in feats and "rx-checksumming: off" in feats
    arp_then_udp(ns, link)


def test_packet_link_skips_outgoing(ns):
    # A packet socket never reads back what it sent itself, but it does see what
    # others send out of the interface (another socket, the kernel): skipped.
    from netns import create_veth_in_ns
    from packet_link import PacketLink
    link = create_veth_in_ns(ns, KERNEL_IP + "/24")
    other = ns.own(PacketLink(link.ifname, netns=ns.name))
    f = frame(5)
    assert other.send(f, len(f))
    time.sleep(0.05)
    assert link.recv_into(memoryview(bytearray(2048))) == 0
    assert link.outgoing_skipped == 1


def test_namespace_cleanup_and_address_guard():
    need_root()
    from netns import Namespace, check_addr, create_tap_in_ns
    with pytest.raises(ValueError):
        check_addr("10.0.0.1/24")
    with pytest.raises(ValueError):
        check_addr("198.18.0.1/8")
    check_addr("198.19.255.1/24")
    with Namespace() as n:
        with pytest.raises(ValueError):
            n.run(["ping", "-c1", "192.0.2.1"])
        with pytest.raises(ValueError):
            create_tap_in_ns(n, "192.168.1.1/24")
        tap = create_tap_in_ns(n, "198.18.5.1/24")
        name, ifname = n.name, tap.kernel_if
        p = n.popen(["sleep", "30"])
    assert p.poll() is not None                          # background process stopped
    assert tap.fd == -1                                   # TAP closed with the namespace
    assert name not in subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    assert subprocess.run(["ip", "link", "show", ifname], capture_output=True).returncode != 0
