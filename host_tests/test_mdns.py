"""mDNS responder (lib/uipy/mdns.py): hand-made queries (scapy) through a
FakeNic, then real clients (python-zeroconf, dig) in a network namespace
against the stack on a plain TAP and through each emulated chip."""
import json
import os
import subprocess
import sys

import pytest
from scapy.all import ARP, DNS, DNSQR, DNSRR, Ether, IP, UDP, raw

from uipy.mdns import Mdns
from uipy.mdns_setup import COUNTERS
from kernel_net import KERNEL_IP, STACK_IP, KernelNet
from nethelpers import FakeNic, PEER_MAC, US_MAC, make_stack, run

PEER = "198.18.0.1"
US = "198.18.0.2"
GROUP = "224.0.0.251"
GROUP_MAC = "01:00:5e:00:00:fb"
NAME = "board.local"


class McNic(FakeNic):
    def __init__(self):
        super().__init__()
        self.multicast = None

    def allow_multicast(self, on):
        self.multicast = on


def responder(hostname="board", ttl=120, ip=US, announce=True):
    """A stack with an Mdns; by default past its two announcements (so the
    1 s multicast rate limit is over) with the sent frames dropped."""
    stack, nic, clock = make_stack(ip=ip) if ip else make_stack(ip=None, gateway=None)
    mdns = Mdns(stack, hostname, ttl=ttl)
    if announce:
        run(stack, clock, 2200)
        nic.take()
    return stack, nic, clock, mdns


def query(*qd, an=(), sport=5353, dst=GROUP, src=PEER, qid=0, **dns_kw):
    dmac = GROUP_MAC if dst == GROUP else US_MAC
    dns = DNS(id=qid, rd=0, qd=list(qd), an=list(an), **dns_kw)
    return raw(Ether(src=PEER_MAC, dst=dmac) / IP(src=src, dst=dst) / UDP(sport=sport, dport=5353) / dns)


def raw_query(payload, sport=5353):
    return raw(Ether(src=PEER_MAC, dst=GROUP_MAC) / IP(src=PEER, dst=GROUP) / UDP(sport=sport, dport=5353) / payload)


def poll(stack, nic, *frames):
    for f in frames:
        nic.push(f)
    stack.poll()
    return [Ether(f) for f in nic.take()]


def learn_peer(stack, nic):
    nic.push(raw(Ether(src=PEER_MAC, dst="ff:ff:ff:ff:ff:ff") / ARP(op=1, hwsrc=PEER_MAC, psrc=PEER, pdst=US)))
    stack.poll()
    nic.take()


def check_answer(pkt, dst_ip=GROUP, dport=5353, ttl=120, flush=True, rrname=b"board.local."):
    """One A record for us, authoritative, IP TTL 255, from port 5353."""
    assert pkt[IP].dst == dst_ip and pkt[IP].src == US and pkt[IP].ttl == 255
    if dst_ip == GROUP:
        assert pkt[Ether].dst == GROUP_MAC
    assert pkt[UDP].sport == 5353 and pkt[UDP].dport == dport
    d = pkt[DNS]
    assert d.qr == 1 and d.aa == 1 and d.opcode == 0 and d.rcode == 0 and d.ancount == 1
    rr = d.an[0]
    assert rr.rrname.lower() == rrname.lower() and rr.type == 1 and rr.rclass == 1
    assert rr.cacheflush == (1 if flush else 0)
    assert rr.ttl == ttl and rr.rdata == US
    # checksums as sent are right (scapy recomputes them)
    again = Ether(raw(pkt))
    del again[IP].chksum
    del again[UDP].chksum
    again = Ether(raw(again))
    assert again[IP].chksum == pkt[IP].chksum and again[UDP].chksum == pkt[UDP].chksum
    return d


# --- set-up, announcements ---

def test_joins_group_opens_nic_filter_and_binds_5353():
    nic = McNic()
    from uipy.compat import VirtualClock
    from uipy.stack import Stack
    stack = Stack(nic, ip=US, clock=VirtualClock(0))
    stack.hostname = "fromstack"
    m = Mdns(stack)
    assert nic.multicast is True
    assert m.hostname == "fromstack" and 5353 in stack.udp.ports
    assert stack.ipv4.group_mac(bytes.fromhex("01005e0000fb"))
    assert m._ticker in stack.tickers


