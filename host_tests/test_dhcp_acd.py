"""DHCP client address checks on a virtual clock with crafted frames (scapy):
ARP probes before an address is used and DHCPDECLINE when it is taken
(RFC 5227 2.1, RFC 2131 3.1.5), offers and ACKs that cannot be valid refused,
and the bound address defended once, then given up (RFC 5227 2.4).  No root.

The DHCP exchange helpers (Env, reply, deliver, options) are test_dhcp_unit's."""
import os

import pytest
from scapy.all import ARP, Ether, raw

from levels import ROOT, VENV_BIN, run, tool
from mpycompile import compile_tree

from uipy.compat import VirtualClock
from uipy.dhcp import Dhcp
from uipy.stack import Stack
from test_dhcp_unit import Env, deliver, options, reply
from udp_frames import CLIENT_MAC, OFFERED, SERVER_IP, FakeNic

OTHER_MAC = "02:00:00:00:00:99"
OFFERED_S = "198.18.0.123"


def arp_frames(sent):
    """The ARP packets among the frames sent, as scapy ARP layers."""
    return [Ether(f)[ARP] for f in sent if f[12:14] == b"\x08\x06"]


def claim(ip=OFFERED_S, op=2, mac=OTHER_MAC, target="198.18.0.1"):
    """An ARP packet from another host with ip as its sender address."""
    return raw(Ether(src=mac, dst="ff:ff:ff:ff:ff:ff") /
               ARP(op=op, hwsrc=mac, psrc=ip, hwdst="00:00:00:00:00:00", pdst=target))


def probe_from(mac, target=OFFERED_S):
    """Another host's RFC 5227 probe (sender 0.0.0.0) for target."""
    return raw(Ether(src=mac, dst="ff:ff:ff:ff:ff:ff") /
               ARP(op=1, hwsrc=mac, psrc="0.0.0.0", hwdst="00:00:00:00:00:00", pdst=target))


def to_ack(e, **kw):
    """DISCOVER -> OFFER -> REQUEST -> ACK; the client is CHECKING after."""
    e.dhcp.start()
    e.run(100)
    (_, disc), = e.msgs()
    deliver(e.nic, reply(disc, 2, **kw))
    e.run(50)
    (_, req), = e.msgs()
    deliver(e.nic, reply(req, 5, **kw))
    e.run(50)
    assert e.dhcp.state == "CHECKING"
    return req


def test_probes_with_rfc5227_defaults_then_bind_and_announce():
    """RFC 5227 2.1.1 defaults: a random wait of up to 1 s, three probes from
    0.0.0.0 spaced 1..2 s apart, 2 s of listening, then the address is set
    and announced by gratuitous ARP."""
    e = Env(probe_num=3, probe_wait_ms=1000, probe_min_ms=1000, probe_max_ms=2000,
            announce_wait_ms=2000)
    to_ack(e)
    t_ack = e.clock.now - 50
    e.nic.sent = []
    probes = []
    for _ in range(200):                          # 10 s in 50 ms steps
        e.run(50)
        for a in arp_frames(e.nic.sent):
            probes.append((e.clock.now - t_ack, a))
        e.nic.sent = []
        if e.dhcp.state == "BOUND":
            break
    bound_after = e.clock.now - t_ack
    assert e.dhcp.state == "BOUND" and e.stack.configured
    *probe, announce = probes
    assert len(probe) == 3, probes
    for t, a in probe:
        assert a.op == 1 and a.psrc == "0.0.0.0" and a.pdst == OFFERED_S
        assert a.hwsrc == CLIENT_MAC.hex(":") and a.hwdst == "00:00:00:00:00:00"
    times = [t for t, _ in probe]
    assert times[0] <= 1050
    for a, b in zip(times, times[1:]):
        assert 950 <= b - a <= 2050, times
    assert 1950 <= bound_after - times[-1] <= 2100
    t, a = announce                               # stack.set_address's gratuitous ARP
    assert a.op == 1 and a.psrc == a.pdst == OFFERED_S
    assert e.dhcp.stats["probe_tx"] == 3 and e.dhcp.stats["probe_conflict"] == 0
    assert e.events == [("bound", OFFERED)]
    # the lease clock started at the ACK, not after the probes
    assert e.dhcp.lease()["bound_at_s"] <= (t_ack + 999) // 1000


