"""uipy: a uIP-style TCP/IP stack for MicroPython boards with SPI Ethernet."""
import sys

# The helpers' names are ones MicroPython already interns (run, discard,
# function): a name of its own would be one more qstr on every board.


def discard(name):
    """Forget the module uipy.<name>: code needed only now and then (set-up, a
    goodbye, a rare answer) is imported for the call and dropped after, so it
    is garbage once no frame runs it (on a stock board, code is heap); the
    next import loads it again."""
    sys.modules.pop(__name__ + "." + name, None)
    globals().pop(name, None)         # the package's reference to it


def run(name, function, *args):
    """uipy.<name>.<function>(*args), the module imported for the call and
    discarded after."""
    try:
        return getattr(__import__(__name__ + "." + name, None, None, (function,)), function)(*args)
    finally:
        discard(name)
