"""Runs on the board (the real RP2040 firmware in rp2040js, or any MicroPython):
CPU time and heap allocation per packet, in the board's own clock
(time.ticks_us: simulated cycles at 125 MHz in the emulator).

Each probe prints lines "name value". The TCP probes use two stacks on
mpy_pair's RingLink (frames copied with compat.copy_into, allocating nothing,
so no garbage collection runs inside a timing); what the SPI chip costs is
measured apart (the driver).
"""
import gc
import micropython
from time import ticks_us, ticks_diff

from mpy_pair import make_pair, run

SEGMENT = 1460


class Sink:
    def __init__(self):
        self.conn = None
        self.received = 0

    def handler(self, conn, events):
        if events & 1:                  # CONNECTED
            self.conn = conn
        if events & 2:                  # NEWDATA
            self.received += len(conn.data)


def pair(conns=4):
    """Two stacks on mpy_pair's in-memory link, one virtual clock."""
    return make_pair(tcp={"conns": conns, "window": 4 * SEGMENT})


def settle(clock, a, b, rounds=20):
    run(clock, a, b, rounds, lambda: False)


def connected_pair():
    clock, a, b, la, lb = pair()
    client, server = Sink(), Sink()
    b.listen(80, server.handler, backlog=4)
    a.connect(b"\xc6\x12\x00\x0b", 80, client.handler)
    settle(clock, a, b, 200)                    # ARP, then the SYN at the next tick
    if client.conn is None or server.conn is None:
        raise RuntimeError("probe: no connection")
    return clock, a, b, la, lb, client, server


