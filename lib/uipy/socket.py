"""A socket module over uipy's event API, for libraries written against
MicroPython's socket (umqtt, requests, microdot, asyncio streams), unmodified.

    import uipy.socket
    uipy.socket.use(stack)      # the Stack sockets go through (network.LAN does it)
    uipy.socket.install()       # from now on `import socket` gives this module

Listening sockets, names through DNS, the asyncio pump, options (setsockopt
and the IPPROTO_/SOL_/SO_ constants), ioctl (select, asyncio) and the error
messages are in uipy.socket_more, loaded by the first use that needs them:
the module's __getattr__ gives the constants, Stream.__getattr__ the methods
(bind, listen, accept, setsockopt, getpeername, makefile, ioctl), which
socket_more adds to the class when it loads.

Blocking calls run stack.poll() inside until they are done or time out: no
threads.  A TCP socket keeps received data in a buffer of rcvbuf bytes and
advertises its free space as the TCP window, so data that the application is
not reading waits in the peer, never dropped.  Sockets are io.IOBase streams
whose ioctl answers MP_STREAM_POLL, so select.poll, asyncio and
tls.SSLContext.wrap_socket work on them; in an asyncio loop a pump task keeps
the stack polled while coroutines wait.  UDP sockets (uipy.socket_udp) load
only when one is made.

On a stock board code is heap: this module takes about 1.25 bytes of heap for
each byte of its .mpy, and each function some 40 bytes besides its bytecode.
So it holds what a blocking client runs (umqtt.simple, requests), in few
functions: one loop (_xfer) for every read and write call, one wait (_wait)
that also raises the error that ended a connection, defaults as class
attributes (a socket's instance dict holds only what changed), constants
named _X = const() (no runtime cost).
"""
import errno
import sys
from time import sleep
from uipy.compat import const, ticks_ms, ticks_diff, copy_into, os_error
from uipy.ipv4 import ip_bytes, ip_str

try:
    from io import IOBase
except ImportError:               # a firmware built without io.IOBase: no select/asyncio
    IOBase = object

AF_INET = const(2)
SOCK_STREAM = const(1)
SOCK_DGRAM = const(2)
# IPPROTO_*, SOL_SOCKET, SO_* and TCP_NODELAY are uipy.socket_more's (__getattr__)

# MicroPython's stream poll flags
_RD = const(1)
_WR = const(4)
_ERR = const(8)
_HUP = const(16)

# uipy.tcp_conn's events and states (host_tests/test_socket.py checks they agree)
_CONNECTED = const(1)
_NEWDATA = const(2)
_CLOSED = const(32)
_ABORTED = const(64)
_TIMEDOUT = const(128)
_ST_CLOSED = const(0)
_ST_SYN_SENT = const(2)
_SENDING = const((1 << 4) | (1 << 7))    # ESTABLISHED, CLOSE-WAIT

_RCVBUF = const(1460)             # default receive buffer per TCP socket, bytes (SO_RCVBUF)
_SNDBUF = const(2920)             # default unacknowledged bytes a TCP socket queues (SO_SNDBUF)
_UNREACH_MS = const(3000)         # connect gives EHOSTUNREACH when ARP fails this long

_stack = None


def use(stack):
    """Sockets made from now on go through stack."""
    global _stack
    if stack.tcp is None:
        raise _more().error(0)
    _stack = stack


def install():
    """Make `import socket` (and `usocket`) give this module."""
    sys.modules["socket"] = sys.modules["usocket"] = sys.modules[__name__]


def stack():
    """The Stack sockets use; OSError when there is none yet."""
    s = _stack
    if s is None:
        raise _more().error(1)
    return s


def _more():
    from uipy import socket_more      # the parts a blocking client does not use
    return socket_more


def __getattr__(name):
    """The option constants (IPPROTO_*, SOL_SOCKET, SO_*, TCP_NODELAY) are
    uipy.socket_more's, as setsockopt is; so is __all__, for `from uipy.socket
    import *` (which MicroPython up to 1.28 fails without it once a module
    has __getattr__)."""
    if name == "__all__":
        return _more().names
    if name.isupper():
        return getattr(_more(), name)
    raise AttributeError(name)


def _addr(address):
    """(host, port) -> (4 address bytes, port); '' and '0.0.0.0' mean any."""
    try:
        host, port = address
    except (TypeError, ValueError):
        port = None
    if not isinstance(port, int) or not 0 <= port < 65536:
        raise _more().error(None, address)
    try:
        return ip_bytes(host or bytes(4)), port
    except ValueError:
        return _more().resolve(host), port


def getaddrinfo(host, port, af=0, type=0, proto=0, flags=0):
    """[(AF_INET, type, proto, '', (dotted quad, port))]; names through DNS."""
    if af not in (0, AF_INET):
        raise _more().error(2)
    ip, port = _addr((host, port))
    return [(AF_INET, type or SOCK_STREAM, proto, "", (ip_str(ip), port))]