def test_probe_answered_declines_and_waits_before_discovering():
    e = Env(decline_wait_ms=2000)
    req = to_ack(e)
    e.nic.inbox.append(claim(op=2, target="0.0.0.0"))      # a reply to our probe
    e.run(50)
    (dst, dec), = e.msgs()
    o = options(dec)
    assert dst == b"\xff" * 4 and o[53] == b"\x04" and o[50] == OFFERED and o[54] == SERVER_IP
    assert dec[12:16] == b"\0" * 4 and dec[28:34] == CLIENT_MAC and dec[4:8] == req[4:8]
    assert 55 not in o and 12 not in o                        # RFC 2131 table 5
    st = e.dhcp.stats
    assert st["probe_conflict"] == 1 and st["decline_tx"] == 1 and st["bound"] == 0
    assert e.dhcp.state == "INIT" and not e.stack.configured and e.events == []
    e.run(1800)                                               # RFC 2131 3.1.5: wait first
    assert not e.msgs() and e.dhcp.state == "INIT"
    e.run(300)
    (_, disc), = e.msgs()
    assert options(disc)[53] == b"\x01" and e.dhcp.state == "SELECTING"
    # the server offers another address: probed, nobody answers, bound
    other = bytes([198, 18, 0, 124])
    deliver(e.nic, reply(disc, 2, yiaddr=other))
    e.run(50)
    (_, req2), = e.msgs()
    deliver(e.nic, reply(req2, 5, yiaddr=other))
    e.run(300)
    assert e.dhcp.state == "BOUND" and e.stack.ip == other and e.events == [("bound", other)]
    assert e.stack.stats["handler_errors"] == 0


@pytest.mark.parametrize("frame", [
    claim(op=1, target="198.18.0.1"),              # a request from the address
    claim(op=2, target="0.0.0.0"),                 # a (broadcast) reply from it
    probe_from(OTHER_MAC),                         # another host probing for it too
], ids=["request", "reply", "probe"])
def test_any_packet_claiming_the_address_is_a_conflict(frame):
    e = Env()
    to_ack(e)
    e.nic.inbox.append(frame)
    e.run(50)
    assert e.dhcp.stats["probe_conflict"] == 1 and e.dhcp.stats["decline_tx"] == 1
    assert e.dhcp.state == "INIT"


def test_unrelated_arp_and_our_own_probe_are_no_conflict():
    e = Env()
    to_ack(e)
    mine = CLIENT_MAC.hex(":")
    for f in (claim(ip="198.18.0.77"),                          # another address
              probe_from(OTHER_MAC, target="198.18.0.77"),
              probe_from(mine),                                  # our own probe, looped back
              claim(mac=mine),
              raw(Ether(src=OTHER_MAC, dst="ff:ff:ff:ff:ff:ff") / ARP(op=1, psrc=OFFERED_S))[:30],
              raw(Ether(src=OTHER_MAC, dst="ff:ff:ff:ff:ff:ff") / ARP(op=7, hwsrc=OTHER_MAC, psrc=OFFERED_S))):
        e.nic.inbox.append(f)
    e.run(300)
    assert e.dhcp.state == "BOUND" and e.dhcp.stats["probe_conflict"] == 0
    assert e.stack.stats["arp_drop_bad"] == 1 and e.stack.stats["handler_errors"] == 0


def test_no_probe_when_turned_off_or_for_an_address_still_held():
    e = Env(probe_num=0)
    e.dhcp.start()
    e.run(100)
    (_, disc), = e.msgs()
    deliver(e.nic, reply(disc, 2))
    e.run(50)
    (_, req), = e.msgs()
    deliver(e.nic, reply(req, 5))
    e.run(50)
    assert e.dhcp.state == "BOUND" and e.dhcp.stats["probe_tx"] == 0
    # a link flap keeps the address: INIT-REBOOT's ACK binds at once, no probe
    e = Env(link_poll_ms=100)
    e.bind(lease=600)
    e.nic.up = False
    e.run(300)
    e.nic.up = True
    e.run(200)
    (_, req), = e.msgs()
    e.nic.sent = []
    deliver(e.nic, reply(req, 5, lease=600))
    e.run(50)
    assert e.dhcp.state == "BOUND" and e.dhcp.stats["probe_tx"] == 2      # the first binding's
    assert not arp_frames(e.nic.sent)


def test_stop_and_release_while_checking():
    e = Env()
    to_ack(e)
    e.dhcp.stop()
    assert e.dhcp.state == "STOPPED" and e.stack.arp.watch is None
    e.nic.inbox.append(claim())
    e.run(1000)
    assert not e.stack.configured and e.dhcp.stats["probe_conflict"] == 0
    e = Env()
    to_ack(e)
    e.dhcp.release()
    assert e.dhcp.state == "STOPPED" and not e.msgs() and not e.stack.configured


# --- offers and ACKs that cannot be valid ---

NET = bytes([198, 18, 0, 0])
BCAST = bytes([198, 18, 0, 255])
ALL = b"\xff\xff\xff\xff"
ZERO = b"\0\0\0\0"
MCAST = bytes([224, 0, 0, 251])
LOOP = bytes([127, 0, 0, 1])
CLASS_E = bytes([240, 0, 0, 1])
OFF_NET = bytes([198, 19, 0, 1])

