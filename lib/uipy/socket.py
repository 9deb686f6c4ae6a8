"""A socket module over uipy's event API, for libraries written against
MicroPython's socket (umqtt, requests, microdot, asyncio streams), unmodified.

    import uipy.socket
    uipy.socket.use(stack)      # the Stack sockets go through (network.LAN does it)
    uipy.socket.install()       # from now on `import socket` gives this module

Listening sockets, names, the asyncio pump and options are in uipy.socket_more,
loaded by the first call that needs them.

Blocking calls run stack.poll() inside until they are done or time out: no
threads.  A TCP socket keeps received data in a ring of rcvbuf bytes and
advertises its free space as the TCP window, so data that the application is
not reading waits in the peer, never dropped.  Sockets are io.IOBase streams
whose ioctl answers MP_STREAM_POLL, so select.poll, asyncio and
tls.SSLContext.wrap_socket work on them; in an asyncio loop a pump task keeps
the stack polled while coroutines wait.  UDP sockets (uipy.socket_udp) load
only when one is made: on a stock board code is heap.
"""
import sys
from errno import EAGAIN, EALREADY, ECONNREFUSED, ECONNRESET, EHOSTUNREACH, EINPROGRESS, \
    EINVAL, ENOTCONN, ETIMEDOUT, EBADF
from uipy.compat import const, ticks_ms, ticks_diff, copy_into, os_error
from uipy.ipv4 import ip_bytes, ip_str
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

RCVBUF = 1460                     # default receive ring per TCP socket, bytes
SNDBUF = 2920                     # default unacknowledged bytes a TCP socket queues
UNREACH_MS = 3000                 # connect gives EHOSTUNREACH when ARP fails this long

_stack = None
_listening = {}                   # port -> listening socket
_pump_task = None
_resolver = None


def _idle():
    """Wait up to 1 ms for input after a poll found none (set by use())."""


def use(stack):
    """Sockets made from now on go through stack."""
    global _stack, _idle
    if stack.tcp is None:
        raise ValueError("uipy: sockets need a Stack with TCP")
    _stack = stack
    wait = getattr(stack.nic, "wait", None)      # a host NIC sleeps on its file descriptor
    if wait is not None:
        _idle = lambda: wait(0.001)
    else:
        import time
        _idle = lambda: time.sleep_ms(1) if hasattr(time, "sleep_ms") else time.sleep(0.001)


def install():
    """Make `import socket` (and `usocket`) give this module."""
    me = sys.modules[__name__]
    sys.modules["socket"] = me
    sys.modules["usocket"] = me


def stack():
    """The Stack sockets use; OSError when there is none yet."""
    s = _stack
    if s is None:
        raise OSError(ENOTCONN, "uipy: no network: call uipy.socket.use(stack) or network.LAN(...) first")
    return s


def _pump():
    """One pass of the stack; wait a moment when nothing came in."""
    if not stack().poll():
        _idle()


def _more():
    import uipy.socket_more as m      # the parts a blocking client does not use
    return m


def pump(idle_ms=2):
    """asyncio: a coroutine keeping the stack polled (started by itself for
    non-blocking sockets inside a running loop)."""
    return _more().pump(idle_ms)


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


def _resolve(name):
    return _more().resolve(name)


def getaddrinfo(host, port, af=0, type=0, proto=0, flags=0):
    """[(AF_INET, type, proto, '', (dotted quad, port))]; names through DNS."""
    if af not in (0, AF_INET):
        raise OSError(EINVAL, "uipy: only AF_INET")
    ip, port = _addr((host, port))
    return [(AF_INET, type or SOCK_STREAM, proto, "", (ip_str(ip), port))]


def socket(af=AF_INET, type=SOCK_STREAM, proto=0):
    """A TCP (SOCK_STREAM) or UDP (SOCK_DGRAM) socket."""
    if af != AF_INET:
        raise OSError(EINVAL, "uipy: only AF_INET sockets")
    if type == SOCK_STREAM:
        return Stream()
    if type == SOCK_DGRAM:
        from uipy.socket_udp import Datagram
        return Datagram()
    raise OSError(EINVAL, "uipy: only SOCK_STREAM and SOCK_DGRAM sockets")


