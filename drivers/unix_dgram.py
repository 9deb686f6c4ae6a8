"""Ethernet frames over an AF_UNIX datagram socket, one datagram a frame: the NIC
of a uipy stack in a process that cannot open a TAP (host only).

The MicroPython unix port cannot open /dev/net/tun, so a CPython relay
(tools/net/unix_relay.py) holds the TAP and exchanges frames with this driver:

    nic = UnixDgramNic("/tmp/x/mpy.sock", "/tmp/x/relay.sock")
    stack = Stack(nic, ip="198.18.0.2", gateway="198.18.0.1")

The interpreter's built-in socket module is bound here at import time, so the
driver keeps working after uipy.socket.install() has put the uipy socket module
in sys.modules["socket"]. Runs under MicroPython (addresses are packed
sockaddr_un bytes) and CPython (addresses are str paths), so it is unit-tested
on both.
"""
import errno
import os
import select
import socket as _socket
import struct

from uipy.compat import MICROPYTHON

_EAGAIN = (errno.EAGAIN, getattr(errno, "EWOULDBLOCK", errno.EAGAIN))
# a relay that is gone or not yet bound: the frame is lost, as on a wire
_LOST = (errno.ENOENT, errno.ECONNREFUSED, errno.ENOBUFS) + _EAGAIN


def unix_addr(path):
    """The socket address of a filesystem path, in this interpreter's form."""
    if MICROPYTHON:
        return struct.pack("H", _socket.AF_UNIX) + path.encode() + b"\0"
    return path


def local_mac(path):
    """A locally administered unicast MAC derived from a path (stable per run)."""
    h = 5381
    for c in path.encode():
        h = (h * 33 + c) & 0xFFFFFFFF
    return bytes((0x02, 0x75, (h >> 24) & 0xFF, (h >> 16) & 0xFF, (h >> 8) & 0xFF, h & 0xFF))


class UnixDgramNic:
    """A uipy NIC: receives on a datagram socket bound at path, sends to peer."""

    def __init__(self, path, peer, mac=None):
        self.path = path
        self.peer = peer
        self.mac = bytes(mac) if mac is not None else local_mac(path)
        self.tx_lost = 0
        try:
            os.remove(path)              # a socket file left by an earlier run
        except OSError:
            pass
        s = _socket.socket(_socket.AF_UNIX, _socket.SOCK_DGRAM)
        try:
            s.bind(unix_addr(path))
            s.setblocking(False)
        except BaseException:
            s.close()
            raise
        self.sock = s
        self._peer_addr = unix_addr(peer)
        # CPython has recv_into. MicroPython's readinto is a stream read, which
        # would join several waiting datagrams into one: recv there, then copy.
        self._recv_into = getattr(s, "recv_into", None) or self._recv_copy
        self._poll = select.poll()
        self._poll.register(s, select.POLLIN)

    def _recv_copy(self, mv):
        data = self.sock.recv(len(mv))
        n = len(data)
        mv[:n] = data
        return n

    def recv_into(self, mv):
        """One frame into mv; its length, or 0 when none is waiting."""
        try:
            return self._recv_into(mv)
        except OSError as e:
            if e.args[0] in _EAGAIN:
                return 0
            raise

    def send(self, mv, n):
        try:
            self.sock.sendto(mv[:n], self._peer_addr)
            return True
        except OSError as e:
            if e.args[0] in _LOST:
                self.tx_lost += 1
                return False
            raise

    def link_up(self):
        return True

    def fileno(self):
        return self.sock.fileno()

    def wait(self, timeout_s):
        """Block up to timeout_s seconds until a frame is readable; True if one is."""
        for _, ev in self._poll.poll(int(timeout_s * 1000)):
            if ev & select.POLLIN:
                return True
        return False

    def close(self):
        if self.sock is not None:
            self._poll.unregister(self.sock)
            self.sock.close()
            self.sock = None
            try:
                os.remove(self.path)
            except OSError:
                pass
