"""Classic pcap files, and a link wrapper that records every frame (host only).

    with PcapWriter("build/run.pcap") as w:
        nic = CaptureLink(TapNic("tap0"), w)

The format: a 24-byte global header (magic a1b2c3d4, version 2.4, LINKTYPE_ETHERNET),
then per frame a 16-byte record header (seconds, microseconds, captured length,
original length) and the frame bytes, all little-endian here.
"""
import struct
import time

LINKTYPE_ETHERNET = 1
SNAPLEN = 65535


class PcapWriter:
    def __init__(self, path, clock=None):
        """clock: optional callable giving the timestamp in seconds (float);
        a virtual clock in ms can be passed as lambda: vclock() / 1000."""
        self.path = path
        self.clock = clock or time.time
        self.frames = 0
        self.f = open(path, "wb")
        self.f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, SNAPLEN, LINKTYPE_ETHERNET))

    def write(self, frame, ts=None):
        if ts is None:
            ts = self.clock()
        usec_total = int(round(ts * 1e6))
        n = len(frame)
        incl = min(n, SNAPLEN)
        self.f.write(struct.pack("<IIII", usec_total // 1000000, usec_total % 1000000, incl, n))
        self.f.write(frame[:incl])
        self.frames += 1

    def flush(self):
        self.f.flush()

    def close(self):
        if not self.f.closed:
            self.f.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class CaptureLink:
    """Wraps a link; every frame received or sent through it goes to the writer."""

    def __init__(self, inner, writer):
        self.inner = inner
        self.writer = writer

    @property
    def mac(self):
        return self.inner.mac

    def link_up(self):
        return self.inner.link_up()

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def recv_into(self, mv):
        n = self.inner.recv_into(mv)
        if n:
            self.writer.write(mv[:n])
        return n

    def send(self, mv, n):
        # Recorded before sending: a frame the link then fails to send still
        # shows what the stack produced.
        self.writer.write(mv[:n])
        return self.inner.send(mv, n)
