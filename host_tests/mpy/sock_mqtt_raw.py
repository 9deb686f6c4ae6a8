# The socket calls umqtt.simple makes, in the order it makes them, in a small
# MQTT 3.1.1 exchange with mosquitto (umqtt is not on PyPI, so the client is
# written out here): getaddrinfo(host, port)[0][-1], socket(), connect(addr),
# write(buf) and write(buf, n), read(n), setblocking(False) for check_msg and
# back, settimeout, close.
#
#   micropython sock_mqtt_raw.py uipy|native HOST PORT
import sys
import time
import struct

NET, HOST, PORT = sys.argv[1], sys.argv[2], int(sys.argv[3])
import sock_net  # noqa: E402
sock_net.setup(NET)
import socket  # noqa: E402  (uipy.socket once sock_net installed it)
from errno import ETIMEDOUT  # noqa: E402

print("socket module:", getattr(socket, "__name__", "?"), getattr(socket, "__file__", "built-in"))
if NET == "uipy":
    assert socket.__name__ == "uipy.socket", socket


class Client:                       # umqtt.simple's wire code and socket calls
    def __init__(self, client_id, server, port, keepalive=0):
        self.client_id, self.server, self.port, self.keepalive = client_id, server, port, keepalive
        self.pid = 0
        self.sock = None
        self.got = []

    # umqtt ignores what write() and read(n) return: on a blocking socket
    # MicroPython's stream write() takes all of buf and read(n) waits for all
    # n bytes (py/stream.c mp_stream_rw loops); these wrappers make the same
    # calls and say so when a socket gives less.
    def _write(self, buf, n=None):
        want = len(buf) if n is None else n
        got = self.sock.write(buf) if n is None else self.sock.write(buf, n)
        assert got == want, "blocking write(%d bytes) returned %r" % (want, got)

    def _read(self, n):
        b = self.sock.read(n)
        assert b is not None and len(b) == n, "blocking read(%d) returned %r" % (
            n, b if b is None or len(b) < 16 else "%d bytes" % len(b))
        return b

    def _send_str(self, s):
        self._write(struct.pack("!H", len(s)))
        self._write(s)

    def _recv_len(self):
        n = sh = 0
        while 1:
            b = self._read(1)[0]
            n |= (b & 0x7F) << sh
            if not b & 0x80:
                return n
            sh += 7

    def connect(self):
        self.sock = socket.socket()
        addr = socket.getaddrinfo(self.server, self.port)[0][-1]
        self.sock.connect(addr)
        premsg = bytearray(b"\x10\0\0\0\0\0")
        msg = bytearray(b"\x04MQTT\x04\x02\0\0")
        sz = 10 + 2 + len(self.client_id)
        msg[7] |= self.keepalive >> 8
        msg[8] |= self.keepalive & 0xFF
        i = 1
        while sz > 0x7F:
            premsg[i] = (sz & 0x7F) | 0x80
            sz >>= 7
            i += 1
        premsg[i] = sz
        self._write(premsg, i + 2)            # write(buf, n)
        self._write(msg)
        self._send_str(self.client_id)
        resp = self._read(4)
        assert resp[0] == 0x20 and resp[1] == 0x02, resp
        assert resp[3] == 0, "CONNACK refused %d" % resp[3]
        return resp[2] & 1

    def publish(self, topic, msg, qos=0):
        pkt = bytearray(b"\x30\0\0\0")
        pkt[0] |= qos << 1
        sz = 2 + len(topic) + len(msg) + (2 if qos else 0)
        i = 1
        while sz > 0x7F:
            pkt[i] = (sz & 0x7F) | 0x80
            sz >>= 7
            i += 1
        pkt[i] = sz
        self._write(pkt, i + 1)
        self._send_str(topic)
        if qos:
            self.pid += 1
            pid = self.pid
            struct.pack_into("!H", pkt, 0, pid)
            self._write(pkt, 2)
        self._write(msg)
        if qos == 1:
            while 1:
                op = self.wait_msg()
                if op == 0x40:
                    assert self._read(1) == b"\x02"
                    rcv = self._read(2)
                    if pid == rcv[0] << 8 | rcv[1]:
                        return

    def subscribe(self, topic, qos=0):
        pkt = bytearray(b"\x82\0\0\0")
        self.pid += 1
        struct.pack_into("!BH", pkt, 1, 2 + 2 + len(topic) + 1, self.pid)
        self._write(pkt)
        self._send_str(topic)
        self._write(qos.to_bytes(1, "little"))
        while 1:
            op = self.wait_msg()
            if op == 0x90:
                resp = self._read(4)
                assert resp[1] == pkt[2] and resp[2] == pkt[3], resp
                assert resp[3] != 0x80, "SUBACK refused"
                return

    def wait_msg(self):
        res = self.sock.read(1)
        self.sock.setblocking(True)
        if res is None:
            return None
        if res == b"":
            raise OSError(-1)
        if res == b"\xd0":                        # PINGRESP
            assert self._read(1)[0] == 0
            self.got.append((b"PINGRESP", None))
            return None
        op = res[0]
        if op & 0xF0 != 0x30:
            return op
        sz = self._recv_len()
        tl = self._read(2)
        tl = tl[0] << 8 | tl[1]
        topic = self._read(tl)
        sz -= tl + 2
        if op & 6:
            pid = self._read(2)
            pid = pid[0] << 8 | pid[1]
            sz -= 2
        msg = self._read(sz)
        self.got.append((bytes(topic), bytes(msg)))
        if op & 6 == 2:
            pkt = bytearray(b"\x40\x02\0\0")
            struct.pack_into("!H", pkt, 2, pid)
            self._write(pkt)
        return op

    def check_msg(self):
        self.sock.setblocking(False)
        return self.wait_msg()

    def ping(self):
        self._write(b"\xc0\0")

    def disconnect(self):
        self._write(b"\xe0\0")
        self.sock.close()


