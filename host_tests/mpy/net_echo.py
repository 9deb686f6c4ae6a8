"""Under the MicroPython unix port (host_tests/mpy_net.py): a uipy Stack at
198.18.0.2 on the relayed TAP, with a TCP echo on port 7 (the event API) and
uipy.httpd on port 80 serving the folder given as argv[1].  Prints READY,
then polls until argv[2] seconds pass or a client sends "QUIT" to the echo."""
import sys

import mpnet
from uipy.tcp_conn import NEWDATA, ACKED, CLOSED
from uipy.httpd import HttpServer

root = sys.argv[1]
seconds = int(sys.argv[2]) if len(sys.argv) > 2 else 20
state = {"quit": False, "echoed": 0}


pending = {}                           # conn -> data the send queue had no room for


def echo(conn, events):
    """Echo; while the send queue is full the window is closed (conn.stop())."""
    waiting = pending.setdefault(conn, [])
    if events & NEWDATA:
        data = bytes(conn.data)
        state["echoed"] += len(data)
        if data.strip() == b"QUIT":
            state["quit"] = True
        waiting.append(data)
    while waiting and conn.send(waiting[0]):
        waiting.pop(0)
    if waiting:
        conn.stop()
    elif events & ACKED:
        conn.restart()
    if events & CLOSED:
        conn.close()
        pending.pop(conn, None)


stack = mpnet.stack()
stack.listen(7, echo, backlog=2)
HttpServer(stack, root=root, port=80)
mpnet.say("READY", mpnet.STACK_IP)
mpnet.run(stack, seconds, until=lambda: state["quit"])
mpnet.run(stack, 0.3)                  # the reply to QUIT goes out
mpnet.say("ECHOED", state["echoed"])
mpnet.say("STATS", " ".join("%s=%d" % (k, v) for k, v in sorted(stack.stats.items()) if v))
mpnet.say("DONE")
