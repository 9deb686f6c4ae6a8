"""DHCP client end to end against dnsmasq: a uipy Stack on a TAP whose kernel
side (198.18.0.1/24) is in a network namespace of its own, where dnsmasq
serves DHCP (and DNS, for test_dns.py).  Needs root (skipped locally without
it, a failure under CI=true).

dnsmasq will not lease for less than 2 minutes, but it sends the T1/T2 it is
given, so renewal and rebinding happen within seconds here; lease expiry is
covered by test_dhcp_unit.py on a virtual clock, and once here for real
(a 2-minute test).  The namespace and dnsmasq set-up is in dnsmasq_net.py.
"""
import time

import pytest

from levels import need_root, tool
from dnsmasq_net import DnsmasqNet, KERNEL_IP, OTHER_RANGE, RANGE, bound, in_range, make_client

@pytest.fixture
def net(tmp_path):
    need_root()
    tool("ip")
    tool("dnsmasq")
    n = DnsmasqNet(tmp_path)
    yield n
    n.close()


def test_lease_obtained(net):
    net.start_dnsmasq()
    events = []
    dhcp = make_client(net, events)
    net.run()
    t0 = time.monotonic()
    net.call(dhcp.start)
    net.wait(bound(dhcp), 10, "a lease")
    took = time.monotonic() - t0
    lease = net.call(dhcp.lease)
    s = net.stack
    assert in_range(lease["address"], RANGE), lease
    assert lease["netmask"] == "255.255.255.0"
    assert lease["gateway"] == KERNEL_IP and lease["server"] == KERNEL_IP
    assert lease["dns"] == [KERNEL_IP]
    assert lease["lease_s"] == 120 and 0 < lease["t1_s"] < lease["t2_s"] < 120
    assert net.call(lambda: (s.configured, bytes(s.ip), list(s.dns_servers))) == (
        True, bytes(int(x) for x in lease["address"].split(".")), [bytes([198, 18, 0, 1])])
    assert events == [("bound", dhcp.address)]
    st = dhcp.stats
    assert st["discover_tx"] >= 1 and st["offer_rx"] == 1 and st["ack_rx"] == 1
    assert took < 3, took
    # dnsmasq saw our hostname and client identifier
    leases = net.leases()
    assert lease["address"] in leases
    exp, mac, host = leases[lease["address"]]
    assert mac == ":".join("%02x" % b for b in s.mac) and host == "uipy-test"
    log = net.log()
    assert "DHCPACK(%s) %s" % (net.tap.kernel_if, lease["address"]) in log
    assert "client provides name: uipy-test" in log
    # the kernel reaches the stack at its new address
    assert net.ns.ping(lease["address"])
    # release: dnsmasq forgets the lease, the stack forgets the address
    net.call(dhcp.release)
    assert dhcp.state == "STOPPED" and dhcp.stats["release_tx"] == 1
    assert net.call(lambda: s.configured) is False
    assert events[-1] == ("lost", None)
    deadline = time.monotonic() + 3
    while "DHCPRELEASE" not in net.log():
        assert time.monotonic() < deadline, "no DHCPRELEASE seen by dnsmasq"
        time.sleep(0.05)
    deadline = time.monotonic() + 3
    while lease["address"] in net.leases():
        assert time.monotonic() < deadline, "lease still in dnsmasq's file"
        time.sleep(0.05)


def test_renewal_at_t1(net):
    """Short T1/T2: unicast renewals before T2, seen in dnsmasq's lease file.
    (dnsmasq 2.90 sends T1 = T2 - 1 s whatever option:T1 says: here 2 s and 3 s.)"""
    net.start_dnsmasq(t1=1, t2=3)
    events = []
    dhcp = make_client(net, events)
    net.run()
    net.call(dhcp.start)
    net.wait(bound(dhcp), 10, "a lease")
    addr = net.call(lambda: dhcp.lease()["address"])
    first = net.leases()[addr][0]
    net.wait(lambda: dhcp.stats["renewed"] >= 2, 8, "two renewals")
    st = net.call(lambda: dict(dhcp.stats))
    assert st["rebound"] == 0 and st["nak_rx"] == 0
    assert net.call(lambda: dhcp.lease()["address"]) == addr
    assert net.leases()[addr][0] > first                # the lease was extended
    assert net.log().count("DHCPACK(%s) %s" % (net.tap.kernel_if, addr)) >= 3
    assert [e for e, _ in events] == ["bound", "renewed", "renewed"]
    assert net.call(lambda: net.stack.configured)


def test_server_down_then_rebind(net):
    """dnsmasq stops: renewals fail, the client keeps its (still valid) lease;
    past T2 it rebinds by broadcast and succeeds once dnsmasq is back."""
    net.start_dnsmasq(t1=1, t2=3)
    dhcp = make_client(net)
    net.run()
    net.call(dhcp.start)
    net.wait(bound(dhcp), 10, "a lease")
    addr = net.call(lambda: dhcp.address)
    net.stop_dnsmasq()
    net.wait(lambda: dhcp.state == "REBINDING", 8, "REBINDING")
    assert net.call(lambda: net.stack.configured and dhcp.address == addr)
    sent = net.call(lambda: dhcp.stats["request_tx"])
    time.sleep(1.5)
    assert net.call(lambda: dhcp.stats["request_tx"]) > sent     # keeps asking
    assert net.call(lambda: dhcp.state) == "REBINDING"
    net.start_dnsmasq(t1=30, t2=60)
    net.wait(lambda: dhcp.stats["rebound"] >= 1, 6, "a rebinding ACK")
    st = net.call(lambda: dict(dhcp.stats))
    assert net.call(lambda: dhcp.state) == "BOUND" and dhcp.address == addr
    assert st["renewed"] == 0 and st["nak_rx"] == 0 and st["expired"] == 0


