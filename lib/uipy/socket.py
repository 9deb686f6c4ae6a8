"""A socket module over uipy's event API, for libraries written against
MicroPython's socket (umqtt, requests, microdot, asyncio streams), unmodified.

    import uipy.socket
    uipy.socket.use(stack)      # the Stack sockets go through (network.LAN does it)
    uipy.socket.install()       # from now on `import socket` gives this module

Blocking calls run stack.poll() inside until they are done or time out: no
threads.  A TCP socket keeps received data in a ring of rcvbuf bytes and
advertises its free space as the TCP window, so data that the application is
not reading waits in the peer, never dropped.  Sockets are io.IOBase streams
whose ioctl answers MP_STREAM_POLL, so select.poll, asyncio and
tls.SSLContext.wrap_socket work on them; in an asyncio loop a pump task keeps
the stack polled while coroutines wait.
"""
import sys
from errno import EAGAIN, EALREADY, ECONNREFUSED, ECONNRESET, EHOSTUNREACH, EINPROGRESS, \
    EINVAL, ENOTCONN, ETIMEDOUT, EADDRINUSE, EBADF
from uipy.compat import const, ticks_ms, ticks_diff, copy_into
from uipy.ipv4 import ip_bytes
from uipy.tcp_conn import CONNECTED, NEWDATA, CLOSED, ABORTED, TIMEDOUT, ST_CLOSED, ST_SYN_SENT, SENDING

try:
    from io import IOBase
except ImportError:               # a firmware built without io.IOBase: no select/asyncio
    IOBase = object

AF_INET = const(2)
SOCK_STREAM = const(1)
SOCK_DGRAM = const(2)
IPPROTO_IP = const(0)
IPPROTO_TCP = const(6)
IPPROTO_UDP = const(17)
SOL_SOCKET = const(1)
SO_REUSEADDR = const(2)
SO_BROADCAST = const(6)
SO_SNDBUF = const(7)
SO_RCVBUF = const(8)
SO_KEEPALIVE = const(9)
TCP_NODELAY = const(1)

# MicroPython's stream ioctl requests and poll flags
_POLL = const(3)
_CLOSE = const(4)
_RD = const(1)
_WR = const(4)
_ERR = const(8)
_HUP = const(16)

RCVBUF = 2048                     # default receive ring per TCP socket, bytes
SNDBUF = 2920                     # default unacknowledged bytes a TCP socket queues
UDP_QUEUE = 4                     # datagrams held per UDP socket
UNREACH_MS = 3000                 # connect gives EHOSTUNREACH when ARP fails this long

_stack = None
_listening = {}                   # port -> listening socket
_pump_task = None
_resolver = None


def use(stack):
    """Sockets made from now on go through stack."""
    global _stack
    if stack.tcp is None:
        raise ValueError("uipy: sockets need a Stack with TCP")
    _stack = stack


def install():
    """Make `import socket` (and `usocket`) give this module."""
    me = sys.modules[__name__]
    sys.modules["socket"] = me
    sys.modules["usocket"] = me


_MESSAGES = {EAGAIN: "would block", EALREADY: "connect in progress", EINPROGRESS: "connect in progress",
             ENOTCONN: "not connected", ECONNREFUSED: "connection refused",
             ECONNRESET: "connection reset by peer", ETIMEDOUT: "timed out",
             EHOSTUNREACH: "no answer from the host (ARP)"}


def _error(e):
    """OSError with errno e (two arguments: CPython sets .errno only then)."""
    return OSError(e, "uipy: " + _MESSAGES.get(e, "socket error"))


def _need_stack():
    s = _stack
    if s is None:
        raise OSError(ENOTCONN, "uipy: no network: call uipy.socket.use(stack) or network.LAN(...) first")
    return s


def _pump():
    """One pass of the stack; wait a moment when nothing came in."""
    s = _need_stack()
    if not s.poll():
        wait = getattr(s.nic, "wait", None)
        if wait is not None:
            wait(0.001)
        else:
            _sleep_ms(1)


def _sleep_ms(ms):
    import time
    f = getattr(time, "sleep_ms", None)
    if f is not None:
        f(ms)
    else:
        time.sleep(ms / 1000)


