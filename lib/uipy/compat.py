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
_TICKS_HALF = const(1 << 29)


def _ticks_ms():
    return int(time.monotonic() * 1000) & _TICKS_MAX  # type: ignore  (CPython only)


def _ticks_diff(a, b):
    """Signed difference a - b of two tick values, correct across the wrap."""
    return ((a - b + _TICKS_HALF) & _TICKS_MAX) - _TICKS_HALF


def _ticks_add(a, delta):
    return (a + delta) & _TICKS_MAX


# MicroPython's own functions where they exist, the same arithmetic elsewhere.
ticks_ms = getattr(time, "ticks_ms", None) or _ticks_ms
ticks_diff = getattr(time, "ticks_diff", None) or _ticks_diff
ticks_add = getattr(time, "ticks_add", None) or _ticks_add


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


# --- Internet checksum ---
# sum16(buf, start, n, acc) -> one's-complement sum of n bytes of buf from
# start, plus acc (a 16-bit partial sum), folded to 16 bits.
# A received header or segment is valid when its sum16 is 0xFFFF; the field to
# send is ~sum16 & 0xFFFF.


def sum16_loop(buf, start, n, acc):
    """Portable, allocation-free: a word loop (s stays a small int below 2**30)."""
    s = acc
    end = start + n - 1
    for i in range(start, end, 2):
        s += (buf[i] << 8) | buf[i + 1]
    if n & 1:
        s += buf[end] << 8
    while s > 0xFFFF:
        s = (s & 0xFFFF) + (s >> 16)
    return s


def sum16_bigint(buf, start, n, acc):
    """CPython: 2**16 = 1 (mod 0xFFFF), so the word sum is the number mod 0xFFFF."""
    v = int.from_bytes(buf[start:start + n], "big")
    if n & 1:
        v <<= 8
    v += acc
    if v == 0:
        return 0
    v %= 0xFFFF
    return v if v else 0xFFFF


sum16 = sum16_bigint
if MICROPYTHON:
    sum16 = sum16_loop
    try:
        # Compiles only where the native emitter exists (not the WebAssembly port).
        from uipy.csum_viper import sum16_viper as sum16
    except (ImportError, SyntaxError, MemoryError, ValueError):
        pass  # ValueError: a .mpy built for another firmware version


# --- copying bytes into the frame buffer without a temporary slice ---

def copy_loop(dst, dst_off, src, src_off, n):
    for i in range(n):
        dst[dst_off + i] = src[src_off + i]


def copy_slice(dst, dst_off, src, src_off, n):
    """CPython: slicing a memoryview copies once, at C speed."""
    dst[dst_off:dst_off + n] = memoryview(src)[src_off:src_off + n]


def copy_sum_portable(dst, dst_off, src, src_off, n):
    """Copy, then the one's-complement sum of the copied bytes (as sum16, acc 0)."""
    copy_into(dst, dst_off, src, src_off, n)
    return sum16(dst, dst_off, n, 0)


copy_into = copy_slice
copy_sum = copy_sum_portable
if MICROPYTHON:
    copy_into = copy_loop
    try:
        # one viper routine copies (by words) and sums; copy_into ignores the sum
        from uipy.csum_viper import copy_sum_viper as copy_sum
        copy_into = copy_sum
    except (ImportError, SyntaxError, MemoryError, ValueError):
        pass  # ValueError: a .mpy built for another firmware version


# --- the IPv4 header around addresses already in the buffer (frame offsets 14..33) ---

def ip_header_loop(buf, total, ident, ttl_proto):
    buf[14] = 0x45
    buf[15] = 0
    buf[16] = total >> 8
    buf[17] = total & 0xFF
    buf[18] = ident >> 8
    buf[19] = ident & 0xFF
    buf[20] = 0
    buf[21] = 0
    buf[22] = ttl_proto >> 8
    buf[23] = ttl_proto & 0xFF
    buf[24] = 0
    buf[25] = 0
    c = ~sum16(buf, 14, 20, 0)
    buf[24] = (c >> 8) & 0xFF
    buf[25] = c & 0xFF


ip_header = ip_header_loop
if MICROPYTHON:
    try:
        from uipy.csum_viper import ip_header_viper as ip_header
    except (ImportError, SyntaxError, MemoryError, ValueError):
        pass
