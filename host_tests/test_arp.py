"""ARP cache: learning rules, LRU, aging, retries, gratuitous ARP (virtual clock)."""
from scapy.all import ARP, Ether, IP, UDP, raw

from nethelpers import PEER_MAC, US_MAC, make_stack, run

US = "198.18.0.2"


def request_from(mac, ip, target=US):
    return raw(Ether(src=mac, dst="ff:ff:ff:ff:ff:ff") / ARP(op=1, hwsrc=mac, psrc=ip, pdst=target))


def reply_from(mac, ip):
    return raw(Ether(src=mac, dst=US_MAC) / ARP(op=2, hwsrc=mac, psrc=ip, hwdst=US_MAC, pdst=US))


def mac_of(i):
    return "02:00:00:00:01:%02x" % i


def cached(stack, ip):
    a, b, c, d = (int(x) for x in ip.split("."))
    buf = bytearray(6)
    if stack.arp.lookup_into((a << 8) | b, (c << 8) | d, buf, 0) >= 0:
        return buf.hex(":")
    return None


def test_gratuitous_arp_on_set_address():
    stack, nic, clock = make_stack()
    stack.set_address("198.18.0.5", "255.255.255.0", "198.18.0.1")
    (frame,) = nic.take()
    arp = Ether(frame)[ARP]
    assert arp.op == 1 and arp.psrc == arp.pdst == "198.18.0.5" and Ether(frame).dst == "ff:ff:ff:ff:ff:ff"


def test_learns_from_request_for_us_only():
    stack, nic, clock = make_stack()
    nic.push(request_from(mac_of(1), "198.18.0.11"))
    nic.push(request_from(mac_of(2), "198.18.0.12", target="198.18.0.99"))
    stack.poll()
    assert cached(stack, "198.18.0.11") == mac_of(1)
    assert cached(stack, "198.18.0.12") is None
    assert stack.stats["arp_drop_not_for_us"] == 1


def test_unsolicited_reply_does_not_poison():
    stack, nic, clock = make_stack()
    nic.push(request_from(mac_of(1), "198.18.0.11"))
    nic.push(reply_from(mac_of(66), "198.18.0.11"))     # tries to take over .11
    stack.poll()
    assert cached(stack, "198.18.0.11") == mac_of(1)
    assert stack.stats["arp_unsolicited"] == 1


def test_miss_sends_request_then_reply_resolves():
    stack, nic, clock = make_stack()
    assert stack.udp_sendto(b"hello", "198.18.0.20", 9, 1000) is False
    (req,) = nic.take()
    arp = Ether(req)[ARP]
    assert arp.op == 1 and arp.pdst == "198.18.0.20" and arp.psrc == US
    assert stack.stats["arp_miss"] == 1
    # a second miss right away does not send another request (retry interval)
    assert stack.udp_sendto(b"hello", "198.18.0.20", 9, 1000) is False
    assert nic.take() == []
    nic.push(reply_from(mac_of(20), "198.18.0.20"))
    stack.poll()
    assert cached(stack, "198.18.0.20") == mac_of(20)
    assert stack.udp_sendto(b"hello", "198.18.0.20", 9, 1000) is True
    (frame,) = nic.take()
    assert Ether(frame).dst == mac_of(20) and Ether(frame)[UDP].load == b"hello"


def test_retry_after_interval_and_pending_expiry():
    stack, nic, clock = make_stack(arp_retry_ms=1000, arp_pending_ms=3000)
    stack.udp_sendto(b"x", "198.18.0.20", 9, 1000)
    nic.take()
    run(stack, clock, 1000)
    stack.udp_sendto(b"x", "198.18.0.20", 9, 1000)
    assert len(nic.take()) == 1                     # retried after the interval
    run(stack, clock, 3100)
    assert stack.arp.find(0xC612, 20) == -1         # unanswered request forgotten
    # a late reply to a forgotten request is unsolicited
    nic.push(reply_from(mac_of(20), "198.18.0.20"))
    stack.poll()
    assert cached(stack, "198.18.0.20") is None


