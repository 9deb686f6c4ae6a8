"""UDP sockets for uipy.socket (loaded when the first one is made).

A datagram that meets an ARP miss became an ARP request: sendto() polls the
stack until the neighbour answers and sends it again (up to 3 s), so
the first datagram to a new neighbour is not lost (ntptime, DNS).  Received
datagrams wait in a queue of QUEUE; more are dropped and counted (drops).
"""
from errno import EADDRINUSE, EBADF, EHOSTUNREACH, EINVAL, ENOTCONN
from time import sleep
from uipy.compat import const, ticks_ms, ticks_diff, random_u16, os_error
from uipy.ipv4 import ip_str
from uipy.socket import Stream, stack, _addr

QUEUE = 4                         # datagrams held per socket
_UNREACH_MS = const(3000)         # sendto gives EHOSTUNREACH when ARP fails this long


class Datagram(Stream):
    def __init__(self):
        self._dg = []             # (data, (ip, port)) waiting
        self._peer = None         # connect(): (ip bytes, port)
        self.drops = 0

    def _check(self):
        if self._closed:
            raise os_error(EBADF)

    def bind(self, address):
        self._check()
        self._bind(_addr(address)[1])

    def _bind(self, port):
        st = stack()
        if self._port:
            raise OSError(EINVAL, "uipy: socket already bound")
        if port == 0:
            for _ in range(16):
                port = 49152 + (random_u16() & 0x3FFF)
                if port not in st.udp.ports:
                    break
        try:
            st.udp.bind(port, self._datagram)
        except ValueError as e:
            raise OSError(EADDRINUSE, str(e))
        self._port = port

    def connect(self, address):
        self._check()
        self._peer = _addr(address)
        if not self._port:
            self._bind(0)

    def listen(self, backlog=2):
        raise OSError(EINVAL, "uipy: listen() on a UDP socket")

    def _datagram(self, data, ip, port):
        peer = self._peer
        if peer is not None and (peer[1] != port or peer[0] != bytes(ip)):
            return
        if len(self._dg) < QUEUE:
            self._dg.append((bytes(data), (ip_str(ip), port)))
        else:
            self.drops += 1           # as a full socket buffer: the datagram is lost

    def recvfrom(self, n):
        self._check()
        if not self._port:
            raise OSError(EINVAL, "uipy: bind() or sendto() before receiving on a UDP socket")
        self._wait(1, False)
        data, addr = self._dg.pop(0)
        return data[:n], addr

    def recv(self, n):
        return self.recvfrom(n)[0]

    def read(self, n=-1):
        return self.recv(n if n and n > 0 else 1472)

    def readinto(self, buf, nbytes=0):
        data = self.recv(nbytes or len(buf))
        buf[:len(data)] = data
        return len(data)

    def write(self, buf, n=None):
        if self._peer is None:
            raise os_error(ENOTCONN)
        return self._sendto(buf if n is None else buf[:n], self._peer)

    def send(self, buf):
        return self.write(buf)

    def sendto(self, data, address):
        self._check()
        return self._sendto(data, _addr(address))

    def _sendto(self, data, dest):
        st = stack()
        if not self._port:
            self._bind(0)
        ip, port = dest
        start = ticks_ms()
        while not st.udp.sendto(data, ip, port, self._port):
            if not st.ipv4.arp_pending:
                raise OSError(EHOSTUNREACH, "uipy: no route to %s" % ip_str(ip))
            if ticks_diff(ticks_ms(), start) > _UNREACH_MS:
                raise OSError(EHOSTUNREACH, "uipy: %s does not answer ARP" % ip_str(ip))
            for _ in range(5):        # a moment for the reply, then send again
                if not st.poll():
                    (getattr(st.nic, "wait", None) or sleep)(0.001)   # a host NIC sleeps on its fd
        return len(data)

    def _ready(self, mask):
        if self._closed:
            return 16
        return ((1 if self._dg else 0) | 4) & mask

    def close(self):
        if not self._closed:
            self._closed = True
            if self._port:
                stack().udp.unbind(self._port)
            self._dg = []
