"""DHCP client on a virtual clock with hand-made server packets: the exact
messages it sends, backoff, lease expiry (which dnsmasq cannot be made to do in
under 2 minutes), leases past the ticks wrap, link flaps, and malformed or
foreign packets (dropped and counted, never raised).  No root needed.

FakeNic and the frame helpers are in udp_frames.py (shared with test_dns.py)."""
import struct

import pytest

from uipy.compat import VirtualClock
from uipy.dhcp import Dhcp
from uipy.stack import Stack
from udp_frames import (BCAST_MAC, CLIENT_MAC, OFFERED, SERVER_IP, FakeNic, arp_reply,
                        arp_request_for, parse_udp, run, udp_frame)

# --- DHCP messages ---

def dhcp_msgs(nic):
    """(dst_ip, bootp payload) of every DHCP message the client sent; clears .sent."""
    out = []
    for f in nic.sent:
        u = parse_udp(f)
        if u and u[3] == 68 and u[4] == 67:
            out.append((u[2], u[5]))
    nic.sent = []
    return out


def options(msg):
    opts = {}
    i = 240
    while i < len(msg) and msg[i] != 255:
        if msg[i] == 0:
            i += 1
            continue
        opts[msg[i]] = msg[i + 2:i + 2 + msg[i + 1]]
        i += 2 + msg[i + 1]
    return opts


def reply(req, kind, yiaddr=OFFERED, lease=10, t1=None, t2=None, server=SERVER_IP,
          mask=b"\xff\xff\xff\x00", router=SERVER_IP, dns=(SERVER_IP,), extra=b""):
    """A BOOTREPLY answering the client's message req."""
    m = bytearray(240)
    m[0], m[1], m[2] = 2, 1, 6
    m[4:8] = req[4:8]                 # xid
    m[10:12] = req[10:12]             # flags
    m[16:20] = yiaddr
    m[20:24] = server or b"\0\0\0\0"
    m[28:44] = req[28:44]             # chaddr
    m[236:240] = b"\x63\x82\x53\x63"
    m += bytes([53, 1, kind])
    if server:
        m += bytes([54, 4]) + server
    if lease is not None:
        m += bytes([51, 4]) + struct.pack("!I", lease)
    if t1 is not None:
        m += bytes([58, 4]) + struct.pack("!I", t1)
    if t2 is not None:
        m += bytes([59, 4]) + struct.pack("!I", t2)
    if mask:
        m += bytes([1, 4]) + mask
    if router:
        m += bytes([3, 4]) + router
    if dns:
        m += bytes([6, 4 * len(dns)]) + b"".join(dns)
    m += extra + b"\xff"
    return bytes(m)


def deliver(nic, payload, broadcast=True, sport=67, src_ip=SERVER_IP):
    dst_mac = BCAST_MAC if broadcast else nic.mac
    dst_ip = b"\xff\xff\xff\xff" if broadcast else OFFERED
    nic.inbox.append(udp_frame(dst_mac, src_ip, dst_ip, sport, 68, payload))


class Env:
    def __init__(self, **kw):
        self.clock = VirtualClock(1000)
        self.nic = FakeNic()
        self.stack = Stack(self.nic, clock=self.clock, tcp=False)
        self.stack.hostname = "unit"
        self.events = []
        # two ARP probes 100 ms apart and 100 ms of listening: bound 200 ms after the ACK
        opts = dict(init_delay_ms=0, probe_num=2, probe_wait_ms=0, probe_min_ms=100,
                    probe_max_ms=100, announce_wait_ms=100, decline_wait_ms=1000)
        opts.update(kw)
        self.dhcp = Dhcp(self.stack, on_change=lambda d, e: self.events.append((e, d.address)), **opts)

    def run(self, ms, step=50):
        run(self.stack, self.clock, ms, step)

    def msgs(self):
        return dhcp_msgs(self.nic)

    def bind(self, **kw):
        """DISCOVER -> OFFER -> REQUEST -> ACK; returns the ACK's kw."""
        self.dhcp.start()
        self.run(100)
        (dst, disc), = self.msgs()
        deliver(self.nic, reply(disc, 2, **kw))
        self.run(100)
        (dst, req), = self.msgs()
        deliver(self.nic, reply(req, 5, **kw))
        self.run(300)                 # the probes
        assert self.dhcp.state == "BOUND"
        return req


