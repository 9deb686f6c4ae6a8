"""DNS resolver: unit tests on a virtual clock with hand-made answers
(compression, CNAME chains, pointer loops, mismatches, TTLs, timeouts), then
end to end against dnsmasq in a network namespace (needs root: skipped
locally without it, a failure under CI=true)."""
import struct
import time

import pytest

from levels import need_root, tool
from dnsmasq_net import DnsmasqNet, KERNEL_IP, make_client, bound
from udp_frames import FakeNic, arp_reply, arp_request_for, parse_udp, udp_frame, CLIENT_MAC
from uipy.compat import VirtualClock
from uipy.dns import Resolver, encode_name, names_equal
from uipy.stack import Stack

STACK_IP = bytes([198, 18, 0, 2])
DNS1 = bytes([198, 18, 0, 1])
DNS2 = bytes([198, 18, 0, 3])
SERVER_MAC = b"\x02\x00\x00\x00\x00\x01"


def wire(name):
    return encode_name(name)[1]


def rr(owner, rtype, ttl, rdata, rclass=1):
    return owner + struct.pack("!HHIH", rtype, rclass, ttl, len(rdata)) + rdata


def response(query, answers=(), rcode=0, flags=0x8180, qid=None, question=None):
    """An answer to the query payload: header, the question echoed, the records."""
    q = question if question is not None else query[12:]
    hid = struct.unpack("!H", query[:2])[0] if qid is None else qid
    return struct.pack("!HHHHHH", hid, flags | rcode, 1, len(answers), 0, 0) + q + b"".join(answers)


