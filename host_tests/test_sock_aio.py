"""MicroPython's own asyncio over uipy.socket on the unix port (level 5):
start_server and open_connection, readline/write/drain, wait_for timeouts, a
refused connect, and the round-trip time of an echo through the asyncio pump.
Frames relayed to a TAP in a test namespace (host_tests/mpy_net.py).
Needs root (skipped locally without it, a failure under CI=true)."""
import json
import sys

import pytest

from levels import need_root
from mpy_net import KERNEL_IP, STACK_IP, MpyNet

# Kernel side: an echo server on PORT (lines back), a silent one on PORT+1;
# nothing listens on PORT+2 (refused).
KERNEL_SERVERS = r"""
import socket, sys, threading
ip, port = sys.argv[1], int(sys.argv[2])
def serve(p, echo):
    ls = socket.socket(); ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind((ip, p)); ls.listen(4); ls.settimeout(30)
    c, _ = ls.accept(); c.settimeout(30)
    while True:
        b = c.recv(4096)
        if not b:
            break
        if echo:
            c.sendall(b)
    c.close()
threading.Thread(target=serve, args=(port, True)).start()
threading.Thread(target=serve, args=(port + 1, False)).start()
print("ready", flush=True)
"""

# Kernel side: n echo round trips to the board's asyncio server, median in ms.
RTT_CLIENT = r"""
import json, socket, sys, time
ip, n = sys.argv[1], int(sys.argv[2])
s = socket.create_connection((ip, 7), timeout=10)
s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
rtts = []
for i in range(n):
    msg = b"ping %d\n" % i
    t0 = time.perf_counter()
    s.sendall(msg)
    got = b""
    while not got.endswith(b"\n"):
        got += s.recv(100)
    rtts.append((time.perf_counter() - t0) * 1000)
    assert got == msg, got
s.sendall(b"quit\n")
s.recv(100)
s.close()
rtts.sort()
print(json.dumps({"median_ms": rtts[len(rtts) // 2], "max_ms": rtts[-1]}))
"""


def echo_rtt(net, n=100):
    """Median echo round trip, kernel -> asyncio server on the unix port, ms."""
    r = net.ns.run([sys.executable, "-c", RTT_CLIENT, STACK_IP, str(n)], timeout=60, check=False)
    assert r.returncode == 0, r.stderr + net.output()
    return json.loads(r.stdout)


@pytest.fixture
def net(tmp_path):
    need_root()
    n = MpyNet(tmp_path)
    yield n
    n.close()


def test_asyncio_server_and_client_over_uipy_socket(net):
    k = net.ns.popen([sys.executable, "-u", "-c", KERNEL_SERVERS, KERNEL_IP, "7300"], text=True)
    assert k.stdout.readline().strip() == "ready"
    net.start("host_tests/mpy/apps/aio_echo.py", "7300", "30", heap="512K")
    net.wait_for("READY", 10)
    line = net.wait_for("CLIENT", 20)
    assert line == "CLIENT True True 111", net.output()     # echoed, timed out, ECONNREFUSED
    rtt = echo_rtt(net, 50)
    assert rtt["median_ms"] < 20, rtt                     # the pump keeps latency at a few ms
    net.wait_for("DONE", 10)
    assert net.wait_exit(10) == 0, net.output()
