"""The parts of uipy.socket a blocking client does not use, loaded with the
first use that needs them: listening sockets, names through DNS, the asyncio
pump, the option constants (uipy.socket's module __getattr__ finds them
here), the error messages, and the socket methods in stream_methods, which
are added to uipy.socket.Stream when this module loads (Stream.__getattr__
loads it on the first call of one).  On a stock board code is heap: an MQTT
or HTTP client that connects to an address pays only for uipy.socket."""
import sys
from errno import EADDRINUSE, EBADF, EINVAL, ENOTCONN
from time import sleep
from uipy.compat import const, ticks_ms, ticks_diff, os_error
import uipy.socket as core

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

# uipy.socket's __all__: what `from uipy.socket import *` gives
names = ("AF_INET", "SOCK_STREAM", "SOCK_DGRAM", "IPPROTO_IP", "IPPROTO_TCP", "IPPROTO_UDP",
         "SOL_SOCKET", "SO_REUSEADDR", "SO_BROADCAST", "SO_SNDBUF", "SO_RCVBUF", "SO_KEEPALIVE",
         "TCP_NODELAY", "use", "install", "stack", "getaddrinfo", "socket", "Stream")

_POLL = const(3)                  # MicroPython's stream ioctl requests
_CLOSE = const(4)
_CONNECTED = const(1)             # uipy.tcp_conn's event (host_tests/test_socket.py checks it)

_listening = {}                   # port -> listening socket
_pump_task = None
_resolver = None

# uipy.socket's failures (its `raise _more().error(k)`): type, errno, message
_ERRORS = (
    (ValueError, 0, "sockets need a Stack with TCP"),
    (OSError, ENOTCONN, "no network: call uipy.socket.use(stack) or network.LAN(...) first"),
    (OSError, EINVAL, "only AF_INET"),
    (OSError, EINVAL, "only AF_INET sockets of type SOCK_STREAM or SOCK_DGRAM"),
    (ValueError, 0, "timeout must be >= 0 or None"),
    (OSError, EINVAL, "socket already used"),
)


def error(k, address=None):
    """The exception for uipy.socket's failure k; None: a bad address."""
    if k is None:
        try:
            host, port = address      # type: ignore  (not a tuple, or not of two)
        except (TypeError, ValueError):
            return TypeError("uipy: a socket address is a (host, port) tuple, got %r" % (address,))
        return ValueError("uipy: port %r out of range 0..65535" % (port,))
    kind, e, msg = _ERRORS[k]
    msg = "uipy: " + msg
    return kind(e, msg) if e else kind(msg)


# --- socket methods: s.bind(address) calls bind(s, address) ---

def bind(s, address):
    if s._closed:
        raise os_error(EBADF)
    s._port = core._addr(address)[1]


def listen(s, backlog=2):
    if s._closed:
        raise os_error(EBADF)
    if not s._port:
        raise OSError(EINVAL, "uipy: bind() a port before listen()")
    st = core.stack()
    if s._port in _listening:
        raise OSError(EADDRINUSE, "uipy: TCP port %d already has a listening socket" % s._port)
    try:
        st.listen(s._port, core._tcp_event, len(st.tcp.conns), s._rcvbuf)
    except ValueError as e:
        raise OSError(EADDRINUSE, str(e))
    s._backlog = max(1, backlog)
    s._acc = []
    # poll flags of a listening socket: readable with a connection to accept
    s._ready = lambda events: 16 if s._closed else events & 1 if s._acc else 0
    _listening[s._port] = s


def accept(s):
    if s._acc is None:
        if s._closed:
            raise os_error(EBADF)
        raise OSError(EINVAL, "uipy: accept() on a socket that is not listening")
    s._wait(1, False)
    new = s._acc.pop(0)
    return new, getpeername(new)


def getpeername(s):
    c = s._c
    if c is None:
        raise os_error(ENOTCONN)
    return c.remote()


def makefile(s, *args):
    return s


def setsockopt(s, level, opt, value):
    if level == SOL_SOCKET and opt == SO_RCVBUF:
        s._rcvbuf = max(536, min(int(value), 65535))
    elif level == SOL_SOCKET and opt == SO_SNDBUF:
        s._sndbuf = max(536, int(value))
    # SO_REUSEADDR, TCP_NODELAY (no Nagle anyway), SO_BROADCAST: accepted


def ioctl(s, req, arg):
    """MicroPython's stream ioctl: MP_STREAM_POLL (select.poll, asyncio, tls)
    and MP_STREAM_CLOSE."""
    if req == _POLL:
        st = core._stack
        if st is not None:
            st.poll()                 # frames keep moving while select.poll waits
        return s._ready(arg)
    if req == _CLOSE:
        s.close()
        return 0
    return -EINVAL                    # no file descriptor, nothing else


stream_methods = {"bind": bind, "listen": listen, "accept": accept, "getpeername": getpeername,
                  "makefile": makefile, "setsockopt": setsockopt, "ioctl": ioctl}
for _name in stream_methods:          # found on the class from now on, as its own
    setattr(core.Stream, _name, stream_methods[_name])

# --- uipy.socket's helpers ---


def _pump():
    """One pass of the stack; wait a moment for input when nothing came in (a
    host NIC sleeps on its file descriptor)."""
    st = core.stack()
    if not st.poll():
        (getattr(st.nic, "wait", None) or sleep)(0.001)


def admit(c, ev):
    """A connection a listening socket's port has made (at CONNECTED): its
    socket, queued for accept(); None otherwise (the connection reset when
    the backlog is full)."""
    if not ev & _CONNECTED:
        return None
    lsn = _listening.get(c.lport)
    if lsn is None or len(lsn._acc) >= lsn._backlog:
        c.abort()
        return None
    s = core.Stream()
    c.app = s
    s._c = c
    s._rcvbuf = lsn._rcvbuf
    s._sndbuf = lsn._sndbuf
    s._view = bytearray(lsn._rcvbuf)
    lsn._acc.append(s)
    return s


def unlisten(s):
    """Close a listening socket: the port, and the connections not accepted."""
    st = core._stack
    if st is not None:
        st.tcp.unlisten(s._port)
    _listening.pop(s._port, None)
    for a in s._acc:
        a.close()
        if a._c is not None:
            a._c.abort()
    s._acc = []


def resolve(name, timeout_ms=10000):
    """Look a name up through the stack's resolver (blocking)."""
    global _resolver
    st = core.stack()
    if _resolver is None or _resolver.stack is not st:    # one for the stack in use
        from uipy.dns import Resolver
        _resolver = Resolver(st)
    box = []
    _resolver.resolve(name, lambda n, a: box.append(a))
    start = ticks_ms()
    while not box and ticks_diff(ticks_ms(), start) < timeout_ms:
        _pump()
    if not box or box[0] is None:
        raise OSError(-2, "uipy: cannot resolve %r" % (name,))
    return box[0]


async def pump(idle_ms=2):
    """asyncio: keep the stack polled (started by itself for non-blocking sockets)."""
    import asyncio
    while True:
        n = core.stack().poll()
        await asyncio.sleep_ms(0 if n else idle_ms)  # type: ignore  (MicroPython's asyncio)


def start_pump():
    global _pump_task
    if _pump_task is None and hasattr(sys.modules.get("asyncio"), "sleep_ms"):
        try:
            _pump_task = sys.modules["asyncio"].create_task(pump())
        except RuntimeError:
            pass
