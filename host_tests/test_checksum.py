from hypothesis import given, strategies as st

from uipy import compat, portable


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
    assert portable.sum16_loop(buf, start, len(data), acc) == want
    big = portable.sum16_bigint(buf, start, len(data), acc)
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


def test_isn_hash_is_halfsiphash_2_4():
    """Known answers of HalfSipHash-2-4 with key 00..07 (32-bit output, stored
    little-endian in the reference vectors): the empty message and 00 01 02 03."""
    out = bytearray(4)
    portable.isn_hash_loop(bytes(range(8)), b"", 0, out)
    assert bytes(out[::-1]).hex() == "a9359f5b"
    portable.isn_hash_loop(bytes(range(8)), bytes(range(4)), 4, out)
    assert bytes(out[::-1]).hex() == "2a6e4689"


def test_isn_hash_viper_matches_the_portable_form_under_micropython(tmp_path):
    """The viper form (used on boards) gives the portable form's values, on a
    64-bit port too (its words are masked to 32 bits); it allocates nothing there."""
    import os
    from levels import ROOT, VENV_BIN, run, tool
    mp = tool("micropython", VENV_BIN)
    script = tmp_path / "isn.py"
    script.write_text(
        "import sys, micropython\nsys.path.insert(0, %r)\n"
        "from uipy import portable\nfrom uipy.tcp_viper import isn_hash_viper\n"
        "bad = 0\no1 = bytearray(4)\no2 = bytearray(4)\n"
        "for k in range(40):\n"
        "    key = bytes((k * 7 + i * 13) & 255 for i in range(8))\n"
        "    data = bytes((k * 31 + i * 5) & 255 for i in range(12))\n"
        "    micropython.heap_lock()\n"
        "    isn_hash_viper(key, data, 12, o1)\n"
        "    micropython.heap_unlock()\n"
        "    portable.isn_hash_loop(key, data, 12, o2)\n"
        "    bad += o1 != o2\n"
        "print('mismatches', bad)\n" % os.path.join(ROOT, "lib"))
    r = run([mp, str(script)])
    assert r.stdout.strip() == "mismatches 0", r.stdout + r.stderr


def test_viper_sum_and_copy_match_the_portable_forms_under_micropython(tmp_path):
    """sum16_viper, copy_sum_viper (32-bit loads, shift-merged words) and
    copy_viper against the plain loops, at every alignment of source and
    destination; copy_viper also forward within one buffer."""
    import os
    from levels import ROOT, VENV_BIN, run, tool
    mp = tool("micropython", VENV_BIN)
    script = tmp_path / "viper.py"
    script.write_text(
        "import sys\nsys.path.insert(0, %r)\n"
        "from uipy.portable import sum16_loop\nfrom uipy.csum_viper import sum16_viper, copy_sum_viper, copy_viper\n"
        "bad = 0\nk = 7\n"
        "for so in range(8):\n"
        "    for do in range(8):\n"
        "        for n in (0, 1, 2, 3, 5, 8, 13, 64, 501, 1460):\n"
        "            k = (k * 1103515245 + 12345) & 0x7FFFFFFF\n"
        "            src = bytes((k >> (i %% 23)) & 255 for i in range(so + n + 4))\n"
        "            dst = bytearray(do + n + 8)\n"
        "            want = bytearray(dst)\n"
        "            want[do:do + n] = src[so:so + n]\n"
        "            s = copy_sum_viper(dst, do, src, so, n)\n"
        "            r = sum16_loop(src, so, n, 0)\n"
        "            v = sum16_viper(src, so, n, 3)\n"
        "            r3 = sum16_loop(src, so, n, 3)\n"
        "            bad += dst != want or (s != r and {s, r} != {0, 0xFFFF}) or (v != r3 and {v, r3} != {0, 0xFFFF})\n"
        "            dst = bytearray(do + n + 8)\n"
        "            copy_viper(dst, do, src, so, n)\n"
        "            bad += dst != want\n"
        "            if n:\n"                   # within one buffer, towards its start (uipy.socket)
        "                buf = bytearray(src + bytes(8))\n"
        "                want = bytearray(buf)\n"
        "                want[so // 2:so // 2 + n] = src[so:so + n]\n"
        "                copy_viper(buf, so // 2, buf, so, n)\n"
        "                bad += buf != want\n"
        "big = bytes(b'\\xff' * 70001)\n"          # past one fold of the halfword sums
        "for o in (0, 1, 2):\n"
        "    dst = bytearray(70004)\n"
        "    bad += copy_sum_viper(dst, o, big, o, 70000 - o) != sum16_loop(big, o, 70000 - o, 0)\n"
        "    bad += sum16_viper(big, o, 70000 - o, 5) != sum16_loop(big, o, 70000 - o, 5)\n"
        "print('mismatches', bad)\n" % os.path.join(ROOT, "lib"))
    r = run([mp, "-X", "heapsize=4M", str(script)])
    assert r.stdout.strip() == "mismatches 0", r.stdout + r.stderr


