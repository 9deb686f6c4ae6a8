"""Internet checksum and byte copy with the viper emitter: machine-word
arithmetic, aligned loads and stores, no allocation.

Imported by compat only; a SyntaxError here means the port has no native
emitter and compat falls back to the portable loop.
"""
# pyright: reportUndefinedVariable=false
# (ptr8, ptr16 and ptr32 are viper built-ins)
import micropython


@micropython.viper
def sum16_viper(buf, start: int, n: int, acc: int) -> int:
    """The one's-complement sum of n bytes from start, plus acc, folded to 16
    bits. From an even address: 16 bytes a turn as eight halfword loads in the
    machine's order, little-endian, byte-swapped at the end (the sum commutes
    with byte order, RFC 1071 1.2.B); constant offsets from a pointer that moves
    make the tightest loop viper compiles (3x the speed of a 32-bit word loop
    with masks on a Cortex-M0+). Pairs of bytes else, and for the tail."""
    a = int(ptr8(buf)) + start
    end = a + n
    s = acc
    if not (a & 1):
        w = 0
        k = n >> 4
        p = ptr16(a)
        while k:
            j = 2048 if k > 2048 else k    # a turn adds < 2**19: fold before 2**31
            k -= j
            while j:
                w += p[0] + p[1] + p[2] + p[3] + p[4] + p[5] + p[6] + p[7]
                p = ptr16(int(p) + 16)
                j -= 1
            w = (w & 0xFFFF) + (w >> 16)
        a = int(p)
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
    When both ends are even (after one byte if both are odd): 16 bytes a turn
    in halfwords, copied and summed as in sum16_viper; bytes otherwise."""
    d = int(ptr8(dst)) + dst_off
    s = int(ptr8(src)) + src_off
    end = d + n
    hi = 1                                 # the next byte is the high half of a pair
    acc = 0
    if not ((d ^ s) & 1):
        if d & 1 and d < end:              # one byte up to even addresses
            b = ptr8(s)[0]
            ptr8(d)[0] = b
            acc = b << 8
            hi = 0
            d += 1
            s += 1
        w = 0
        k = (end - d) >> 4
        p = ptr16(d)
        q = ptr16(s)
        while k:
            j = 2048 if k > 2048 else k    # fold before the sum passes 2**31
            k -= j
            while j:
                p[0] = q[0]
                p[1] = q[1]
                p[2] = q[2]
                p[3] = q[3]
                p[4] = q[4]
                p[5] = q[5]
                p[6] = q[6]
                p[7] = q[7]
                w += q[0] + q[1] + q[2] + q[3] + q[4] + q[5] + q[6] + q[7]
                p = ptr16(int(p) + 16)
                q = ptr16(int(q) + 16)
                j -= 1
            w = (w & 0xFFFF) + (w >> 16)
        d = int(p)
        s = int(q)
        while w > 0xFFFF:
            w = (w & 0xFFFF) + (w >> 16)
        # little-endian halves: swapped when pairs begin on them (hi), as they are
        acc += (((w & 0xFF) << 8) | (w >> 8)) if hi else w
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
def eth_ip_header_viper(buf, dmac, doff: int, smac, sip, total: int, ident: int, ttl_proto: int):
    """A frame's Ethernet and IPv4 headers around the destination address
    already at buf[30:34], in one call: destination MAC from dmac[doff:] (dmac
    may be buf itself: each byte is read before it is written), source MAC
    smac, type IPv4; version and length, total length, identification, no
    fragmentation, TTL and protocol (ttl_proto = ttl << 8 | protocol), the
    header checksum, source address sip."""
    p = ptr8(buf)
    m = ptr8(dmac)
    q = ptr8(smac)
    i = 0
    while i < 6:
        p[i] = m[doff + i]
        p[6 + i] = q[i]
        i += 1
    p[12] = 0x08
    p[13] = 0
    q = ptr8(sip)
    p[26] = q[0]
    p[27] = q[1]
    p[28] = q[2]
    p[29] = q[3]
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
def ip_plain_viper(buf, n: int, ip, mask_lo: int) -> int:
    """The common IPv4 datagram, in one call (uipy.ipv4.input): a 20-byte
    header, whole and unfragmented, unicast to ip in a unicast frame of n
    bytes, from a source one may answer (not 0/8, 127/8, multicast or a subnet
    broadcast under mask_lo), good header checksum. Returns protocol << 16 |
    total length, or -1: anything else gets the full checks."""
    p = ptr8(buf)
    total = (p[16] << 8) | p[17]
    if p[14] != 0x45 or total < 20 or total > n - 14 or (p[20] & 0x3F) or p[21] or (p[0] & 1):
        return -1
    q = ptr8(ip)
    if p[30] != q[0] or p[31] != q[1] or p[32] != q[2] or p[33] != q[3]:
        return -1
    f = p[26]
    if f == 0 or f >= 224 or f == 127 or (((p[28] << 8) | p[29]) | mask_lo) == 0xFFFF:
        return -1
    s = 0
    i = 14
    while i < 34:
        s += (p[i] << 8) | p[i + 1]
        i += 2
    s = (s & 0xFFFF) + (s >> 16)
    s = (s & 0xFFFF) + (s >> 16)
    if s != 0xFFFF:
        return -1
    return (p[23] << 16) | total


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
