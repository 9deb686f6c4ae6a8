"""The HTTP server's rare paths: uipy.httpd loads this module for the call
(uipy.run) and drops it after, so its code is in RAM only then (on a stock
board code is heap): percent-decoding a request target that has a '%', and
choosing the connection to evict when every one is held."""
from uipy.compat import ticks_diff

EVICT_MS = 250   # a connection waits this long for a request head before a newcomer may evict it
                 # (a new client's request normally follows its handshake within milliseconds)


def unquote(b):
    """Percent-decode bytes once; None for a malformed escape."""
    out = bytearray()
    i = 0
    n = len(b)
    while i < n:
        ch = b[i]
        if ch == 37:
            if i + 3 > n:
                return None
            try:
                out.append(int(b[i + 1:i + 3], 16))
            except ValueError:
                return None
            i += 3
        else:
            out.append(ch)
            i += 1
    return bytes(out)


def evict(srv, cls):
    """All srv.max_conns are held and a new client has completed its handshake:
    the connection to reset for it, or None.  Among those waiting for a
    request head: an idle keep-alive client first, then one with part of a
    head (slowloris), then one that has sent nothing for EVICT_MS (a fresh
    client's request is usually the very next frame); the longest waiting
    of the first kind there is.  cls: the server's per-client class."""
    victim = None
    rank = 3
    since = 0
    now = srv.stack.now
    for conn in srv.stack.tcp.conns:
        c = conn.app
        if conn.lport != srv.port or not isinstance(c, cls) or c.phase != 0:   # 0: _HEAD
            continue
        r = 0 if c.served and not c.hbytes else 1 if c.hbytes else 2
        if r == 2 and ticks_diff(now, c.waiting) < EVICT_MS:
            continue
        if r < rank or (r == rank and ticks_diff(c.waiting, since) < 0):
            victim = conn
            rank = r
            since = c.waiting
    if victim is not None:
        srv.evicted += 1
        srv._release(victim, victim.app)
    return victim                     # the TCP layer resets it