def test_tcp_header_viper_matches_the_portable_forms(tmp_path):
    """tcp_header_viper (a board's) and tcp_header_loop (small ints) under
    MicroPython write the bytes that CPython's tcp_header_struct writes, for
    sequence numbers across the 32-bit wrap, options lengths, with and without
    the checksum; the viper form allocates nothing."""
    import os
    import random
    from levels import ROOT, VENV_BIN, run, tool
    from uipy import portable
    rnd = random.Random(9)
    cases = []
    for k in range(60):
        hlen = rnd.choice((20, 24, 32, 40, 60))
        cases.append((bytes(rnd.randrange(256) for _ in range(4)), bytes(rnd.randrange(256) for _ in range(4)),
                      rnd.randrange(65536), rnd.randrange(65536), rnd.randrange(65536), rnd.randrange(65536),
                      rnd.randrange(1 << 28), rnd.randrange(65536), rnd.randrange(65536), rnd.randrange(1 << 28),
                      (hlen << 8) | rnd.randrange(64), rnd.randrange(65536),
                      -1 if k % 3 == 0 else rnd.randrange(0x30000)))
    expected = []
    for args in cases:
        buf = bytearray(bytes(range(100)))
        portable.tcp_header_struct(buf, *args)
        expected.append(bytes(buf))
    script = tmp_path / "hdr.py"
    script.write_text(
        "import sys, micropython\nsys.path.insert(0, %r)\n"
        "from uipy.portable import tcp_header_loop\nfrom uipy.tcp_viper import tcp_header_viper\n"
        "cases = %r\nexpected = %r\nbad = 0\n"
        "for args, want in zip(cases, expected):\n"
        "    for f in (tcp_header_viper, tcp_header_loop):\n"
        "        buf = bytearray(bytes(range(100)))\n"
        "        locked = f is tcp_header_viper\n"
        "        if locked:\n"
        "            micropython.heap_lock()\n"
        "        f(buf, %s)\n"
        "        if locked:\n"
        "            micropython.heap_unlock()\n"
        "        bad += bytes(buf) != want\n"
        "print('mismatches', bad)\n" % (os.path.join(ROOT, "lib"), cases, expected,
                                         ", ".join("args[%d]" % i for i in range(13))))   # no *args: a tuple
    r = run([tool("micropython", VENV_BIN), str(script)])
    assert r.stdout.strip() == "mismatches 0", r.stdout + r.stderr