def test_discover_and_request_contents():
    e = Env()
    e.dhcp.start()
    assert e.dhcp.state == "INIT"
    e.run(100)
    assert e.dhcp.state == "SELECTING"
    [f] = e.nic.sent
    dst_mac, src_ip, dst_ip, sport, dport, disc = parse_udp(f)
    assert dst_mac == BCAST_MAC and src_ip == b"\0\0\0\0" and dst_ip == b"\xff" * 4
    assert (sport, dport) == (68, 67) and len(disc) >= 300
    assert disc[0:4] == b"\x01\x01\x06\x00" and disc[10] & 0x80        # broadcast flag
    assert disc[12:16] == b"\0" * 4 and disc[28:34] == CLIENT_MAC
    o = options(disc)
    assert o[53] == b"\x01" and o[61] == b"\x01" + CLIENT_MAC and o[12] == b"unit"
    assert set(b"\x01\x03\x06\x33\x3a\x3b") <= set(o[55])
    e.msgs()
    deliver(e.nic, reply(disc, 2))
    e.run(50)
    assert e.dhcp.state == "REQUESTING"
    (dst, req), = e.msgs()
    assert dst == b"\xff" * 4 and req[4:8] == disc[4:8] and req[10] & 0x80
    o = options(req)
    assert o[53] == b"\x03" and o[50] == OFFERED and o[54] == SERVER_IP and o[12] == b"unit"
    assert not e.stack.configured                     # not before the ACK
    deliver(e.nic, reply(req, 5, lease=3600, dns=(SERVER_IP, bytes([198, 18, 0, 2]))))
    e.run(50)
    assert e.dhcp.state == "CHECKING" and not e.stack.configured     # ARP probes first
    e.run(250)
    assert e.dhcp.state == "BOUND" and e.stack.configured
    assert e.stack.ip == OFFERED and e.stack.dns_servers == [SERVER_IP, bytes([198, 18, 0, 2])]
    lease = e.dhcp.lease()
    assert lease["address"] == "198.18.0.123" and lease["gateway"] == "198.18.0.1"
    assert (lease["lease_s"], lease["t1_s"], lease["t2_s"]) == (3600, 1800, 3150)
    assert e.events == [("bound", OFFERED)]
    assert e.stack.stats["handler_errors"] == 0


def test_backoff_doubles_with_jitter():
    e = Env()                        # defaults: 4 s doubling to 64 s, +-1 s
    e.dhcp.start()
    times = []
    for _ in range(300 * 20):                # 300 s of 50 ms steps
        e.run(50)
        if e.msgs():
            times.append(e.clock.now)
        if len(times) == 8:
            break
    gaps = [b - a for a, b in zip(times, times[1:])]
    for gap, base in zip(gaps, (4000, 8000, 16000, 32000, 64000, 64000, 64000)):
        assert base - 1050 <= gap <= base + 1050, gaps
    assert e.dhcp.stats["discover_tx"] == 8


def test_lease_expiry_clears_address_and_rediscovers():
    """A 10 s lease, T1 5 s, T2 8 s, and a server gone silent after the ACK:
    unicast renewal at T1, broadcast rebinding at T2, expiry at 10 s."""
    e = Env(renew_min_s=1)
    e.bind(lease=10, t1=5, t2=8)
    bound_at = e.clock.now
    seen = []
    for _ in range(12 * 20):
        e.run(50)
        for f in e.nic.sent:
            t = (e.clock.now - bound_at) / 1000
            if arp_request_for(f) == SERVER_IP:            # the server answers ARP only
                seen.append(("arp", t))
                e.nic.inbox.append(arp_reply(CLIENT_MAC, OFFERED, SERVER_IP))
            u = parse_udp(f)
            if u and u[4] == 67:
                kind = options(u[5])[53][0]
                seen.append(({1: "discover", 3: "request"}[kind], t, u[2], u[5][12:16]))
        e.nic.sent = []
        if e.dhcp.state == "SELECTING":
            break
    renew = [s for s in seen if s[0] == "request" and s[2] == SERVER_IP]
    rebind = [s for s in seen if s[0] == "request" and s[2] == b"\xff" * 4]
    assert renew and 4 <= renew[0][1] <= 5.1 and renew[0][3] == OFFERED     # ciaddr set
    assert all(t < 8 for _, t, _, _ in renew)
    assert rebind and all(7 <= t < 10.1 for _, t, _, _ in rebind)
    assert any(s[0] == "arp" for s in seen)            # the unicast needed the server's MAC
    assert seen[-1][0] == "discover" and 9 <= seen[-1][1] <= 10.1
    assert not e.stack.configured and e.stack.dns_servers == []
    assert e.dhcp.stats["expired"] == 1 and e.dhcp.address is None
    assert e.events == [("bound", OFFERED), ("lost", None)]