async def pump(idle_ms=2):
    """asyncio: keep the stack polled (started by itself for non-blocking sockets)."""
    import asyncio
    sleep = getattr(asyncio, "sleep_ms", None)
    while True:
        n = _need_stack().poll()
        if sleep is not None:
            await sleep(0 if n else idle_ms)
        else:
            await asyncio.sleep(0 if n else idle_ms / 1000)


def _start_pump():
    global _pump_task
    if _pump_task is not None or "asyncio" not in sys.modules:
        return
    try:
        _pump_task = sys.modules["asyncio"].create_task(pump())
    except RuntimeError:          # CPython without a running loop: blocking use only
        pass


def _addr(address):
    """(host, port) -> (4 address bytes, port); '' and '0.0.0.0' mean any."""
    try:
        host, port = address
    except (TypeError, ValueError):
        raise TypeError("uipy: a socket address is a (host, port) tuple, got %r" % (address,))
    if not isinstance(port, int) or not 0 <= port < 65536:
        raise ValueError("uipy: port %r out of range 0..65535" % (port,))
    if not host:
        return b"\x00\x00\x00\x00", port
    try:
        return ip_bytes(host), port
    except ValueError:
        return _resolve(host), port


def _resolve(name, timeout_ms=10000):
    """Look a name up through the stack's resolver (blocking)."""
    global _resolver
    s = _need_stack()
    if _resolver is None:
        from uipy.dns import Resolver
        _resolver = Resolver(s)
    box = []
    _resolver.resolve(name, lambda n, a: box.append(a))
    start = ticks_ms()
    while not box:
        if ticks_diff(ticks_ms(), start) > timeout_ms:
            break
        _pump()
    if not box or box[0] is None:
        raise OSError(-2, "uipy: cannot resolve %r" % (name,))
    return box[0]


def _ip_str(b):
    return "%d.%d.%d.%d" % (b[0], b[1], b[2], b[3])


def getaddrinfo(host, port, af=0, type=0, proto=0, flags=0):
    """[(AF_INET, type, proto, '', (dotted quad, port))]; names through DNS."""
    if af not in (0, AF_INET):
        raise OSError(EINVAL, "uipy: only AF_INET")
    ip, port = _addr((host, port))
    return [(AF_INET, type or SOCK_STREAM, proto, "", (_ip_str(ip), port))]


def _tcp_event(c, ev):
    """Handler of every TCP connection made through sockets."""
    s = c.app
    if s is None:
        if not ev & CONNECTED:
            return
        lsn = _listening.get(c.lport)
        if lsn is None or len(lsn._acc) >= lsn._backlog:
            c.abort()                 # nobody to take it: reset, as a full backlog
            return
        s = socket(AF_INET, SOCK_STREAM)
        s._attach(c, lsn._rcvbuf, lsn._sndbuf)
        lsn._acc.append(s)
    if ev & CONNECTED:
        s._up = True
    if ev & NEWDATA:
        s._take(c)
    if ev & CLOSED:
        s._eof = True
    if ev & (ABORTED | TIMEDOUT):
        if ev & TIMEDOUT:             # retries that all became ARP requests: unreachable
            s._err = EHOSTUNREACH if c.tx_failed else ETIMEDOUT
        else:
            s._err = ECONNRESET if s._up else ECONNREFUSED
        s._c = None


