"""End to end against the Linux kernel: a uipy Stack on a TAP (and once on a
veth through AF_PACKET) in a network namespace of its own, the kernel's ping
and UDP sockets as peers, every frame captured and checked by tshark.
Needs root (skipped locally without it, a failure under CI=true)."""
import json
import re
import subprocess
import sys
import time

import pytest

from kernel_net import KERNEL_IP, STACK_IP, KernelNet
from levels import need_root, tool

ECHO_PORT = 7
CLOSED_PORT = 9


class Session(KernelNet):
    """The kernel on a TAP (or veth), a capturing stack with a UDP echo service."""

    def __init__(self, pcap_path, link="tap"):
        super().__init__(link=link, pcap_path=pcap_path)
        self.start(self._build)

    def _build(self, nic):
        from uipy.stack import Stack
        # tcp=False: these tests cover ARP, IPv4, ICMP and UDP only.
        stack = Stack(nic, ip=STACK_IP, netmask="255.255.255.0", gateway=KERNEL_IP, tcp=False)

        def echo(data, ip, port):
            stack.udp.send_payload(len(data), ip, port, ECHO_PORT)

        stack.udp_bind(ECHO_PORT, echo)
        return stack


@pytest.fixture(scope="module")
def session(tmp_path_factory):
    need_root()
    tool("ip")
    tool("ping")
    s = Session(str(tmp_path_factory.mktemp("e2e") / "kernel.pcap"))
    yield s
    s.close()


def kernel_ping(ns, count, interval="0.01"):
    """ping from the namespace; returns (transmitted, received, rtt avg ms or None)."""
    r = ns.run(["ping", "-n", "-q", "-c", count, "-i", interval, "-W", "1", STACK_IP],
               check=False, timeout=count * 0.05 + 15)
    m = re.search(r"(\d+) packets transmitted, (\d+) received", r.stdout)
    assert m, "no ping summary in %r %r" % (r.stdout, r.stderr)
    rtt = re.search(r"= [\d.]+/([\d.]+)/", r.stdout)
    return int(m.group(1)), int(m.group(2)), float(rtt.group(1)) if rtt else None


def wait_reachable(ns, mac, limit_s=8.0):
    """Neighbour state of the stack's address once REACHABLE (or the last state seen).
    STALE/DELAY/PROBE move on to REACHABLE when the stack answers the unicast probe."""
    deadline = time.monotonic() + limit_s
    while True:
        state = ns.neigh_state(STACK_IP)
        assert state not in ("FAILED", "INCOMPLETE"), state
        assert ns.neigh_mac(STACK_IP) == mac
        if state == "REACHABLE" or time.monotonic() > deadline:
            return state
        # A unicast packet moves STALE on to DELAY, then PROBE.
        ns.run(["ping", "-n", "-q", "-c", "1", "-W", "1", STACK_IP], check=False)
        time.sleep(0.5)


def test_kernel_pings_stack(session):
    need_root()
    before = session.stats()
    sent, received, avg = kernel_ping(session.ns, 100)
    assert (sent, received) == (100, 100)
    assert avg is not None and avg < 50
    after = session.stats()
    assert after["icmp_echo_rx"] - before["icmp_echo_rx"] == 100
    assert wait_reachable(session.ns, session.stack.mac) == "REACHABLE"


UDP_SCRIPT = r"""
import json, socket, sys, time
ip, port, sizes = sys.argv[1], int(sys.argv[2]), json.loads(sys.argv[3])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.connect((ip, port))
s.settimeout(0.5)
bad, retries, deadline = [], 0, time.monotonic() + 20
for n in sizes:
    data = bytes((n * 7 + i * 13) & 0xFF for i in range(n))
    for attempt in range(4):
        s.send(data)
        try:
            got = s.recv(4096)
            break
        except socket.timeout:
            retries += 1
            got = None
    if got != data:
        bad.append(n)
    if time.monotonic() > deadline:
        bad.append("deadline")
        break
# A burst: many datagrams in flight at once, all echoed.
burst = [bytes([k]) * (100 + k) for k in range(64)]
for d in burst:
    s.send(d)
echoed = []
try:
    for _ in burst:
        echoed.append(s.recv(4096))
except socket.timeout:
    pass
print(json.dumps({"bad": bad, "retries": retries, "count": len(sizes),
                  "burst_ok": sorted(echoed) == sorted(burst), "burst_got": len(echoed)}))
"""


def test_udp_echo_every_size(session):
    need_root()
    before = session.stats()
    sizes = list(range(1, 1473))
    r = session.ns.run([sys.executable, "-c", UDP_SCRIPT, STACK_IP, str(ECHO_PORT), json.dumps(sizes)],
                       timeout=40)
    res = json.loads(r.stdout)
    assert res["bad"] == [] and res["count"] == 1472
    assert res["retries"] <= 2, res          # at most the first, on an ARP miss
    assert res["burst_ok"], res
    after = session.stats()
    assert after["udp_tx"] - before["udp_tx"] >= 1472 + 64
    assert after["udp_drop_checksum"] == before["udp_drop_checksum"]
    assert after["handler_errors"] == 0


