"""A keyed hash for TCP initial sequence numbers (RFC 6528), loaded by tcp only.

HalfSipHash-2-4 (SipHash on 32-bit words): a keyed pseudo-random function made
for 32-bit machines. The viper form (isn_viper) allocates nothing; the one in
uipy.portable is for CPython and ports without the native emitter (its large
ints are heap objects on MicroPython). Both give the same value (tested).
"""
from uipy.compat import random_bytes

KEY = bytearray(random_bytes(8))   # one secret per boot

try:                                  # CPython: no micropython module; no native emitter: SyntaxError
    from uipy.isn_viper import isn_hash_viper as isn_hash
except (ImportError, SyntaxError, MemoryError, ValueError):
    from uipy.portable import isn_hash_loop as isn_hash  # noqa: F401