def _tcp_event(c, ev):
    """Handler of every TCP connection made through sockets."""
    s = c.app
    if s is None:
        if not ev & CONNECTED:
            return
        s = _more().accepted(c)       # a listening socket's new connection
        if s is None:
            return
    if ev & CONNECTED:
        s._up = True
    if ev & NEWDATA:
        s._take(c)
    if ev & CLOSED:
        s._eof = True
    if ev & (ABORTED | TIMEDOUT):
        if ev & TIMEDOUT:             # ARP misses or ICMP unreachable seen: unreachable
            s._err = EHOSTUNREACH if c.tx_failed or c.soft_error else ETIMEDOUT
        else:
            s._err = ECONNRESET if s._up else ECONNREFUSED
        s._c = None


class Stream(IOBase):  # pyright: ignore[reportGeneralTypeIssues]  (object without io.IOBase)
    """A TCP socket; the plumbing (timeouts, waiting, poll) is shared with UDP's."""

    def __init__(self):
        self._timeout = None      # None: blocking; 0: non-blocking; else ms
        self._c = None            # the connection
        self._port = 0            # bound local port
        self._err = 0             # errno to report at the next call
        self._up = False          # established once
        self._eof = False         # the peer sent FIN
        self._closed = False
        self._rcvbuf = RCVBUF
        self._sndbuf = SNDBUF
        self._rx = bytearray(0)   # receive ring, made at connect/accept
        self._head = 0            # ring: first unread byte, bytes held
        self._n = 0
        self._acc = []            # listening: accepted sockets waiting
        self._backlog = 0         # listening when > 0
        self._since = 0

    # --- options ---

    def settimeout(self, t):
        if t is None:
            self._timeout = None
        else:
            if t < 0:
                raise ValueError("uipy: timeout must be >= 0 or None")
            self._timeout = int(t * 1000)
            if not t and "asyncio" in sys.modules:
                _more().start_pump()      # asyncio: keep frames moving while tasks wait

    def setblocking(self, flag):
        self.settimeout(None if flag else 0)

    def setsockopt(self, level, opt, value):
        _more().setsockopt(self, level, opt, value)

    def makefile(self, mode="rb", buffering=0):
        return self

    # --- addresses ---

    def bind(self, address):
        self._check()
        self._port = _addr(address)[1]

    def listen(self, backlog=2):
        _more().listen(self, backlog)

    def accept(self):
        return _more().accept(self)

    def connect(self, address):
        self._check()
        ip, port = _addr(address)
        st = stack()
        if self._c is not None:
            if self._timeout == 0:
                raise os_error(EALREADY)
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
                raise os_error(EINPROGRESS)
        if not self._wait(_WR):
            self._would_block()
        self._check_error()

    def getpeername(self):
        if self._c is None:
            raise os_error(ENOTCONN)
        return self._c.remote()

    # --- data ---

    def _attach(self, c, rcvbuf, sndbuf):
        c.app = self
        self._c = c
        self._rcvbuf = rcvbuf
        self._sndbuf = sndbuf
        self._rx = bytearray(rcvbuf)

    def _take(self, c):
        """NEWDATA: append c.data to the ring (the window never lets more in than fits)."""
        if self._closed:              # nobody will read it
            return
        data = c.data
        rx = self._rx
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
        """Read into buf (nbytes of it): blocking, until full or EOF (what a
        MicroPython stream does); non-blocking, what there is, None if nothing."""
        want = nbytes or len(buf)
        if self._timeout == 0:
            return self._read_some(buf, 0, want)
        return self._whole(self._read_some, buf, want)

    def _whole(self, step, buf, total):
        """A blocking call's loop: step(buf, off, n) until total bytes moved, or
        0 (EOF); on a timeout what was moved, or ETIMEDOUT when nothing was."""
        done = 0
        while done < total:
            n = step(buf, done, total - done)
            if n is None:
                if done:
                    return done
                self._would_block()
            if not n:
                break
            done += n
        return done

    def _read_some(self, buf, off, want):
        self._check()
        if want <= 0:
            return 0
        if not self._wait(_RD):
            return None
        if self._n == 0:
            self._check_error()
            if not self._up:
                raise os_error(ENOTCONN)
            return 0                  # EOF
        rx = self._rx
        size = len(rx)
        n = min(want, self._n)
        k = min(n, size - self._head)
        copy_into(buf, off, rx, self._head, k)
        if n > k:
            copy_into(buf, off + k, rx, 0, n - k)
        self._head = (self._head + n) % size
        self._n -= n
        c = self._c
        if c is not None and c.app is self:
            # announce the larger window once it grew past a segment or half
            # the ring (receiver-side silly window avoidance)
            free = self._rcvbuf - self._n
            c.window = free
            step = min(c.mss, self._rcvbuf // 2)
            if free - n < step <= free:
                c.ack_now = True
                stack().tcp.want_output(c)
        return n

    def read(self, n=-1):
        """n bytes (fewer at EOF); blocking waits for them, non-blocking gives
        what there is or None; read() reads to EOF."""
        if n is None or n < 0:
            out = bytearray()
            while True:
                b = self.read(self._rcvbuf)
                if not b:
                    return bytes(out) if out or b is not None else None
                out += b
        buf = bytearray(n)
        got = self.readinto(buf, n)
        if got is None:
            return None
        return bytes(buf) if got == n else bytes(buf[:got])

    def recv(self, n):
        """What there is, up to n bytes (waiting for one if blocking); b'' at EOF."""
        buf = bytearray(n)
        got = self._read_some(buf, 0, n)
        if got is None:
            self._would_block()
        return bytes(buf) if got == n else bytes(buf[:got])

    def readline(self):
        """A line with its b'\\n'; what there is at EOF; None when it would block."""
        out = bytearray()
        while True:
            if not self._wait(_RD):
                if out or self._timeout == 0:
                    return bytes(out) if out else None
                self._would_block()
            if self._n == 0:
                self._check_error()
                return bytes(out)
            rx = self._rx
            i = self._head
            n = 0
            while n < self._n:
                n += 1
                if rx[i] == 10:
                    break
                i = (i + 1) % len(rx)
            chunk = bytearray(n)
            self._read_some(chunk, 0, n)
            out += chunk
            if chunk[-1] == 10:
                return bytes(out)

    def write(self, buf, n=None):
        """Queue n bytes of buf (all of it): blocking, all of them (what a
        MicroPython stream does); non-blocking, what fits, None if nothing."""
        total = len(buf) if n is None else min(n, len(buf))
        if self._timeout == 0:
            return self._put(buf, 0, total)
        return self._whole(self._put, buf, total)

    def _put(self, buf, off, n):
        self._check()
        if n <= 0:
            return 0
        if not self._wait(_WR):
            return None
        self._check_error()
        c = self._c
        if c is None or not (1 << c.state) & SENDING or c.fin_queued:
            raise os_error(ENOTCONN)
        n = min(n, self._sndbuf - c.unacked())
        if isinstance(buf, bytes):    # immutable: kept by reference until acknowledged
            obj = buf if n == len(buf) else memoryview(buf)[off:off + n]
        else:
            obj = bytes(memoryview(buf)[off:off + n])   # the caller may reuse its buffer
        c.send(obj)
        return n

    def send(self, buf):
        """What fits now (at least one byte, waiting if blocking)."""
        n = self._put(buf, 0, len(buf))
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

    # --- state, waiting, closing ---

    def _would_block(self):
        raise os_error(EAGAIN if self._timeout == 0 else ETIMEDOUT)

    def _check(self):
        if self._closed:
            raise os_error(EBADF)

    def _check_error(self):
        e = self._err
        if e:
            self._err = 0
            self._eof = True
            raise os_error(e)

    def _ready(self, mask):
        """The poll flags that hold now (ERR and HUP always count)."""
        if self._closed:
            return _HUP
        if self._backlog:
            return _RD & mask if self._acc else 0
        c = self._c
        if c is not None and c.state == ST_SYN_SENT and c.tx_failed and \
                ticks_diff(stack().now, self._since) > UNREACH_MS:
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
        if t == 0:                    # non-blocking: one pass of the stack, then the answer
            stack().poll()
            return bool(self._ready(mask))
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
        c = self._c
        if self._backlog:
            st = _stack
            if st is not None:
                st.tcp.unlisten(self._port)
            _listening.pop(self._port, None)
            for s in self._acc:
                s.close()
                if s._c is not None:
                    s._c.abort()
            self._acc = []
        elif c is not None and c.app is self:
            c.window = self._rcvbuf   # what still comes is taken and dropped
            c.close()                 # FIN after the queued data
        self._rx = bytearray(0)
        self._n = 0

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
