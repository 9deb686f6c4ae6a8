# The network under a MicroPython socket test script: a uipy Stack on the test
# bed's relayed NIC (host_tests/mpy/mpnet.py) with uipy.socket installed as
# `socket` ("uipy"), or the interpreter's own sockets ("native": the process
# runs inside the test namespace, so they reach the same servers; a way to tell
# a script's fault from uipy's).
#
#   sock_net.setup("uipy")          # before `import socket` / asyncio streams
#   sock_net.run(main)              # main(), the verdict line, the NIC closed
import sys

stack = None


def setup(kind):
    global stack
    if kind == "native":
        return None
    assert kind == "uipy", "network kind %r: uipy or native" % kind
    import mpnet
    import uipy.socket
    stack = mpnet.stack()
    uipy.socket.use(stack)
    uipy.socket.install()
    return stack


def close():
    if stack is not None:
        stack.nic.close()


def run(main):
    """main(); on an exception its traceback, "FAILED <it>" and exit code 1.
    The NIC is closed either way."""
    try:
        main()
    except BaseException as e:
        sys.print_exception(e)     # type: ignore  (MicroPython)
        print("FAILED", repr(e))
        close()
        sys.exit(1)
    close()
