# TLS servers over uipy.socket with MicroPython's tls (mbedtls), the server
# certificate and key loaded as DER (load_cert_chain), for clients in the test
# namespace that verify it against the test CA (host_tests/test_sock_tls.py).
#
# 1. asyncio.start_server(cb, "0.0.0.0", AIO_PORT, ssl=ctx): serves AIO_CONNS
#    connections (the test checks which of them fail, e.g. a client that
#    rejects the certificate), then closes the server.
# 2. blocking: socket.accept() on BLOCK_PORT, then
#    ctx.wrap_socket(conn, server_side=True) (the handshake runs in it), read/write.
#
# Each connection: the client sends "n m\n" and n bytes of pattern(n, "c"); the
# server checks them byte for byte and answers with m bytes of pattern(m, "s"),
# then closes.  Lines: AIO READY, AIO CONN <i> ok ..., AIO DONE, BLOCK READY,
# BLOCK ok ..., OK (or FAILED).
#
#   micropython sock_tls_server.py uipy|native CERT_DER KEY_DER AIO_PORT AIO_CONNS BLOCK_PORT
import sys
import gc
import time

NET, CERT, KEY, AIO_PORT, AIO_CONNS, BLOCK_PORT = sys.argv[1:7]
AIO_PORT, AIO_CONNS, BLOCK_PORT = int(AIO_PORT), int(AIO_CONNS), int(BLOCK_PORT)
import sock_net  # noqa: E402
sock_net.setup(NET)
import socket  # noqa: E402
import tls  # noqa: E402


def load(path):
    with open(path, "rb") as f:
        return f.read()


CERT_DER, KEY_DER = load(CERT), load(KEY)
MAX = 65536


def context():
    c = tls.SSLContext(tls.PROTOCOL_TLS_SERVER)
    c.load_cert_chain(CERT_DER, KEY_DER)       # DER both
    return c


def pattern(n, tag):
    """n bytes of "<tag>000000;<tag>000001;..." (the same in the test)."""
    out = bytearray()
    i = 0
    while len(out) < n:
        out += ("%s%06d;" % (tag, i)).encode()
        i += 1
    return bytes(out[:n])


def parse(header):
    n, m = header.split()
    n, m = int(n), int(m)
    assert 0 <= n <= MAX and 0 <= m <= MAX, header
    return n, m


def check(got, n):
    want = pattern(n, "c")
    if got != want:
        i = 0
        while i < min(len(got), len(want)) and got[i] == want[i]:
            i += 1
        raise AssertionError("received %d of %d bytes, first difference at %d" % (len(got), n, i))


# --- 1. asyncio ---
served = []


async def handle(reader, writer):
    import asyncio
    t0 = time.ticks_ms()
    try:
        header = await asyncio.wait_for(reader.readline(), 10)   # the handshake runs here
        n, m = parse(header)
        got = await asyncio.wait_for(reader.readexactly(n), 10)
        check(got, n)
        writer.write(pattern(m, "s"))
        await asyncio.wait_for(writer.drain(), 10)
        served.append("ok")
        print("AIO CONN %d ok got=%d sent=%d ms=%d" % (len(served), n, m, time.ticks_diff(time.ticks_ms(), t0)))
    except Exception as e:
        sys.print_exception(e)
        served.append(repr(e))
        print("AIO CONN %d error %r" % (len(served), e))      # the test judges it
    finally:
        writer.close()
        await writer.wait_closed()


async def aio_main():
    import asyncio
    server = await asyncio.start_server(handle, "0.0.0.0", AIO_PORT, ssl=context())
    print("AIO READY")
    t0 = time.ticks_ms()
    while len(served) < AIO_CONNS and time.ticks_diff(time.ticks_ms(), t0) < 20000:
        await asyncio.sleep_ms(10)
    server.close()
    await server.wait_closed()
    assert len(served) == AIO_CONNS, served


# --- 2. blocking ---
def read_line(ss, limit=64):
    line = b""
    while not line.endswith(b"\n"):
        b = ss.read(1)
        assert b, "EOF after %r" % line
        line += b
        assert len(line) <= limit, line
    return line


def read_exactly(ss, n):
    buf = bytearray(n)
    mv = memoryview(buf)
    got = 0
    while got < n:
        k = ss.readinto(mv[got:])
        assert k, "EOF after %d of %d bytes" % (got, n)
        got += k
    return bytes(buf)


def blocking():
    ctx = context()
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(socket.getaddrinfo("0.0.0.0", BLOCK_PORT)[0][-1])   # native wants a sockaddr
    s.listen(1)
    s.settimeout(20)
    print("BLOCK READY")
    conn, addr = s.accept()
    s.close()
    conn.settimeout(10)
    gc.collect()
    m0 = gc.mem_alloc()
    t0 = time.ticks_ms()
    ss = ctx.wrap_socket(conn, server_side=True)
    hs_ms = time.ticks_diff(time.ticks_ms(), t0)
    gc.collect()
    held = gc.mem_alloc() - m0
    try:
        n, m = parse(read_line(ss))
        check(read_exactly(ss, n), n)
        ss.write(pattern(m, "s"))
    finally:
        ss.close()
    print("BLOCK ok got=%d sent=%d handshake_ms=%d held_bytes=%d peer=%s" % (n, m, hs_ms, held, addr[0]))


def main():
    import asyncio
    asyncio.run(aio_main())
    print("AIO DONE")
    blocking()
    gc.collect()
    print("OK")


sock_net.run(main)