def test_renewal_ack_extends_lease():
    e = Env(renew_min_s=1)
    e.bind(lease=10, t1=5, t2=8)
    for _ in range(6 * 20):
        e.run(50)
        for f in e.nic.sent:
            if arp_request_for(f) == SERVER_IP:
                e.nic.inbox.append(arp_reply(CLIENT_MAC, OFFERED, SERVER_IP))
        msgs = e.msgs()
        if msgs:
            (dst, req), = msgs
            assert dst == SERVER_IP and e.dhcp.state == "RENEWING"
            assert 50 not in options(req) and 54 not in options(req) and not req[10] & 0x80
            deliver(e.nic, reply(req, 5, lease=10, t1=5, t2=8), broadcast=False)
            e.run(50)
            break
    assert e.dhcp.state == "BOUND" and e.dhcp.stats["renewed"] == 1
    e.run(8000)                      # 13 s after the first ACK: still bound
    assert e.stack.configured and e.dhcp.stats["expired"] == 0
    assert e.events == [("bound", OFFERED), ("renewed", OFFERED)]


def test_long_lease_past_ticks_wrap():
    """A 30-day lease (ticks_ms wraps every 12.4 days): renewal at T1 = 15 days,
    not before, not lost to the wrap."""
    e = Env()
    e.bind(lease=30 * 86400)
    e.run(15 * 86400 * 1000 - 120000, step=60000)
    assert e.dhcp.state == "BOUND" and not e.msgs()
    e.run(180000, step=60000)
    assert e.dhcp.state == "RENEWING"


def test_infinite_lease_never_renews():
    e = Env()
    e.bind(lease=0xFFFFFFFF)
    assert e.dhcp.lease()["lease_s"] == -1
    e.run(40 * 86400 * 1000, step=600000)
    assert e.dhcp.state == "BOUND" and e.stack.configured and not e.msgs()


def test_nak_while_requesting_restarts_discovery():
    e = Env()
    e.dhcp.start()
    e.run(100)
    (_, disc), = e.msgs()
    deliver(e.nic, reply(disc, 2))
    e.run(50)
    (_, req), = e.msgs()
    deliver(e.nic, reply(req, 6, yiaddr=b"\0\0\0\0", lease=None))
    e.run(100)
    assert e.dhcp.stats["nak_rx"] == 1
    (_, disc2), = e.msgs()
    assert options(disc2)[53] == b"\x01" and disc2[4:8] != disc[4:8]     # a new xid
    assert e.dhcp.state == "SELECTING" and not e.stack.configured


def test_requesting_gives_up_after_request_tries():
    e = Env(retry_ms=1000, jitter_ms=0, request_tries=2)
    e.dhcp.start()
    e.run(100)
    (_, disc), = e.msgs()
    deliver(e.nic, reply(disc, 2))
    e.run(2900)                      # REQUEST at 0 and 1 s, give up at 3 s
    kinds = [options(m)[53][0] for _, m in e.msgs()]
    assert kinds == [3, 3]
    e.run(200)
    assert [options(m)[53][0] for _, m in e.msgs()] == [1] and e.dhcp.state == "SELECTING"


def test_link_flap_init_reboot():
    e = Env(link_poll_ms=100)
    e.bind(lease=600)
    e.nic.up = False
    e.run(300)
    assert e.dhcp.state == "INIT-REBOOT" and e.stack.configured and not e.msgs()
    e.run(20000)                     # nothing sent while the cable is out
    assert not e.msgs()
    e.nic.up = True
    e.run(200)
    (dst, req), = e.msgs()
    o = options(req)
    assert dst == b"\xff" * 4 and req[12:16] == b"\0" * 4 and req[10] & 0x80
    assert o[53] == b"\x03" and o[50] == OFFERED and 54 not in o
    assert e.dhcp.state == "REBOOTING"
    deliver(e.nic, reply(req, 5, lease=600))
    e.run(100)
    assert e.dhcp.state == "BOUND" and e.dhcp.stats["rebooted"] == 1
    assert e.events == [("bound", OFFERED), ("renewed", OFFERED)]


