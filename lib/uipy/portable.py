"""The portable forms of compat's checksum, copies and IPv4 header, and of the
ISN hash: pure Python, for CPython and for MicroPython ports without the native
emitter. A board with viper never imports this module (see compat)."""
import time
from struct import pack_into

from uipy.compat import MICROPYTHON, const

# --- clock: milliseconds wrapping at 2**30, like MicroPython's time.ticks_ms ---
_TICKS_MAX = const((1 << 30) - 1)
_TICKS_HALF = const(1 << 29)


def ticks_ms():
    return int(time.monotonic() * 1000) & _TICKS_MAX  # type: ignore  (CPython only)


def ticks_diff(a, b):
    """Signed difference a - b of two tick values, correct across the wrap."""
    return ((a - b + _TICKS_HALF) & _TICKS_MAX) - _TICKS_HALF


def ticks_add(a, delta):
    return (a + delta) & _TICKS_MAX


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


sum16 = sum16_loop if MICROPYTHON else sum16_bigint



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


copy_into = copy_loop if MICROPYTHON else copy_slice
copy_sum = copy_sum_portable



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


def eth_ip_header(buf, dmac, doff, smac, sip, total, ident, ttl_proto):
    copy_into(buf, 0, dmac, doff, 6)          # (dmac may be buf at 6: read before 6..11 is written)
    copy_into(buf, 6, smac, 0, 6)
    buf[12] = 0x08
    buf[13] = 0x00
    copy_into(buf, 26, sip, 0, 4)
    ip_header_loop(buf, total, ident, ttl_proto)


def ip_plain(buf, n, ip, mask_lo):
    """csum_viper's ip_plain_viper in plain Python (the same tests)."""
    total = (buf[16] << 8) | buf[17]
    if buf[14] == 0x45 and 20 <= total <= n - 14 and not (buf[20] & 0x3F or buf[21] or buf[0] & 1) \
            and buf[30] == ip[0] and buf[31] == ip[1] and buf[32] == ip[2] and buf[33] == ip[3] \
            and 0 < buf[26] < 224 and buf[26] != 127 and ((buf[28] << 8) | buf[29] | mask_lo) != 0xFFFF \
            and sum16(buf, 14, 20, 0) == 0xFFFF:
        return (buf[23] << 16) | total
    return -1


def same_loop(buf, off, ref, n):
    for i in range(n):
        if buf[off + i] != ref[i]:
            return False
    return True


def same_slice(buf, off, ref, n):
    """CPython: one comparison at C speed (the slices are garbage, fine there)."""
    return buf[off:off + n] == ref[:n]


same = same_loop if MICROPYTHON else same_slice


# --- HalfSipHash-2-4 for uipy.tcp's ISNs and cookies (large ints: heap objects on MicroPython) ---

def _rotl(v, r):
    return ((v << r) | (v >> (32 - r))) & 0xFFFFFFFF


def tcp_header_loop(buf, lip, rip, lport, rport, seq_hi, seq_lo, off, ack_hi, ack_lo, rel, hflags,
                    window, acc):
    """tcp_viper's tcp_header_viper in small ints (MicroPython without the
    native emitter: a number past 2**30 would be a heap object)."""
    copy_into(buf, 26, lip, 0, 4)
    copy_into(buf, 30, rip, 0, 4)
    buf[34] = lport >> 8
    buf[35] = lport & 0xFF
    buf[36] = rport >> 8
    buf[37] = rport & 0xFF
    for i in (38, 42):                    # the sequence, then the acknowledgment number
        lo = seq_lo + (off & 0xFFFF)
        hi = seq_hi + (off >> 16) + (lo >> 16)
        buf[i] = (hi >> 8) & 0xFF
        buf[i + 1] = hi & 0xFF
        buf[i + 2] = (lo >> 8) & 0xFF
        buf[i + 3] = lo & 0xFF
        seq_hi, seq_lo, off = ack_hi, ack_lo, rel
    _tcp_header_end(buf, hflags, window, acc)


def tcp_header_struct(buf, lip, rip, lport, rport, seq_hi, seq_lo, off, ack_hi, ack_lo, rel, hflags,
                      window, acc):
    """CPython: one pack_into."""
    pack_into("!4s4sHHII", buf, 26, lip, rip, lport, rport, ((seq_hi << 16) + seq_lo + off) & 0xFFFFFFFF,
              ((ack_hi << 16) + ack_lo + rel) & 0xFFFFFFFF)
    _tcp_header_end(buf, hflags, window, acc)


def _tcp_header_end(buf, hflags, window, acc):
    """Header length, flags, window, checksum (when acc >= 0), urgent pointer."""
    hlen = hflags >> 8
    buf[46] = hlen << 2
    buf[47] = hflags & 0xFF
    buf[48] = window >> 8
    buf[49] = window & 0xFF
    buf[50] = buf[51] = buf[52] = buf[53] = 0
    if acc >= 0:
        v = ~sum16(buf, 26, 8 + hlen, acc)
        buf[50] = (v >> 8) & 0xFF
        buf[51] = v & 0xFF


tcp_header = tcp_header_loop if MICROPYTHON else tcp_header_struct


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
