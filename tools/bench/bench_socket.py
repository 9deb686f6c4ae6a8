"""Socket API figures (host only, needs root):

socket_download_MBps / socket_upload_MBps: 10 MB through uipy.socket on
CPython (blocking sendall / recv_into-style reads, the stack polled inside the
calls, no thread) to and from the kernel over a TAP, next to bench_tcp's
host_tcp_* figures for the event API; the kernel side is the same clients.

asyncio_echo_rtt_ms: median round trip of a short line from the kernel to an
asyncio.start_server echo on the MicroPython unix port over uipy.socket (the
test bed of host_tests/mpy_net.py), through the asyncio pump.
"""
import hashlib
import os
import threading
import time

from bench_tcp import KERNEL_IP, MB, STACK_IP, kernel_download, kernel_upload, payload, sha

TCP = {"conns": 4, "listeners": 2, "window": 32 * 1460, "queue_slots": 16}


def _serve(usock, port, work):
    """Listen on port; work(conn) for one connection from the kernel."""
    srv = usock.socket()
    srv.bind(("", port))
    srv.listen(1)
    srv.setsockopt(usock.SOL_SOCKET, usock.SO_RCVBUF, 65535)
    c, _ = srv.accept()
    try:
        work(c)
    finally:
        c.close()
        srv.close()


def _in_thread(fn, *args):
    box = {}

    def run():
        try:
            box["result"] = fn(*args)
        except BaseException as e:                # re-raised by the caller
            box["error"] = e
    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t, box


def _until_done(usock, t, limit_s=60):
    from uipy.socket_more import _pump
    end = time.monotonic() + limit_s
    while t.is_alive() and time.monotonic() < end:
        _pump()


def socket_figures(size=10 * MB):
    if os.geteuid() != 0:
        print("bench_socket: not root, socket figures skipped")
        return {}
    from netns import Namespace, create_tap_in_ns
    import uipy.socket as usock
    import uipy.socket_more as usock_more
    from uipy.stack import Stack

    ns = Namespace().create()
    try:
        tap = create_tap_in_ns(ns, KERNEL_IP + "/24")
        usock.use(Stack(tap, ip=STACK_IP, gateway=KERNEL_IP, tcp=TCP))
        data = payload(size, 1)

        def send_all(c):
            c.setsockopt(usock.SOL_SOCKET, usock.SO_SNDBUF, 64 * 1460)
            c.sendall(data)

        t, down = _in_thread(kernel_download, ns, 6001, 40)
        _serve(usock, 6001, send_all)
        _until_done(usock, t)
        if "error" in down:
            raise down["error"]
        got = down["result"]
        if got["n"] != size or got["sha"] != sha(data):
            raise RuntimeError("socket download corrupted: %r" % got)

        def receive(c):
            h = hashlib.sha256()
            n = 0
            buf = bytearray(16384)
            while True:
                k = c.readinto(buf)
                if not k:
                    break
                h.update(memoryview(buf)[:k])
                n += k
            c.sendall(b"%d %s\n" % (n, h.hexdigest().encode()))

        t, up = _in_thread(kernel_upload, ns, 6002, size, 1, 40)
        _serve(usock, 6002, receive)
        _until_done(usock, t)
        if "error" in up:
            raise up["error"]
        if up["result"]["reply"].split() != [str(size), sha(data)]:
            raise RuntimeError("socket upload corrupted: %r" % up["result"])
        return {"socket_download_MBps": round(size / MB / got["secs"], 2),
                "socket_upload_MBps": round(size / MB / up["result"]["secs"], 2)}
    finally:
        usock._stack = None
        usock_more._listening.clear()
        ns.delete()


def asyncio_figures():
    if os.geteuid() != 0:
        return {}
    import tempfile
    from mpy_net import MpyNet
    from test_sock_aio import echo_rtt
    with tempfile.TemporaryDirectory() as tmp:
        net = MpyNet(tmp)
        try:
            net.start("host_tests/mpy/apps/aio_echo.py", "-", "60", heap="512K")
            net.wait_for("READY", 10)
            rtt = echo_rtt(net, 200)
        finally:
            net.close()
    return {"asyncio_echo_rtt_ms": round(rtt["median_ms"], 2)}


if __name__ == "__main__":
    import sys
    sys.path[:0] = [os.path.join(os.path.dirname(__file__), "..", "..", d) for d in ("lib", "drivers", "tools")]
    import paths  # noqa: F401
    sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "host_tests"))
    figs = socket_figures()
    figs.update(asyncio_figures())
    for k, v in figs.items():
        print("%-28s %s" % (k, v))