def test_init_reboot_unanswered_falls_back_to_discovery():
    e = Env(link_poll_ms=100, retry_ms=1000, jitter_ms=0, reboot_tries=2)
    e.bind(lease=600)
    e.nic.up = False
    e.run(300)
    e.nic.up = True
    e.run(3500)
    kinds = [options(m)[53][0] for _, m in e.msgs()]
    assert kinds == [3, 3, 1], kinds
    assert not e.stack.configured and e.events[-1] == ("lost", None)


def test_start_with_remembered_address():
    e = Env()
    e.dhcp.start(requested="198.18.0.123")
    e.run(100)
    (_, req), = e.msgs()
    assert options(req)[50] == OFFERED and e.dhcp.state == "REBOOTING"
    deliver(e.nic, reply(req, 5, lease=600))
    e.run(300)                       # not held yet (a reset): probed before use
    assert e.dhcp.state == "BOUND" and e.events == [("bound", OFFERED)]


def test_release_unicast_and_broadcast_on_arp_miss():
    e = Env()
    e.bind(lease=600)
    e.nic.sent = []
    e.dhcp.release()
    # no ARP entry for the server: an ARP request, then the RELEASE broadcast
    assert arp_request_for(e.nic.sent[0]) == SERVER_IP
    (dst, rel), = e.msgs()
    o = options(rel)
    assert dst == b"\xff" * 4 and o[53] == b"\x07" and o[54] == SERVER_IP and rel[12:16] == OFFERED
    assert e.dhcp.state == "STOPPED" and not e.stack.configured
    assert 68 not in e.stack.udp.ports and e.dhcp._tick not in e.stack.tickers


def test_unusable_netmask_is_declined():
    """An ACK set_address cannot take (a netmask with holes): DHCPDECLINE."""
    e = Env()
    e.dhcp.start()
    e.run(100)
    (_, disc), = e.msgs()
    deliver(e.nic, reply(disc, 2))
    e.run(50)
    (_, req), = e.msgs()
    deliver(e.nic, reply(req, 5, mask=b"\xff\x00\xff\x00", router=None))
    e.run(300)
    kinds = [options(m)[53][0] for _, m in e.msgs()]
    assert kinds[0] == 4 and e.dhcp.stats["decline_tx"] == 1 and not e.stack.configured
    assert e.dhcp.state in ("INIT", "SELECTING")


def _bad(disc):
    good = reply(disc, 2)
    short_opts = good[:243]                      # option 53 without its value and no end
    yield "drop_xid", good[:4] + b"XXXX" + good[8:]
    yield "drop_chaddr", good[:28] + b"\x02\x99\x99\x99\x99\x99" + good[34:]
    yield "drop_cookie", good[:236] + b"\x63\x82\x53\x64" + good[240:]
    yield "drop_options", short_opts
    yield "drop_options", good[:-1]              # no end option
    yield "drop_options", good[:-1] + b"\x0c\x20abc"   # runs past the end
    yield "drop_short", good[:200]
    yield "drop_foreign", b"\x01" + good[1:]     # a BOOTREQUEST
    yield "drop_unexpected", reply(disc, 5)      # an ACK while SELECTING
    yield "drop_unexpected", reply(disc, 2, server=None)    # OFFER without server id
    yield "drop_unexpected", reply(disc, 2, yiaddr=b"\0\0\0\0")


def test_malformed_and_foreign_packets_are_counted():
    e = Env()
    e.dhcp.start()
    e.run(100)
    (_, disc), = e.msgs()
    expected = {}
    for counter, payload in _bad(disc):
        deliver(e.nic, payload)
        expected[counter] = expected.get(counter, 0) + 1
    deliver(e.nic, reply(disc, 2), sport=1067)           # not from port 67
    expected["drop_foreign"] += 1
    for k in range(256):                                  # random junk of every length
        deliver(e.nic, bytes((k * 7 + i) & 0xFF for i in range(k + 240)))
    e.run(3000)
    st = e.dhcp.stats
    for counter, n in expected.items():
        assert st[counter] >= n, (counter, st)
    assert e.dhcp.state == "SELECTING" and st["offer_rx"] == 0
    assert e.stack.stats["handler_errors"] == 0, e.stack.last_error
    # and the right OFFER still works afterwards
    e.msgs()
    deliver(e.nic, reply(disc, 2))
    e.run(50)
    assert e.dhcp.state == "REQUESTING"