def test_bad_configuration_is_a_clear_error():
    stack, nic, clock = make_stack()
    for bad in ("", "a..b", "x" * 64, "caf\u00e9", "a." * 130 + "b"):
        with pytest.raises(ValueError, match="mDNS hostname"):
            Mdns(stack, bad)
    with pytest.raises(ValueError, match="ttl"):
        Mdns(stack, "ok", ttl=0)
    with pytest.raises(ValueError, match="hostname must be a str"):
        Mdns(stack, b"bytes")
    m = Mdns(stack, "Board.local")                  # the suffix is optional
    assert m.hostname == "Board"


def test_announces_twice_one_second_apart_on_start():
    stack, nic, clock, m = responder(announce=False)
    out = []
    for _ in range(400):                            # 4 s
        clock.advance(10)
        stack.poll()
        out += [(clock.now, Ether(f)) for f in nic.take()]
    assert len(out) == 2
    (t1, a1), (t2, a2) = out
    assert t2 - t1 == 1000 and t1 - 1000 <= 60
    for pkt in (a1, a2):
        d = check_answer(pkt)
        assert d.id == 0 and d.qdcount == 0
    assert m.stats["announced"] == 2


def test_no_answers_without_address_then_announces_when_configured():
    stack, nic, clock, m = responder(ip=None, announce=False)
    run(stack, clock, 3000)
    assert nic.take() == []
    assert poll(stack, nic, query(DNSQR(qname=NAME))) == []
    assert m.stats["unconfigured"] == 1
    stack.set_address(US, gateway=PEER)
    nic.take()                                      # gratuitous ARP
    run(stack, clock, 3000)
    sent = [Ether(f) for f in nic.take()]
    assert len(sent) == 2
    for p in sent:
        check_answer(p)
    # a new address is announced again, with the new address
    stack.set_address("198.18.0.3", gateway=PEER)
    nic.take()
    run(stack, clock, 100)
    (p,) = [Ether(f) for f in nic.take()]
    assert p[DNS].an[0].rdata == "198.18.0.3" and p[IP].src == "198.18.0.3"
    stack.clear_address()
    run(stack, clock, 3000)
    assert nic.take() == []
    assert poll(stack, nic, query(DNSQR(qname=NAME))) == []


# --- answers ---

def test_qm_query_gets_multicast_answer():
    stack, nic, clock, m = responder()
    (p,) = poll(stack, nic, query(DNSQR(qname=NAME, qtype="A")))
    d = check_answer(p)
    assert d.id == 0 and d.qdcount == 0
    assert m.stats["answered_multicast"] == 1
    assert stack.stats["handler_errors"] == 0


def test_name_is_case_insensitive_and_any_type_answered():
    stack, nic, clock, m = responder(hostname="Board")
    (p,) = poll(stack, nic, query(DNSQR(qname="bOARD.LoCaL", qtype="ALL")))
    check_answer(p, rrname=b"Board.local.")
    clock.advance(1000)
    (p,) = poll(stack, nic, query(DNSQR(qname="BOARD.local.", qtype="A", qclass=255)))
    check_answer(p)


def test_qu_query_right_after_announcement_is_unicast():
    stack, nic, clock, m = responder(announce=False)
    run(stack, clock, 50)
    assert len(nic.take()) == 1                      # the first announcement
    learn_peer(stack, nic)
    (p,) = poll(stack, nic, query(DNSQR(qname=NAME, unicastresponse=1)))
    check_answer(p, dst_ip=PEER)
    assert p[Ether].dst == "02:00:00:00:00:01"
    assert m.stats["answered_unicast"] == 1


def test_qu_answer_waits_for_arp():
    stack, nic, clock, m = responder(announce=False)
    run(stack, clock, 50)
    nic.take()
    (arp,) = poll(stack, nic, query(DNSQR(qname=NAME, unicastresponse=1)))
    assert arp[ARP].op == 1 and arp[ARP].pdst == PEER
    nic.push(raw(Ether(src=PEER_MAC, dst=US_MAC) / ARP(op=2, hwsrc=PEER_MAC, psrc=PEER, hwdst=US_MAC, pdst=US)))
    run(stack, clock, 60)
    (p,) = [Ether(f) for f in nic.take()]
    check_answer(p, dst_ip=PEER)


