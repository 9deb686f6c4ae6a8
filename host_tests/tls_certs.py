"""Throw-away TLS certificates for the MQTT and TLS tests, made with openssl.

    certs = make(tmp_path)             # a Certs; every file under tmp_path
    certs.ca_der                       # bytes: cadata for MicroPython's tls
    certs.server_cert, certs.server_key        # PEM paths for mosquitto / s_server

Two independent CAs, each with a server certificate for SERVER_NAME (SAN DNS)
and SERVER_IP (SAN IP): the "right" pair the clients trust, and a "wrong" pair
signed by a CA nobody trusts, for the bad-certificate cases.  EC P-256 keys:
the handshake on MicroPython's mbedtls is several times faster than with RSA.

What MicroPython's tls (mbedtls) accepts, from extmod/modtls_mbedtls.c and
checked on the unix port: load_verify_locations(cadata=...) takes DER or PEM
(PEM only if the text contains "-----BEGIN ", it then passes the NUL too);
anything else is ValueError("invalid cert").  A failed verification during
wrap_socket raises ValueError with mbedtls's verify text, e.g. "The certificate
is not correctly signed by the trusted CA" or "The certificate Common Name (CN)
does not match with the expected CN" (both when the handshake runs in
wrap_socket and when it runs later in a non-blocking read/write).
"""
import os
import subprocess

SERVER_NAME = "broker.uipy.test"
SERVER_IP = "198.18.0.1"
DAYS = "30"


class Certs:
    def __init__(self, d):
        self.dir = str(d)
        p = lambda name: os.path.join(self.dir, name)        # noqa: E731
        self.ca_pem, self.ca_der_path = p("ca.pem"), p("ca.der")
        self.server_cert, self.server_key = p("server.pem"), p("server.key")
        self.wrong_ca_pem, self.wrong_ca_der_path = p("wrong_ca.pem"), p("wrong_ca.der")
        self.wrong_server_cert, self.wrong_server_key = p("wrong_server.pem"), p("wrong_server.key")

    @property
    def ca_der(self):
        with open(self.ca_der_path, "rb") as f:
            return f.read()

    @property
    def wrong_ca_der(self):
        with open(self.wrong_ca_der_path, "rb") as f:
            return f.read()


def _openssl(exe, args, cwd):
    r = subprocess.run([exe] + args, capture_output=True, text=True, timeout=30, cwd=cwd)
    if r.returncode != 0:
        raise RuntimeError("openssl %s failed: %s" % (" ".join(args), r.stderr.strip()))
    return r


def _ec_key(exe, path, cwd):
    _openssl(exe, ["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256",
                   "-out", path], cwd)


def _ca(exe, prefix, cn, cwd):
    key, pem, der = prefix + ".key", prefix + ".pem", prefix + ".der"
    _ec_key(exe, key, cwd)
    _openssl(exe, ["req", "-x509", "-new", "-key", key, "-sha256", "-days", DAYS,
                   "-subj", "/CN=" + cn, "-out", pem,
                   "-addext", "basicConstraints=critical,CA:TRUE",
                   "-addext", "keyUsage=critical,keyCertSign,cRLSign"], cwd)
    _openssl(exe, ["x509", "-in", pem, "-outform", "DER", "-out", der], cwd)
    return key, pem


def _server(exe, prefix, ca_key, ca_pem, cwd):
    key, csr, pem, ext = prefix + ".key", prefix + ".csr", prefix + ".pem", prefix + ".ext"
    _ec_key(exe, key, cwd)
    _openssl(exe, ["req", "-new", "-key", key, "-subj", "/CN=" + SERVER_NAME, "-out", csr], cwd)
    with open(os.path.join(cwd, ext), "w") as f:
        f.write("basicConstraints=CA:FALSE\n"
                "keyUsage=critical,digitalSignature\n"
                "extendedKeyUsage=serverAuth\n"
                "subjectAltName=DNS:%s,IP:%s\n" % (SERVER_NAME, SERVER_IP))
    _openssl(exe, ["x509", "-req", "-in", csr, "-CA", ca_pem, "-CAkey", ca_key,
                   "-CAcreateserial", "-sha256", "-days", DAYS, "-extfile", ext, "-out", pem], cwd)


def make(d, exe="openssl"):
    """Write both CAs and their server certificates into directory d."""
    d = str(d)
    os.makedirs(d, exist_ok=True)
    for prefix, cn in (("ca", "uipy test CA"), ("wrong_ca", "uipy wrong CA")):
        key, pem = _ca(exe, prefix, cn, d)
        _server(exe, prefix.replace("ca", "server"), key, pem, d)
    return Certs(d)


if __name__ == "__main__":
    import sys
    c = make(sys.argv[1] if len(sys.argv) > 1 else "build/tls_certs")
    print(c.dir)
