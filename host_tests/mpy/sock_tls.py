# TLS over uipy.socket with MicroPython's tls (mbedtls), certificate verified,
# against openssl s_server -rev (each line comes back reversed) in the test
# namespace: data both ways, the handshake's time and heap, an IP as the name,
# then a wrong host name and a certificate from an untrusted CA, each failing
# with mbedtls's verify message; the same handshake non-blocking under asyncio.
#
#   micropython sock_tls.py uipy|native HOST PORT WRONG_CA_PORT CA_DER_PATH NAME
import sys
import gc
import time
import micropython

NET, HOST, PORT, WRONG_PORT, CA, NAME = sys.argv[1:7]
PORT, WRONG_PORT = int(PORT), int(WRONG_PORT)
import sock_net  # noqa: E402
sock_net.setup(NET)
import socket  # noqa: E402
import tls  # noqa: E402

with open(CA, "rb") as f:
    CADATA = f.read()


def context():
    c = tls.SSLContext(tls.PROTOCOL_TLS_CLIENT)
    c.load_verify_locations(CADATA)      # tls: positional, DER (PEM is refused: "invalid cert")
    c.verify_mode = tls.CERT_REQUIRED
    return c


def tcp(port):
    s = socket.socket()
    s.settimeout(10)
    s.connect(socket.getaddrinfo(HOST, port)[0][-1])
    return s


def readline(ss, limit=8192):
    line = b""
    while not line.endswith(b"\n"):
        b = ss.read(1 if len(line) < 8 else min(1024, limit - len(line)))
        assert b, "EOF after %r" % line[-40:]
        line += b
        if len(line) > 8 and b"\n" in line:
            break
    return line


def reverse(ss, data):
    ss.write(data + b"\n")
    got = b""
    while len(got) < len(data) + 1:
        b = ss.read(len(data) + 1 - len(got))
        assert b, "EOF after %d bytes" % len(got)
        got += b
    want = bytes(reversed(data)) + b"\n"
    assert got == want, (len(got), got[:40], want[:40])


def handshake(port, name):
    s = tcp(port)
    ctx = context()
    gc.collect()
    m0 = gc.mem_alloc()
    t0 = time.ticks_ms()
    try:
        ss = ctx.wrap_socket(s, server_hostname=name)
    except BaseException:
        s.close()
        raise
    dt = time.ticks_diff(time.ticks_ms(), t0)
    m1 = gc.mem_alloc()               # allocated during the handshake, garbage included
    gc.collect()
    m2 = gc.mem_alloc()               # still held by the open TLS socket
    return ss, dt, (m1 - m0, m2 - m0)


def expect_failure(port, name, text):
    t0 = time.ticks_ms()
    try:
        ss, _, _ = handshake(port, name)
        ss.close()
    except Exception as e:
        msg = " ".join(str(a) for a in e.args).strip()
        assert isinstance(e, ValueError) and text in msg, repr(e)
        return "%s(%r) after %d ms" % (type(e).__name__, msg, time.ticks_diff(time.ticks_ms(), t0))
    raise AssertionError("handshake with %s on port %d succeeded" % (name, port))


async def async_round(port, name):
    import asyncio
    r, w = await asyncio.wait_for(asyncio.open_connection(HOST, port, ssl=context(),
                                                          server_hostname=name), 10)
    try:
        w.write(b"asyncio over tls\n")
        await w.drain()
        line = await asyncio.wait_for(r.readline(), 10)
        assert line == b"slt revo oicnysa\n", line
    finally:
        await w.wait_closed()


async def async_bad(port, name):
    try:
        await async_round(port, name)
    except Exception as e:
        return repr(e)
    raise AssertionError("asyncio handshake with %s on port %d succeeded" % (name, port))


def main():
    micropython.mem_info()
    ss, ms, heap = handshake(PORT, NAME)
    # on the unix port mbedtls takes its own buffers from libc, not from this heap
    print("HANDSHAKE ms=%d heap_bytes=%d held_bytes=%d cipher=%s" % (ms, heap[0], heap[1], ss.cipher()))
    micropython.mem_info()
    reverse(ss, b"hello uipy")
    payload = "".join("%08d" % i for i in range(500)).encode()   # 4000 bytes: several segments
    reverse(ss, payload)
    print("DATA both ways ok (%d bytes each way)" % (len(payload) + 12))
    ss.close()
    ss, ms2, _ = handshake(PORT, HOST)
    reverse(ss, b"by address")
    ss.close()
    print("IP NAME ok ms=%d" % ms2)
    print("WRONG NAME", expect_failure(PORT, "other.uipy.test", "does not match with the expected CN"))
    print("WRONG CA", expect_failure(WRONG_PORT, NAME, "not correctly signed by the trusted CA"))
    import asyncio
    asyncio.run(async_round(PORT, NAME))
    print("ASYNCIO ok")
    print("ASYNCIO WRONG CA", asyncio.run(async_bad(WRONG_PORT, NAME)))
    gc.collect()
    print("OK")


sock_net.run(main)