def test_unicast_answer_given_up_after_a_second_without_arp():
    stack, nic, clock, m = responder(announce=False)
    run(stack, clock, 50)
    nic.take()
    poll(stack, nic, query(DNSQR(qname=NAME, unicastresponse=1)))
    run(stack, clock, 1500)
    sent = [Ether(f) for f in nic.take()]
    assert all(ARP in p or p[IP].dst == GROUP for p in sent)
    assert m.stats["unicast_dropped"] == 1


def test_qu_query_long_after_last_multicast_is_multicast():
    stack, nic, clock, m = responder(ttl=120)
    run(stack, clock, 31000)                          # a quarter of the TTL
    (p,) = poll(stack, nic, query(DNSQR(qname=NAME, unicastresponse=1)))
    check_answer(p)


def test_legacy_unicast_query_echoes_id_and_question():
    stack, nic, clock, m = responder()
    learn_peer(stack, nic)
    (p,) = poll(stack, nic, query(DNSQR(qname="BOARD.local", qtype="A"), sport=40000, qid=0xBEEF))
    d = check_answer(p, dst_ip=PEER, dport=40000, ttl=10, flush=False)
    assert d.id == 0xBEEF and d.qdcount == 1
    q = d.qd[0]
    assert q.qname.lower() == b"board.local." and q.qtype == 1 and q.qclass == 1
    assert m.stats["answered_legacy"] == 1
    # even right after a multicast (no rate limit on unicast)
    (p,) = poll(stack, nic, query(DNSQR(qname=NAME, qtype="ALL"), sport=40001, qid=7))
    d = check_answer(p, dst_ip=PEER, dport=40001, ttl=10, flush=False)
    assert d.id == 7 and d.qd[0].qtype == 255


def test_legacy_ttl_follows_a_shorter_record_ttl():
    stack, nic, clock, m = responder(ttl=4)
    learn_peer(stack, nic)
    (p,) = poll(stack, nic, query(DNSQR(qname=NAME), sport=40000, qid=1))
    check_answer(p, dst_ip=PEER, dport=40000, ttl=4, flush=False)


def test_query_sent_to_our_address_is_answered_to_sender():
    stack, nic, clock, m = responder()
    learn_peer(stack, nic)
    clock.advance(40000)
    (p,) = poll(stack, nic, query(DNSQR(qname=NAME), dst=US))
    check_answer(p, dst_ip=PEER)
    # but not from off the link
    assert poll(stack, nic, query(DNSQR(qname=NAME), dst=US, src="198.19.5.5")) == []
    assert m.stats["off_link"] == 1


def test_multicast_rate_limited_to_one_a_second():
    stack, nic, clock, m = responder()
    (p,) = poll(stack, nic, query(DNSQR(qname=NAME)))
    t0 = clock.now
    check_answer(p)
    clock.advance(300)
    assert poll(stack, nic, query(DNSQR(qname=NAME))) == []
    assert poll(stack, nic, query(DNSQR(qname=NAME))) == []
    assert m.stats["deferred"] == 2
    sent = []
    for _ in range(100):
        clock.advance(10)
        stack.poll()
        sent += [(clock.now, Ether(f)) for f in nic.take()]
    assert len(sent) == 1 and 1000 <= sent[0][0] - t0 <= 1060
    check_answer(sent[0][1])


def test_second_question_with_compressed_name():
    stack, nic, clock, m = responder()
    # first question other.local, second a pointer to "local" of the first
    hdr = bytes.fromhex("0000 0000 0002 0000 0000 0000")
    q1 = b"\x05other\x05local\x00" + b"\x00\x01\x00\x01"
    q2 = b"\x05BOARD\xc0\x12" + b"\x00\x01\x00\x01"
    (p,) = poll(stack, nic, raw_query(hdr + q1 + q2))
    check_answer(p)


def test_other_names_types_and_responses_ignored():
    stack, nic, clock, m = responder()
    frames = [
        query(DNSQR(qname="other.local")),
        query(DNSQR(qname="board.locals")),
        query(DNSQR(qname="boar.local")),
        query(DNSQR(qname="board.local.example")),
        query(DNSQR(qname="x.board.local")),
        query(DNSQR(qname=NAME, qtype="AAAA")),
        query(DNSQR(qname=NAME, qtype="PTR")),
        query(DNSQR(qname=NAME, qclass=3)),
        query(DNSQR(qname=NAME), opcode=2),
    ]
    for f in frames:
        assert poll(stack, nic, f) == []
    assert m.stats["other_names"] == len(frames)
    # a response (even one naming us, with our address) is never answered
    resp = query(DNSQR(qname=NAME), an=[DNSRR(rrname=NAME, rdata=US, ttl=120)], qr=1, aa=1)
    assert poll(stack, nic, resp) == []
    assert m.stats["responses"] == 1 and m.stats["conflicts"] == 0
    assert m.stats["malformed"] == 0


