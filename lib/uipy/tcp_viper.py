"""TCP's viper routines: the ISN hash and the segment header, in machine
words, allocating nothing.

Imported by uipy.tcp only; a SyntaxError here means the port has no native
emitter and tcp falls back to the portable form.
"""
# pyright: reportUndefinedVariable=false
# (ptr8 and uint are viper built-ins)
import micropython


@micropython.viper
def isn_hash_viper(key, data, n: int, out):
    """HalfSipHash-2-4 (32-bit words) of n bytes of data (n a multiple of 4) under
    the 8-byte key, written big-endian into out[0:4]. See uipy.tcp."""
    k = ptr8(key)
    d = ptr8(data)
    o = ptr8(out)
    k0 = uint(k[0]) | (uint(k[1]) << 8) | (uint(k[2]) << 16) | (uint(k[3]) << 24)
    k1 = uint(k[4]) | (uint(k[5]) << 8) | (uint(k[6]) << 16) | (uint(k[7]) << 24)
    w = uint(0xFFFFFFFF)                   # 32-bit words on 64-bit ports too
    v0 = k0
    v1 = k1
    v2 = k0 ^ uint(0x6C796765)
    v3 = k1 ^ uint(0x74656462)
    blocks = (n >> 2) + 1                  # the data words, then the length word
    last = blocks * 2
    m = uint(0)
    r = 0
    while r < last + 4:
        if r < last and not (r & 1):
            i = r << 1
            if i < n:
                m = uint(d[i]) | (uint(d[i + 1]) << 8) | (uint(d[i + 2]) << 16) | (uint(d[i + 3]) << 24)
            else:
                m = uint(n) << 24
            v3 ^= m
        if r == last:
            v2 ^= uint(0xFF)
        v0 = (v0 + v1) & w
        v1 = ((v1 << 5) & w) | (v1 >> 27)
        v1 ^= v0
        v0 = ((v0 << 16) & w) | (v0 >> 16)
        v2 = (v2 + v3) & w
        v3 = ((v3 << 8) & w) | (v3 >> 24)
        v3 ^= v2
        v0 = (v0 + v3) & w
        v3 = ((v3 << 7) & w) | (v3 >> 25)
        v3 ^= v0
        v2 = (v2 + v1) & w
        v1 = ((v1 << 13) & w) | (v1 >> 19)
        v1 ^= v2
        v2 = ((v2 << 16) & w) | (v2 >> 16)
        if r < last and (r & 1):
            v0 ^= m
        r += 1
    h = v1 ^ v3
    o[0] = h >> 24
    o[1] = h >> 16
    o[2] = h >> 8
    o[3] = h


@micropython.viper
def tcp_header_viper(buf, lip, rip, lport: int, rport: int, seq_hi: int, seq_lo: int, off: int,
                     ack_hi: int, ack_lo: int, rel: int, hflags: int, window: int, acc: int):
    """The addresses at buf[26:34] and the TCP header at buf[34:54] (options,
    if any, already in place after it): sequence number (seq_hi << 16 | seq_lo)
    + off, acknowledgment number (ack_hi << 16 | ack_lo) + rel, header length
    and flags (hflags = hlen << 8 | flags), window. With acc >= 0 (the payload's
    sum plus protocol and length) the checksum is summed over the pseudo-header
    addresses and the header; with acc < 0 it is left 0 for the caller."""
    p = ptr8(buf)
    a = ptr8(lip)
    b = ptr8(rip)
    i = 0
    while i < 4:
        p[26 + i] = a[i]
        p[30 + i] = b[i]
        i += 1
    p[34] = lport >> 8
    p[35] = lport
    p[36] = rport >> 8
    p[37] = rport
    v = (seq_hi << 16) + seq_lo + off       # wraps at 32 bits (masked by the byte stores)
    p[38] = v >> 24
    p[39] = v >> 16
    p[40] = v >> 8
    p[41] = v
    v = (ack_hi << 16) + ack_lo + rel
    p[42] = v >> 24
    p[43] = v >> 16
    p[44] = v >> 8
    p[45] = v
    p[46] = (hflags >> 8) << 2              # header length in 32-bit words, high nibble
    p[47] = hflags
    p[48] = window >> 8
    p[49] = window
    p[50] = 0
    p[51] = 0
    p[52] = 0
    p[53] = 0
    if acc >= 0:
        end = 34 + (hflags >> 8)
        i = 26
        while i < end:
            acc += (p[i] << 8) | p[i + 1]
            i += 2
        acc = (acc & 0xFFFF) + (acc >> 16)
        acc = (acc & 0xFFFF) + (acc >> 16)
        acc = ~acc
        p[50] = acc >> 8
        p[51] = acc