def test_bad_configuration_is_refused():
    nic = FakeNic()
    stack = Stack(nic, tcp=False)
    for kw in ({"retry_ms": 0}, {"jitter_ms": 5000}, {"hostname": "bad name"},
               {"hostname": "x" * 64}, {"retry_max_ms": 10}, {"init_delay_ms": -1}):
        with pytest.raises(ValueError):
            Dhcp(stack, **kw)


def test_message_code_is_loaded_only_for_an_exchange():
    """uipy.dhcp_msg is imported when an exchange begins and dropped once bound
    (on a stock board code is heap); renewal loads it again."""
    import sys
    e = Env()
    assert "uipy.dhcp_msg" not in sys.modules        # construction checked the settings, then dropped it
    e.dhcp.start()
    e.run(100)
    assert e.dhcp.state == "SELECTING" and "uipy.dhcp_msg" in sys.modules
    e.msgs()
    e.dhcp.stop()
    assert "uipy.dhcp_msg" not in sys.modules
    e = Env()
    e.bind(lease=10)
    assert "uipy.dhcp_msg" not in sys.modules and e.dhcp.lease()["lease_s"] == 10
    assert "uipy.dhcp_msg" not in sys.modules
    e.msgs()
    e.run(5000)                                       # T1 (5 s after the ACK): renewal
    assert e.dhcp.state == "RENEWING" and "uipy.dhcp_msg" in sys.modules
    for _ in range(40):
        e.run(50)
        for f in e.nic.sent:
            if arp_request_for(f) == SERVER_IP:
                e.nic.inbox.append(arp_reply(CLIENT_MAC, OFFERED, SERVER_IP))
        msgs = e.msgs()
        if msgs:
            (_, req), = msgs
            deliver(e.nic, reply(req, 5, lease=10), broadcast=False)
            e.run(50)
            break
    assert e.dhcp.state == "BOUND" and e.dhcp.stats["renewed"] == 1
    assert "uipy.dhcp_msg" not in sys.modules


def _no_memory_for_dhcp_msg(monkeypatch, short):
    """Imports of uipy.dhcp_msg fail with MemoryError while short[0] is true."""
    import builtins
    real = builtins.__import__

    def imp(name, *a, **kw):
        fromlist = a[2] if len(a) > 2 else kw.get("fromlist")
        if short[0] and fromlist and "dhcp_msg" in fromlist:
            raise MemoryError
        return real(name, *a, **kw)
    monkeypatch.setattr(builtins, "__import__", imp)


def test_no_memory_for_the_message_code_retries(monkeypatch):
    short = [True]
    e = Env()
    _no_memory_for_dhcp_msg(monkeypatch, short)
    e.dhcp.start()
    e.run(2500)
    assert e.dhcp.stats["no_memory"] >= 2 and not e.msgs()
    short[0] = False
    e.run(1100)
    assert e.dhcp.state == "SELECTING" and len(e.msgs()) == 1


def test_link_change_without_memory_is_seen_at_the_next_poll(monkeypatch):
    """A link change runs in uipy.dhcp_msg: when it cannot be loaded, the
    change is taken at a later link poll; the module is not kept while the
    cable is out."""
    import sys
    short = [False]
    e = Env(link_poll_ms=100)
    e.bind(lease=600)
    _no_memory_for_dhcp_msg(monkeypatch, short)
    short[0] = True
    e.nic.up = False
    e.run(300)
    assert e.dhcp.state == "BOUND" and e.dhcp.stats["no_memory"] >= 2 and e.dhcp.stats["link_down"] == 0
    short[0] = False
    e.run(200)
    assert e.dhcp.state == "INIT-REBOOT" and e.dhcp.stats["link_down"] == 1
    assert "uipy.dhcp_msg" not in sys.modules and e.stack.configured
    e.nic.up = True
    e.run(200)
    (dst, req), = e.msgs()
    assert options(req)[53] == b"\x03" and e.dhcp.state == "REBOOTING"
