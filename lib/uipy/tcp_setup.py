"""TCP set-up: the checks of a Tcp's settings and of a listener, run by
uipy.run and dropped after: on a stock board code is heap, and these run at
start and at listen() only.
"""
from uipy.stats import new_counters
from uipy.tcp import STAT_NAMES, Listener


def check(stack, conns, listeners, queue_slots, window):
    """Tcp.__init__'s checks, and TCP's counters in the stack's dict."""
    for name, value in (("tcp_conns", conns), ("tcp_listeners", listeners),
                        ("tcp_queue_slots", queue_slots), ("tcp_window", window)):
        if not isinstance(value, int) or value < 1:
            raise ValueError("uipy: %s must be a positive int, got %r" % (name, value))
    new_counters(STAT_NAMES, stack.stats)


def listen(tcp, port, handler, backlog, window, on_full):
    """Tcp.listen."""
    if not 0 < port < 65536:
        raise ValueError("uipy: TCP port %r out of range 1..65535" % (port,))
    if backlog < 1:
        raise ValueError("uipy: backlog must be at least 1")
    free = -1
    for i in range(len(tcp.listeners)):
        lst = tcp.listeners[i]
        if lst is not None and lst.port == port:
            raise ValueError("uipy: TCP port %d is already listening" % port)
        if lst is None and free < 0:
            free = i
    if free < 0:
        raise ValueError("uipy: listener table full (tcp_listeners=%d)" % len(tcp.listeners))
    tcp.listeners[free] = Listener(port, handler, backlog, min(window, 65535) or tcp.window, on_full)
