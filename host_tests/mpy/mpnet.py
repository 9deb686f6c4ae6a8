"""Under the MicroPython unix port, in the test bed of host_tests/mpy_net.py: the
NIC on the frames the relay carries to and from the test namespace's TAP, and a
bounded poll loop.  The paths come from the environment the test bed sets
(UIPY_NIC: our socket, UIPY_RELAY: the relay's)."""
import os
import time

from unix_dgram import UnixDgramNic

KERNEL_IP = "198.18.0.1"
STACK_IP = "198.18.0.2"


def nic():
    return UnixDgramNic(os.getenv("UIPY_NIC"), os.getenv("UIPY_RELAY"))


def stack(ip=STACK_IP, **kw):
    """A Stack on the relayed NIC, at ip (None: no address, for DHCP)."""
    from uipy.stack import Stack
    if ip is None:
        return Stack(nic(), **kw)
    return Stack(nic(), ip=ip, gateway=KERNEL_IP, **kw)


def say(*args):
    """One marker line for the test bed (stdout is a pipe: written at once)."""
    print(*args)


def run(stack, seconds, until=None):
    """Poll for at most seconds (or until until() is true), sleeping on the
    NIC while nothing arrives.  Returns True if until() became true."""
    t0 = time.ticks_ms()
    limit = int(seconds * 1000)
    while time.ticks_diff(time.ticks_ms(), t0) < limit:
        if not stack.poll():
            if until is not None and until():
                return True
            stack.nic.wait(0.01)
    return until is not None and bool(until())