def test_ip_plain_viper_matches_the_portable_form(tmp_path):
    """ip_plain (the IPv4 input's one-call test) gives the same answer in viper
    and in Python, for a good datagram and for each way of failing it."""
    import os
    from levels import ROOT, VENV_BIN, run, tool
    from uipy import portable
    good = bytearray(b"\x02\x00\x00\x00\x00\x01\x02\x00\x00\x00\x00\x02\x08\x00"
                     b"\x45\x00\x00\x28\x12\x34\x40\x00\x40\x06\x00\x00\xc6\x12\x00\x0b\xc6\x12\x00\x02"
                     + bytes(26))
    v = ~portable.sum16(good, 14, 20, 0)
    good[24], good[25] = (v >> 8) & 0xFF, v & 0xFF
    frames = [bytes(good)]
    for off, val in ((14, 0x46), (16, 5), (17, 0x10), (17, 0x50), (20, 0x20), (21, 1), (0, 3), (33, 3),
                     (26, 0), (26, 127), (26, 224), (28, 0xFF), (25, 0)):
        f = bytearray(good)
        f[off] = val
        frames.append(bytes(f))
    sub = bytearray(good)                 # a subnet broadcast source, checksum made good again
    sub[28] = sub[29] = 0xFF
    sub[24] = sub[25] = 0
    v = ~portable.sum16(sub, 14, 20, 0)
    sub[24], sub[25] = (v >> 8) & 0xFF, v & 0xFF
    frames.append(bytes(sub))
    ip = b"\xc6\x12\x00\x02"
    want = [portable.ip_plain(f, 60, ip, 0xFF00) for f in frames]
    assert want[0] == (6 << 16) | 0x28 and want.count(-1) == len(frames) - 1
    script = tmp_path / "plain.py"
    script.write_text(
        "import sys\nsys.path.insert(0, %r)\nfrom uipy.csum_viper import ip_plain_viper\n"
        "print([ip_plain_viper(bytearray(f), 60, %r, 0xFF00) for f in %r])\n" % (os.path.join(ROOT, "lib"), ip, frames))
    r = run([tool("micropython", VENV_BIN), str(script)])
    assert r.stdout.strip() == repr(want), r.stdout + r.stderr


def test_eth_ip_header_viper_matches_the_portable_form(tmp_path):
    """eth_ip_header in viper and in Python write the same frame headers, with
    the destination MAC taken from another buffer, from the frame's own source
    MAC (an echo reply) and from where it already is."""
    import os
    from levels import ROOT, VENV_BIN, run, tool
    from uipy import portable
    smac, sip, other = b"\x02\x00\x00\x00\x00\x55", b"\xc6\x12\x00\x02", b"\x00\x11\x22\x33\x44\x55\x66\x77"
    cases = [(other, 2, 1480, 0x1234, (64 << 8) | 6), ("self", 6, 84, 0xFFFF, (64 << 8) | 1),
             ("self", 0, 20, 0, (255 << 8) | 17), (other, 0, 65535, 7, (1 << 8) | 6)]
    want = []
    for dmac, doff, total, ident, tp in cases:
        buf = bytearray(range(60))
        portable.eth_ip_header(buf, buf if dmac == "self" else dmac, doff, smac, sip, total, ident, tp)
        want.append(bytes(buf))
    assert want[1][0:6] == bytes(range(6, 12)) and portable.sum16(want[0], 14, 20, 0) == 0xFFFF
    script = tmp_path / "eth.py"
    script.write_text(
        "import sys, micropython\nsys.path.insert(0, %r)\nfrom uipy.csum_viper import eth_ip_header_viper\n"
        "out = []\n"
        "for dmac, doff, total, ident, tp in %r:\n"
        "    buf = bytearray(range(60))\n"
        "    d = buf if dmac == 'self' else dmac\n"
        "    micropython.heap_lock()\n"
        "    eth_ip_header_viper(buf, d, doff, %r, %r, total, ident, tp)\n"
        "    micropython.heap_unlock()\n"
        "    out.append(bytes(buf))\n"
        "print(out == %r)\n" % (os.path.join(ROOT, "lib"), cases, smac, sip, want))
    r = run([tool("micropython", VENV_BIN), str(script)])
    assert r.stdout.strip() == "True", r.stdout + r.stderr
