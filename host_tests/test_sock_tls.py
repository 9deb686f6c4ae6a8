"""Level 5: TLS over uipy.socket on the MicroPython unix port (its tls module,
mbedtls), certificates verified, against openssl s_server in the test namespace
(host_tests/mpy_net.py: TAP + relay; host_tests/tls_certs.py: a throw-away CA).

Data both ways through s_server -rev; the handshake's time and the heap it took
(printed as figures); a wrong host name and a certificate from an untrusted CA
failing with mbedtls's verify message (ValueError); the same handshake
non-blocking under asyncio (open_connection(..., ssl=ctx, server_hostname=...)).

Needs root (skipped locally without it, a failure under CI=true).
UIPY_SOCK_NATIVE=1 runs the script on MicroPython's own sockets instead.
"""
import os
import re
import time

import pytest

from levels import need_root, tool

KERNEL_IP = "198.18.0.1"
PORT, WRONG_PORT = 4433, 4434
NET = "native" if os.environ.get("UIPY_SOCK_NATIVE") == "1" else "uipy"


def s_server(ns, openssl, port, cert, key):
    """openssl s_server -rev on KERNEL_IP:port in ns, once it listens."""
    import subprocess
    p = ns.popen([openssl, "s_server", "-accept", "%s:%d" % (KERNEL_IP, port), "-cert", cert,
                  "-key", key, "-rev", "-quiet"], stdin=subprocess.DEVNULL,
                 stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 5
    while not any(r["local"].endswith(":%d" % port) for r in ns.ss("-tln")):
        assert p.poll() is None, "s_server exited: %s" % p.stderr.read().decode()
        assert time.monotonic() < deadline, "s_server not listening on %d" % port
        time.sleep(0.05)
    return p


@pytest.fixture
def bed(tmp_path):
    need_root()
    openssl = tool("openssl")
    import tls_certs
    from mpy_net import MpyNet
    certs = tls_certs.make(tmp_path / "certs")
    net = MpyNet(tmp_path)
    try:
        net.certs = certs
        s_server(net.ns, openssl, PORT, certs.server_cert, certs.server_key)
        s_server(net.ns, openssl, WRONG_PORT, certs.wrong_server_cert, certs.wrong_server_key)
        yield net
    finally:
        net.close()                      # the servers too: the namespace stops them by PID


def test_tls_client_verified_both_ways_and_bad_certificates(bed):
    import tls_certs
    bed.start("host_tests/mpy/sock_tls.py", NET, KERNEL_IP, PORT, WRONG_PORT,
              bed.certs.ca_der_path, tls_certs.SERVER_NAME)
    hs = bed.wait_for("HANDSHAKE", 20)
    bed.wait_for("DATA both ways ok", 10)
    bed.wait_for("IP NAME ok", 10)
    wrong_name = bed.wait_for("WRONG NAME", 10)
    wrong_ca = bed.wait_for("WRONG CA", 10)
    bed.wait_for("ASYNCIO ok", 10)
    async_wrong_ca = bed.wait_for("ASYNCIO WRONG CA", 10)
    bed.wait_for("OK", 10)
    assert bed.wait_exit(10) == 0, bed.output()
    assert "ValueError" in wrong_name and "does not match with the expected CN" in wrong_name
    assert "ValueError" in wrong_ca and "not correctly signed by the trusted CA" in wrong_ca
    assert "ValueError" in async_wrong_ca and "not correctly signed by the trusted CA" in async_wrong_ca
    m = re.search(r"ms=(\d+) heap_bytes=(-?\d+) held_bytes=(-?\d+)", hs)
    print("\nTLS handshake over %s: %s ms, %s bytes of MicroPython heap allocated, %s held after"
          % (NET, m.group(1), m.group(2), m.group(3)))
    print(bed.output())
