"""A keyed hash for TCP initial sequence numbers (RFC 6528), loaded by tcp only.

HalfSipHash-2-4 (SipHash on 32-bit words): a keyed pseudo-random function made
for 32-bit machines. The viper form (isn_viper) allocates nothing; this one is
for CPython and ports without the native emitter (its large ints are heap
objects on MicroPython). Both give the same value (tested).
"""
from uipy.compat import MICROPYTHON, random_bytes

KEY = bytearray(random_bytes(8))   # one secret per boot


def _rotl(v, r):
    return ((v << r) | (v >> (32 - r))) & 0xFFFFFFFF


def isn_hash_loop(key, data, n, out):
    k0 = int.from_bytes(bytes(key[0:4]), "little")
    k1 = int.from_bytes(bytes(key[4:8]), "little")
    v = [k0, k1, k0 ^ 0x6C796765, k1 ^ 0x74656462]
    words = [int.from_bytes(bytes(data[i:i + 4]), "little") for i in range(0, n, 4)] + [n << 24]
    for r in range(len(words) * 2 + 4):
        if r < 2 * len(words) and not r & 1:
            v[3] ^= words[r >> 1]
        if r == 2 * len(words):
            v[2] ^= 0xFF
        v[0] = (v[0] + v[1]) & 0xFFFFFFFF
        v[1] = _rotl(v[1], 5) ^ v[0]
        v[0] = _rotl(v[0], 16)
        v[2] = (v[2] + v[3]) & 0xFFFFFFFF
        v[3] = _rotl(v[3], 8) ^ v[2]
        v[0] = (v[0] + v[3]) & 0xFFFFFFFF
        v[3] = _rotl(v[3], 7) ^ v[0]
        v[2] = (v[2] + v[1]) & 0xFFFFFFFF
        v[1] = _rotl(v[1], 13) ^ v[2]
        v[2] = _rotl(v[2], 16)
        if r < 2 * len(words) and r & 1:
            v[0] ^= words[r >> 1]
    out[0:4] = (v[1] ^ v[3]).to_bytes(4, "big")


isn_hash = isn_hash_loop
if MICROPYTHON:
    try:
        from uipy.isn_viper import isn_hash_viper as isn_hash
    except (ImportError, SyntaxError, MemoryError, ValueError):
        pass
