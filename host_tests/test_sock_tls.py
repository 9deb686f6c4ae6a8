"""Level 5: TLS over uipy.socket on the MicroPython unix port (its tls module,
mbedtls), certificates verified, against openssl s_server in the test namespace
(host_tests/mpy_net.py: TAP + relay; host_tests/tls_certs.py: a throw-away CA).

Data both ways through s_server -rev; the handshake's time and the heap it took
(printed as figures); a wrong host name and a certificate from an untrusted CA
failing with mbedtls's verify message (ValueError); the same handshake
non-blocking under asyncio (open_connection(..., ssl=ctx, server_hostname=...)).

Server side (host_tests/mpy/sock_tls_server.py): asyncio.start_server(...,
ssl=ctx) with the certificate and key loaded as DER, then a blocking accept()
+ wrap_socket(conn, server_side=True); the clients in the namespace (CPython's
ssl, two at once, and openssl s_client) verify the certificate against the
test CA for its name and exchange a few KB both ways, checked byte for byte.

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


# --- server side: MicroPython serves TLS, the kernel is the client ---

AIO_PORT, BLOCK_PORT = 8443, 8444
STACK_IP = "198.18.0.2"               # mpnet.stack()'s address
# native: MicroPython's own sockets listen in the namespace, on the TAP's address
SERVER_IP = KERNEL_IP if NET == "native" else STACK_IP
SEND, RECV = 5000, 7000               # client -> server, server -> client


def pattern(n, tag):
    """The bytes both sides expect (same as sock_tls_server.py's pattern)."""
    out = bytearray()
    i = 0
    while len(out) < n:
        out += ("%s%06d;" % (tag, i)).encode()
        i += 1
    return bytes(out[:n])


# CPython client in the namespace: `count` connections at once, each verified
# against the CA for name; sends "n m\n" + pattern(n, "c"), expects pattern(m, "s")
# then EOF.  Prints one line per connection.
TLS_CLIENT = r"""
import socket, ssl, sys, threading, time
ip, port, ca, name, n, m, count = sys.argv[1:8]
port, n, m, count = int(port), int(n), int(m), int(count)
def pattern(n, tag):
    out = bytearray(); i = 0
    while len(out) < n:
        out += ("%s%06d;" % (tag, i)).encode(); i += 1
    return bytes(out[:n])
ctx = ssl.create_default_context(cafile=ca)          # CERT_REQUIRED, check_hostname
results = [None] * count
def one(k):
    try:
        t0 = time.perf_counter()
        raw = socket.create_connection((ip, port), timeout=15)
        with ctx.wrap_socket(raw, server_hostname=name) as s:
            hs = (time.perf_counter() - t0) * 1000
            version, cipher = s.version(), s.cipher()[0]
            s.sendall(b"%d %d\n" % (n, m) + pattern(n, "c"))
            got = b""
            while True:
                b = s.recv(65536)
                if not b:
                    break
                got += b
            assert got == pattern(m, "s"), (len(got), got[:40])
            results[k] = "ok %s %s handshake_ms=%.1f" % (version, cipher, hs)
    except Exception as e:
        results[k] = "error %r" % (e,)
ts = [threading.Thread(target=one, args=(k,)) for k in range(count)]
for t in ts: t.start()
for t in ts: t.join(30)
for r in results: print(r)
sys.exit(0 if all(r and r.startswith("ok") for r in results) else 1)
"""


def der(openssl, certs):
    """The server certificate and key as DER files (MicroPython's tls wants DER)."""
    import subprocess
    cert, key = certs.server_cert[:-4] + ".crt.der", certs.server_key + ".der"
    for cmd in (["x509", "-in", certs.server_cert, "-outform", "DER", "-out", cert],
                ["pkey", "-in", certs.server_key, "-outform", "DER", "-out", key]):
        subprocess.run([openssl] + cmd, check=True, capture_output=True, timeout=30)
    return cert, key


def tls_client(net, port, count, name=None, ok=True):
    """count CPython clients at once; their result lines (all "ok ..." if ok)."""
    import sys
    import tls_certs
    r = net.ns.run([sys.executable, "-c", TLS_CLIENT, SERVER_IP, str(port), net.certs.ca_pem,
                    name or tls_certs.SERVER_NAME, str(SEND), str(RECV), str(count)],
                   check=False, timeout=25)
    assert (r.returncode == 0) == ok, "client: %s %s\n%s" % (r.stdout, r.stderr, net.output())
    return r.stdout.split("\n")[:count]


def s_client(net, openssl, port):
    """openssl s_client, verifying the chain and the name, the exchange on stdin/stdout."""
    import subprocess
    import tls_certs
    p = net.ns.popen([openssl, "s_client", "-connect", "%s:%d" % (SERVER_IP, port),
                      "-servername", tls_certs.SERVER_NAME, "-verify_hostname", tls_certs.SERVER_NAME,
                      "-CAfile", net.certs.ca_pem, "-verify_return_error", "-quiet", "-ign_eof"],
                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        out, err = p.communicate(b"%d %d\n" % (SEND, RECV) + pattern(SEND, "c"), timeout=20)
    except subprocess.TimeoutExpired:
        p.kill()
        out, err = p.communicate()
        raise AssertionError("s_client timed out: %r\n%s" % (err, net.output()))
    err = err.decode(errors="replace")
    assert out == pattern(RECV, "s"), "s_client rc=%s got %d bytes: %r\n%s" % (
        p.returncode, len(out), err, net.output())
    # MicroPython's tls sends no close_notify at close() (modtls_mbedtls.c frees
    # the context), so s_client ends with "unexpected eof while reading", exit 1
    assert p.returncode == 0 or "unexpected eof" in err, (p.returncode, err)
    assert err.count("verify return:1") == 2 and "verify error" not in err, err
    return err


@pytest.fixture
def server_bed(tmp_path):
    need_root()
    openssl = tool("openssl")
    import tls_certs
    from mpy_net import MpyNet
    certs = tls_certs.make(tmp_path / "certs")
    net = MpyNet(tmp_path)
    try:
        net.certs = certs
        net.openssl = openssl
        net.der = der(openssl, certs)
        yield net
    finally:
        net.close()


def test_tls_servers_asyncio_and_blocking(server_bed):
    net = server_bed
    net.start("host_tests/mpy/sock_tls_server.py", NET, net.der[0], net.der[1],
              AIO_PORT, 4, BLOCK_PORT, heap="1M")
    net.wait_for("AIO READY", 10)
    two = tls_client(net, AIO_PORT, 2)                    # two clients at once
    err = s_client(net, net.openssl, AIO_PORT)
    net.wait_for("AIO CONN 3 ok", 10)
    # a client that expects another name rejects the certificate; the server
    # sees its handshake fail and goes on
    wrong = tls_client(net, AIO_PORT, 1, "other.uipy.test", ok=False)
    assert "certificate verify failed" in wrong[0] and "Hostname mismatch" in wrong[0], wrong
    net.wait_for("AIO CONN 4 error", 10)
    net.wait_for("AIO DONE", 10)
    net.wait_for("BLOCK READY", 10)
    one = tls_client(net, BLOCK_PORT, 1)
    block = net.wait_for("BLOCK ok", 10)
    net.wait_for("OK", 10)
    assert net.wait_exit(10) == 0, net.output()
    for i in (1, 2, 3):
        assert "AIO CONN %d ok got=%d sent=%d" % (i, SEND, RECV) in net.output()
    assert "got=%d sent=%d" % (SEND, RECV) in block
    print("\nasyncio server, CPython clients:", two)
    print("asyncio server, s_client:", err.strip().replace("\n", " | "))
    print("asyncio server, wrong name:", wrong, "|", net.wait_for("AIO CONN 4", 1))
    print("blocking server, CPython client:", one, "|", block)
