"""IPv4, ICMP and UDP behaviour beyond the golden frames, and configuration errors."""
import pytest
from hypothesis import given, settings, strategies as st
from scapy.all import ARP, Ether, ICMP, IP, UDP, raw

from uipy.stack import Stack
from nethelpers import FakeNic, PEER_MAC, US_MAC, make_stack, run

PEER = "198.18.0.1"
US = "198.18.0.2"


def to_us(pkt, src=PEER):
    return raw(Ether(src=PEER_MAC, dst=US_MAC) / IP(src=src, dst=US) / pkt)


def learn_peer(stack, nic):
    nic.push(raw(Ether(src=PEER_MAC, dst="ff:ff:ff:ff:ff:ff") / ARP(op=1, hwsrc=PEER_MAC, psrc=PEER, pdst=US)))
    stack.poll()
    nic.take()


def test_stack_pings_and_gets_rtt():
    stack, nic, clock = make_stack()
    learn_peer(stack, nic)
    replies = []
    stack.icmp.on_echo_reply = lambda ip, seq, rtt: replies.append((bytes(ip), seq, rtt))
    assert stack.ping(PEER, 7, size=40) is True
    (frame,) = nic.take()
    pkt = Ether(frame)
    assert pkt[ICMP].type == 8 and pkt[ICMP].seq == 7 and len(pkt[ICMP].payload) == 40
    ck = pkt[ICMP].chksum
    del pkt[ICMP].chksum
    assert Ether(raw(pkt))[ICMP].chksum == ck
    clock.advance(23)
    reply = IP(src=PEER, dst=US) / ICMP(type=0, id=pkt[ICMP].id, seq=7) / pkt[ICMP].load
    nic.push(raw(Ether(src=PEER_MAC, dst=US_MAC) / reply))
    stack.poll()
    assert replies == [(bytes([198, 18, 0, 1]), 7, 23)]


def test_echo_to_broadcast_is_not_answered():
    stack, nic, clock = make_stack()
    nic.push(raw(Ether(src=PEER_MAC, dst="ff:ff:ff:ff:ff:ff") / IP(src=PEER, dst="198.18.0.255") / ICMP()))
    stack.poll()
    assert nic.take() == [] and stack.stats["icmp_rx"] == 1


def test_udp_broadcast_delivered_and_no_unreachable():
    stack, nic, clock = make_stack()
    got = []
    stack.udp_bind(5000, lambda data, ip, port: got.append((bytes(data), bytes(ip), port)))
    for dst in ("255.255.255.255", "198.18.0.255"):
        nic.push(raw(Ether(src=PEER_MAC, dst="ff:ff:ff:ff:ff:ff") / IP(src=PEER, dst=dst) / UDP(sport=6, dport=5000) / b"bc"))
        nic.push(raw(Ether(src=PEER_MAC, dst="ff:ff:ff:ff:ff:ff") / IP(src=PEER, dst=dst) / UDP(sport=6, dport=5001) / b"bc"))
    stack.poll()
    assert got == [(b"bc", bytes([198, 18, 0, 1]), 6)] * 2
    assert nic.take() == [] and stack.stats["udp_no_port"] == 2


def test_udp_sendto_checksum_and_ffff_rule():
    stack, nic, clock = make_stack()
    learn_peer(stack, nic)
    # a 2-byte payload equal to the checksum of the zero payload makes the sum 0xFFFF,
    # so the computed checksum is 0 and must go out as 0xFFFF
    zero = IP(raw(IP(src=US, dst=PEER) / UDP(sport=1000, dport=2000) / b"\x00\x00"))[UDP].chksum
    payload = zero.to_bytes(2, "big")
    stack.udp_sendto(payload, PEER, 2000, 1000)
    (frame,) = nic.take()
    assert frame[40:42] == b"\xff\xff"
    assert Ether(frame)[UDP].load == payload


def test_udp_bind_errors():
    stack, nic, clock = make_stack(udp_size=2)
    stack.udp_bind(1, print)
    with pytest.raises(ValueError, match="already bound"):
        stack.udp_bind(1, print)
    stack.udp_bind(2, print)
    with pytest.raises(ValueError, match="table full"):
        stack.udp_bind(3, print)
    with pytest.raises(ValueError, match="out of range"):
        stack.udp_bind(70000, print)
    stack.udp.unbind(1)
    stack.udp_bind(3, print)


def test_port_unreachable_is_rate_limited():
    stack, nic, clock = make_stack(icmp_unreach_per_s=3)
    for i in range(10):
        nic.push(to_us(UDP(sport=1, dport=999) / b"x"))
    stack.poll()
    stack.poll()
    assert len(nic.take()) == 3 and stack.stats["icmp_unreach_limited"] == 7
    run(stack, clock, 1100)
    nic.push(to_us(UDP(sport=1, dport=999) / b"x"))
    stack.poll()
    assert len(nic.take()) == 1


def test_handler_exception_is_counted_not_raised():
    stack, nic, clock = make_stack()

    def bad(data, ip, port):
        raise RuntimeError("application bug")

    stack.udp_bind(5, bad)
    nic.push(to_us(UDP(sport=1, dport=5) / b"x"))
    stack.poll()
    assert stack.stats["handler_errors"] == 1 and "application bug" in str(stack.last_error)


def test_no_route_without_gateway():
    stack, nic, clock = make_stack(gateway=None)
    assert stack.udp_sendto(b"x", "198.19.0.1", 1, 1) is False
    assert stack.stats["ip_no_route"] == 1 and nic.take() == []