def test_conflicting_response_is_counted():
    stack, nic, clock, m = responder()
    resp = query(an=[DNSRR(rrname="other.local", rdata="198.18.0.9"),
                     DNSRR(rrname="BOARD.local", rdata="198.18.0.9", cacheflush=1)], qr=1, aa=1)
    assert poll(stack, nic, resp) == []
    assert m.stats["conflicts"] == 1


def test_known_answer_suppression():
    stack, nic, clock, m = responder(ttl=120)
    ka = DNSRR(rrname="Board.Local", type="A", rdata=US, ttl=60)
    assert poll(stack, nic, query(DNSQR(qname=NAME), an=[ka])) == []
    assert m.stats["suppressed_known"] == 1
    big = DNSRR(rrname=NAME, type="A", rdata=US, ttl=70000)
    assert poll(stack, nic, query(DNSQR(qname=NAME), an=[DNSRR(rrname="x.local", rdata=US), big])) == []
    assert m.stats["suppressed_known"] == 2
    # half the TTL is not enough when below; another address or name does not count
    for known in (DNSRR(rrname=NAME, rdata=US, ttl=59),
                  DNSRR(rrname=NAME, rdata="198.18.0.7", ttl=120),
                  DNSRR(rrname="other.local", rdata=US, ttl=120)):
        clock.advance(1000)
        (p,) = poll(stack, nic, query(DNSQR(qname=NAME), an=[known]))
        check_answer(p)


MALFORMED = [
    b"",
    b"\x00" * 11,
    bytes.fromhex("000000000001000000000000"),                                # question missing
    bytes.fromhex("000000000001000000000000") + b"\x05board\x05loc",          # label past the end
    bytes.fromhex("000000000001000000000000") + b"\x05board\x05local\x00\x00",  # qtype cut
    bytes.fromhex("000000000001000000000000") + b"\xc0\x0c\x00\x01\x00\x01",  # pointer to itself
    bytes.fromhex("000000000001000000000000") + b"\x05board\xc0\x0c\x00\x01\x00\x01",  # loop
    bytes.fromhex("000000000001000000000000") + b"\xc0\x20\x00\x01\x00\x01" + b"\x00" * 20,  # forward
    bytes.fromhex("000000000001000000000000") + b"\xc0",                      # half a pointer
    bytes.fromhex("000000000001000000000000") + b"\x45board\x00\x00\x01\x00\x01",  # label type 01
    bytes.fromhex("000000000001000000000000") + b"\x85board\x00\x00\x01\x00\x01",  # label type 10
    bytes.fromhex("000000000001000000000000") + (b"\x3f" + b"a" * 63) * 5 + b"\x00\x00\x01\x00\x01",  # > 255
    bytes.fromhex("000000000001000100000000") + b"\x05board\x05local\x00\x00\x01\x00\x01"
    + b"\xc0\x0c\x00\x01\x80\x01\x00\x00\x00\x78\x00\x04\xc6\x12",          # rdata cut
    bytes.fromhex("000000000001000100000000") + b"\x05board\x05local\x00\x00\x01\x00\x01"
    + b"\xc0\x0c\x00\x01\x80",                                                # answer header cut
    bytes.fromhex("0000000000ff000000000000") + b"\x05board\x05local\x00\x00\x01\x00\x01",  # qdcount
    bytes.fromhex("000084000000000100000000") + b"\x05board\x05local\x00\x00\x01\x80",  # response cut
]


def test_malformed_packets_counted_never_raise():
    stack, nic, clock, m = responder()
    for payload in MALFORMED:
        assert poll(stack, nic, raw_query(payload)) == [], payload
    assert m.stats["malformed"] == len(MALFORMED)
    assert stack.stats["handler_errors"] == 0 and stack.last_error is None
    # and still answering
    (p,) = poll(stack, nic, query(DNSQR(qname=NAME)))
    check_answer(p)