BAD_OFFERS = [
    ("bad_address", dict(yiaddr=NET)),
    ("bad_address", dict(yiaddr=BCAST)),
    ("bad_address", dict(yiaddr=ALL)),
    ("bad_address", dict(yiaddr=MCAST)),
    ("bad_address", dict(yiaddr=LOOP)),
    ("bad_address", dict(yiaddr=CLASS_E)),
    ("bad_address", dict(yiaddr=bytes([0, 0, 0, 5]))),
    ("bad_address", dict(yiaddr=bytes([198, 18, 255, 255]), mask=b"\xff\xff\x00\x00")),
    ("bad_server", dict(server=ZERO)),
    ("bad_server", dict(server=ALL)),
    ("bad_server", dict(server=MCAST)),
    ("bad_server", dict(server=LOOP)),
    ("bad_server", dict(server=NET)),
    ("bad_server", dict(server=BCAST)),
    ("bad_server", dict(server=OFFERED)),                      # its own address to us
    ("bad_router", dict(router=ZERO)),
    ("bad_router", dict(router=ALL)),
    ("bad_router", dict(router=MCAST)),
    ("bad_router", dict(router=LOOP)),
    ("bad_router", dict(router=NET)),
    ("bad_router", dict(router=BCAST)),
    ("bad_router", dict(router=OFF_NET)),                      # not on the offered subnet
    ("bad_router", dict(router=OFFERED)),
    ("bad_router", dict(router=bytes([198, 18, 255, 255]), mask=b"\xff\xff\x00\x00")),
]


@pytest.mark.parametrize("counter,kw", BAD_OFFERS,
                         ids=["%s-%d" % (c, i) for i, (c, _) in enumerate(BAD_OFFERS)])
def test_offer_that_cannot_be_valid_is_refused(counter, kw):
    e = Env()
    e.dhcp.start()
    e.run(100)
    (_, disc), = e.msgs()
    deliver(e.nic, reply(disc, 2, **kw))
    e.run(100)
    assert e.dhcp.stats[counter] == 1 and e.dhcp.stats["offer_rx"] == 0
    assert e.dhcp.state == "SELECTING" and not e.msgs()
    deliver(e.nic, reply(disc, 2))                    # a sound offer is still taken
    e.run(50)
    assert e.dhcp.state == "REQUESTING"


def test_valid_edge_cases_are_taken():
    """A server on another subnet (a relay), a /16 with .0 and .255 hosts,
    a router at the top of the subnet: all fine."""
    e = Env()
    e.bind(yiaddr=bytes([198, 18, 1, 0]), server=bytes([198, 19, 5, 5]),
           router=bytes([198, 18, 255, 254]), mask=b"\xff\xff\x00\x00")
    assert e.stack.ip == bytes([198, 18, 1, 0]) and e.dhcp.gateway == bytes([198, 18, 255, 254])
    e = Env()
    e.bind(yiaddr=bytes([198, 18, 0, 255]), mask=b"\xff\xff\x00\x00", router=None)
    assert e.stack.configured


def test_ack_that_cannot_be_valid_is_refused():
    """A sound OFFER, then an ACK naming a router off the subnet: refused
    (counted, not bound); the REQUEST is retried and a sound ACK binds."""
    e = Env(retry_ms=1000, jitter_ms=0)
    e.dhcp.start()
    e.run(100)
    (_, disc), = e.msgs()
    deliver(e.nic, reply(disc, 2))
    e.run(50)
    (_, req), = e.msgs()
    deliver(e.nic, reply(req, 5, router=OFF_NET))
    e.run(300)
    assert e.dhcp.stats["bad_router"] == 1 and e.dhcp.state == "REQUESTING" and not e.stack.configured
    e.run(800)
    (_, req), = e.msgs()
    deliver(e.nic, reply(req, 5))
    e.run(300)
    assert e.dhcp.state == "BOUND"


def test_renewal_ack_that_cannot_be_valid_keeps_the_lease():
    e = Env(renew_min_s=1)
    e.bind(lease=100, t1=5, t2=80)
    for _ in range(6 * 20):
        e.run(50)
        for f in e.nic.sent:
            if f[12:14] == b"\x08\x06" and Ether(f)[ARP].pdst == "198.18.0.1":
                e.nic.inbox.append(raw(Ether(src="02:00:00:00:00:01", dst=CLIENT_MAC.hex(":")) /
                                       ARP(op=2, hwsrc="02:00:00:00:00:01", psrc="198.18.0.1",
                                           hwdst=CLIENT_MAC.hex(":"), pdst=OFFERED_S)))
        msgs = e.msgs()
        if msgs:
            (_, req), = msgs
            deliver(e.nic, reply(req, 5, lease=100, server=BCAST), broadcast=False)
            e.run(50)
            break
    assert e.dhcp.stats["bad_server"] == 1 and e.dhcp.state == "RENEWING"
    assert e.stack.configured and e.stack.ip == OFFERED and e.dhcp.stats["renewed"] == 0


