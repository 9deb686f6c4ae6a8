"""The one frame buffer and the fixed header offsets inside it.

A received frame is read straight into the buffer; replies are written into
the same buffer and sent before the next frame is read.  IP options are
stripped on input, so every transport header starts at TRANSPORT.
"""
from uipy.compat import const, copy_within, get16, put16, same  # noqa: F401 (offered here)

FRAME_MAX = const(1514)       # Ethernet II without FCS
FRAME_MIN = const(60)         # shorter frames are padded with zeros
BUF_SIZE = const(1536)        # one maximum frame plus slack

ETH_DST = const(0)
ETH_SRC = const(6)
ETH_TYPE = const(12)
IP = const(14)                # IPv4 header (always 20 bytes after input)
IP_SRC = const(26)
IP_DST = const(30)
TRANSPORT = const(34)         # ICMP / UDP / TCP header
UDP_DATA = const(42)
ICMP_DATA = const(42)
TCP_DATA = const(54)          # TCP payload when the header has no options

BROADCAST_MAC = b"\xff\xff\xff\xff\xff\xff"


def new_buffer():
    buf = bytearray(BUF_SIZE)
    return buf, memoryview(buf)


def equal_at(buf, off, ref):
    """True when buf[off:off+len(ref)] == ref, without allocating."""
    return same(buf, off, ref, len(ref))
