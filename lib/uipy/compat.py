"""Everything that differs between MicroPython and CPython lives here.

No other module looks at which interpreter runs it.
"""
import sys
import time

try:
    from micropython import const  # type: ignore  (typed differently by the stubs)
except ImportError:
    def const(x):  # CPython has no const
        return x

MICROPYTHON = sys.implementation.name == "micropython"

# --- clock: milliseconds wrapping at 2**30, like MicroPython's time.ticks_ms ---
TICKS_PERIOD = const(1 << 30)
_TICKS_MAX = const((1 << 30) - 1)


# MicroPython's own functions where they exist, the same arithmetic elsewhere
# (uipy.portable, which a board never loads: code is heap there).
if hasattr(time, "ticks_ms"):
    ticks_ms = getattr(time, "ticks_ms")
    ticks_diff = getattr(time, "ticks_diff")
    ticks_add = getattr(time, "ticks_add")
else:
    from uipy.portable import ticks_ms, ticks_diff, ticks_add  # noqa: F401


def os_error(e):
    """OSError carrying errno e: MicroPython prints its name ("ECONNRESET") from
    the number alone; CPython sets .errno only when a message comes with it."""
    if MICROPYTHON:
        return OSError(e)
    import os
    return OSError(e, os.strerror(e))


class VirtualClock:
    """A clock the tests move by hand; pass it as Stack(clock=...)."""

    def __init__(self, start=0):
        self.now = start & _TICKS_MAX

    def __call__(self):
        return self.now

    def advance(self, ms):
        self.now = (self.now + ms) & _TICKS_MAX



async def sleep_ms(ms):
    import asyncio
    if hasattr(asyncio, "sleep_ms"):
        await asyncio.sleep_ms(ms)
    else:
        await asyncio.sleep(ms / 1000)


# --- random numbers (identifiers, ports, ISNs) ---
try:
    from os import urandom as _urandom
    _urandom(1)
except (ImportError, OSError, NotImplementedError):
    _urandom = None


def random_bytes(n):
    if _urandom is not None:
        return _urandom(n)
    import random
    return bytes(random.getrandbits(8) for _ in range(n))


def random_u16():
    b = random_bytes(2)
    return (b[0] << 8) | b[1]


# --- bytes in the frame buffer (uipy.frame offers them too, for TCP's
# modules; they live here so that a UDP-only stack never loads uipy.frame) ---

def get16(buf, off):
    return (buf[off] << 8) | buf[off + 1]


def put16(buf, off, v):
    buf[off] = (v >> 8) & 0xFF
    buf[off + 1] = v & 0xFF


def copy_within(buf, dst, src, n):
    """Copy n bytes inside buf without allocating (a slice would allocate)."""
    if dst + n <= src or src + n <= dst:
        copy_into(buf, dst, buf, src, n)      # apart: the fast copy
    elif dst < src:
        for i in range(n):
            buf[dst + i] = buf[src + i]
    else:
        for i in range(n - 1, -1, -1):
            buf[dst + i] = buf[src + i]


# --- checksum, copies and the frame headers: viper where the native emitter
# exists (a board), else uipy.portable (CPython, the WebAssembly port), which
# a board then never loads: code is heap there.
#
# sum16(buf, start, n, acc) -> one's-complement sum of n bytes of buf from
#   start, plus acc, folded to 16 bits. A received header is valid when its
#   sum16 is 0xFFFF; the field to send is ~sum16 & 0xFFFF.
# copy_into(dst, dst_off, src, src_off, n): copy without a temporary slice;
#   forward, so within one buffer bytes may move towards its start (uipy.socket).
# copy_sum(dst, dst_off, src, src_off, n) -> copy, and sum16 of those bytes.
# eth_ip_header(buf, dmac, doff, smac, sip, total, ident, ttl_proto): the
#   Ethernet header (destination MAC from dmac[doff:], source smac, type IPv4)
#   and the IPv4 header (ttl_proto = ttl << 8 | protocol, checksum included)
#   with source address sip, around the destination at 30..33.
# ip_plain(buf, n, ip, mask_lo) -> protocol << 16 | total length of a plain
#   IPv4 datagram to ip (see csum_viper), or -1 for the full checks.
# same(buf, off, ref, n) -> true when buf[off:off+n] equals ref's first n bytes.

try:
    if not MICROPYTHON:
        raise ImportError
    from uipy.csum_viper import sum16_viper as sum16, copy_sum_viper as copy_sum, \
        copy_viper as copy_into, eth_ip_header_viper as eth_ip_header, ip_plain_viper as ip_plain, \
        same_viper as same
except (ImportError, SyntaxError, MemoryError, ValueError):   # ValueError: .mpy of another version
    from uipy.portable import sum16, copy_into, copy_sum, eth_ip_header, ip_plain, same  # noqa: F401
