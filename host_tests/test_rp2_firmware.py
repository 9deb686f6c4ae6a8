"""firmware/main.py on the real RP2040 firmware (rp2040js, as host_tests/test_rp2.py):
a board whose network chip does not answer keeps trying, with backoff, instead
of dropping to the REPL."""
import re

import pytest

from levels import need_rp2_firmware

import rp2_files

RP2_BOARDS = ("w5500_evb_pico", "pico_enc28j60")


@pytest.fixture(scope="module", autouse=True)
def firmware_present():
    need_rp2_firmware()


@pytest.mark.parametrize("board", RP2_BOARDS)
def test_main_retries_with_backoff_when_the_chip_does_not_answer(board):
    from rp2board import Rp2Board
    chip = "W5500" if "w5500" in board else "ENC28J60"
    with Rp2Board(files=rp2_files.board_files(board, with_main=True), board=board, bus=False) as b:
        b.wait_for("retrying in 4 s", 120)        # three tries: waits of 1 and 2 s behind it
        console = bytes(b.console).decode("utf-8", "replace")
    tries = re.findall(r"\[\s*([0-9.]+)\] network chip not ready: (.*); retrying in (\d+) s", console)
    assert len(tries) >= 3, console
    assert all(("%s not answering" % chip) in why for _, why, _ in tries), console
    assert [int(d) for _, _, d in tries[:3]] == [1, 2, 4], console
    t = [float(at) for at, _, _ in tries]
    assert 1.0 <= t[1] - t[0] < t[2] - t[1], console          # the waits grow
    assert t[2] - t[1] >= 2.0, console
    assert "Traceback" not in console and ">>> " not in console, console
