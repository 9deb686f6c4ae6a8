"""AF_PACKET raw socket on one interface, as a uipy NIC (host only).

Used on the far end of a veth pair: the kernel end has the IP address, the
stack reads and writes whole Ethernet frames on this end.
"""
import ctypes
import os
import select
import socket

ETH_P_ALL = 0x0003
PACKET_OUTGOING = 4
CLONE_NEWNET = 0x40000000

_libc = ctypes.CDLL(None, use_errno=True)


def _setns(fd):
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        e = ctypes.get_errno()
        raise OSError(e, "setns: " + os.strerror(e))


def socket_in_netns(netns, *args):
    """socket.socket(*args) created inside network namespace netns.

    A socket stays in the namespace it was made in, so only creation needs the
    switch. setns() changes only the calling thread; we switch straight back.
    """
    if netns is None:
        return socket.socket(*args)
    here = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    try:
        there = os.open("/run/netns/" + netns, os.O_RDONLY)
        try:
            _setns(there)
            try:
                return socket.socket(*args)
            finally:
                _setns(here)
        finally:
            os.close(there)
    finally:
        os.close(here)


def random_mac():
    b = bytearray(os.urandom(6))
    b[0] = (b[0] & 0xFC) | 0x02
    return bytes(b)


class PacketLink:
    def __init__(self, ifname, netns=None, mac=None):
        self.ifname = ifname
        self.netns = netns
        self.mac = bytes(mac) if mac is not None else random_mac()
        s = socket_in_netns(netns, socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
        try:
            # bind() looks the name up in the socket's own namespace.
            s.bind((ifname, ETH_P_ALL))
            s.setblocking(False)
        except OSError:
            s.close()
            raise
        self.sock = s
        self.tx_errors = 0
        self.outgoing_skipped = 0

    def recv_into(self, mv):
        # The socket also sees frames leaving the interface (ours, and any the
        # kernel sends from this end); skip those. Bounded: a busy queue must
        # not hold the caller here forever.
        for _ in range(256):
            try:
                n, addr = self.sock.recvfrom_into(mv)
            except BlockingIOError:
                return 0
            if addr[2] != PACKET_OUTGOING:
                return n
            self.outgoing_skipped += 1
        return 0

    def send(self, mv, n):
        try:
            self.sock.send(mv[:n])
            return True
        except (BlockingIOError, OSError):
            # ENOBUFS, ENETDOWN while the interface is down: a lost frame.
            self.tx_errors += 1
            return False

    def link_up(self):
        return True

    def fileno(self):
        return self.sock.fileno()

    def wait(self, timeout):
        r, _, _ = select.select([self.sock], [], [], timeout)
        return bool(r)

    def close(self):
        # The socket holds a reference to its namespace: close it before
        # `ip netns del`, or the namespace (and the veth in it) lives on.
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
