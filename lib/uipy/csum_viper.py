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
    (the sum commutes with byte order, RFC 1071 1.2.B); pairs of bytes else."""
    a = int(ptr8(buf)) + start
    end = a + n
    s = acc
    if not (start & 1):
        while (a & 3) and a + 1 < end:     # up to the first 4-aligned byte
            q = ptr8(a)
            s += (q[0] << 8) | q[1]
            a += 2
        w = 0                              # little-endian halves of aligned words
        while a + 8 <= end:                # two words a turn: less loop overhead
            v = ptr32(a)[0]
            u = ptr32(a + 4)[0]
            w += (v & 0xFFFF) + ((v >> 16) & 0xFFFF) + (u & 0xFFFF) + ((u >> 16) & 0xFFFF)
            a += 8
        while w > 0xFFFF:
            w = (w & 0xFFFF) + (w >> 16)
        s += ((w & 0xFF) << 8) | (w >> 8)
    while a + 1 < end:
        q = ptr8(a)
        s += (q[0] << 8) | q[1]
        a += 2
    if a < end:
        s += ptr8(a)[0] << 8
    while s > 0xFFFF:
        s = (s & 0xFFFF) + (s >> 16)
    return s


@micropython.viper
def copy_sum_viper(dst, dst_off: int, src, src_off: int, n: int) -> int:
    """Copy n bytes from src[src_off:] to dst[dst_off:] and return their
    one's-complement sum, bytes paired from the first (as sum16 with acc 0).
    32-bit stores wherever dst is aligned: src words are merged by shifts when
    the two ends differ by 2 mod 4 (little-endian loads); bytes otherwise."""
    d = int(ptr8(dst)) + dst_off
    s = int(ptr8(src)) + src_off
    end = d + n
    hi = 1                                 # the next byte is the high half of a pair
    acc = 0
    if not ((d ^ s) & 1):
        while (d & 3) and d < end:         # bytes up to an aligned destination
            b = ptr8(s)[0]
            ptr8(d)[0] = b
            acc += (b << 8) if hi else b
            hi ^= 1
            d += 1
            s += 1
        w = 0                              # halves of little-endian words
        swap = hi                          # pairs start on a word: halves are byte-swapped
        if not (s & 3):
            while d + 8 <= end:
                v = ptr32(s)[0]
                u = ptr32(s + 4)[0]
                ptr32(d)[0] = v
                ptr32(d + 4)[0] = u
                w += (v & 0xFFFF) + ((v >> 16) & 0xFFFF) + (u & 0xFFFF) + ((u >> 16) & 0xFFFF)
                d += 8
                s += 8
            while d + 4 <= end:
                v = ptr32(s)[0]
                ptr32(d)[0] = v
                w += (v & 0xFFFF) + ((v >> 16) & 0xFFFF)
                d += 4
                s += 4
        else:                              # s is 2 mod 4: merge two aligned source words
            a = s - 2
            v0 = ptr32(a)[0]
            while d + 8 <= end:
                v1 = ptr32(a + 4)[0]
                v2 = ptr32(a + 8)[0]
                h0 = (v0 >> 16) & 0xFFFF
                l1 = v1 & 0xFFFF
                h1 = (v1 >> 16) & 0xFFFF
                ptr32(d)[0] = h0 | (l1 << 16)
                ptr32(d + 4)[0] = h1 | ((v2 & 0xFFFF) << 16)
                w += h0 + l1 + h1 + (v2 & 0xFFFF)
                v0 = v2
                d += 8
                a += 8
            while d + 4 <= end:
                v1 = ptr32(a + 4)[0]
                v = ((v0 >> 16) & 0xFFFF) | ((v1 & 0xFFFF) << 16)
                ptr32(d)[0] = v
                w += ((v0 >> 16) & 0xFFFF) + (v1 & 0xFFFF)
                v0 = v1
                d += 4
                a += 4
            s = a + 2
        while w > 0xFFFF:
            w = (w & 0xFFFF) + (w >> 16)
        acc += (((w & 0xFF) << 8) | (w >> 8)) if swap else w
    while d < end:
        b = ptr8(s)[0]
        ptr8(d)[0] = b
        acc += (b << 8) if hi else b
        hi ^= 1
        d += 1
        s += 1
    while acc > 0xFFFF:
        acc = (acc & 0xFFFF) + (acc >> 16)
    return acc


@micropython.viper
def copy_viper(dst, dst_off: int, src, src_off: int, n: int):
    """Copy n bytes from src[src_off:] to dst[dst_off:], forward. 32-bit words
    when both ends share their alignment mod 4 (frames and buffers start
    aligned); otherwise bytes, or for a long copy copy_sum_viper, which merges
    words (addresses and MACs are short: a call costs more than their bytes)."""
    d = int(ptr8(dst)) + dst_off
    s = int(ptr8(src)) + src_off
    end = d + n
    w = end                                # words up to here
    if (d ^ s) & 3:
        if n > 32:
            copy_sum_viper(dst, dst_off, src, src_off, n)
            return
        w = d                              # all by the byte loop at the end
    while (d & 3) and d < w:
        ptr8(d)[0] = ptr8(s)[0]
        d += 1
        s += 1
    while d + 16 <= w:                   # each word read before it is written:
        p = ptr32(d)                       # safe when dst is below src (uipy.socket)
        q = ptr32(s)
        p[0] = q[0]
        p[1] = q[1]
        p[2] = q[2]
        p[3] = q[3]
        d += 16
        s += 16
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


@micropython.viper
def same_viper(buf, off: int, ref, n: int) -> int:
    """1 when buf[off:off+n] equals the first n bytes of ref, else 0."""
    p = ptr8(int(ptr8(buf)) + off)
    q = ptr8(ref)
    i = 0
    while i < n:
        if p[i] != q[i]:
            return 0
        i += 1
    return 1