def best(samples):
    samples.sort()
    return samples[len(samples) // 2]          # the median: robust against a GC pass


def tcp_rx(rounds=30):
    """b sends two full segments; a takes each with its own poll: the first is
    held for a delayed ACK, the second is ACKed at once (the ACK is sent)."""
    clock, a, b, la, lb, client, server = connected_pair()
    a.poll_budget = 1
    data = bytes(2 * SEGMENT)
    with_ack, without = [], []
    for _ in range(rounds):
        server.conn.send(data)
        clock.advance(1)
        b.poll()
        for k in range(2):
            sent = la.sent
            before = client.received
            gc.collect()                        # no collection inside the timing
            t0 = ticks_us()
            a.poll()
            dt = ticks_diff(ticks_us(), t0)
            if client.received == before + SEGMENT:
                (with_ack if la.sent > sent else without).append(dt)
        settle(clock, a, b, 3)
    print("tcp_rx_segment_us", best(with_ack) if with_ack else -1)
    print("tcp_rx_segment_noack_us", best(without) if without else -1)


def tcp_tx(rounds=30):
    """conn.send() of 1460 B and the poll that puts it on the link."""
    clock, a, b, la, lb, client, server = connected_pair()
    data = bytes(SEGMENT)
    times = []
    for _ in range(rounds):
        sent = la.sent
        gc.collect()
        t0 = ticks_us()
        client.conn.send(data)
        while la.sent == sent:
            a.poll()
        times.append(ticks_diff(ticks_us(), t0))
        settle(clock, a, b, 3)
    print("tcp_tx_segment_us", best(times))


def tcp_syn(rounds=20):
    """A SYN to a listening port turned into a SYN-ACK: time and heap bytes."""
    clock, a, b, la, lb = pair(conns=4)
    server = Sink()
    b.listen(80, server.handler, backlog=4)
    times = []
    allocs = []
    for _ in range(rounds):
        c = a.tcp.connect(b"\xc6\x12\x00\x0b", 80, Sink().handler)
        if not lb.count:
            a.poll()
        sent = lb.sent
        gc.collect()
        m0 = gc.mem_alloc()
        t0 = ticks_us()
        b.poll()
        dt = ticks_diff(ticks_us(), t0)
        m1 = gc.mem_alloc()
        if lb.sent == sent + 1:
            times.append(dt)
            allocs.append(m1 - m0)
        a.tcp.abort(c)                  # RST to b: both slots free again
        settle(clock, a, b, 3)
    print("tcp_syn_us", best(times) if times else -1)
    print("alloc_per_tcp_syn", best(allocs) if allocs else -1)


def locked(stack):
    """stack.poll() under heap_lock; True when nothing was allocated (a
    MemoryError inside is caught by the stack and counted)."""
    errors = stack.stats["handler_errors"]
    micropython.heap_lock()
    try:
        stack.poll()
    except MemoryError:                         # raised again while the stack counted it
        return False
    finally:
        micropython.heap_unlock()
    return stack.stats["handler_errors"] == errors


def alloc_syn_and_send(rounds=10):
    """heap_lock checks for the SYN path and for conn.send() until the segment is out."""
    clock, a, b, la, lb = pair(conns=4)
    server = Sink()
    b.listen(80, server.handler, backlog=4)
    ok = 0
    for r in range(rounds + 2):
        c = a.tcp.connect(b"\xc6\x12\x00\x0b", 80, Sink().handler)
        a.poll()
        sent = lb.sent
        if locked(b) and lb.sent == sent + 1 and r >= 2:
            ok += 1
        a.tcp.abort(c)
        settle(clock, a, b, 3)
    print("syn heap_locked=%s rounds=%d/%d" % ("ok" if ok == rounds else "FAILED", ok, rounds))
    clock, a, b, la, lb, client, server = connected_pair()
    data = bytes(SEGMENT)
    ok = 0
    for r in range(rounds + 2):
        sent = la.sent
        micropython.heap_lock()
        try:
            client.conn.send(data)
            good = True
        except MemoryError:
            good = False
        finally:
            micropython.heap_unlock()
        good = good and locked(a) and la.sent == sent + 1
        if good and r >= 2:
            ok += 1
        settle(clock, a, b, 3)
    print("send heap_locked=%s rounds=%d/%d" % ("ok" if ok == rounds else "FAILED", ok, rounds))


def packets(golden, rounds=200):
    """ARP request and ICMP echo (56 B) turned into their replies (golden frames)."""
    import golden_replay
    frames = {}
    for name, request, expected, counter in golden_replay.read_cases(golden):
        if name in ("arp_request", "icmp_echo_56"):
            frames[name] = request
    stack, nic = golden_replay.make_stack()
    nic.send = lambda mv, n: True
    for label, case in (("arp_us", "arp_request"), ("icmp_echo_us", "icmp_echo_56")):
        frame = frames[case]
        for _ in range(20):
            nic.frame = frame
            stack.poll()
        t0 = ticks_us()
        for _ in range(rounds):
            nic.frame = frame
            stack.poll()
        print(label, ticks_diff(ticks_us(), t0) / rounds)


def socket_heap():
    """Heap held by uipy.socket and one connected socket after what a blocking
    client does (umqtt.simple, urequests: getaddrinfo, connect, write, sendall,
    readline, read, recv, readinto, settimeout), the pair's stacks already
    built: socket_heap_bytes.  The import may also grow the qstr pool by a
    chunk whose size depends on what came before; qstr_info lines before and
    after let the host take that growth out (socket_heap_own).  Also the
    parts: socket_module_bytes (the import, pool growth included),
    socket_object_bytes (socket()), socket_conn_bytes (connected and used).
    The stack's own first active open (uipy.tcp_more: a client's stack loads
    it with its first connection, sockets or not) and ARP happen before, on
    port 81, and are printed apart: stack_connect_bytes."""
    clock, a, b, la, lb = pair()
    server = Sink()
    b.listen(80, server.handler, backlog=4)
    b.listen(81, Sink().handler, backlog=4)
    gc.collect()
    m0 = gc.mem_alloc()
    k = a.connect(b"\xc6\x12\x00\x0b", 81, Sink().handler)
    settle(clock, a, b, 200)
    if k.state != 4:                    # ESTABLISHED
        raise RuntimeError("probe: the stack did not connect")
    k.abort()
    settle(clock, a, b, 50)
    k = None
    gc.collect()
    stack_connect = gc.mem_alloc() - m0
    poll_a = a.poll

    def both():                         # a blocking call's pump moves both ends
        clock.advance(1)
        n = poll_a()
        b.poll()
        return n or 1
    a.poll = both
    gc.collect()
    micropython.qstr_info()
    before = gc.mem_alloc()
    import uipy.socket as usock
    usock.use(a)
    gc.collect()
    module = gc.mem_alloc() - before
    micropython.qstr_info()
    s = usock.socket()
    gc.collect()
    obj = gc.mem_alloc() - before - module
    s.settimeout(10)
    s.connect(usock.getaddrinfo("198.18.0.11", 80)[0][-1])
    s.write(b"GET / HTTP/1.0\r\n")
    s.sendall(b"\r\n")
    server.conn.send(b"HTTP/1.0 200 OK\r\n\r\nhello, world")
    buf = bytearray(2)
    if s.readline() != b"HTTP/1.0 200 OK\r\n" or s.readline() != b"\r\n" or s.read(5) != b"hello" \
            or s.recv(2) != b", " or s.readinto(buf) != 2 or buf != b"wo":
        raise RuntimeError("probe: the socket read wrong data")
    buf = None
    gc.collect()
    held = gc.mem_alloc() - before
    micropython.qstr_info()
    print("socket_heap_bytes", held)
    print("socket_module_bytes", module)
    print("socket_object_bytes", obj)
    print("socket_conn_bytes", held - module - obj)
    print("stack_connect_bytes", stack_connect)
    s.close()