class socket(IOBase):  # pyright: ignore[reportGeneralTypeIssues]  (object without io.IOBase)
    def __init__(self, af=AF_INET, type=SOCK_STREAM, proto=0):
        if af != AF_INET:
            raise OSError(EINVAL, "uipy: only AF_INET sockets")
        if type not in (SOCK_STREAM, SOCK_DGRAM):
            raise OSError(EINVAL, "uipy: only SOCK_STREAM and SOCK_DGRAM sockets")
        self._type = type
        self._timeout = None      # None: blocking; 0: non-blocking; else ms
        self._c = None            # TCP connection
        self._port = 0            # bound local port
        self._err = 0             # errno to report at the next call
        self._up = False          # established once
        self._eof = False         # the peer sent FIN
        self._closed = False
        self._rcvbuf = RCVBUF
        self._sndbuf = SNDBUF
        self._rx = bytearray(0)   # TCP: receive ring
        self._dg = []             # UDP: (data, (ip, port)) waiting
        self._head = 0            # ring: first unread byte, count
        self._n = 0
        self._acc = []            # listening: accepted sockets waiting
        self._backlog = 0         # listening when > 0
        self._peer = None         # UDP connect(): (ip bytes, port)
        self._since = 0
        self._drops = 0           # UDP datagrams lost to a full queue

    # --- options ---

    def settimeout(self, t):
        if t is None:
            self._timeout = None
        else:
            if t < 0:
                raise ValueError("uipy: timeout must be >= 0 or None")
            self._timeout = int(t * 1000)
            if not t:
                _start_pump()

    def setblocking(self, flag):
        self.settimeout(None if flag else 0)

    def setsockopt(self, level, opt, value):
        if level == SOL_SOCKET and opt == SO_RCVBUF:
            self._rcvbuf = max(536, min(int(value), 65535))
        elif level == SOL_SOCKET and opt == SO_SNDBUF:
            self._sndbuf = max(536, int(value))
        # SO_REUSEADDR, TCP_NODELAY (no Nagle anyway), SO_BROADCAST: accepted

    def makefile(self, mode="rb", buffering=0):
        return self

    # --- addresses ---

    def bind(self, address):
        self._check()
        ip, port = _addr(address)
        if self._type == SOCK_DGRAM:
            self._bind_udp(port)
        else:
            self._port = port

    def listen(self, backlog=2):
        self._check()
        if self._type != SOCK_STREAM:
            raise OSError(EINVAL, "uipy: listen() on a UDP socket")
        if not self._port:
            raise OSError(EINVAL, "uipy: bind() a port before listen()")
        st = _need_stack()
        if self._port in _listening:
            raise OSError(EADDRINUSE, "uipy: TCP port %d already has a listening socket" % self._port)
        try:
            st.listen(self._port, _tcp_event, len(st.tcp.conns), self._rcvbuf)
        except ValueError as e:
            raise OSError(EADDRINUSE, str(e))
        self._backlog = max(1, backlog)
        _listening[self._port] = self

    def accept(self):
        self._check()
        if not self._backlog:
            raise OSError(EINVAL, "uipy: accept() on a socket that is not listening")
        if not self._wait(_RD):
            raise _error(EAGAIN)
        s = self._acc.pop(0)
        return s, s._c.remote() if s._c is not None else ("0.0.0.0", 0)

    def connect(self, address):
        self._check()
        ip, port = _addr(address)
        st = _need_stack()
        if self._type == SOCK_DGRAM:
            if not self._port:
                self._bind_udp(0)
            self._peer = (ip, port)
            return
        if self._c is not None:
            if self._timeout == 0:
                raise _error(EALREADY)
        else:
            if self._up or self._backlog:
                raise OSError(EINVAL, "uipy: socket already used")
            try:
                c = st.connect(ip, port, _tcp_event, self._port, self._rcvbuf)
            except ValueError as e:
                raise OSError(EINVAL, str(e))
            self._attach(c, self._rcvbuf, self._sndbuf)
            self._since = st.now
            if self._timeout == 0:
                raise _error(EINPROGRESS)
        if not self._wait(_WR):
            raise OSError(ETIMEDOUT, "uipy: connect timed out")
        self._check_error()

    def getpeername(self):
        if self._c is None:
            raise _error(ENOTCONN)
        return self._c.remote()

    # --- TCP data ---

    def _attach(self, c, rcvbuf, sndbuf):
        c.app = self
        self._c = c
        self._rcvbuf = rcvbuf
        self._sndbuf = sndbuf
        self._rx = bytearray(rcvbuf)

    def _take(self, c):
        """NEWDATA: append c.data to the ring (the window never lets more in than fits)."""
        data = c.data
        rx = self._rx
        if self._closed:              # nobody will read it
            return
        size = len(rx)
        n = min(len(data), size - self._n)
        tail = (self._head + self._n) % size
        k = min(n, size - tail)
        copy_into(rx, tail, data, 0, k)
        if n > k:
            copy_into(rx, 0, data, k, n - k)
        self._n += n
        c.window = size - self._n

    def readinto(self, buf, nbytes=0):
        """Read into buf (up to nbytes); 0 at EOF, None when it would block."""
        if self._type == SOCK_DGRAM:
            data = self.recv(nbytes or len(buf))
            n = len(data)
            buf[:n] = data
            return n
        want = nbytes or len(buf)
        if want == 0:
            return 0
        if not self._wait(_RD):
            return None
        if self._n == 0:
            self._check_error()
            if not self._up:
                raise OSError(ENOTCONN, "uipy: socket is not connected")
            return 0                  # EOF
        rx = self._rx
        size = len(rx)
        n = min(want, self._n)
        k = min(n, size - self._head)
        copy_into(buf, 0, rx, self._head, k)
        if n > k:
            copy_into(buf, k, rx, 0, n - k)
        self._head = (self._head + n) % size
        self._n -= n
        self._opened(n)
        return n

    def _opened(self, n):
        """n bytes were read: announce the larger window when it grew past a
        segment or half the ring (receiver-side silly window avoidance)."""
        c = self._c
        if c is None or c.app is not self:
            return
        free = self._rcvbuf - self._n
        c.window = free
        step = min(c.mss, self._rcvbuf // 2)
        if free - n < step <= free:
            c.ack_now = True
            _need_stack().tcp.want_output(c)

    def read(self, n=-1):
        if self._type == SOCK_DGRAM:
            return self.recv(n if n > 0 else 1472)
        if n is None or n < 0:
            out = bytearray()
            while True:
                b = self.read(self._rcvbuf)
                if b is None:
                    return bytes(out) if out else None
                if not b:
                    return bytes(out)
                out += b
        buf = bytearray(n)
        got = self.readinto(buf, n)
        if got is None:
            return None
        return bytes(buf) if got == n else bytes(buf[:got])

    def recv(self, n):
        if self._type == SOCK_DGRAM:
            data, _ = self.recvfrom(n)
            return data
        b = self.read(n)
        if b is None:
            self._would_block()
        return b

    def readline(self):
        """A line with its b'\n'; what there is at EOF; None when it would block."""
        out = bytearray()
        while True:
            if not self._wait(_RD):
                return bytes(out) if out else None
            if self._n == 0:
                self._check_error()
                return bytes(out)
            rx = self._rx
            size = len(rx)
            i = self._head
            n = 0
            while n < self._n:
                n += 1
                if rx[i] == 10:
                    break
                i = (i + 1) % size
            chunk = bytearray(n)
            self.readinto(chunk, n)
            out += chunk
            if chunk[-1] == 10:
                return bytes(out)

    def write(self, buf, n=None):
        """Queue up to n bytes of buf; how many were taken, None when it would block."""
        if self._type == SOCK_DGRAM:
            if self._peer is None:
                raise OSError(ENOTCONN, "uipy: connect() a UDP socket before write()")
            return self._sendto(buf if n is None else buf[:n], self._peer)
        return self._put(buf, 0, len(buf) if n is None else min(n, len(buf)))

    def _put(self, buf, off, n):
        if n <= 0:
            return 0
        if not self._wait(_WR):
            return None
        self._check_error()
        c = self._c
        if c is None or not (1 << c.state) & SENDING or c.fin_queued:
            raise OSError(ENOTCONN, "uipy: socket is not connected for sending")
        n = min(n, self._sndbuf - c.unacked())
        if isinstance(buf, bytes):    # immutable: kept by reference until acknowledged
            obj = buf if n == len(buf) else memoryview(buf)[off:off + n]
        else:
            obj = bytes(memoryview(buf)[off:off + n])   # the caller may reuse its buffer
        c.send(obj)
        return n

    def send(self, buf):
        if self._type == SOCK_DGRAM:
            return self.write(buf)
        n = self.write(buf)
        if n is None:
            self._would_block()
        return n

    def sendall(self, buf):
        off = 0
        total = len(buf)
        while off < total:
            n = self._put(buf, off, total - off)
            if n is None:
                self._would_block()
            off += n

    def _would_block(self):
        raise _error(EAGAIN if self._timeout == 0 else ETIMEDOUT)

    # --- UDP ---

    def _bind_udp(self, port):
        st = _need_stack()
        if self._port:
            raise OSError(EINVAL, "uipy: socket already bound")
        if port == 0:
            from uipy.compat import random_u16
            for _ in range(16):
                port = 49152 + (random_u16() & 0x3FFF)
                if port not in st.udp.ports:
                    break
        try:
            st.udp.bind(port, self._datagram)
        except ValueError as e:
            raise OSError(EADDRINUSE, str(e))
        self._port = port

    def _datagram(self, data, ip, port):
        if self._peer is not None and (self._peer[1] != port or self._peer[0] != bytes(ip)):
            return
        if len(self._dg) < UDP_QUEUE:
            self._dg.append((bytes(data), (_ip_str(ip), port)))
        else:
            self._drops += 1          # like a full socket buffer: the datagram is lost

    def recvfrom(self, n):
        self._check()
        if self._type != SOCK_DGRAM:
            return self.recv(n), self.getpeername()
        if not self._port:
            raise OSError(EINVAL, "uipy: bind() or sendto() before receiving on a UDP socket")
        if not self._wait(_RD):
            self._would_block()
        data, addr = self._dg.pop(0)
        return data[:n], addr

    def sendto(self, data, address):
        self._check()
        if self._type != SOCK_DGRAM:
            return self.send(data)
        return self._sendto(data, _addr(address))

    def _sendto(self, data, dest):
        st = _need_stack()
        if not self._port:
            self._bind_udp(0)
        ip, port = dest
        start = ticks_ms()
        while not st.udp.sendto(data, ip, port, self._port):
            if not st.ipv4.arp_pending:
                raise OSError(EHOSTUNREACH, "uipy: no route to %s" % _ip_str(ip))
            # the datagram became an ARP request: send again once resolved
            if ticks_diff(ticks_ms(), start) > UNREACH_MS:
                raise OSError(EHOSTUNREACH, "uipy: %s does not answer ARP" % _ip_str(ip))
            for _ in range(20):
                _pump()
                if st.arp.find((ip[0] << 8) | ip[1], (ip[2] << 8) | ip[3]) < 0:
                    break
        return len(data)

    # --- state, waiting, closing ---

    def _check(self):
        if self._closed:
            raise OSError(EBADF, "uipy: socket is closed")

    def _check_error(self):
        e = self._err
        if e:
            self._err = 0
            self._eof = True
            raise _error(e)

    def _ready(self, mask):
        """The poll flags that hold now (ERR and HUP always count)."""
        if self._closed:
            return _HUP
        if self._type == SOCK_DGRAM:
            return ((_RD if self._dg else 0) | _WR) & mask
        if self._backlog:
            return _RD & mask if self._acc else 0
        c = self._c
        if c is not None and c.state == ST_SYN_SENT and c.tx_failed and \
                ticks_diff(_need_stack().now, self._since) > UNREACH_MS:
            c.abort()                 # the neighbour never answered ARP
            self._c = c = None
            self._err = EHOSTUNREACH
        if self._err:
            return _ERR | _RD | _WR
        if c is None:
            return _RD | _WR          # not connected, or over: the call itself says which
        flags = _RD if self._n or self._eof else 0
        if c.app is not self or c.state == ST_CLOSED:
            flags |= _HUP | _RD
        elif (1 << c.state) & SENDING and c.unacked() < self._sndbuf and c.send_queue_free():
            flags |= _WR
        return flags & (mask | _ERR | _HUP)

    def _wait(self, mask):
        """Until mask is ready: at once when non-blocking; False on timeout."""
        if self._ready(mask):
            return True
        t = self._timeout
        if t == 0:
            return False
        _need_stack()
        start = ticks_ms()
        while not self._ready(mask):
            if t is not None and ticks_diff(ticks_ms(), start) >= t:
                return False
            _pump()
        return True

    def ioctl(self, req, arg):
        if req == _POLL:
            st = _stack
            if st is not None:
                st.poll()             # frames keep moving while select.poll waits
            return self._ready(arg)
        if req == _CLOSE:
            self.close()
            return 0
        return -EINVAL                # no file descriptor, nothing else

    def close(self):
        if self._closed:
            return
        self._closed = True
        st = _stack
        if self._backlog:
            if st is not None:
                st.tcp.unlisten(self._port)
            _listening.pop(self._port, None)
            for s in self._acc:
                s.close()
                if s._c is not None:
                    s._c.abort()
            self._acc = []
        elif self._type == SOCK_DGRAM:
            if self._port and st is not None:
                st.udp.unbind(self._port)
        elif self._c is not None and self._c.app is self:
            self._c.window = self._rcvbuf   # what still comes is taken and dropped
            self._c.close()           # FIN after the queued data
        self._rx = bytearray(0)
        self._dg = []
        self._n = 0

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