def test_fuzzed_queries_never_raise():
    import random
    rnd = random.Random(5353)
    stack, nic, clock, m = responder()
    good = raw(DNS(qd=[DNSQR(qname=NAME), DNSQR(qname="x.local")],
                   an=[DNSRR(rrname=NAME, rdata="198.18.0.3")]))
    for i in range(3000):
        b = bytearray(good)
        for _ in range(rnd.randint(1, 4)):
            b[rnd.randrange(len(b))] = rnd.choice((0, 0xC0, 0xC0 | rnd.randrange(4), rnd.randrange(256)))
        if rnd.random() < 0.3:
            b = b[:rnd.randrange(len(b))]
        nic.push(raw_query(bytes(b)))
        stack.poll()
        clock.advance(7)
    assert stack.stats["handler_errors"] == 0, stack.last_error
    assert m.stats["rx"] == 3000 and m.stats["malformed"] > 100


def test_close_says_goodbye_and_unbinds():
    stack, nic, clock, m = responder()
    m.close()
    (p,) = [Ether(f) for f in nic.take()]
    check_answer(p, ttl=0)
    assert 5353 not in stack.udp.ports and m._ticker not in stack.tickers
    assert m._resp[-10:-6] == b"\x00\x00\x00\x78"       # the TTL is back for a restart


def test_counters_complete():
    stack, nic, clock, m = responder()
    assert sorted(m.stats) == sorted(COUNTERS)


# --- end to end: real mDNS clients in a namespace ---

HOST = "uipyboard"

ZEROCONF_SCRIPT = r"""
import json, sys, time
from zeroconf import AddressResolverIPv4, DNSQuestionType, IPVersion, Zeroconf
name, iface, kind, timeout_ms = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
zc = Zeroconf(interfaces=[iface], ip_version=IPVersion.V4Only)
try:
    t0 = time.monotonic()
    r = AddressResolverIPv4(name + ".local.")
    qt = {"QU": DNSQuestionType.QU, "QM": DNSQuestionType.QM}.get(kind)
    ok = r.request(zc, timeout_ms, question_type=qt)
    print(json.dumps({"ok": ok, "addrs": r.parsed_addresses(), "ms": round((time.monotonic() - t0) * 1000)}))
finally:
    zc.close()
"""


class MdnsBoard(KernelNet):
    """The kernel on a captured TAP, the stack on it directly or through an
    emulated chip, an Mdns for HOST, all in a StackThread."""

    def __init__(self, kind, pcap_path):
        self.kind = kind
        super().__init__(chip=None if kind == "tap" else kind, pcap_path=pcap_path)
        self.start(self._build)

    def _build(self, nic):
        from uipy.stack import Stack
        stack = Stack(nic, ip=STACK_IP, gateway=KERNEL_IP, tcp=False)
        self.mdns = Mdns(stack, HOST)                   # join_multicast -> nic.allow_multicast
        return stack

    def mstats(self):
        return self.call(lambda s: dict(self.mdns.stats))

    def resolve(self, kind="default", timeout_ms=5000):
        r = self.ns.run([sys.executable, "-c", ZEROCONF_SCRIPT, HOST, KERNEL_IP, kind, str(timeout_ms)],
                        check=False, timeout=timeout_ms / 1000 + 20)
        assert r.returncode == 0, r.stderr[-3000:]
        return json.loads(r.stdout)

@pytest.fixture(scope="module", params=["tap", "w5500", "enc28j60"])
def mboard(request, tmp_path_factory):
    from levels import need_root, tool, unavailable
    need_root()
    tool("ip")
    try:
        import zeroconf  # noqa: F401
    except ImportError:
        unavailable("python-zeroconf not installed (pip install zeroconf)")
    b = MdnsBoard(request.param, str(tmp_path_factory.mktemp("mdns") / ("%s.pcap" % request.param)))
    yield b
    b.close()


def test_zeroconf_resolves_hostname(mboard):
    """python-zeroconf's first question is QU: answered by unicast when our
    record was multicast lately (the announcements), else by multicast."""
    before = mboard.mstats()
    res = mboard.resolve()
    assert res["ok"] and res["addrs"] == [STACK_IP], res
    print("%s: zeroconf resolved %s.local in %d ms" % (mboard.kind, HOST, res["ms"]))
    after = mboard.mstats()
    assert after["rx"] > before["rx"]
    assert after["answered_unicast"] + after["answered_multicast"] > \
        before["answered_unicast"] + before["answered_multicast"]