def test_off_link_goes_to_gateway():
    stack, nic, clock = make_stack()
    stack.udp_sendto(b"x", "198.19.5.5", 9, 1000)
    (req,) = nic.take()
    assert Ether(req)[ARP].pdst == "198.18.0.1"
    nic.push(reply_from(PEER_MAC.hex(":"), "198.18.0.1"))
    stack.poll()
    stack.udp_sendto(b"x", "198.19.5.5", 9, 1000)
    (frame,) = nic.take()
    assert Ether(frame).dst == PEER_MAC.hex(":") and Ether(frame)[IP].dst == "198.19.5.5"


def test_lru_replacement():
    stack, nic, clock = make_stack(arp_size=3)
    for i in range(1, 4):
        nic.push(request_from(mac_of(i), "198.18.0.%d" % (10 + i)))
        stack.poll()
        clock.advance(10)
        stack.poll()
    clock.advance(10)
    stack.poll()
    cached(stack, "198.18.0.11")                 # .11 used recently; .12 is now the LRU
    nic.push(request_from(mac_of(4), "198.18.0.14"))
    stack.poll()
    assert cached(stack, "198.18.0.12") is None
    assert cached(stack, "198.18.0.11") == mac_of(1)
    assert cached(stack, "198.18.0.14") == mac_of(4)
    assert stack.stats["arp_evicted"] == 1


def test_aging():
    stack, nic, clock = make_stack(arp_max_age_ms=60000)
    nic.push(request_from(mac_of(1), "198.18.0.11"))
    stack.poll()
    run(stack, clock, 59000, step=500)
    assert cached(stack, "198.18.0.11") == mac_of(1)
    run(stack, clock, 1500, step=500)
    assert cached(stack, "198.18.0.11") is None
    assert stack.stats["arp_expired"] == 1


def test_address_conflict_is_counted():
    stack, nic, clock = make_stack()
    nic.push(raw(Ether(src=mac_of(9), dst="ff:ff:ff:ff:ff:ff") / ARP(op=1, hwsrc=mac_of(9), psrc=US, pdst=US)))
    stack.poll()
    assert stack.stats["arp_conflict"] == 1


def test_probe_from_zero_address_is_answered_not_learned():
    stack, nic, clock = make_stack()
    nic.push(request_from(mac_of(3), "0.0.0.0"))
    stack.poll()
    (rep,) = nic.take()
    assert Ether(rep)[ARP].op == 2 and Ether(rep).dst == mac_of(3)
    assert stack.arp.find(0, 0) == -1


def test_entry_in_use_is_refreshed_before_it_expires():
    stack, nic, clock = make_stack(arp_max_age_ms=40000)
    nic.push(request_from(mac_of(1), "198.18.0.11"))
    stack.poll()
    nic.take()
    for _ in range(7):                          # keep using it for 35 s
        run(stack, clock, 5000, step=500)
        stack.udp_sendto(b"x", "198.18.0.11", 9, 1000)
    reqs = [f for f in nic.take() if ARP in Ether(f)]
    assert reqs and Ether(reqs[0])[ARP].pdst == "198.18.0.11" and stack.stats["arp_refresh"] >= 1
    nic.push(reply_from(mac_of(1), "198.18.0.11"))   # the answer to the refresh is accepted
    stack.poll()
    run(stack, clock, 20000, step=500)
    assert cached(stack, "198.18.0.11") == mac_of(1) and stack.stats["arp_expired"] == 0


def test_unused_entry_is_not_refreshed():
    stack, nic, clock = make_stack(arp_max_age_ms=40000)
    nic.push(request_from(mac_of(1), "198.18.0.11"))
    stack.poll()
    nic.take()
    run(stack, clock, 41000, step=500)
    assert nic.take() == [] and stack.stats["arp_expired"] == 1


def test_verify_asks_again_and_a_corrected_reply_is_taken():
    stack, nic, clock = make_stack()
    nic.push(request_from(mac_of(1), "198.18.0.11"))
    stack.poll()
    nic.take()
    stack.arp.verify(0xC612, 11)                   # e.g. TCP retransmits without answers
    run(stack, clock, 100)
    (req,) = [f for f in nic.take() if ARP in Ether(f)]
    assert Ether(req)[ARP].pdst == "198.18.0.11" and Ether(req).dst == "ff:ff:ff:ff:ff:ff"
    nic.push(reply_from(mac_of(2), "198.18.0.11"))  # the host now answers from another MAC
    stack.poll()
    assert cached(stack, "198.18.0.11") == mac_of(2)
