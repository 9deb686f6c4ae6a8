"""Relay whole Ethernet frames between a host link (a TAP) and an AF_UNIX
datagram socket, one datagram a frame (host only, CPython).

The MicroPython unix port cannot open a TAP; it runs drivers/unix_dgram.py on
a datagram socket instead, and this relay, holding the TAP's fd, carries the
frames both ways in one thread:

    relay = UnixRelay(tap, "/tmp/x/relay.sock", "/tmp/x/mpy.sock").start()
    ...                                   # micropython binds /tmp/x/mpy.sock
    relay.stop()                          # joins the thread, closes its socket
    relay.counts                          # frames each way, and those lost

Frames towards the datagram side wait up to send_timeout_s when its queue is
full (the TAP's own queue absorbs a burst), then are dropped and counted, as
are frames sent before the peer has bound its socket.
"""
import errno
import os
import select
import socket
import threading

MAX_FRAME = 1600


class UnixRelay:
    def __init__(self, link, path, peer, send_timeout_s=0.5, bufsize=1 << 20):
        self.link = link
        self.path = path
        self.peer = peer
        self.send_timeout_s = send_timeout_s
        self.counts = {"to_unix": 0, "to_link": 0, "lost_to_unix": 0, "lost_to_link": 0}
        self.error = None
        self._thread = None
        self._stop_r, self._stop_w = os.pipe()
        self.sock = self.tx = None
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
        # one socket receives (bound, non-blocking), one sends (unbound, with
        # a timeout: a blocking send waits for room in the peer's queue)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.tx = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        try:
            self.sock.bind(path)
            self.sock.setblocking(False)
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, bufsize)
            self.tx.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, bufsize)
            self.tx.settimeout(send_timeout_s)
        except BaseException:
            self.close()
            raise

    def start(self):
        self._thread = threading.Thread(target=self._loop, name="unix-relay", daemon=True)
        self._thread.start()
        return self

    def _loop(self):
        link, sock = self.link, self.sock
        buf = bytearray(MAX_FRAME)
        mv = memoryview(buf)
        fds = [link.fileno(), sock.fileno(), self._stop_r]
        try:
            while True:
                r, _, _ = select.select(fds, [], [], 1.0)
                if self._stop_r in r:
                    return
                if fds[0] in r:
                    for _ in range(64):          # drain a burst, bounded
                        n = link.recv_into(mv)
                        if not n:
                            break
                        self._to_unix(mv[:n])
                if fds[1] in r:
                    for _ in range(64):
                        try:
                            n = sock.recv_into(mv)
                        except BlockingIOError:
                            break
                        if link.send(mv, n) is False:
                            self.counts["lost_to_link"] += 1
                        else:
                            self.counts["to_link"] += 1
        except BaseException as e:        # reported by stop()
            self.error = e

    def _to_unix(self, frame):
        try:
            self.tx.sendto(frame, self.peer)
            self.counts["to_unix"] += 1
        except (socket.timeout, FileNotFoundError, ConnectionRefusedError):
            self.counts["lost_to_unix"] += 1
        except OSError as e:
            if e.errno not in (errno.EAGAIN, errno.ENOBUFS):
                raise
            self.counts["lost_to_unix"] += 1

    def stop(self):
        """Stop the thread and close the socket; re-raise what stopped it early."""
        if self._thread is not None:
            os.write(self._stop_w, b"x")
            self._thread.join(5)
            self._thread = None
        self.close()
        if self.error is not None:
            raise self.error

    def close(self):
        if self.tx is not None:
            self.tx.close()
            self.tx = None
        if self.sock is not None:
            self.sock.close()
            self.sock = None
            try:
                os.unlink(self.path)
            except FileNotFoundError:
                pass
        for fd in (self._stop_r, self._stop_w):
            if fd >= 0:
                os.close(fd)
        self._stop_r = self._stop_w = -1