def test_zeroconf_qm_query_gets_multicast_answer(mboard):
    before = mboard.mstats()
    res = mboard.resolve("QM")
    assert res["ok"] and res["addrs"] == [STACK_IP], res
    after = mboard.mstats()
    # (an answer due within a second of the last multicast is deferred; an
    # announcement then due carries it)
    assert after["answered_multicast"] + after["deferred"] > before["answered_multicast"] + before["deferred"]
    assert after["answered_unicast"] == before["answered_unicast"]


def test_dig_legacy_unicast_query(mboard):
    from levels import tool
    tool("dig")
    r = mboard.ns.run(["dig", "@" + STACK_IP, "-p", "5353", "+time=2", "+tries=2", "+norecurse",
                       "UipyBoard.local", "A"], check=False, timeout=15)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "status: NOERROR" in r.stdout and "ANSWER: 1" in r.stdout, r.stdout
    answer = r.stdout.split("ANSWER SECTION:")[1].split()
    assert answer[0].lower() == HOST + ".local." and answer[2:5] == ["IN", "A", STACK_IP], r.stdout
    assert 0 < int(answer[1]) <= 10
    assert mboard.mstats()["answered_legacy"] >= 1


def test_chip_multicast_filter_matters(mboard):
    """With the chip's multicast filter closed, queries to the group never reach
    the stack; opened again (as join_multicast does), resolution works."""
    if mboard.kind == "tap":
        assert not hasattr(mboard.nic, "allow_multicast")       # a TAP takes every frame
        return
    mboard.call(lambda s: s.nic.driver.allow_multicast(False))
    try:
        before = mboard.mstats()
        res = mboard.resolve("QM", timeout_ms=1200)
        assert not res["ok"], res
        assert mboard.mstats()["rx"] == before["rx"]
    finally:
        mboard.call(lambda s: s.nic.driver.allow_multicast(True))
    res = mboard.resolve()
    assert res["ok"] and res["addrs"] == [STACK_IP], res


