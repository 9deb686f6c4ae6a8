from hypothesis import given, strategies as st

from uipy import compat


def reference_sum(data, acc=0):
    """RFC 1071 word sum with end-around carry, written the slow obvious way."""
    s = acc
    if len(data) % 2:
        data = data + b"\x00"
    for i in range(0, len(data), 2):
        s += (data[i] << 8) | data[i + 1]
        s = (s & 0xFFFF) + (s >> 16)
    return s


@given(st.binary(max_size=1600), st.integers(0, 0xFFFF), st.integers(0, 40))
def test_both_forms_match_reference(data, acc, start):
    buf = bytes(start) + data
    want = reference_sum(data, acc)
    assert compat.sum16_loop(buf, start, len(data), acc) == want
    big = compat.sum16_bigint(buf, start, len(data), acc)
    # 0 and 0xFFFF are the two one's-complement zeros; only all-zero input gives 0
    assert big == want or (want == 0xFFFF and big == 0xFFFF)


def test_rfc1071_example():
    data = bytes.fromhex("0001f203f4f5f6f7")
    assert compat.sum16(data, 0, 8, 0) == 0xDDF2


def test_valid_header_sums_to_ffff():
    hdr = bytearray.fromhex("450000730000400040110000c0a80001c0a800c7")
    c = ~compat.sum16(hdr, 0, 20, 0) & 0xFFFF
    assert c == 0xB861
    hdr[10], hdr[11] = c >> 8, c & 0xFF
    assert compat.sum16(hdr, 0, 20, 0) == 0xFFFF


def test_ticks_wrap():
    top = (1 << 30) - 5
    assert compat.ticks_diff(compat.ticks_add(top, 10), top) == 10
    assert compat.ticks_diff(top, compat.ticks_add(top, 10)) == -10


def test_random_bytes():
    a, b = compat.random_bytes(8), compat.random_bytes(8)
    assert len(a) == 8 and a != b
    assert 0 <= compat.random_u16() <= 0xFFFF