def test_nak_on_renewal_then_new_lease(net):
    """dnsmasq comes back authoritative for another range: the renewal is NAKed,
    the address dropped, and discovery finds a new one in the new range."""
    net.start_dnsmasq(t1=2, t2=4)
    events = []
    dhcp = make_client(net, events)
    net.run()
    net.call(dhcp.start)
    net.wait(bound(dhcp), 10, "a lease")
    old = net.call(lambda: dhcp.lease()["address"])
    net.stop_dnsmasq()
    net.start_dnsmasq("--dhcp-authoritative", rng=OTHER_RANGE, fresh=True)
    net.wait(lambda: dhcp.stats["nak_rx"] >= 1, 8, "a NAK")
    net.wait(bound(dhcp), 8, "a new lease")
    new = net.call(lambda: dhcp.lease()["address"])
    assert in_range(new, OTHER_RANGE), new
    assert [e for e, _ in events] == ["bound", "lost", "bound"]
    assert "DHCPNAK" in net.log()
    assert new in net.leases() and old not in net.leases()


def test_link_flap_reboots_same_address(net):
    """Cable out and back: INIT-REBOOT asks for the same address and gets it."""
    net.start_dnsmasq()
    dhcp = make_client(net)
    net.run()
    net.call(dhcp.start)
    net.wait(bound(dhcp), 10, "a lease")
    addr = net.call(lambda: dhcp.lease()["address"])
    mark = len(net.log())
    net.call(lambda: setattr(net.nic, "up", False))
    net.wait(lambda: dhcp.state == "INIT-REBOOT", 3, "INIT-REBOOT")
    assert net.call(lambda: net.stack.configured)          # kept while the link is down
    time.sleep(0.3)
    t0 = time.monotonic()
    net.call(lambda: setattr(net.nic, "up", True))
    net.wait(lambda: dhcp.stats["rebooted"] >= 1 and dhcp.state == "BOUND", 5, "a new lease")
    took = time.monotonic() - t0
    st = net.call(lambda: dict(dhcp.stats))
    assert st["link_down"] == 1 and st["discover_tx"] == 1     # no new discovery
    assert net.call(lambda: dhcp.lease()["address"]) == addr
    assert "DHCPREQUEST(%s) %s" % (net.tap.kernel_if, addr) in net.log()[mark:]
    assert took < 2, took


def test_link_flap_to_other_network_nak(net):
    """Cable moved to a network whose (authoritative) server has another range:
    the INIT-REBOOT REQUEST is NAKed and discovery gets a new address."""
    net.start_dnsmasq()
    events = []
    dhcp = make_client(net, events)
    net.run()
    net.call(dhcp.start)
    net.wait(bound(dhcp), 10, "a lease")
    net.call(lambda: setattr(net.nic, "up", False))
    net.wait(lambda: dhcp.state == "INIT-REBOOT", 3, "INIT-REBOOT")
    net.stop_dnsmasq()
    net.start_dnsmasq("--dhcp-authoritative", rng=OTHER_RANGE, fresh=True)
    net.call(lambda: setattr(net.nic, "up", True))
    net.wait(lambda: dhcp.stats["nak_rx"] >= 1, 5, "a NAK")
    net.wait(bound(dhcp), 8, "a new lease")
    assert in_range(net.call(lambda: dhcp.lease()["address"]), OTHER_RANGE)
    assert [e for e, _ in events] == ["bound", "lost", "bound"]
    assert dhcp.stats["discover_tx"] >= 2


def test_no_server_backoff_then_lease(net):
    """No server at first: DISCOVERs back off (400, 800, 1600, 1600 ms +-100);
    a server that appears later is found."""
    dhcp = make_client(net)
    net.run()
    net.call(dhcp.start)
    time.sleep(2.2)
    n = net.call(lambda: dhcp.stats["discover_tx"])
    assert 2 <= n <= 4, n                                # 0, ~0.4, ~1.2, ~2.8 s
    assert net.call(lambda: dhcp.state) == "SELECTING"
    net.start_dnsmasq()
    net.wait(bound(dhcp), 5, "a lease")


def test_lease_expires_when_the_server_is_gone(net):
    """A real 2-minute lease (dnsmasq's shortest) runs out with dnsmasq stopped:
    the stack loses the address at expiry, not before, and the client goes back
    to discovery; a restarted dnsmasq then hands out a new lease."""
    net.start_dnsmasq(t1=5, t2=10)
    events = []
    dhcp = make_client(net, events)
    net.run()
    net.call(dhcp.start)
    net.wait(bound(dhcp), 10, "a lease")
    lease = net.call(dhcp.lease)
    assert lease["lease_s"] == 120
    t_bound = time.monotonic()
    net.stop_dnsmasq()
    net.wait(lambda: dhcp.state == "REBINDING", 15, "REBINDING")
    time.sleep(max(0, 100 - (time.monotonic() - t_bound)))
    assert net.call(lambda: net.stack.configured), "address dropped before the lease ran out"
    net.wait(lambda: not net.stack.configured, 30, "the lease to expire")
    took = time.monotonic() - t_bound
    assert 118 <= took <= 125, took
    st = net.call(lambda: dict(dhcp.stats))
    assert st["expired"] == 1 and ("lost", None) in [(e, None) for e, _ in events]
    assert net.call(lambda: dhcp.state) in ("INIT", "SELECTING")
    net.start_dnsmasq(fresh=True)
    net.wait(bound(dhcp), 20, "a new lease")
