"""TLS client figures on the MicroPython unix port over uipy.socket (host only,
needs root and openssl): the test bed of host_tests/mpy_net.py (namespace, TAP,
relay), openssl s_server -rev at 198.18.0.1 with the throw-away EC P-256
certificates of host_tests/tls_certs.py, MicroPython's tls (mbedtls) verifying
them (CERT_REQUIRED, server_hostname); host_tests/mpy/bench_tls.py does the
measuring.

tls_handshake_ms: median time of ctx.wrap_socket(sock, server_hostname=...)
  (the whole TLS 1.2 handshake, ECDHE-ECDSA, certificate verified) over ~10
  handshakes on an open uipy TCP connection, after one warm-up.
tls_heap_bytes: MicroPython heap held by one open TLS client after the
  handshake (gc.collect(); gc.mem_alloc() delta): its SSLContext with the CA
  loaded, the uipy TCP socket (with its receive ring) and the SSLSocket.  The
  run also prints the split, and what the handshake allocated with the
  collector off (garbage included: an upper bound of its peak).

What the heap figure leaves out.  On the unix port mbedtls takes its own memory
(the SSL context, the record buffers, the parsed certificates, the handshake's
bignums) from the C library's malloc, not from the MicroPython heap, so
tls_heap_bytes is only the Python-side objects.  On a board it is different:
ports that set MICROPY_MBEDTLS_CONFIG_BARE_METAL (rp2, stm32, mimxrt, ...)
route mbedtls's calloc/free to m_tracked_calloc/m_tracked_free
(extmod/mbedtls/mbedtls_config_common.h, py/malloc.c), which allocate from the
MicroPython GC heap.  MicroPython's mbedtls configuration there fixes the record
buffers at MBEDTLS_SSL_IN_CONTENT_LEN = MBEDTLS_SSL_MAX_CONTENT_LEN = 16384 and
MBEDTLS_SSL_OUT_CONTENT_LEN = 4096 ("use a smaller output buffer to reduce size
of SSL context"), each plus mbedtls's record header and cipher overhead: about
20 KB of heap per open TLS connection on top of this figure, and more during
the handshake (certificate parsing, ECDHE/ECDSA arithmetic).  No
MBEDTLS_SSL_MAX_FRAGMENT_LENGTH or variable-buffer option is enabled, so a peer
cannot be asked for smaller records.  The esp32 port uses ESP-IDF's own mbedtls
(sdkconfig.base: CONFIG_MBEDTLS_ASYMMETRIC_CONTENT_LEN=y with the IDF's
default 16384/4096 lengths) and allocates from the IDF heap
(CONFIG_MBEDTLS_DEFAULT_MEM_ALLOC), not from the MicroPython heap, although it
competes with it for the same RAM.
"""
import os
import tempfile

ROUNDS = 10
PORT = 4443


def tls_figures(rounds=ROUNDS):
    if os.geteuid() != 0:
        print("bench_tls: not root, TLS figures skipped")
        return {}
    import shutil
    openssl = shutil.which("openssl")
    if openssl is None:
        print("bench_tls: no openssl, TLS figures skipped")
        return {}
    import tls_certs
    from mpy_net import KERNEL_IP, MpyNet
    from test_sock_tls import s_server
    with tempfile.TemporaryDirectory() as tmp:
        certs = tls_certs.make(os.path.join(tmp, "certs"))
        net = MpyNet(tmp)
        try:
            s_server(net.ns, openssl, PORT, certs.server_cert, certs.server_key)
            net.start("host_tests/mpy/bench_tls.py", KERNEL_IP, str(PORT), certs.ca_der_path,
                      tls_certs.SERVER_NAME, str(rounds), heap="1M")
            net.wait_for("OK", 20 + 3 * rounds)
            if net.wait_exit(10) != 0:
                raise RuntimeError("bench_tls.py failed:\n" + net.output())
            out = net.output()
        finally:
            net.close()
    us = sorted(int(l.split()[1]) for l in out.splitlines() if l.startswith("HANDSHAKE_US "))
    heap = dict(kv.split("=") for kv in
                next(l for l in out.splitlines() if l.startswith("HEAP ")).split()[1:])
    if len(us) != rounds:
        raise RuntimeError("bench_tls.py: %d handshakes of %d:\n%s" % (len(us), rounds, out))
    median = us[len(us) // 2] if rounds % 2 else (us[rounds // 2 - 1] + us[rounds // 2]) / 2
    print("bench_tls: handshakes %s ms; heap held %s bytes (context %s, TCP socket %s, TLS socket %s), "
          "%s bytes allocated during the handshake (gc off, garbage included)"
          % (" ".join("%.1f" % (u / 1000) for u in us), heap["held"], heap["context"], heap["tcp"],
             heap["tls"], heap["handshake_alloc"]))
    return {"tls_handshake_ms": round(median / 1000, 1), "tls_heap_bytes": int(heap["held"])}


if __name__ == "__main__":
    import sys
    here = os.path.dirname(os.path.abspath(__file__))
    root = os.path.dirname(os.path.dirname(here))
    sys.path[:0] = [os.path.join(root, d) for d in ("tools", "lib", "drivers", "host_tests")]
    import paths  # noqa: F401  (tools/paths.py: net, bench, ...)
    for k, v in tls_figures().items():
        print("%-28s %s" % (k, v))