def socket(af=AF_INET, type=SOCK_STREAM, proto=0):
    """A TCP (SOCK_STREAM) or UDP (SOCK_DGRAM) socket."""
    if af == AF_INET:
        if type == SOCK_STREAM:
            return Stream()
        if type == SOCK_DGRAM:
            from uipy import socket_udp
            return socket_udp.Datagram()
    raise _more().error(3)


def _tcp_event(c, events):
    """Handler of every TCP connection made through sockets."""
    s = c.app
    if s is None:
        s = _more().admit(c, events)  # a listening socket's new connection
        if s is None:
            return
    if events & _CONNECTED:
        s._established = True
    if events & _NEWDATA and not s._closed:    # closed: nobody will read it
        data = c.data
        rx = s._view
        h = s._view_start
        n = s._view_len
        k = min(len(data), len(rx) - n)   # all of it: the window never lets more in
        if h + n + k > len(rx):
            # the unread bytes to the front first (copy_into copies forward:
            # safe within one buffer when the bytes move towards its start)
            copy_into(rx, 0, rx, h, n)
            s._view_start = h = 0
        copy_into(rx, h + n, data, 0, k)
        s._view_len = n = n + k
        c.window = len(rx) - n
    if events & _CLOSED:
        s._peer_fin = True
    if events & (_ABORTED | _TIMEDOUT):
        # TIMEDOUT after ARP misses or an ICMP unreachable: unreachable
        s._err = ((errno.EHOSTUNREACH if c.tx_failed or c.soft_error else errno.ETIMEDOUT) if events & _TIMEDOUT
                  else errno.ECONNRESET if s._established else errno.ECONNREFUSED)
        s._c = None


