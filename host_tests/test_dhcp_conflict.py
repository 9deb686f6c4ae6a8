"""DHCP address conflicts end to end (root, a namespace of its own, dnsmasq):
an offered address that a host already uses is found by the client's ARP
probe, declined, and another one bound; another host claiming the bound
address is answered once, and a second claim within 10 s makes the client
give the address up and start over (RFC 5227 2.1 and 2.4, RFC 2131 3.1.5).

The namespace and dnsmasq set-up is dnsmasq_net.py's; the client runs with its
FAST settings (two probes, about 0.3 s; 0.5 s after a DECLINE).
"""
import socket
import time

import pytest
from scapy.all import ARP, Ether, raw

from levels import need_root, tool
from dnsmasq_net import DnsmasqNet, RANGE, bound, in_range, make_client

IN_USE = "198.18.0.90"            # reserved for the client, and already on the kernel's interface
CLAIMANT_MAC = "02:00:00:00:00:99"


@pytest.fixture
def net(tmp_path):
    need_root()
    tool("ip")
    tool("dnsmasq")
    n = DnsmasqNet(tmp_path)
    yield n
    n.close()


def mac_str(mac):
    return ":".join("%02x" % b for b in mac)


def test_offered_address_in_use_is_declined_then_another_bound(net):
    net.ns.run(["ip", "addr", "add", IN_USE + "/24", "dev", net.tap.kernel_if])
    net.start_dnsmasq("--dhcp-host=%s,%s" % (mac_str(net.stack.mac), IN_USE))
    events = []
    dhcp = make_client(net, events)
    net.run()
    t0 = time.monotonic()
    net.call(dhcp.start)
    net.wait(bound(dhcp), 10, "a lease")
    took = time.monotonic() - t0
    lease = net.call(dhcp.lease)
    st = net.call(lambda: dict(dhcp.stats))
    assert lease["address"] != IN_USE and in_range(lease["address"], RANGE), lease
    assert st["probe_conflict"] == 1 and st["decline_tx"] == 1 and st["bound"] == 1, st
    assert events == [("bound", dhcp.address)]            # the address in use never was ours
    log = net.log()
    assert "DHCPACK(%s) %s" % (net.tap.kernel_if, IN_USE) in log           # offered and acknowledged,
    assert "DHCPDECLINE(%s) %s" % (net.tap.kernel_if, IN_USE) in log       # then declined
    assert net.ns.ping(lease["address"])
    assert took < 5, took


def claim(net, ip, times=1):
    """An ARP request from another MAC with ip as its sender address, sent
    from the namespace side of the TAP (as another host on the link)."""
    from packet_link import socket_in_netns
    s = socket_in_netns(net.ns.name, socket.AF_PACKET, socket.SOCK_RAW)
    try:
        s.bind((net.tap.kernel_if, 0))
        frame = raw(Ether(src=CLAIMANT_MAC, dst="ff:ff:ff:ff:ff:ff") /
                    ARP(op=1, hwsrc=CLAIMANT_MAC, psrc=ip, pdst="198.18.0.1"))
        for _ in range(times):
            s.send(frame)
    finally:
        s.close()


def test_claimed_address_is_defended_once_then_given_up(net):
    net.start_dnsmasq()
    events = []
    dhcp = make_client(net, events)
    net.run()
    net.call(dhcp.start)
    net.wait(bound(dhcp), 10, "a lease")
    addr = net.call(lambda: dhcp.lease()["address"])
    ours = net.stack.mac
    s = net.stack
    assert net.ns.ping(addr)
    claim(net, addr)
    net.wait(lambda: s.stats["arp_defended"] == 1, 3, "the defence")
    assert net.call(lambda: dhcp.state == "BOUND" and s.configured)
    # the kernel took the claimant's MAC, then ours again from the defence
    deadline = time.monotonic() + 3
    while net.ns.neigh_mac(addr) != ours:
        assert time.monotonic() < deadline, "the kernel kept the claimant's MAC"
        time.sleep(0.05)
    assert net.ns.ping(addr)
    claim(net, addr)                                         # again, within 10 s
    net.wait(lambda: dhcp.stats["gave_up"] == 1, 3, "the address given up")
    st = net.call(lambda: (dict(dhcp.stats), dict(s.stats)))
    assert st[0]["decline_tx"] == 0 and st[1]["arp_conflict"] == 2 and st[1]["arp_defended"] == 1
    assert ("lost", None) in events
    # configuration starts over; nobody answers the probes this time
    net.wait(lambda: bound(dhcp)() and dhcp.stats["bound"] == 2, 10, "a new lease")
    assert [e for e, _ in events] == ["bound", "lost", "bound"]
    assert net.ns.ping(net.call(lambda: dhcp.lease()["address"]))
