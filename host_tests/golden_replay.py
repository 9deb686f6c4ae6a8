"""Replay the golden frames through a stack.  Portable: runs under pytest and
under MicroPython (host_tests/mpy/golden_check.py)."""
from uipy.stack import Stack
from uipy.compat import VirtualClock

US_MAC = b"\x02\x00\x00\x00\x00\x02"
US_IP = "198.18.0.2"
PEER_MAC = b"\x02\x00\x00\x00\x00\x01"
PEER_IP = "198.18.0.1"
IDENT = 0x4000      # the stack's next IP identification before each case


def read_cases(path):
    """Yield (name, request, expected reply or b'', counter) from golden_frames.bin,
    one at a time so a small heap suffices."""
    with open(path, "rb") as f:
        while True:
            head = f.read(1)
            if not head:
                return
            name = f.read(head[0]).decode()
            counter = f.read(f.read(1)[0]).decode()
            n = f.read(2)
            request = f.read((n[0] << 8) | n[1])
            n = f.read(2)
            expected = f.read((n[0] << 8) | n[1])
            yield name, request, expected, counter


class ReplayNic:
    """A NIC that hands the stack one prepared frame and records what it sends."""

    def __init__(self, mac):
        self.mac = mac
        self.frame = None
        self.sent = []

    def recv_into(self, mv):
        f = self.frame
        if f is None:
            return 0
        self.frame = None
        mv[0:len(f)] = f
        return len(f)

    def send(self, mv, n):
        self.sent.append(bytes(mv[0:n]))
        return True

    def link_up(self):
        return True


def make_stack(tcp=False):
    """The golden cases cover Ethernet, ARP, IPv4, ICMP and UDP: TCP stays
    unloaded so the replay fits the smallest heap."""
    nic = ReplayNic(US_MAC)
    stack = Stack(nic, ip=US_IP, netmask="255.255.255.0", gateway=PEER_IP, clock=VirtualClock(1000), tcp=tcp)

    def echo(data, ip, port):
        stack.udp.send_payload(len(data), ip, port, 7)   # the payload is already in place

    stack.udp.bind(7, echo)
    del nic.sent[:]
    return stack, nic


def replay(path):
    """Replay every case; returns (number of cases, list of failure descriptions)."""
    failures = []
    count = 0
    stack, nic = make_stack()
    for name, request, expected, counter in read_cases(path):
        count += 1
        before = stack.stats[counter]
        stack.ipv4.ident = IDENT
        nic.frame = request
        del nic.sent[:]
        stack.poll()
        got = nic.sent[0] if nic.sent else b""
        if got != expected:
            failures.append("%s: reply %s, expected %s" % (name, hexs(got), hexs(expected)))
        if len(nic.sent) > 1:
            failures.append("%s: %d frames sent" % (name, len(nic.sent)))
        if stack.stats[counter] != before + 1:
            failures.append("%s: counter %s did not grow" % (name, counter))
        if stack.stats["handler_errors"]:
            failures.append("%s: exception %r" % (name, stack.last_error))
            stack.stats["handler_errors"] = 0
    return count, failures


def hexs(b):
    return "".join("%02x" % x for x in b)