class DnsEnv:
    """A stack at 198.18.0.2 on a FakeNic; servers at DNS1/DNS2 whose answers
    come from self.answer(query_payload, server_ip) (None: silent)."""

    def __init__(self, **kw):
        self.clock = VirtualClock(5000)
        self.nic = FakeNic()
        self.stack = Stack(self.nic, ip=STACK_IP, gateway=DNS1, clock=self.clock, tcp=False)
        opts = dict(servers=[DNS1], timeout_ms=1000, retries=1, min_ttl_s=1)
        opts.update(kw)
        self.r = Resolver(self.stack, **opts)
        self.results = []
        self.queries = []             # (server, sport, payload)
        self.answer = lambda q, server: None
        self.arp = True               # servers answer ARP

    def cb(self, name, ip):
        self.results.append((name, ip))

    def resolve(self, name):
        return self.r.resolve(name, self.cb)

    def step(self, ms=50):
        self.clock.advance(ms)
        self.stack.poll()
        sent, self.nic.sent = self.nic.sent, []
        for f in sent:
            target = arp_request_for(f)
            if target is not None and self.arp and target in (DNS1, DNS2):
                self.nic.inbox.append(arp_reply(CLIENT_MAC, STACK_IP, target))
            u = parse_udp(f)
            if u and u[4] == 53:
                self.queries.append((u[2], u[3], u[5]))
                a = self.answer(u[5], u[2])
                if a is not None:
                    self.deliver(a, u[2], u[3])

    def deliver(self, payload, server=DNS1, dport=None, sport=53):
        if dport is None:
            dport = self.queries[-1][1]
        self.nic.inbox.append(udp_frame(CLIENT_MAC, server, STACK_IP, sport, dport, payload))

    def run(self, ms):
        for _ in range(ms // 50):
            self.step()


def a_answer(addr=b"\xc6\x12\x00\x4d", ttl=60):
    return lambda q, s: response(q, [rr(b"\xc0\x0c", 1, ttl, addr)])


def test_query_format_and_answer():
    e = DnsEnv()
    e.answer = a_answer()
    assert e.resolve("WWW.Example.LAN.") is False
    assert e.results == []                       # nothing before the tick
    e.run(200)
    assert e.results == [("www.example.lan", b"\xc6\x12\x00\x4d")]
    (server, sport, q), = e.queries
    assert server == DNS1 and 49152 <= sport <= 65535
    hid, flags, qd, an, ns, ar = struct.unpack("!HHHHHH", q[:12])
    assert flags == 0x0100 and (qd, an, ns, ar) == (1, 0, 0, 0)
    assert q[12:] == wire("www.example.lan") + b"\x00\x01\x00\x01"
    assert e.r.stats["answers"] == 1 and e.r.stats["queries"] == 1
    assert sport not in e.stack.udp.ports          # the port is given back


def test_cache_hit_then_ttl_expiry():
    e = DnsEnv()
    e.answer = a_answer(ttl=3)
    e.resolve("host.lan")
    e.run(200)
    assert e.r.resolve("host.lan", e.cb) is True    # called back at once, no query
    assert len(e.queries) == 1 and e.r.stats["cache_hits"] == 1
    assert e.r.lookup_cached("HOST.lan") == b"\xc6\x12\x00\x4d"
    e.run(3000)
    assert e.r.lookup_cached("host.lan") is None
    e.resolve("host.lan")
    e.run(200)
    assert len(e.queries) == 2 and len(e.results) == 3


def test_random_id_and_port_per_query():
    e = DnsEnv(cache_size=1)
    e.answer = a_answer(ttl=0)                      # TTL 0: never cached
    for _ in range(6):
        e.resolve("x.lan")
        e.run(150)
    assert len(e.results) == 6 and e.r.lookup_cached("x.lan") is None
    ids = {q[:2] for _, _, q in e.queries}
    ports = {p for _, p, _ in e.queries}
    assert len(ids) >= 5 and len(ports) >= 5


def test_cname_chain_in_any_order_and_compression():
    e = DnsEnv()

    def answer(q, s):
        # alias.lan CNAME mid.lan (mid: a label + pointer into the question's "lan"),
        # mid.lan CNAME host.lan; records out of order, the A record first.
        # offsets: question at 12: 5 "alias" 3 "lan" 0 -> "lan" at 18
        mid = b"\x03mid\xc0\x12"
        host = b"\x04host\xc0\x12"
        a = rr(host, 1, 50, b"\xc6\x12\x00\x4e")
        c1 = rr(b"\xc0\x0c", 5, 40, mid)
        return response(q, [a, rr(mid, 5, 30, host), c1])

    e.answer = answer
    e.resolve("alias.lan")
    e.run(200)
    assert e.results == [("alias.lan", b"\xc6\x12\x00\x4e")]
    assert e.r.stats["answers"] == 1


def test_cname_loop_and_no_a_record():
    e = DnsEnv()
    e.answer = lambda q, s: response(q, [rr(b"\xc0\x0c", 5, 60, b"\x01b\x00"),
                                         rr(b"\x01b\x00", 5, 60, b"\xc0\x0c")])
    e.resolve("a")
    e.run(200)
    assert e.results == [("a", None)] and e.r.stats["no_data"] == 1


def test_pointer_loops_and_truncation_are_dropped():
    e = DnsEnv()
    bad = [
        lambda q: response(q, [rr(b"\xc0\x1a", 1, 60, b"\x01\x02\x03\x04")]),   # points at itself
        lambda q: response(q, [rr(b"\x01a\xc0\x1a", 1, 60, b"\x01\x02\x03\x04")]),  # a loop via a label
        lambda q: response(q, [b"\xc0"]),                                       # cut pointer
        lambda q: response(q, [rr(b"\xc0\x0c", 1, 60, b"\x01\x02\x03\x04")[:-2]]),  # rdata cut
        lambda q: response(q, [rr(b"\x50abc", 1, 60, b"\x01\x02\x03\x04")]),      # label type 01
        lambda q: response(q, [])[:-3],                                         # question cut
    ]
    e.resolve("loop.lan")
    e.run(100)
    (_, _, q), = e.queries
    for make in bad:
        e.deliver(make(q))
    # an answer whose A owner loops through pointers: compares unequal, no data
    loop = response(q, [rr(b"\x01a\xc0\x1a", 1, 60, b"\x01\x02\x03\x04")])
    assert not names_equal(loop, 26, 26, len(loop)) and not names_equal(loop, 12, 26, len(loop))
    e.run(100)
    st = e.r.stats
    assert st["drop_malformed"] == 6 and e.results == []
    e.deliver(response(q, [rr(b"\xc0\x0c", 1, 60, b"\x01\x02\x03\x04")]))
    e.run(100)
    assert e.results == [("loop.lan", b"\x01\x02\x03\x04")]
    assert e.stack.stats["handler_errors"] == 0


def test_mismatched_answers_are_ignored():
    e = DnsEnv()
    e.resolve("m.lan")
    e.run(100)
    (_, sport, q), = e.queries
    qid = struct.unpack("!H", q[:2])[0]
    good = response(q, [rr(b"\xc0\x0c", 1, 60, b"\x01\x02\x03\x04")])
    e.deliver(response(q, [], qid=qid ^ 1))                       # wrong id
    e.deliver(good, sport=5353)                                   # wrong source port
    e.deliver(good, server=DNS2)                                  # wrong server
    e.deliver(response(q, [], flags=0x0100))                      # a query, not a response
    e.deliver(response(q, [], question=wire("n.lan") + b"\x00\x01\x00\x01"))   # other question
    e.deliver(response(q, [], question=q[12:-4] + b"\x00\x1c\x00\x01"))        # AAAA question
    e.deliver(good, dport=sport ^ 1)                              # another port: not ours
    e.deliver(b"\x00" * 5)                                        # short
    e.run(100)
    assert e.r.stats["drop_mismatch"] == 6 and e.r.stats["drop_short"] == 1
    assert e.results == []
    e.deliver(good)
    e.run(100)
    assert e.results == [("m.lan", b"\x01\x02\x03\x04")]


def test_nxdomain_and_servfail_next_server():
    e = DnsEnv(servers=[DNS1, DNS2])
    e.answer = lambda q, s: response(q, [], rcode=3)
    e.resolve("nope.lan")
    e.run(200)
    assert e.results == [("nope.lan", None)] and e.r.stats["nxdomain"] == 1
    e.answer = lambda q, s: response(q, [], rcode=2) if s == DNS1 else \
        response(q, [rr(b"\xc0\x0c", 1, 60, b"\x01\x02\x03\x04")])
    e.resolve("two.lan")
    e.run(300)
    assert e.results[-1] == ("two.lan", b"\x01\x02\x03\x04")
    assert [s for s, _, _ in e.queries[-2:]] == [DNS1, DNS2] and e.r.stats["server_errors"] == 1


def test_timeout_after_retries_across_servers():
    e = DnsEnv(servers=[DNS1, DNS2], timeout_ms=500, retries=1)
    e.resolve("silent.lan")
    e.run(1900)
    assert e.results == []
    e.run(200)
    assert e.results == [("silent.lan", None)] and e.r.stats["timeouts"] == 1
    assert [s for s, _, _ in e.queries] == [DNS1, DNS2, DNS1, DNS2]
    assert e.r.stats["retransmits"] == 3 and not e.r.pending


def test_arp_miss_resends_within_the_attempt():
    e = DnsEnv()
    e.arp = False
    e.resolve("a.lan")
    e.run(600)
    assert e.queries == [] and e.r.stats["arp_wait"] >= 2
    e.arp = True
    e.answer = a_answer()
    e.run(1500)
    assert e.results == [("a.lan", b"\xc6\x12\x00\x4d")]


def test_ttl_clamped():
    e = DnsEnv(min_ttl_s=10, max_ttl_s=100)
    for name, ttl in (("a.lan", 2), ("b.lan", 0x7FFFFFFF), ("c.lan", 0x80000000)):
        e.answer = a_answer(ttl=ttl)
        e.resolve(name)
        e.run(150)
    assert e.r.lookup_cached("c.lan") is None              # top bit set: TTL 0
    e.run(9000)
    assert e.r.lookup_cached("a.lan") is not None          # raised to 10 s
    e.run(2000)
    assert e.r.lookup_cached("a.lan") is None and e.r.lookup_cached("b.lan") is not None
    e.run(90000)
    assert e.r.lookup_cached("b.lan") is None              # cut to 100 s


def test_cache_replaces_soonest_expiry():
    e = DnsEnv(cache_size=2, max_ttl_s=1000)
    for name, ttl in (("a.lan", 500), ("b.lan", 100), ("c.lan", 300)):
        e.answer = a_answer(ttl=ttl)
        e.resolve(name)
        e.run(150)
    assert e.r.lookup_cached("a.lan") and e.r.lookup_cached("c.lan")
    assert e.r.lookup_cached("b.lan") is None


def test_coalescing_busy_and_callback_errors():
    e = DnsEnv(max_pending=1)
    e.answer = a_answer()

    def boom(name, ip):
        raise RuntimeError("application bug")

    e.resolve("one.lan")
    e.r.resolve("one.lan", boom)                   # joins the same query
    assert e.resolve("two.lan") is True            # table full: None at once
    assert e.results == [("two.lan", None)] and e.r.stats["busy"] == 1
    e.run(200)
    assert len(e.queries) == 1 and e.results[-1] == ("one.lan", b"\xc6\x12\x00\x4d")
    assert e.r.stats["callback_errors"] == 1 and e.stack.stats["handler_errors"] == 0


def test_literal_and_bad_names():
    e = DnsEnv()
    assert e.resolve("198.18.0.5") is True and e.results == [("198.18.0.5", bytes([198, 18, 0, 5]))]
    for bad in ("", "a..b", "x" * 64 + ".lan", ".".join(["abcdefgh"] * 32), "sp ace.lan", 5):
        with pytest.raises(ValueError):
            e.r.resolve(bad, e.cb)
    with pytest.raises(ValueError):
        Resolver(e.stack, max_ttl_s=10 ** 7)


def test_no_servers():
    e = DnsEnv(servers=None)
    e.resolve("x.lan")
    e.run(100)
    assert e.results == [("x.lan", None)]


def test_junk_never_raises():
    e = DnsEnv(timeout_ms=5000)
    e.resolve("j.lan")
    e.run(100)
    (_, _, q), = e.queries
    for k in range(400):
        body = bytes((k * 31 + i * 7) & 0xFF for i in range(k % 120))
        e.deliver(q[:2] + b"\x81\x80\x00\x01" + bytes([0, k & 0xFF]) + b"\0\0\0\0" + q[12:] + body)
        e.step()
    assert e.stack.stats["handler_errors"] == 0, e.stack.last_error


# --- end to end against dnsmasq ---

DNS_ARGS = ("--address=/www.lan/198.18.0.77", "--host-record=host.lan,198.18.0.78",
            "--cname=alias.lan,host.lan", "--local=/lan/", "--local-ttl=2")


@pytest.fixture
def dnet(tmp_path):
    need_root()
    tool("ip")
    tool("dnsmasq")
    n = DnsmasqNet(tmp_path, stack_ip="198.18.0.2")
    n.start_dnsmasq(*DNS_ARGS)
    n.run()
    yield n
    n.close()


def lookup(net, r, name, limit_s=5):
    got = []
    net.call(lambda: r.resolve(name, lambda n, ip: got.append(ip)))
    net.wait(lambda: got, limit_s, "an answer for " + name)
    return got[0]


def queries_logged(net, name):
    return net.log().count("query[A] %s from" % name)


def test_dnsmasq_answers(dnet):
    r = dnet.call(lambda: Resolver(dnet.stack, servers=[KERNEL_IP], timeout_ms=500, retries=2, min_ttl_s=1))
    assert lookup(dnet, r, "www.lan") == bytes([198, 18, 0, 77])
    assert lookup(dnet, r, "sub.www.lan") == bytes([198, 18, 0, 77])
    assert lookup(dnet, r, "Alias.LAN") == bytes([198, 18, 0, 78])         # through the CNAME
    assert lookup(dnet, r, "nosuch.lan") is None
    st = dnet.call(lambda: dict(r.stats))
    assert st["nxdomain"] == 1 and st["answers"] == 3 and st["timeouts"] == 0
    assert st["drop_malformed"] == 0 and st["drop_mismatch"] == 0
    assert dnet.call(lambda: dnet.stack.stats["handler_errors"]) == 0


def test_dnsmasq_cache_and_ttl(dnet):
    r = dnet.call(lambda: Resolver(dnet.stack, servers=[KERNEL_IP], timeout_ms=500, min_ttl_s=1))
    assert lookup(dnet, r, "host.lan") == bytes([198, 18, 0, 78])
    assert lookup(dnet, r, "host.lan") == bytes([198, 18, 0, 78])          # from the cache
    assert dnet.call(lambda: r.stats["cache_hits"]) == 1
    time.sleep(0.2)
    assert queries_logged(dnet, "host.lan") == 1
    time.sleep(2.1)                                                         # --local-ttl=2
    assert dnet.call(lambda: r.lookup_cached("host.lan")) is None
    assert lookup(dnet, r, "host.lan") == bytes([198, 18, 0, 78])
    time.sleep(0.2)
    assert queries_logged(dnet, "host.lan") == 2


def test_silent_server_times_out(dnet):
    r = dnet.call(lambda: Resolver(dnet.stack, servers=["198.18.0.9"], timeout_ms=300, retries=2))
    t0 = time.monotonic()
    assert lookup(dnet, r, "www.lan", limit_s=5) is None
    took = time.monotonic() - t0
    assert 0.85 <= took < 2.5, took                       # 3 attempts of 300 ms
    st = dnet.call(lambda: dict(r.stats))
    assert st["timeouts"] == 1 and st["retransmits"] == 2 and st["arp_wait"] >= 3


def test_second_server_answers(dnet):
    r = dnet.call(lambda: Resolver(dnet.stack, servers=["198.18.0.9", KERNEL_IP], timeout_ms=300))
    assert lookup(dnet, r, "www.lan") == bytes([198, 18, 0, 77])
    assert dnet.call(lambda: r.stats["retransmits"]) == 1


def test_servers_from_dhcp(tmp_path):
    """No static address: DHCP binds and fills stack.dns_servers, the resolver uses them."""
    need_root()
    tool("dnsmasq")
    net = DnsmasqNet(tmp_path)
    try:
        net.start_dnsmasq(*DNS_ARGS)
        net.run()
        dhcp = make_client(net)
        r = net.call(lambda: Resolver(net.stack, timeout_ms=500))
        net.call(dhcp.start)
        net.wait(bound(dhcp), 10, "a lease")
        assert net.call(lambda: net.stack.dns_servers) == [DNS1]
        assert lookup(net, r, "www.lan") == bytes([198, 18, 0, 77])
    finally:
        net.close()
