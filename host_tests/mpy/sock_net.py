# The network under a MicroPython socket test script: a uipy Stack on the test
# bed's relayed NIC (host_tests/mpy/mpnet.py) with uipy.socket installed as
# `socket` ("uipy"), or the interpreter's own sockets ("native": the process
# runs inside the test namespace, so they reach the same servers; a way to tell
# a script's fault from uipy's).
#
#   sock_net.setup("uipy")          # before `import socket` / asyncio streams
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
