"""The ISN hash with the viper emitter: 32-bit machine words, no allocation.

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