class Stream(IOBase):  # pyright: ignore[reportGeneralTypeIssues]  (object without io.IOBase)
    """A TCP socket; the plumbing (timeouts, waiting, poll) is shared with UDP's.
    The defaults are class attributes: an instance holds what changed."""
    _timeout = None               # None: blocking; 0: non-blocking; else ms
    _c = None                     # the connection
    _port = 0                     # bound local port
    _err = 0                      # errno to report at the next call
    _established = False          # connected once
    _peer_fin = False             # the peer sent FIN
    _closed = False
    _rcvbuf = _RCVBUF
    _sndbuf = _SNDBUF
    # the received bytes not read yet: _view[_view_start:_view_start + _view_len]
    # (the buffer is made at connect/accept; names the stack interns already)
    _view = b""
    _view_start = 0
    _view_len = 0
    _acc = None                   # listening: the accepted sockets waiting (uipy.socket_more)

    # --- options ---

    def settimeout(self, t):
        if t is not None:
            if t < 0:
                raise _more().error(4)
            t = int(t * 1000)
            if not t and "asyncio" in sys.modules:
                _more().start_pump()      # asyncio: keep frames moving while tasks wait
        self._timeout = t

    def setblocking(self, flag):
        self.settimeout(None if flag else 0)

    def __getattr__(self, name):
        """The methods a blocking client does not call (bind, listen, accept,
        setsockopt, getpeername, makefile, ioctl for select and asyncio) are
        uipy.socket_more's: it adds them to this class when it loads."""
        if name in _more().stream_methods:
            return getattr(self, name)
        raise AttributeError(name)

    def __enter__(self):
        return self

    # --- addresses ---

    def connect(self, address):
        if self._closed:
            raise os_error(errno.EBADF)
        ip, port = _addr(address)
        e = errno.EALREADY
        if self._c is None:
            if self._established or self._acc is not None:
                raise _more().error(5)
            try:
                c = stack().connect(ip, port, _tcp_event, self._port, self._rcvbuf)
            except ValueError as x:
                raise OSError(errno.EINVAL, str(x))
            c.app = self
            self._c = c
            self._view = bytearray(self._rcvbuf)
            e = errno.EINPROGRESS
        if self._timeout == 0:
            raise os_error(e)
        self._wait(_WR, False)

    # --- data ---

    def _xfer(self, out, buf, total, once):
        """Move total bytes: received bytes into buf, or (out) buf's bytes to
        the connection; or once (recv, send): what there is, what fits.  How
        many; 0 at EOF.  Nothing moved and it would block: EAGAIN or
        ETIMEDOUT, but None from non-blocking read/readinto/write (once None:
        what a MicroPython stream does; blocking, they move all of it); a
        blocking call that timed out after moving some gives that count."""
        soft = once is None and self._timeout == 0
        done = 0
        while done < total:
            if not self._wait(_WR if out else _RD, done or soft):
                return done or None
            n = total - done
            if out:
                c = self._c
                if c is None or not (1 << c.state) & _SENDING or c.fin_queued:
                    raise os_error(errno.ENOTCONN)
                n = min(n, self._sndbuf - c.unacked())
                obj = buf if n == len(buf) else memoryview(buf)[done:done + n]
                # bytes are immutable: kept by reference until acknowledged;
                # the caller may reuse any other buffer
                c.send(obj if isinstance(buf, bytes) else bytes(obj))
            else:
                n = min(n, self._view_len)
                if not n:
                    if not self._established:
                        raise os_error(errno.ENOTCONN)
                    break             # EOF
                copy_into(buf, done, self._view, self._view_start, n)
                self._drop(n)
            done += n
            if once or soft:
                break
        return done

    def _drop(self, n):
        """n bytes read from the front: the window grows, and is announced once
        it grew past a segment or half the buffer (receiver-side silly window
        avoidance)."""
        self._view_len -= n
        self._view_start = self._view_start + n if self._view_len else 0
        c = self._c
        if c is not None and c.app is self:
            size = len(self._view)
            free = size - self._view_len
            c.window = free
            if free - n < min(c.mss, size // 2) <= free:
                c.ack_now = True
                stack().tcp.want_output(c)

    def readinto(self, buf, n=0):
        """Read into buf (n bytes of it): blocking, until full or EOF (what a
        MicroPython stream does); non-blocking, what there is, None if nothing."""
        return self._xfer(False, buf, n or len(buf), None)

    def read(self, n=-1, once=None):
        """n bytes (fewer at EOF); blocking waits for them, non-blocking gives
        what there is or None; read() reads to EOF.  (once: recv's.)"""
        if n is None or n < 0:
            out = b""
            while True:
                b = self.read(self._rcvbuf)
                if not b:
                    return out if out or b is not None else None
                out += b
        buf = bytearray(n)
        got = self._xfer(False, buf, n, once)
        if got is not None:
            return bytes(buf) if got == n else bytes(buf[:got])

    def recv(self, n):
        """What there is, up to n bytes (waiting for one if blocking); b'' at EOF."""
        return self.read(n, True)

    def readline(self):
        """A line with its b'\\n'; what there is at EOF; None when it would block."""
        out = b""
        while True:
            if not self._wait(_RD, out or self._timeout == 0):
                return out or None
            n = self._view_len
            if not n:
                return out
            h = self._view_start
            i = self._view.find(b"\n", h, h + n) + 1
            if i:
                n = i - h
            out += self._view[h:h + n]
            self._drop(n)
            if i:
                return out

    def write(self, buf, n=None):
        """Queue n bytes of buf (all of it): blocking, all of them (what a
        MicroPython stream does); non-blocking, what fits, None if nothing."""
        return self._xfer(True, buf, len(buf) if n is None else min(n, len(buf)), None)

    def send(self, buf):
        """What fits now (at least one byte, waiting if blocking)."""
        return self._xfer(True, buf, len(buf), True)

    def sendall(self, buf):
        if self._xfer(True, buf, len(buf), False) != len(buf):    # stopped after a part
            raise os_error(errno.EAGAIN if self._timeout == 0 else errno.ETIMEDOUT)

    # --- state, waiting, closing ---

    def _ready(self, events):
        """The poll flags that hold now (ERR and HUP always count)."""
        if self._closed:
            return _HUP
        c = self._c
        if c is not None and c.state == _ST_SYN_SENT and c.tx_failed and \
                ticks_diff(stack().now, c.last_rx) > _UNREACH_MS:
            c.abort()                 # the neighbour never answered ARP
            self._c = c = None
            self._err = errno.EHOSTUNREACH
        if self._err:
            return _ERR | _RD | _WR
        if c is None:
            return _RD | _WR          # not connected, or over: the call itself says which
        flags = _RD if self._view_len or self._peer_fin else 0
        if c.app is not self or c.state == _ST_CLOSED:
            flags |= _HUP | _RD
        elif (1 << c.state) & _SENDING and c.unacked() < self._sndbuf and c.send_queue_free():
            flags |= _WR
        return flags & (events | _ERR | _HUP)

    def _wait(self, events, soft):
        """Until events are ready: at once when non-blocking, after one pass of
        the stack.  Not ready in time: False when soft, else EAGAIN
        (non-blocking) or ETIMEDOUT.  EBADF when closed; the error that ended
        the connection (reset, refused, unreachable) once, when nothing is left
        to read first."""
        if self._closed:
            raise os_error(errno.EBADF)
        t = self._timeout
        start = ticks_ms()
        while not self._ready(events):
            st = stack()
            if t == 0:
                st.poll()
                t = -1                # then the answer
            elif t is not None and ticks_diff(ticks_ms(), start) >= t:
                if soft:
                    return False
                raise os_error(errno.EAGAIN if self._timeout == 0 else errno.ETIMEDOUT)
            elif not st.poll():       # nothing came in: wait a moment for input
                (getattr(st.nic, "wait", None) or sleep)(0.001)   # a host NIC sleeps on its fd
        e = self._err
        if e and (events == _WR or not self._view_len):
            self._err = 0
            self._peer_fin = True
            raise os_error(e)
        return True

    def close(self, *exc):
        if self._closed:
            return
        self._closed = True
        c = self._c
        if self._acc is not None:
            _more().unlisten(self)
        elif c is not None and c.app is self:
            c.window = self._rcvbuf   # what still comes is taken and dropped
            c.close()                 # FIN after the queued data
        self._view = b""

    __exit__ = close
