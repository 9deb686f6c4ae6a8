"""Internet checksum and byte copy with the viper emitter: machine-word
arithmetic, aligned word loads and stores, no allocation.

Imported by compat only; a SyntaxError here means the port has no native
emitter and compat falls back to the portable loop.
"""
# pyright: reportUndefinedVariable=false
# (ptr8, ptr16 and ptr32 are viper built-ins)
import micropython


@micropython.viper
def sum16_viper(buf, start: int, n: int, acc: int) -> int:
    """The one's-complement sum of n bytes from start, plus acc, folded to 16
    bits. From an even start: 32-bit loads where aligned (a Cortex-M0+ faults on
    unaligned ones), added as little-endian halves and byte-swapped at the end
    (the sum commutes with byte order, RFC 1071 1.2.B)."""
    a = int(ptr8(buf)) + start
    end = a + n
    s = acc
    if start & 1:                          # odd start (never on the packet path): bytes
        while a + 1 < end:
            q = ptr8(a)
            s += (q[0] << 8) | q[1]
            a += 2
    else:
        while (a & 3) and a + 1 < end:     # up to the first 4-aligned byte
            q = ptr8(a)
            s += (q[0] << 8) | q[1]
            a += 2
        w = 0                              # little-endian halves of aligned words
        while a + 4 <= end:
            v = ptr32(a)[0]
            w += (v & 0xFFFF) + ((v >> 16) & 0xFFFF)
            a += 4
        while a + 1 < end:
            q = ptr8(a)
            s += (q[0] << 8) | q[1]
            a += 2
        while w > 0xFFFF:
            w = (w & 0xFFFF) + (w >> 16)
        s += ((w & 0xFF) << 8) | (w >> 8)
    if a < end:
        s += ptr8(a)[0] << 8
    while s > 0xFFFF:
        s = (s & 0xFFFF) + (s >> 16)
    return s


@micropython.viper
def copy_viper(dst, dst_off: int, src, src_off: int, n: int):
    """n bytes from src[src_off:] to dst[dst_off:] (not overlapping): 32-bit or
    16-bit moves when both ends share that alignment, bytes otherwise."""
    d = int(ptr8(dst)) + dst_off
    s = int(ptr8(src)) + src_off
    end = d + n
    if not ((d ^ s) & 3):
        while (d & 3) and d < end:
            ptr8(d)[0] = ptr8(s)[0]
            d += 1
            s += 1
        while d + 4 <= end:
            ptr32(d)[0] = ptr32(s)[0]
            d += 4
            s += 4
    elif not ((d ^ s) & 1):
        if d & 1 and d < end:
            ptr8(d)[0] = ptr8(s)[0]
            d += 1
            s += 1
        while d + 2 <= end:
            ptr16(d)[0] = ptr16(s)[0]
            d += 2
            s += 2
    while d < end:
        ptr8(d)[0] = ptr8(s)[0]
        d += 1
        s += 1


@micropython.viper
def ip_header_viper(buf, total: int, ident: int, ttl_proto: int):
    """The IPv4 header at buf[14:34] around the addresses already in place:
    version and length, total length, identification, no fragmentation,
    TTL and protocol (ttl_proto = ttl << 8 | protocol), header checksum."""
    p = ptr8(buf)
    p[14] = 0x45
    p[15] = 0
    p[16] = total >> 8
    p[17] = total
    p[18] = ident >> 8
    p[19] = ident
    p[20] = 0
    p[21] = 0
    p[22] = ttl_proto >> 8
    p[23] = ttl_proto
    s = 0x4500 + (total & 0xFFFF) + (ident & 0xFFFF) + (ttl_proto & 0xFFFF)
    i = 26
    while i < 34:
        s += (p[i] << 8) | p[i + 1]
        i += 2
    s = (s & 0xFFFF) + (s >> 16)
    s = (s & 0xFFFF) + (s >> 16)
    s = ~s
    p[24] = s >> 8
    p[25] = s
