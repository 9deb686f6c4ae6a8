"""Internet checksum and byte copy with the viper emitter: machine-word arithmetic, no allocation.

Imported by compat only; a SyntaxError here means the port has no native
emitter and compat falls back to the portable loop.
"""
import micropython


@micropython.viper
def sum16_viper(buf, start: int, n: int, acc: int) -> int:
    p = ptr8(buf)  # type: ignore  (a viper built-in)
    s = acc
    i = start
    end = start + n - 1
    while i < end:
        s += (p[i] << 8) | p[i + 1]
        i += 2
    if n & 1:
        s += p[end] << 8
    while s > 0xFFFF:
        s = (s & 0xFFFF) + (s >> 16)
    return s


@micropython.viper
def copy_viper(dst, dst_off: int, src, src_off: int, n: int):
    d = ptr8(dst)  # type: ignore
    s = ptr8(src)  # type: ignore
    i = 0
    while i < n:
        d[dst_off + i] = s[src_off + i]
        i += 1

