"""The DHCP client's address checks under real MicroPython (unix port, or the
32-bit WebAssembly build where addresses of 2**30 and more are heap ints):
ARP probes, DECLINE on a conflict, refused offers, defence then giving up.
Hand-made frames (no scapy here); prints OK at the end.

    micropython dhcp_acd_check.py ROOT LIB     (LIB: the compiled lib/)
"""
import sys

if len(sys.argv) > 2:
    sys.path.insert(0, sys.argv[1] + "/host_tests")
    sys.path.insert(0, sys.argv[2])          # compiled modules first

import struct

from uipy.compat import VirtualClock
from uipy.dhcp import Dhcp
from uipy.stack import Stack
from udp_frames import (BCAST_MAC, CLIENT_MAC, OFFERED, SERVER_IP, FakeNic, parse_udp,
                        udp_frame)

OTHER_MAC = b"\x02\x00\x00\x00\x00\x99"


def check(cond, what):
    if not cond:
        print("FAIL", what)
        sys.exit(1)


def reply(req, kind, yiaddr=OFFERED, server=SERVER_IP, router=SERVER_IP):
    m = bytearray(240)
    m[0] = 2
    m[1] = 1
    m[2] = 6
    m[4:8] = req[4:8]
    m[16:20] = yiaddr
    m[28:44] = req[28:44]
    m[236:240] = b"\x63\x82\x53\x63"
    m += bytes([53, 1, kind, 54, 4]) + server + bytes([51, 4]) + struct.pack("!I", 600)
    m += bytes([1, 4]) + b"\xff\xff\xff\x00" + bytes([3, 4]) + router + b"\xff"
    return udp_frame(BCAST_MAC, SERVER_IP, b"\xff\xff\xff\xff", 67, 68, m)


def arp(op, sha, spa, tpa):
    return (BCAST_MAC + sha + b"\x08\x06\x00\x01\x08\x00\x06\x04\x00" + bytes([op]) + sha + spa
            + bytes(6) + tpa)


class Env:
    def __init__(self):
        self.clock = VirtualClock(1000)
        self.nic = FakeNic()
        self.stack = Stack(self.nic, clock=self.clock, tcp=False)
        self.dhcp = Dhcp(self.stack, init_delay_ms=0, probe_num=2, probe_wait_ms=0,
                         probe_min_ms=100, probe_max_ms=100, announce_wait_ms=100,
                         decline_wait_ms=1000)

    def run(self, ms):
        for _ in range(ms // 50):
            self.clock.advance(50)
            self.stack.poll()

    def msgs(self):
        out = []
        for f in self.nic.sent:
            u = parse_udp(f)
            if u and u[4] == 67:
                out.append(u[5])
        self.nic.sent = []
        return out

    def to_ack(self, **kw):
        self.dhcp.start()
        self.run(100)
        disc = self.msgs()[0]
        self.nic.inbox.append(reply(disc, 2, **kw))
        self.run(50)
        req = self.msgs()[0]
        self.nic.inbox.append(reply(req, 5, **kw))
        self.run(50)
        return disc


# probes, then bound
e = Env()
e.to_ack()
check(e.dhcp.state == "CHECKING", "checking")
e.run(250)
probes = [f for f in e.nic.sent if f[12:14] == b"\x08\x06" and f[28:32] == b"\0\0\0\0"]
check(len(probes) == 2 and probes[0][38:42] == OFFERED, "two probes: %d" % len(probes))
check(e.dhcp.state == "BOUND" and e.stack.ip == OFFERED, "bound")
# defended once, then given up
e.nic.inbox.append(arp(1, OTHER_MAC, OFFERED, SERVER_IP))
e.run(1000)
check(e.stack.stats["arp_defended"] == 1 and e.stack.configured, "defended")
e.nic.inbox.append(arp(2, OTHER_MAC, OFFERED, SERVER_IP))
e.run(50)
check(e.dhcp.stats["gave_up"] == 1 and not e.stack.configured, "gave up")

# a reply to our probe: DECLINE
e = Env()
e.to_ack()
e.nic.sent = []
e.nic.inbox.append(arp(2, OTHER_MAC, OFFERED, b"\0\0\0\0"))
e.run(50)
m = e.msgs()
check(len(m) == 1 and m[0][242] == 4 and e.dhcp.state == "INIT", "declined")
check(e.dhcp.stats["probe_conflict"] == 1, "counted")

# offers that cannot be valid (addresses of 2**30 and more: heap ints on 32 bits)
for kw, counter in ((dict(yiaddr=bytes([198, 18, 0, 255])), "bad_address"),
                    (dict(yiaddr=bytes([224, 0, 0, 1])), "bad_address"),
                    (dict(server=b"\xff\xff\xff\xff"), "bad_server"),
                    (dict(server=OFFERED), "bad_server"),
                    (dict(router=bytes([198, 19, 0, 1])), "bad_router"),
                    (dict(router=bytes([198, 18, 0, 0])), "bad_router")):
    e = Env()
    e.dhcp.start()
    e.run(100)
    disc = e.msgs()[0]
    e.nic.inbox.append(reply(disc, 2, **kw))
    e.run(50)
    check(e.dhcp.stats[counter] == 1 and e.dhcp.state == "SELECTING", counter)
    check(e.stack.stats["handler_errors"] == 0, "no errors")
print("OK")
