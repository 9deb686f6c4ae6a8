"""Chip figures for the benchmarks: the real W5500 and ENC28J60 drivers against
the register-level emulators (host only).

    from bench_chips import chip_figures
    figures.update(chip_figures())

Per chip (suffix _w5500 / _enc28j60):
  spi_transactions_per_rx_frame   CS frames for one received frame, alone in the chip
  spi_bytes_per_rx_frame          bytes clocked for it (a 1514-byte frame; the
                                  overhead is spi_overhead_bytes_per_rx_frame)
  spi_transactions_per_rx_frame_burst4 / spi_bytes_per_rx_frame_burst4
                                  the same when 4 frames wait at once
  spi_transactions_per_idle_poll  recv_into() with nothing waiting
  spi_transactions_per_tx_frame / spi_bytes_per_tx_frame / spi_overhead_bytes_per_tx_frame
                                  one 1514-byte frame sent
  host_us_per_frame               CPython time for a 1514-byte frame to arrive in the
                                  chip model and be read by the driver (no network)
  host_us_per_tx_frame            the same for sending one
  ping_rtt_ms                     median RTT of `ping -c 50 -i 0.01` from the kernel to a
                                  uipy Stack on the virtual board (TAP in a namespace);
                                  needs root, left out with a note otherwise
"""
import os
import statistics
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
for _d in ("tools", ""):
    if os.path.join(ROOT, _d) not in sys.path:
        sys.path.insert(0, os.path.join(ROOT, _d))
import paths  # noqa: E402,F401  (tools/paths.py: lib, drivers, tools/emu, net, bench, device)

CHIPS = ("w5500", "enc28j60")
MAC = b"\x02\x00\x00\x00\x55\x02"
PEER = b"\x02\x00\x00\x00\x55\x01"
FRAME_LEN = 1514


def _frame(n, seq=0, dst=MAC, src=PEER):
    head = dst + src + b"\x08\x00"
    return head + bytes((seq + i) & 0xFF for i in range(n - len(head)))


def _chip(chip):
    """(driver, emulator), the emulator's sent frames thrown away."""
    from boards.virtual import make_chip
    driver, emu = make_chip(chip, MAC)
    if chip == "w5500":
        emu.on_send = lambda frame: None
    else:
        emu.on_tx = lambda frame: None
    return driver, emu


def _rx_cost(driver, emu, frames, burst):
    """Mean (transactions, bytes) per received frame, `burst` frames waiting at a time."""
    mv = memoryview(bytearray(1600))
    t = b = got = 0
    for k in range(0, frames, burst):
        for j in range(burst):
            if not emu.inject(_frame(FRAME_LEN, k + j)):
                raise RuntimeError("bench_chips: the chip model refused a frame")
        for _ in range(burst):
            t0, b0 = driver.spi_transactions, driver.spi_bytes
            n = driver.recv_into(mv)
            if n != FRAME_LEN:
                raise RuntimeError("bench_chips: received %d bytes, not %d" % (n, FRAME_LEN))
            t += driver.spi_transactions - t0
            b += driver.spi_bytes - b0
            got += 1
    return t / got, b / got


def _idle_cost(driver, polls=50):
    mv = memoryview(bytearray(1600))
    t0 = driver.spi_transactions
    for _ in range(polls):
        if driver.recv_into(mv):
            raise RuntimeError("bench_chips: a frame where none was waiting")
    return (driver.spi_transactions - t0) / polls


def _tx_cost(driver, frames):
    mv = memoryview(bytearray(_frame(FRAME_LEN, dst=PEER, src=MAC)))
    t0, b0 = driver.spi_transactions, driver.spi_bytes
    for _ in range(frames):
        if not driver.send(mv, FRAME_LEN):
            raise RuntimeError("bench_chips: send failed")
    return (driver.spi_transactions - t0) / frames, (driver.spi_bytes - b0) / frames


def _host_us(driver, emu, frames=2000):
    """Microseconds per frame: into the chip model and out through the driver, and send."""
    mv = memoryview(bytearray(1600))
    f = _frame(FRAME_LEN)
    inject, recv = emu.inject, driver.recv_into
    best_rx = best_tx = None
    for _ in range(3):                       # best of three runs
        t0 = time.perf_counter()
        for _ in range(frames):
            inject(f)
            recv(mv)
        rx = (time.perf_counter() - t0) * 1e6 / frames
        out = memoryview(bytearray(_frame(FRAME_LEN, dst=PEER, src=MAC)))
        send = driver.send
        t0 = time.perf_counter()
        for _ in range(frames // 4):
            send(out, FRAME_LEN)
        tx = (time.perf_counter() - t0) * 1e6 / (frames // 4)
        best_rx = rx if best_rx is None else min(best_rx, rx)
        best_tx = tx if best_tx is None else min(best_tx, tx)
    return best_rx, best_tx


def spi_figures(chip, frames=200):
    driver, emu = _chip(chip)
    fig = {}
    t, b = _rx_cost(driver, emu, frames, 1)
    fig["spi_transactions_per_rx_frame_" + chip] = round(t, 2)
    fig["spi_bytes_per_rx_frame_" + chip] = round(b, 1)
    fig["spi_overhead_bytes_per_rx_frame_" + chip] = round(b - FRAME_LEN, 1)
    t, b = _rx_cost(driver, emu, frames, 4)
    fig["spi_transactions_per_rx_frame_burst4_" + chip] = round(t, 2)
    fig["spi_bytes_per_rx_frame_burst4_" + chip] = round(b, 1)
    fig["spi_transactions_per_idle_poll_" + chip] = round(_idle_cost(driver), 2)
    t, b = _tx_cost(driver, frames)
    fig["spi_transactions_per_tx_frame_" + chip] = round(t, 2)
    fig["spi_bytes_per_tx_frame_" + chip] = round(b, 1)
    fig["spi_overhead_bytes_per_tx_frame_" + chip] = round(b - FRAME_LEN, 1)
    rx_us, tx_us = _host_us(driver, emu)
    fig["host_us_per_frame_" + chip] = round(rx_us, 1)
    fig["host_us_per_tx_frame_" + chip] = round(tx_us, 1)
    if chip == "enc28j60" and emu.violations:
        raise RuntimeError("bench_chips: driver broke chip rules: %r" % emu.violations[:3])
    return fig


def chip_figures(ping=True):
    figures = {}
    for chip in CHIPS:
        figures.update(spi_figures(chip))
    if not ping:
        return figures
    if os.geteuid() != 0:
        print("bench_chips: not root, ping_rtt_ms_w5500 / ping_rtt_ms_enc28j60 skipped "
              "(they need a network namespace and a TAP device)")
        return figures
    from bench_host import ping_rtts
    for chip in CHIPS:
        rtts = ping_rtts(chip)
        if len(rtts) < 45:
            raise RuntimeError("bench_chips: only %d of 50 pings through the %s answered" % (len(rtts), chip))
        figures["ping_rtt_ms_" + chip] = round(statistics.median(rtts), 3)
    return figures


if __name__ == "__main__":
    figs = chip_figures()
    width = max(len(k) for k in figs)
    for k in sorted(figs):
        print("%-*s %s" % (width, k, figs[k]))