@pytest.mark.parametrize("kw, message", [
    (dict(ip="198.18.0"), "bad IPv4 address"),
    (dict(ip="198.18.0.256"), "bad IPv4 address"),
    (dict(ip="198.18.0.2", netmask="255.0.255.0"), "not a contiguous prefix"),
    (dict(ip="198.18.0.2", gateway="198.19.0.1"), "not in the subnet"),
    (dict(ip="198.18.0.255"), "broadcast address"),
    (dict(ip="224.0.0.1"), "cannot be an interface address"),
    (dict(ip="198.18.0.2", arp_size=0), "arp_size must be a positive int"),
])
def test_configuration_errors_are_clear(kw, message):
    with pytest.raises(ValueError, match=message):
        Stack(FakeNic(), **kw)


def test_bad_mac_is_refused():
    with pytest.raises(ValueError, match="6 bytes"):
        Stack(FakeNic(mac=b"\x02\x00"))
    with pytest.raises(ValueError, match="multicast"):
        Stack(FakeNic(mac=b"\x01\x00\x5e\x00\x00\x01"))


@settings(max_examples=300, deadline=None)
@given(st.binary(min_size=1, max_size=1600))
def test_random_frames_never_raise(frame):
    stack, nic, clock = make_stack()
    nic.push(frame)
    stack.poll()
    assert stack.stats["handler_errors"] == 0, stack.last_error


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=80), st.integers(0, 2), st.integers(0, 255))
def test_mutated_headers_never_raise(tail, which, value):
    stack, nic, clock = make_stack()
    stack.udp_bind(7, lambda d, ip, p: stack.udp.send_payload(len(d), ip, p, 7))
    base = bytearray(to_us(UDP(sport=1, dport=7) / b"hello world") if which else to_us(ICMP() / b"hi"))
    base[14 + (value % 28)] = value
    nic.push(bytes(base) + tail)
    stack.poll()
    assert stack.stats["handler_errors"] == 0, stack.last_error


def test_multicast_group_join_receive_and_send():
    stack, nic, clock = make_stack()
    got = []
    stack.udp_bind(5353, lambda data, ip, port: got.append(bytes(data)))
    frame = raw(Ether(src=PEER_MAC, dst="01:00:5e:00:00:fb") / IP(src=PEER, dst="224.0.0.251") /
                UDP(sport=5353, dport=5353) / b"query")
    nic.push(frame)
    stack.poll()
    assert got == [] and stack.stats["drop_not_for_us"] == 1      # not joined yet
    stack.join_multicast("224.0.0.251")
    nic.push(frame)
    nic.push(raw(Ether(src=PEER_MAC, dst="01:00:5e:00:00:fc") / IP(src=PEER, dst="224.0.0.252") /
                 UDP(sport=5353, dport=5353) / b"other group"))
    stack.poll()
    assert got == [b"query"] and nic.take() == []                   # no ICMP errors for multicast
    stack.udp_sendto(b"answer", "224.0.0.251", 5353, 5353, ttl=255)
    (out,) = nic.take()
    pkt = Ether(out)
    assert pkt.dst == "01:00:5e:00:00:fb" and pkt[IP].ttl == 255 and pkt[UDP].load == b"answer"
    with pytest.raises(ValueError, match="not a multicast"):
        stack.join_multicast("198.18.0.9")


def test_unconfigured_stack_takes_unicast_dhcp_only():
    stack, nic, clock = make_stack()
    stack.clear_address()
    assert not stack.configured
    got = []
    stack.udp_bind(68, lambda data, ip, port: got.append(bytes(data)))
    for dport, payload in ((68, b"offer"), (69, b"not dhcp")):
        nic.push(raw(Ether(src=PEER_MAC, dst=US_MAC) / IP(src=PEER, dst="198.18.0.50") /
                     UDP(sport=67, dport=dport) / payload))
    nic.push(to_us(ICMP()))                      # ping to our old address: silence
    stack.poll()
    assert got == [b"offer"] and nic.take() == []
    assert stack.udp_sendto(b"discover", "255.255.255.255", 67, 68) is True
    pkt = Ether(nic.take()[0])
    assert pkt[IP].src == "0.0.0.0" and pkt.dst == "ff:ff:ff:ff:ff:ff"


def test_clear_address_resets_tcp_connections():
    stack, nic, clock = make_stack()
    stack.listen(80, lambda c, e: None)
    nic.push(raw(Ether(src=PEER_MAC, dst="ff:ff:ff:ff:ff:ff") / ARP(op=1, hwsrc=PEER_MAC, psrc=PEER, pdst=US)))
    from scapy.all import TCP
    nic.push(to_us(TCP(sport=1234, dport=80, flags="S", seq=1)))
    stack.poll()
    synack = [Ether(f)[TCP] for f in nic.take() if TCP in Ether(f)][0]
    nic.push(to_us(TCP(sport=1234, dport=80, flags="A", seq=2, ack=synack.seq + 1)))   # SYN cookie returned
    stack.poll()
    conn = next(c for c in stack.tcp.conns if c.state)
    assert conn.state_name() == "ESTABLISHED"
    stack.clear_address()
    assert conn.state_name() == "CLOSED"


def test_slash31_has_no_broadcast_address():
    """RFC 3021: on a /31 both addresses are hosts; the peer gets unicast (ARP), not broadcast."""
    stack, nic, clock = make_stack(ip="198.18.0.2", netmask="255.255.255.254", gateway=None)
    assert stack.udp_sendto(b"x", "198.18.0.3", 9, 9) is False     # an ARP miss, not a broadcast
    (req,) = nic.take()
    assert ARP in Ether(req) and Ether(req)[ARP].pdst == "198.18.0.3"
    assert stack.udp_sendto(b"x", "198.18.0.255", 9, 9) is False    # off the /31: no route
    assert stack.stats["ip_no_route"] == 1
