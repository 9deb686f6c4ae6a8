"""Replay the golden frames through a stack.  Portable: runs under pytest and
under MicroPython (host_tests/mpy/golden_check.py)."""
import gc
import sys

from uipy.stack import Stack
from uipy.compat import VirtualClock, copy_into

US_MAC = b"\x02\x00\x00\x00\x00\x02"
US_IP = "198.18.0.2"
PEER_MAC = b"\x02\x00\x00\x00\x00\x01"
PEER_IP = "198.18.0.1"
IDENT = 0x4000
SMALL_HEAP = sys.implementation.name == "micropython"      # the stack's next IP identification before each case


def read_cases(path, bufs=None):
    """Yield (name, request, expected reply or empty, counter) from
    golden_frames.bin, one at a time.  With bufs (two bytearrays of 1536), the
    frames are read into them and given as memoryviews, so a small heap is not
    asked for a new 1.5 KB block per case."""
    with open(path, "rb") as f:
        while True:
            head = f.read(1)
            if not head:
                return
            name = f.read(head[0]).decode()
            counter = f.read(f.read(1)[0]).decode()
            frames = []
            for i in range(2):
                n = f.read(2)
                n = (n[0] << 8) | n[1]
                if bufs is None:
                    frames.append(f.read(n))
                else:
                    view = memoryview(bufs[i])[0:n]
                    f.readinto(view)
                    frames.append(view)
            yield name, frames[0], frames[1], counter


class ReplayNic:
    """A NIC that hands the stack one prepared frame and keeps a copy of the
    last frame sent in a preallocated buffer (small heaps fragment easily)."""

    def __init__(self, mac):
        self.mac = mac
        self.frame = None
        self.last = bytearray(1536)
        self.last_len = 0
        self.sent_count = 0

    def recv_into(self, mv):
        f = self.frame
        if f is None:
            return 0
        self.frame = None
        n = len(f)
        copy_into(mv, 0, f, 0, n)     # as mpy_pair's RingLink: a slice store costs 6x more on a board
        return n

    def send(self, mv, n):
        last = self.last
        for i in range(n):
            last[i] = mv[i]
        self.last_len = n
        self.sent_count += 1
        return True

    def sent_equals(self, expected):
        if self.last_len != len(expected):
            return False
        last = self.last
        for i in range(self.last_len):
            if last[i] != expected[i]:
                return False
        return True

    def link_up(self):
        return True


def make_stack(tcp=False):
    """The golden cases cover Ethernet, ARP, IPv4, ICMP and UDP: TCP stays
    unloaded so the replay fits the smallest heap."""
    nic = ReplayNic(US_MAC)
    # reassembly=0: a lone fragment is dropped and counted (reassembly has its own tests)
    stack = Stack(nic, ip=US_IP, netmask="255.255.255.0", gateway=PEER_IP, clock=VirtualClock(1000), tcp=tcp,
                  reassembly=0)

    def echo(data, ip, port):
        stack.udp.send_payload(len(data), ip, port, 7)   # the payload is already in place

    stack.udp.bind(7, echo)
    nic.sent_count = 0
    return stack, nic


def replay(path):
    """Replay every case; returns (number of cases, list of failure descriptions)."""
    failures = []
    count = 0
    if SMALL_HEAP:
        gc.collect()                 # the imports' garbage first: two frame-sized blocks follow
    bufs = (bytearray(1536), bytearray(1536))   # before the stack fragments a small heap
    stack, nic = make_stack()
    for name, request, expected, counter in read_cases(path, bufs):
        count += 1
        if SMALL_HEAP:
            gc.collect()             # keep a small heap from fragmenting between cases
        before = stack.stats[counter]
        stack.ipv4.ident = IDENT
        nic.frame = request
        nic.sent_count = 0
        nic.last_len = 0
        stack.poll()
        if len(expected) and (nic.sent_count != 1 or not nic.sent_equals(expected)):
            failures.append("%s: reply %s, expected %s" % (
                name, hexs(nic.last[0:nic.last_len]), hexs(expected)))
        elif not len(expected) and nic.sent_count:
            failures.append("%s: %d frames sent, none expected" % (name, nic.sent_count))
        if stack.stats[counter] != before + 1:
            failures.append("%s: counter %s did not grow" % (name, counter))
        if stack.stats["handler_errors"]:
            failures.append("%s: exception %r" % (name, stack.last_error))
            stack.stats["handler_errors"] = 0
    return count, failures


def hexs(b):
    return "".join("%02x" % x for x in b)
