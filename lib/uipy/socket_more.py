"""The parts of uipy.socket a blocking client does not use, loaded with the
first call that needs them: listening sockets, names through DNS, the
asyncio pump and socket options.  On a stock board code is heap: an MQTT or
HTTP client that connects to an address pays only for uipy.socket."""
import sys
from errno import EADDRINUSE, EINVAL
from uipy.compat import ticks_ms, ticks_diff
import uipy.socket as core


def listen(s, backlog):
    s._check()
    if not s._port:
        raise OSError(EINVAL, "uipy: bind() a port before listen()")
    st = core.stack()
    if s._port in core._listening:
        raise OSError(EADDRINUSE, "uipy: TCP port %d already has a listening socket" % s._port)
    try:
        st.listen(s._port, core._tcp_event, len(st.tcp.conns), s._rcvbuf)
    except ValueError as e:
        raise OSError(EADDRINUSE, str(e))
    s._backlog = max(1, backlog)
    core._listening[s._port] = s


def accept(s):
    s._check()
    if not s._backlog:
        raise OSError(EINVAL, "uipy: accept() on a socket that is not listening")
    if not s._wait(1):
        s._would_block()
    new = s._acc.pop(0)
    return new, new.getpeername()


def accepted(c):
    """A connection a listening socket's port has made: its socket, queued for
    accept(); None (and the connection reset) when its backlog is full."""
    lsn = core._listening.get(c.lport)
    if lsn is None or len(lsn._acc) >= lsn._backlog:
        c.abort()
        return None
    s = core.Stream()
    s._attach(c, lsn._rcvbuf, lsn._sndbuf)
    lsn._acc.append(s)
    return s


def resolve(name, timeout_ms=10000):
    """Look a name up through the stack's resolver (blocking)."""
    st = core.stack()
    if core._resolver is None:
        from uipy.dns import Resolver
        core._resolver = Resolver(st)
    box = []
    core._resolver.resolve(name, lambda n, a: box.append(a))
    start = ticks_ms()
    while not box and ticks_diff(ticks_ms(), start) < timeout_ms:
        core._pump()
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
    if core._pump_task is None and hasattr(sys.modules.get("asyncio"), "sleep_ms"):
        try:
            core._pump_task = sys.modules["asyncio"].create_task(pump())
        except RuntimeError:
            pass


def setsockopt(s, level, opt, value):
    if level == core.SOL_SOCKET and opt == core.SO_RCVBUF:
        s._rcvbuf = max(536, min(int(value), 65535))
    elif level == core.SOL_SOCKET and opt == core.SO_SNDBUF:
        s._sndbuf = max(536, int(value))
    # SO_REUSEADDR, TCP_NODELAY (no Nagle anyway), SO_BROADCAST: accepted
