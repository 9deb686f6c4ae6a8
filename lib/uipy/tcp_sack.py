"""TCP selective acknowledgement (RFC 2018), loaded by uipy.tcp only when
Tcp(sack=True) (the default): a tiny board can leave it out.

Receiving: SACK blocks describing what the reorder store holds, on pure ACKs.
Sending: the peer's blocks kept as a scoreboard of up to 3 disjoint ranges of
send offsets per connection (c.sack_l, c.sack_r, c.sack_n); in recovery each
duplicate ACK lets the next hole go (RFC 6675's NextSeg, simplified: holes in
order, each once, from c.rtx_next).
"""
from uipy.compat import const, get16
from uipy.tcp import put_seq, seq_diff

_TCP_DATA = const(54)                 # uipy.frame's, folded in place (a test checks it)


def blocks(tcp, c, store):
    """Write SACK blocks for what the reorder store holds for c at TCP_DATA
    (RFC 2018: up to 3, contiguous segments merged); their length in bytes."""
    buf = tcp.stack.buf
    k = 0
    at = _TCP_DATA + 4
    lo = c.rcv_nxt
    while k < 3:                          # ranges in ascending order, one pass each
        start = -1
        for i in range(len(store.owner)):
            if store.owner[i] is c and store.seq[i] > lo and (start < 0 or store.seq[i] < start):
                start = store.seq[i]
        if start < 0:
            break
        end = start
        grown = True
        while grown:                      # take in every held segment that touches it
            grown = False
            for i in range(len(store.owner)):
                if store.owner[i] is c and store.seq[i] <= end < store.seq[i] + store.len[i]:
                    end = store.seq[i] + store.len[i]
                    grown = True
        put_seq(buf, at, c.rcv_base_hi, c.rcv_base_lo, start)
        put_seq(buf, at + 4, c.rcv_base_hi, c.rcv_base_lo, end)
        at += 8
        k += 1
        lo = end
    if not k:
        return 0
    buf[_TCP_DATA] = 1
    buf[_TCP_DATA + 1] = 1
    buf[_TCP_DATA + 2] = 5
    buf[_TCP_DATA + 3] = 2 + 8 * k
    return 4 + 8 * k

def update(tcp, c):
    """Merge the SACK blocks of the segment in the buffer into c's
    scoreboard (3 ranges of send offsets, above snd_una)."""
    buf = tcp.stack.buf
    at = tcp.sack_at
    L = c.sack_l
    if L is None:                         # the first blocks for this slot: its scoreboard
        L = c.sack_l = [0, 0, 0]
        c.sack_r = [0, 0, 0]
    R = c.sack_r
    for k in range(tcp.sack_len >> 3):
        o = at + 8 * k
        left = seq_diff(get16(buf, o), get16(buf, o + 2), c.snd_base_hi, c.snd_base_lo)
        right = seq_diff(get16(buf, o + 4), get16(buf, o + 6), c.snd_base_hi, c.snd_base_lo)
        if not c.snd_una < left < right <= c.snd_max:
            continue                      # stale, D-SACK or bogus: not used
        for i in range(c.sack_n):
            if left <= R[i] and right >= L[i]:
                L[i] = min(L[i], left)
                R[i] = max(R[i], right)
                break
        else:
            if c.sack_n < 3:
                i = c.sack_n
                c.sack_n += 1
            else:                         # full: forget the lowest range
                i = 0
                for j in (1, 2):
                    if L[j] < L[i]:
                        i = j
            L[i] = left
            R[i] = right
    prune(c, c.snd_una)

def prune(c, una):
    """Drop what una covers; keep the ranges sorted and disjoint."""
    L = c.sack_l
    R = c.sack_r
    n = 0
    for i in range(c.sack_n):
        if R[i] > una:
            L[n] = max(L[i], una)
            R[n] = R[i]
            n += 1
    for i in range(1, n):                 # insertion sort of at most 3
        j = i
        while j and L[j - 1] > L[j]:
            L[j - 1], L[j] = L[j], L[j - 1]
            R[j - 1], R[j] = R[j], R[j - 1]
            j -= 1
    m = 0
    for i in range(n):
        if m and L[i] <= R[m - 1]:
            R[m - 1] = max(R[m - 1], R[i])
        else:
            L[m] = L[i]
            R[m] = R[i]
            m += 1
    c.sack_n = m

def next_hole(c):
    """The first unSACKed byte at or after c.rtx_next below the highest SACKed
    byte (RFC 6675's next segment to retransmit), and the hole's end; (-1, 0)."""
    start = max(c.rtx_next, c.snd_una)
    for i in range(c.sack_n):
        if start < c.sack_l[i]:
            return start, c.sack_l[i]
        if start < c.sack_r[i]:
            start = c.sack_r[i]
    return -1, 0