# --- defending the bound address (RFC 5227 2.4) ---

def test_claim_is_defended_once_then_the_address_is_given_up():
    e = Env()
    e.bind(lease=600)
    e.nic.sent = []
    e.nic.inbox.append(claim(op=1, target="198.18.0.1"))      # another host uses our address
    e.run(50)
    (a,) = arp_frames(e.nic.sent)                              # our defence: one announcement
    assert a.op == 1 and a.psrc == a.pdst == OFFERED_S and a.hwsrc == CLIENT_MAC.hex(":")
    assert e.stack.stats["arp_conflict"] == 1 and e.stack.stats["arp_defended"] == 1
    assert e.dhcp.state == "BOUND" and e.stack.configured
    e.nic.sent = []
    e.run(5000)
    e.nic.inbox.append(claim(op=2))                            # again within 10 s
    e.run(50)
    st = e.dhcp.stats
    assert st["gave_up"] == 1 and e.stack.stats["arp_conflict"] == 2
    assert e.stack.stats["arp_defended"] == 1 and not arp_frames(e.nic.sent)
    assert not e.stack.configured and e.dhcp.address is None
    assert e.events == [("bound", OFFERED), ("lost", None)]
    assert st["decline_tx"] == 0                               # RFC 5227: no DECLINE here
    e.run(100)
    (_, disc), = e.msgs()                                      # configuration starts over
    assert options(disc)[53] == b"\x01" and e.dhcp.state == "SELECTING"
    assert e.stack.stats["handler_errors"] == 0


def test_claims_more_than_defend_interval_apart_are_each_defended():
    e = Env()
    e.bind(lease=600)
    for _ in range(3):
        e.nic.inbox.append(claim())
        e.run(10050)
    assert e.stack.stats["arp_defended"] == 3 and e.dhcp.stats["gave_up"] == 0
    assert e.dhcp.state == "BOUND" and e.stack.configured


def test_static_address_is_kept_and_defended_at_most_every_10_s():
    clock = VirtualClock(1000)
    nic = FakeNic()
    stack = Stack(nic, ip="198.18.0.123", clock=clock, tcp=False)
    nic.sent = []
    for _ in range(5):                         # claims 3 s apart: defended at 0 s and 12 s
        nic.inbox.append(claim())
        for _ in range(60):
            clock.advance(50)
            stack.poll()
    assert stack.configured and stack.stats["arp_conflict"] == 5
    assert stack.stats["arp_defended"] == 2 and len(arp_frames(nic.sent)) == 2


def test_own_announcement_looped_back_is_no_claim():
    e = Env()
    e.bind(lease=600)
    e.nic.inbox.append(claim(op=1, mac=CLIENT_MAC.hex(":"), target=OFFERED_S))
    e.nic.inbox.append(claim(op=1, mac=CLIENT_MAC.hex(":"), target=OFFERED_S))
    e.run(100)
    assert e.stack.stats["arp_conflict"] == 0 and e.dhcp.state == "BOUND"


def test_bad_probe_settings_are_refused():
    stack = Stack(FakeNic(), tcp=False)
    for kw in ({"probe_num": -1}, {"probe_num": 11}, {"probe_min_ms": 3000},
               {"probe_wait_ms": "1"}, {"decline_wait_ms": 70000}, {"announce_wait_ms": -5}):
        with pytest.raises(ValueError):
            Dhcp(stack, **kw)


# --- the same checks under real MicroPython ---

def test_checks_under_micropython_unix_small_heap(tmp_path):
    mp = tool("micropython", VENV_BIN)
    lib = compile_tree(tmp_path / "lib", patterns=("lib/uipy/*.py", "host_tests/udp_frames.py"))
    r = run([mp, "-X", "heapsize=160K", "host_tests/mpy/dhcp_acd_check.py", ROOT, lib])
    assert r.returncode == 0 and r.stdout.strip().endswith("OK"), r.stdout + r.stderr


def test_checks_under_32bit_micropython():
    """Addresses of 2**30 and more are heap ints on a 32-bit board: the
    validity checks take them (WebAssembly build, 32-bit)."""
    node = tool("node")
    tool("micropython.mjs", os.path.join(ROOT, "node_modules", "@micropython", "micropython-webassembly-pyscript"))
    r = run([node, "tools/emu/mpy_wasm.mjs", "host_tests/mpy/dhcp_acd_check.py", "lib", "host_tests"])
    assert r.returncode == 0 and r.stdout.strip().endswith("OK"), r.stdout + r.stderr
