# TLS client figures over uipy.socket on the MicroPython unix port
# (tools/bench/bench_tls.py): ROUNDS handshakes against openssl s_server -rev
# in the test namespace, the certificate verified (EC P-256, test CA), each
# timed around wrap_socket alone (the TCP connection is made first); then the
# MicroPython heap one open TLS client holds, and what the handshake allocated.
#
#   micropython bench_tls.py HOST PORT CA_DER_PATH NAME ROUNDS
# prints   HANDSHAKE_US <us> ...   (one per round)
#          HEAP held=<bytes> context=<bytes> tcp=<bytes> tls=<bytes> handshake_alloc=<bytes>
#          OK
import sys
import gc
import time

HOST, PORT, CA, NAME, ROUNDS = sys.argv[1:6]
PORT, ROUNDS = int(PORT), int(ROUNDS)
import sock_net  # noqa: E402
sock_net.setup("uipy")
import socket  # noqa: E402
import tls  # noqa: E402

with open(CA, "rb") as f:
    CADATA = f.read()
ADDR = socket.getaddrinfo(HOST, PORT)[0][-1]


def context():
    c = tls.SSLContext(tls.PROTOCOL_TLS_CLIENT)
    c.load_verify_locations(CADATA)
    c.verify_mode = tls.CERT_REQUIRED
    return c


def tcp():
    s = socket.socket()
    s.settimeout(10)
    s.connect(ADDR)
    return s


def echo(ss):
    ss.write(b"abc\n")
    got = ss.read(4)
    assert got == b"cba\n", got


def rounds(ctx):
    for i in range(ROUNDS + 1):            # round 0 warms up (imports, ARP)
        s = tcp()
        t0 = time.ticks_us()
        ss = ctx.wrap_socket(s, server_hostname=NAME)
        dt = time.ticks_diff(time.ticks_us(), t0)
        echo(ss)
        ss.close()
        if i:
            print("HANDSHAKE_US", dt)


def heap(ctx, ctx_bytes):
    """What a TCP socket and the TLS socket over it hold (ctx made before)."""
    gc.collect()
    m0 = gc.mem_alloc()
    s = tcp()
    gc.collect()
    m1 = gc.mem_alloc()
    gc.disable()                          # no collection inside: what it allocated, garbage included
    try:
        ss = ctx.wrap_socket(s, server_hostname=NAME)
        m2 = gc.mem_alloc()
    finally:
        gc.enable()
    echo(ss)
    gc.collect()
    m3 = gc.mem_alloc()
    print("HEAP held=%d context=%d tcp=%d tls=%d handshake_alloc=%d"
          % (ctx_bytes + m3 - m0, ctx_bytes, m1 - m0, m3 - m1, m2 - m1))
    ss.close()


def main():
    gc.collect()
    m0 = gc.mem_alloc()
    ctx = context()                       # one context for every connection, as an application has
    gc.collect()
    ctx_bytes = gc.mem_alloc() - m0
    rounds(ctx)                           # in functions: their sockets are garbage afterwards
    heap(ctx, ctx_bytes)
    print("OK")


sock_net.run(main)