def wait_until(c, cond, what, timeout_ms=8000):
    # umqtt's check_msg loop: non-blocking read(1) gives None while nothing
    # waits; nothing else runs in between (no stack.poll(), no asyncio)
    t0 = time.ticks_ms()
    nones = 0
    while not cond():
        if c.check_msg() is None:
            nones += 1
            time.sleep_ms(10)
        assert time.ticks_diff(time.ticks_ms(), t0) < timeout_ms, \
            "timed out waiting for %s: check_msg() (non-blocking read(1)) gave None %d times" % (what, nones)
    return nones


def main():
    addr = socket.getaddrinfo(HOST, PORT)[0][-1]
    print("getaddrinfo ->", addr)
    c = Client(b"uipy-raw", HOST, PORT, keepalive=30)
    t0 = time.ticks_ms()
    c.sock = None
    assert c.connect() == 0
    print("CONNECTED ms=%d" % time.ticks_diff(time.ticks_ms(), t0))
    c.subscribe(b"uipy/raw/in", qos=1)
    c.subscribe(b"uipy/raw/loop")
    print("SUBSCRIBED")
    # the host publishes to uipy/raw/in (QoS 1) once it sees SUBSCRIBED
    nones = wait_until(c, lambda: (b"uipy/raw/in", b"from host") in c.got, "the host's message")
    print("RECEIVED from host (check_msg gave None %d times first)" % nones)
    c.publish(b"uipy/raw/loop", b"qos0 loop")
    wait_until(c, lambda: (b"uipy/raw/loop", b"qos0 loop") in c.got, "own QoS 0 message")
    print("QOS0 loop ok")
    c.publish(b"uipy/raw/out", b"qos1 from device", qos=1)     # returns on its PUBACK
    print("QOS1 PUBACK ok")
    big = bytes(range(256)) * 12                               # 3 KB: several segments
    c.publish(b"uipy/raw/loop", big, qos=1)
    wait_until(c, lambda: (b"uipy/raw/loop", big) in c.got, "own 3 KB message")
    print("QOS1 3KB loop ok")
    c.ping()
    wait_until(c, lambda: (b"PINGRESP", None) in c.got, "PINGRESP")
    print("PINGRESP ok")
    # settimeout: a blocking read with nothing to read ends in OSError(ETIMEDOUT)
    c.sock.settimeout(0.3)
    t0 = time.ticks_ms()
    try:
        r = c.sock.read(1)
        raise AssertionError("read with nothing to read gave %r" % (r,))
    except OSError as e:
        assert e.args[0] == ETIMEDOUT, e
    dt = time.ticks_diff(time.ticks_ms(), t0)
    assert 250 <= dt < 1500, dt
    print("SETTIMEOUT read timed out ms=%d" % dt)
    c.sock.settimeout(None)
    c.disconnect()                                             # write + close
    try:
        c.sock.write(b"\xc0\0")
        raise AssertionError("write after close succeeded")
    except OSError as e:
        print("WRITE after close:", repr(e))
    print("OK")


sock_net.run(main)