def tshark_fields(path, dfilter, *fields):
    from levels import tool
    args = [tool("tshark"), "-n", "-r", path, "-Y", dfilter, "-T", "fields"]
    for f in fields:
        args += ["-e", f]
    r = subprocess.run(args, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    return [line.split("\t") for line in r.stdout.splitlines()]


def test_capture_answers_well_formed(mboard):
    """Run last: every answer on the wire is well-formed mDNS with IP TTL 255,
    the multicast ones to the group with the cache-flush bit."""
    from levels import tool
    tool("tshark")
    mboard.call(lambda s: mboard.writer.flush())
    path = mboard.pcap_path
    ours = "ip.src == %s && udp.srcport == 5353" % STACK_IP
    rows = tshark_fields(path, ours, "ip.ttl", "ip.dst", "dns.flags.response", "dns.a",
                         "dns.resp.cache_flush", "dns.resp.ttl")
    assert len(rows) >= 4, rows               # two announcements and the answers
    for ttl, dst, response, a, flush, rttl in rows:
        assert ttl == "255" and response in ("1", "True") and a == STACK_IP, rows
        if dst == "224.0.0.251":
            assert flush in ("1", "True") and rttl == "120", rows
    assert any(r[1] == "224.0.0.251" for r in rows)
    assert tshark_fields(path, "_ws.malformed", "frame.number") == []
    # (the clients' own repeated queries draw "retransmission" warnings: ours only)
    assert tshark_fields(path, "ip.src == %s && _ws.expert.severity >= warning" % STACK_IP,
                         "frame.number") == []
    st = mboard.call(lambda s: (dict(s.stats), dict(mboard.mdns.stats)))
    assert st[0]["handler_errors"] == 0 and st[1]["malformed"] == 0


# --- allocation under a 32-bit MicroPython ---

MPY_SCRIPT = r"""
import gc, sys
from uipy.stack import Stack
from uipy.compat import VirtualClock
from uipy.mdns import Mdns

class Nic:
    def __init__(self, mac):
        self.mac = mac
        self.frame = None
        self.sent = 0
    def recv_into(self, mv):
        f = self.frame
        if f is None:
            return 0
        self.frame = None
        mv[0:len(f)] = f
        return len(f)
    def send(self, mv, n):
        self.sent += 1
        return True
    def link_up(self):
        return True

def noop(data, ip, port):
    pass

nic = Nic(US_MAC)
clock = VirtualClock(1000)
stack = Stack(nic, ip="198.18.0.2", gateway="198.18.0.1", clock=clock, tcp=False)
stack.udp_bind(9, noop)
m = Mdns(stack, "board")
for _ in range(300):                         # past the announcements
    clock.advance(10)
    stack.poll()
nic.frame = FRAMES["arp"]                    # the peer's MAC, for unicast answers
stack.poll()
ROUNDS = 40
for name, frame, step, answers in CASES:
    frame = FRAMES[frame]
    for _ in range(3):                       # warm-up
        clock.advance(step)
        nic.frame = frame
        stack.poll()
    gc.collect()
    sent = nic.sent
    before = gc.mem_alloc()
    for _ in range(ROUNDS):
        clock.advance(step)
        nic.frame = frame
        stack.poll()
    used = gc.mem_alloc() - before
    print("%s bytes_per_packet=%d sent=%d errors=%d" % (
        name, used // ROUNDS, nic.sent - sent, stack.stats["handler_errors"]))
print("malformed", m.stats["malformed"], "maxsize:", sys.maxsize)
print("OK")
"""


def test_mdns_allocates_nothing_beyond_udp_under_32bit_micropython(tmp_path):
    """Heap bytes per packet: a datagram to a do-nothing UDP port is the floor
    (udp.py hands handlers a memoryview slice); mDNS answers, refusals and
    malformed packets add nothing to it, and its tick adds nothing at all."""
    from levels import ROOT, run as lrun, tool
    node = tool("node")
    tool("micropython.mjs", os.path.join(ROOT, "node_modules", "@micropython", "micropython-webassembly-pyscript"))
    frames = {
        "arp": raw(Ether(src=PEER_MAC, dst="ff:ff:ff:ff:ff:ff") / ARP(op=1, hwsrc=PEER_MAC, psrc=PEER, pdst=US)),
        "udp9": raw(Ether(src=PEER_MAC, dst=US_MAC) / IP(src=PEER, dst=US) / UDP(sport=5353, dport=9)
                    / raw(DNS(rd=0, qd=[DNSQR(qname=NAME)]))),
        "qm": query(DNSQR(qname=NAME)),
        "legacy": query(DNSQR(qname="BOARD.local"), sport=40000, qid=77),
        "other": query(DNSQR(qname="other.local")),
        "known": query(DNSQR(qname=NAME), an=[DNSRR(rrname=NAME, rdata=US, ttl=120)]),
        "loop": raw_query(bytes.fromhex("000000000001000000000000") + b"\x05board\xc0\x0c\x00\x01\x00\x01"),
        "idle_tick": b"",
    }
    cases = [("udp_floor", "udp9", 10, 0), ("qm_answer", "qm", 1100, 1), ("legacy_answer", "legacy", 10, 1),
             ("other_name", "other", 10, 0), ("known_answer", "known", 1100, 0),
             ("malformed", "loop", 10, 0), ("idle_tick", "idle_tick", 60, 0)]
    src = ("US_MAC = %r\nFRAMES = %r\nFRAMES['idle_tick'] = None\nCASES = %r\n" % (US_MAC, frames, cases)
           + MPY_SCRIPT)
    script = tmp_path / "mdns_alloc.py"
    script.write_text(src)
    r = lrun([node, os.path.join(ROOT, "tools", "emu", "mpy_wasm.mjs"), str(script), "lib"], timeout=120)
    assert r.returncode == 0 and r.stdout.strip().endswith("OK"), r.stdout + r.stderr
    assert "maxsize: 2147483647" in r.stdout
    got = {}
    for line in r.stdout.splitlines():
        f = line.split()
        if f and "bytes_per_packet=" in line:
            got[f[0]] = {k: int(v) for k, v in (x.split("=") for x in f[1:])}
    print(got)
    floor = got["udp_floor"]["bytes_per_packet"]
    for name, _, _, answers in cases:
        assert got[name]["errors"] == 0, got
        assert got[name]["sent"] == answers * 40, (name, got)
        if name != "idle_tick":
            assert got[name]["bytes_per_packet"] <= floor, (name, got)
    assert got["idle_tick"]["bytes_per_packet"] == 0, got