def test_stack_pings_kernel(session):
    need_root()
    replies = []

    def on_reply(src, seq, rtt):
        replies.append((bytes(src), seq, rtt))

    session.thread.call(lambda s: setattr(s.icmp, "on_echo_reply", on_reply))
    try:
        sent = []
        deadline = time.monotonic() + 5
        seq = 0
        while len(replies) < 8 and time.monotonic() < deadline:
            seq += 1
            if session.thread.call(lambda s: s.ping(KERNEL_IP, seq, size=56)):
                sent.append(seq)
            time.sleep(0.1)
        time.sleep(0.2)
    finally:
        session.thread.call(lambda s: setattr(s.icmp, "on_echo_reply", None))
    assert len(replies) >= 8, (sent, replies)
    assert all(src == bytes([198, 18, 0, 1]) for src, _, _ in replies)
    assert {q for _, q, _ in replies} <= set(sent)
    assert len({q for _, q, _ in replies}) == len(replies)       # no duplicates
    assert all(0 <= rtt < 100 for _, _, rtt in replies), replies
    assert len(sent) - len(replies) <= 2, (sent, replies)         # an ARP miss at most


REFUSED_SCRIPT = r"""
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.connect((sys.argv[1], int(sys.argv[2])))
s.settimeout(3)
s.send(b"anyone there?")
try:
    s.recv(100)
    print("ANSWERED")
except ConnectionRefusedError:
    print("REFUSED")
except socket.timeout:
    print("TIMEOUT")
"""


def test_udp_closed_port_refused(session):
    need_root()
    before = session.stats()
    r = session.ns.run([sys.executable, "-c", REFUSED_SCRIPT, STACK_IP, str(CLOSED_PORT)], timeout=10)
    assert r.stdout.strip() == "REFUSED", (r.stdout, r.stderr)
    after = session.stats()
    assert after["udp_no_port"] - before["udp_no_port"] == 1
    assert after["icmp_unreach_tx"] - before["icmp_unreach_tx"] == 1


def tshark_count(path, dfilter, *prefs):
    args = [tool("tshark"), "-n", "-r", path]
    for p in prefs:
        args += ["-o", p]
    if dfilter:
        args += ["-Y", dfilter]
    args += ["-T", "fields", "-e", "frame.number"]
    r = subprocess.run(args, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    return len(r.stdout.split())


CHECK_PREFS = ("ip.check_checksum:TRUE", "udp.check_checksum:TRUE", "tcp.check_checksum:TRUE")


def check_capture(path, frames, min_frames):
    """tshark reads every frame; none malformed, no bad checksum, no expert
    warning; and the checks really ran (every checksum verified good)."""
    assert frames >= min_frames
    assert tshark_count(path, None) == frames
    assert tshark_count(path, "_ws.malformed", *CHECK_PREFS) == 0
    bad = ('ip.checksum.status == "Bad" || udp.checksum.status == "Bad" || '
           'icmp.checksum.status == "Bad" || tcp.checksum.status == "Bad"')
    assert tshark_count(path, bad, *CHECK_PREFS) == 0
    assert tshark_count(path, "_ws.expert.severity >= warning", *CHECK_PREFS) == 0
    ip_frames = tshark_count(path, "ip", *CHECK_PREFS)
    assert ip_frames >= min_frames // 2
    assert tshark_count(path, 'ip.checksum.status == "Good"', *CHECK_PREFS) == ip_frames
    assert tshark_count(path, 'icmp.checksum.status == "Good"', *CHECK_PREFS) == tshark_count(path, "icmp")
    # (a port unreachable quotes a UDP header whose checksum cannot be verified)
    assert (tshark_count(path, 'udp.checksum.status == "Good" && !icmp', *CHECK_PREFS)
            == tshark_count(path, "udp && !icmp"))


def test_capture_clean_in_tshark(session):
    """Run last: the capture holds the whole session (a little traffic of its own
    first, so it cannot pass on an empty file when run alone)."""
    need_root()
    tool("tshark")
    kernel_ping(session.ns, 20)
    session.flush_capture()
    check_capture(session.pcap_path, session.writer.frames, 40)
    assert session.stats()["handler_errors"] == 0


def test_kernel_pings_stack_over_veth(tmp_path):
    """The same ping over a veth pair read through AF_PACKET (PacketLink)."""
    need_root()
    tool("ip")
    tool("ping")
    tool("ethtool")
    tool("tshark")
    s = Session(str(tmp_path / "veth.pcap"), link="veth")
    try:
        sent, received, avg = kernel_ping(s.ns, 100)
        assert (sent, received) == (100, 100)
        assert wait_reachable(s.ns, s.stack.mac) == "REACHABLE"
        st = s.stats()
        assert st["icmp_echo_rx"] >= 100 and st["handler_errors"] == 0
        s.flush_capture()
        check_capture(s.pcap_path, s.writer.frames, 200)
    finally:
        s.close()
