"""uipy: a uIP-style TCP/IP stack for MicroPython boards with SPI Ethernet."""
import sys


def drop(name):
    """Forget the module uipy.<name>: code needed only now and then (set-up, a
    goodbye, a rare answer) is imported for the call and dropped after, so it
    is garbage once no frame runs it (on a stock board, code is heap); the
    next import loads it again."""
    sys.modules.pop("uipy." + name, None)
    globals().pop(name, None)         # the package's reference to it


def once(name, fn, *args):
    """uipy.<name>.<fn>(*args), the module imported for the call and dropped
    after (see drop)."""
    try:
        return getattr(__import__("uipy." + name, None, None, (fn,)), fn)(*args)
    finally:
        drop(name)
